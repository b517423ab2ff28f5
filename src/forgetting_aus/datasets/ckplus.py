"""CK+ (extended Cohn-Kanade) reader, its peak frames and the AU concept-probe datasets.

On disk (root folder)::

    cohn-kanade-images/S005/001/S005_001_00000011.png       subject, sequence, frame
    FACS/S005/001/S005_001_00000011_facs.txt                  peak frame only: 'AU intensity' lines
    Emotion/S005/001/S005_001_00000011_emotion.txt            peak frame, a subset of sequences
    Landmarks/S005/001/S005_001_00000011_landmarks.txt        every frame: 68 'x y' lines

Sequences go from neutral to the peak of the expression; the peak is the last frame and
the only one with FACS coding (and, where one applies, an emotion label).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from forgetting_aus.facs import AU_CODES, CKPLUS_EMOTIONS, EMOTIONS

from .common import (
    AU_COLUMNS,
    DatasetFormatError,
    ReadReport,
    au_vector,
    check_on_missing,
    finish_frame_index,
    new_report,
    read_au_lines,
    read_points,
    read_single_float,
    require_dir,
)

DATASET = "CK+"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


def read_ckplus(root: str | os.PathLike, *, report: ReadReport | None = None,
                on_missing: str = "raise") -> pd.DataFrame:
    """Read every CK+ frame into a tidy index, with FACS and emotion on the peak frames.

    Parameters
    ----------
    root : path-like
        Folder holding ``cohn-kanade-images/``, ``FACS/``, ``Emotion/`` and ``Landmarks/``.
    report : ReadReport, optional, keyword-only
        Filled with frames read and skipped, and notes (AUs outside the study's vocabulary).
    on_missing : {"raise", "skip"}, keyword-only
        What to do with a frame without its landmark file, or a peak without its FACS file.

    Returns
    -------
    DataFrame
        One row per frame, sorted by subject, sequence, frame. Columns: ``path``
        (absolute), ``subject`` (e.g. 'S005'), ``sequence`` (e.g. '001'), ``frame`` (int),
        ``is_peak`` (bool: last frame of its sequence), ``emotion`` (class name from
        ``facs.CKPLUS_EMOTIONS``, NA where not labelled), ``label`` (nullable Int64 index
        into ``facs.EMOTIONS``), ``AU1..AU43`` (peak frames: FACS intensity, 0 where not
        coded; NaN on non-peak frames, which have no coding), ``facs_aus`` (peak frames:
        every AU listed in the FACS file joined by '+', including AUs outside the study's
        vocabulary and AUs listed with intensity 0), ``face_x, face_y, face_width,
        face_height`` (face box from the landmarks) and the 136 landmark columns.

    Raises
    ------
    DatasetFormatError
        Missing folders or files (``on_missing="raise"``), FACS or emotion files for a
        frame that is not the peak, unparsable numbers, unknown emotion codes, landmark
        files without 68 points; the message names the file and line.
    """
    check_on_missing(on_missing)
    report = new_report(report, DATASET)
    root = Path(root).absolute()
    require_dir(root, dataset=DATASET, what="the CK+ root")
    folders = {
        "images": require_dir(root / "cohn-kanade-images", dataset=DATASET, what="frame images"),
        "facs": require_dir(root / "FACS", dataset=DATASET, what="peak-frame FACS coding"),
        "emotion": require_dir(root / "Emotion", dataset=DATASET, what="emotion labels"),
        "landmarks": require_dir(root / "Landmarks", dataset=DATASET, what="frame landmarks"),
    }
    records, aus, landmarks = [], [], []
    for subject, sequence, frames in _walk_sequences(folders["images"], report=report):
        rel = Path(subject) / sequence
        peak_number, peak_image = frames[-1]
        peak_labels = _peak_labels(folders, rel=rel, peak=peak_image, on_missing=on_missing,
                                   report=report)
        for number, image in frames:
            landmark_file = folders["landmarks"] / rel / f"{image.stem}_landmarks.txt"
            if not landmark_file.is_file():
                message = f"frame {image} has no landmark file: expected {landmark_file}"
                if on_missing == "raise":
                    raise DatasetFormatError(
                        f"{DATASET}: {message} (pass on_missing='skip' to skip and count such "
                        f"frames)"
                    )
                report.skip("landmark file missing", message)
                continue
            points = read_points(landmark_file, n_points=68, dataset=DATASET)
            is_peak = number == peak_number
            if is_peak and peak_labels is not None:
                vector, emotion, listed = peak_labels
            else:
                vector, emotion, listed = np.full(len(AU_CODES), np.nan), None, None
            records.append((os.fspath(image), subject, sequence, number, is_peak, emotion, listed))
            aus.append(vector)
            landmarks.append(points)
    index = pd.DataFrame.from_records(
        records,
        columns=["path", "subject", "sequence", "frame", "is_peak", "emotion", "facs_aus"],
    )
    index["frame"] = index["frame"].astype(int)
    index["is_peak"] = index["is_peak"].astype(bool)
    index["emotion"] = index["emotion"].astype("string")
    index["facs_aus"] = index["facs_aus"].astype("string")
    index["label"] = pd.array(
        [pd.NA if pd.isna(e) else EMOTIONS.index(e) for e in index["emotion"]], dtype="Int64"
    )
    return finish_frame_index(index, aus, landmarks, report=report)


def _walk_sequences(image_root: Path, *, report: ReadReport):
    """``(subject, sequence, [(frame, path), ...] sorted by frame)`` of every sequence."""
    for subject_dir in _folders(image_root, report=report):
        for sequence_dir in _folders(subject_dir, report=report):
            pattern = re.compile(
                rf"^{re.escape(subject_dir.name)}_{re.escape(sequence_dir.name)}_(\d+)$"
            )
            frames = []
            for image in sorted(sequence_dir.iterdir()):
                match = pattern.match(image.stem)
                if not image.is_file() or image.suffix.lower() not in IMAGE_EXTENSIONS or not match:
                    report.skip(
                        "not a frame image (expected <subject>_<sequence>_<frame:08d>.png)",
                        f"{image}",
                    )
                    continue
                frames.append((int(match.group(1)), image))
            if frames:
                yield subject_dir.name, sequence_dir.name, sorted(frames)
            else:
                report.note("sequence folder without frame images", f"{sequence_dir}")


def _folders(folder: Path, *, report: ReadReport) -> list[Path]:
    entries = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            entries.append(entry)
        else:
            report.skip("stray file where a folder was expected", f"{entry}")
    return entries


def _peak_labels(folders: dict[str, Path], *, rel: Path, peak: Path, on_missing: str,
                 report: ReadReport):
    """``(AU vector, emotion name or None, listed AUs)`` of a sequence's peak, or None."""
    facs_file = folders["facs"] / rel / f"{peak.stem}_facs.txt"
    _refuse_non_peak_files(folders["facs"] / rel, suffix="_facs.txt", peak=peak)
    _refuse_non_peak_files(folders["emotion"] / rel, suffix="_emotion.txt", peak=peak)
    if not facs_file.is_file():
        message = f"peak frame {peak} has no FACS file: expected {facs_file}"
        if on_missing == "raise":
            raise DatasetFormatError(
                f"{DATASET}: {message} (pass on_missing='skip' to read the sequence without "
                f"FACS coding)"
            )
        report.skip("FACS file of the peak frame missing (frame kept, AUs NaN)", message)
        return None
    triples = read_au_lines(facs_file, dataset=DATASET)
    vector = au_vector(triples, path=facs_file, dataset=DATASET, report=report)
    listed = "+".join(str(au) for au in sorted({au for au, _i, _line in triples}))
    emotion_file = folders["emotion"] / rel / f"{peak.stem}_emotion.txt"
    emotion = None
    if emotion_file.is_file():
        value = read_single_float(emotion_file, dataset=DATASET)
        if value != int(value) or int(value) not in CKPLUS_EMOTIONS:
            raise DatasetFormatError(
                f"{DATASET}: {emotion_file}, line 1: expected an emotion code "
                f"{min(CKPLUS_EMOTIONS)}-{max(CKPLUS_EMOTIONS)} "
                f"({', '.join(f'{k} {v}' for k, v in CKPLUS_EMOTIONS.items())}), found {value:g}"
            )
        emotion = CKPLUS_EMOTIONS[int(value)]
    return vector, emotion, listed


def _refuse_non_peak_files(folder: Path, *, suffix: str, peak: Path) -> None:
    """Error if ``folder`` labels a frame other than the sequence's last (peak) frame."""
    if not folder.is_dir():
        return
    for label_file in sorted(folder.iterdir()):
        if label_file.name.endswith(suffix) and label_file.name != f"{peak.stem}{suffix}":
            raise DatasetFormatError(
                f"{DATASET}: {label_file} labels a frame that is not the peak: expected only "
                f"{peak.stem}{suffix} (the sequence's last frame is {peak.name})"
            )


def ckplus_peak_frames(index: pd.DataFrame) -> pd.DataFrame:
    """The peak (last, FACS-coded) frame of every sequence, one row each.

    Rows whose FACS file was missing (read with ``on_missing="skip"``) have no coding and
    are left out.
    """
    peaks = index[index["is_peak"].to_numpy(dtype=bool)]
    return peaks[peaks[list(AU_COLUMNS)].notna().all(axis=1)].reset_index(drop=True)


def probe_dataset(index: pd.DataFrame, au: int, *, positive: str = "intensity"
                  ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The concept-probe data for one action unit: CK+ peak frames and AU presence.

    Parameters
    ----------
    index : DataFrame
        From :func:`read_ckplus`.
    au : int
        FACS action unit code, one of ``facs.AU_CODES`` (e.g. 14).
    positive : {"intensity", "listed"}, keyword-only
        ``"intensity"``: 1 where the AU's intensity is > 0 (the synthetic twin writes 0
        for AUs not coded). ``"listed"``: 1 where the FACS file lists the AU at all;
        use it on real CK+, whose FACS files list some present AUs with intensity 0
        ("intensity not coded").

    Returns
    -------
    peaks : DataFrame
        The peak frames (see :func:`ckplus_peak_frames`).
    y : ndarray of shape (n,), int
        1 where the AU is coded at the peak, else 0.
    groups : ndarray of shape (n,), object
        Subject ids, for subject-grouped cross-validation.
    """
    name = f"AU{int(au)}"
    if name not in AU_COLUMNS:
        raise ValueError(f"{name} is not one of the study's action units {AU_COLUMNS}")
    peaks = ckplus_peak_frames(index)
    if positive == "intensity":
        y = (peaks[name].to_numpy(dtype=float) > 0).astype(int)
    elif positive == "listed":
        y = np.array([str(int(au)) in str(listed).split("+") for listed in peaks["facs_aus"]],
                     dtype=int)
    else:
        raise ValueError(f"positive must be 'intensity' or 'listed', got {positive!r}")
    return peaks, y, peaks["subject"].astype(str).to_numpy(dtype=object)
