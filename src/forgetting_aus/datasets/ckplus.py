"""CK+ (extended Cohn-Kanade) reader, its peak frames and the AU concept-probe datasets.

On disk (root folder)::

    cohn-kanade-images/S005/001/S005_001_00000011.png       subject, sequence, frame
    FACS/S005/001/S005_001_00000011_facs.txt                  peak frame only: 'AU intensity' lines
    Emotion/S005/001/S005_001_00000011_emotion.txt            peak frame, a subset of sequences
    Landmarks/S005/001/S005_001_00000011_landmarks.txt        every frame: 68 'x y' lines

Sequences go from neutral to the peak of the expression; the peak is the last frame and
the only one with FACS coding (and, where one applies, an emotion label).

An AU listed in a FACS file with intensity 0 is *present, its intensity not coded* (common
in CK+). The intensity columns keep 0 for it (0 = absent or not coded), so the presence
columns ``AU<code>_present`` say which AUs are there: True for every listed AU.
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
from .release import published_counts, require_folder

DATASET = "CK+"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")

#: Presence columns, in ``facs.AU_CODES`` order: True where the peak's FACS file lists the
#: AU (any intensity, 0 = "present, intensity not coded" included), False where it does
#: not, NA on frames without FACS coding.
PRESENCE_COLUMNS: tuple[str, ...] = tuple(f"AU{code}_present" for code in AU_CODES)

_LISTED_WITH_ZERO = ("AU listed with intensity 0: present, intensity not coded (its intensity "
                     "column holds 0, its AU<code>_present column True)")


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
        into ``facs.EMOTIONS``), ``AU1..AU43`` (peak frames: FACS intensity, 0 = absent
        or not coded, i.e. also for an AU listed with intensity 0; NaN on non-peak frames,
        which have no coding), ``facs_aus`` (peak frames: every AU listed in the FACS file
        joined by '+', including AUs outside the study's vocabulary and AUs listed with
        intensity 0), ``face_x, face_y, face_width, face_height`` (face box from the
        landmarks), the 136 landmark columns and, last, ``AU1_present..AU43_present``
        (nullable boolean, :data:`PRESENCE_COLUMNS`: True for every AU the FACS file lists,
        intensity 0 included, False for the others, NA where the frame has no FACS coding;
        use these, not ``intensity > 0``, for AU labels on real CK+). The report counts
        the AUs listed with intensity 0 and states the counts beside the release's.

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
    layout = {"images": ("cohn-kanade-images", "frame images"),
              "facs": ("FACS", "peak-frame FACS coding"),
              "emotion": ("Emotion", "emotion labels"),
              "landmarks": ("Landmarks", "frame landmarks")}
    folders = {
        kind: require_folder(root, relative, dataset=DATASET, what=what,
                             together_with=[r for r, _ in layout.values() if r != relative])
        for kind, (relative, what) in layout.items()
    }
    records, aus, landmarks, present = [], [], [], []
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
            present.append(_presence(listed))
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
    _count(index, report=report)
    return finish_frame_index(index, aus, landmarks, report=report,
                              extra=_presence_frame(present))


def _presence(listed: str | None) -> list[bool | None]:
    """Presence of each study AU from a peak's '+'-joined listed AUs (None: no coding)."""
    if listed is None:
        return [None] * len(AU_CODES)
    codes = {int(code) for code in listed.split("+") if code}
    return [code in codes for code in AU_CODES]


def _presence_frame(present: list[list[bool | None]]) -> pd.DataFrame:
    """The :data:`PRESENCE_COLUMNS` (nullable boolean) of the frames' presence lists."""
    values = np.asarray(present, dtype=object).reshape(len(present), len(AU_CODES))
    return pd.DataFrame({column: pd.array(values[:, j], dtype="boolean")
                         for j, column in enumerate(PRESENCE_COLUMNS)})


def _count(index: pd.DataFrame, *, report: ReadReport) -> None:
    """Sequences, subjects, coded peaks and labelled sequences beside the release's counts."""
    published = published_counts(DATASET)
    peaks = index[index["is_peak"] & index["facs_aus"].notna()]
    for what, value in (
        ("sequences", len(index[["subject", "sequence"]].drop_duplicates())),
        ("subjects", index["subject"].nunique()),
        ("FACS-coded peak frames", len(peaks)),
        ("sequences with an emotion label", int(index["emotion"].notna().sum())),
    ):
        report.count(what, value, release=published[what])


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
    for au, intensity, line in triples:
        if intensity == 0:
            report.note(_LISTED_WITH_ZERO, f"{facs_file}, line {line}: AU{au}")
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


def au_presence(index: pd.DataFrame) -> np.ndarray:
    """Presence of every AU per row: float32 (n, 18) in ``facs.AU_CODES`` order, 1 / 0 / NaN.

    From the :data:`PRESENCE_COLUMNS` where a reader gives them (CK+: an AU listed with
    intensity 0 is present), else from the intensity columns (present where > 0). NaN
    where the AU is not known (no FACS coding). Works on any reader's index.
    """
    if all(column in index for column in PRESENCE_COLUMNS):
        flags = index[list(PRESENCE_COLUMNS)].astype("boolean")
        return flags.astype("float32").to_numpy(dtype="float32", na_value=np.nan)
    intensities = index.reindex(columns=[f"AU{code}" for code in AU_CODES]).to_numpy(dtype="float32")
    return np.where(np.isnan(intensities), np.nan, (intensities > 0).astype("float32")).astype("float32")
