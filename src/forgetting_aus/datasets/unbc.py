"""UNBC-McMaster Shoulder Pain reader and the paper's frame selection protocol.

On disk (root folder)::

    Images/<subject>/<sequence>/<sequence><frame:03d>.png
    Frame_Labels/PSPI/<subject>/<sequence>/<sequence><frame:03d>_facs.txt   one float
    Frame_Labels/FACS/<subject>/<sequence>/<sequence><frame:03d>_facs.txt   'AU intensity' lines
    AAM_landmarks/<subject>/<sequence>/<sequence><frame:03d>_aam.txt        66 'x y' lines

e.g. subject ``042-ll042``, sequence ``ll042t1aaaff``, frame ``ll042t1aaaff001.png``.

The paper (section 3.1) tests on all frames of 4 subjects and selects, from the other 21,
1000 frames (500 pain, 500 no pain) such that every subject has at least one pain and one
no-pain frame and no two selected frames are consecutive; 900 train, 100 validation.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from forgetting_aus.facs import pspi

from .common import (
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

DATASET = "UNBC-McMaster"

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")

#: The AAM fit has 66 points: iBUG 68 without the inner mouth corners (0-based 60 and 64).
N_AAM_POINTS = 66
INNER_MOUTH_CORNERS = (60, 64)

SPLITS = ("train", "val", "test", "unused")


class SelectionCheckError(AssertionError):
    """A UNBC frame selection violates the paper's protocol (message says which rule)."""


# --------------------------------------------------------------------------- landmarks


def landmarks_66_to_68(points: np.ndarray) -> np.ndarray:
    """iBUG 68-point landmarks from UNBC's 66-point AAM fit.

    UNBC's AAM omits the two inner mouth corners (iBUG 0-based 60 and 64). They are
    re-inserted approximately: each is its outer mouth corner (48, resp. 54) moved halfway
    toward the mouth centre (the mean of the 12 outer-lip points 48-59). The inner corners
    sit a little inside the outer ones, so this is close for a closed mouth and coarse for
    a wide-open one; no AU region of the study depends on these two points alone.

    Parameters
    ----------
    points : ndarray of shape (66, 2) or (n, 66, 2)
        ``(x, y)`` in pixels, in UNBC AAM order (iBUG order with 60 and 64 removed).

    Returns
    -------
    ndarray of shape (68, 2) or (n, 68, 2), float
    """
    pts = np.asarray(points, dtype=float)
    single = pts.ndim == 2
    if single:
        pts = pts[None]
    if pts.shape[1:] != (N_AAM_POINTS, 2):
        raise ValueError(f"expected landmarks of shape (n, 66, 2), got {pts.shape}")
    mouth_centre = pts[:, 48:60].mean(axis=1)
    left_inner = (pts[:, 48] + mouth_centre) / 2.0
    right_inner = (pts[:, 54] + mouth_centre) / 2.0
    out = np.concatenate(
        [pts[:, :60], left_inner[:, None], pts[:, 60:63], right_inner[:, None], pts[:, 63:]],
        axis=1,
    )
    return out[0] if single else out


# --------------------------------------------------------------------------- reader


def read_unbc(root: str | os.PathLike, *, report: ReadReport | None = None,
              on_missing: str = "raise") -> pd.DataFrame:
    """Read every UNBC-McMaster frame into a tidy index.

    Parameters
    ----------
    root : path-like
        Folder holding ``Images/``, ``Frame_Labels/PSPI/``, ``Frame_Labels/FACS/`` and
        ``AAM_landmarks/``.
    report : ReadReport, optional, keyword-only
        Filled with frames read and skipped (files that are not frame images; frames
        missing a label file with ``on_missing="skip"``) and notes (AUs outside the study's
        vocabulary, PSPI files that disagree with the FACS-coded AUs).
    on_missing : {"raise", "skip"}, keyword-only
        What to do with a frame without its PSPI, FACS or landmark file.

    Returns
    -------
    DataFrame
        One row per frame, sorted by subject, sequence, frame. Columns: ``path``
        (absolute), ``subject``, ``sequence``, ``frame`` (int), ``pspi`` (float),
        ``label`` (int, 1 = pain = PSPI > 0), ``AU1..AU43`` (FACS intensities, 0 where not
        coded), ``face_x, face_y, face_width, face_height`` (face box from the landmarks,
        pixels) and the 136 landmark columns (68 points; see :func:`landmarks_66_to_68`).

    Raises
    ------
    DatasetFormatError
        Missing folders, missing label files (``on_missing="raise"``), unparsable numbers,
        negative PSPI, landmark files without 66 points; the message names the file/line.
    """
    check_on_missing(on_missing)
    report = new_report(report, DATASET)
    root = Path(root).absolute()
    require_dir(root, dataset=DATASET, what="the UNBC-McMaster root")
    layout = {"images": ("Images", "frame images"),
              "pspi": ("Frame_Labels/PSPI", "frame PSPI labels"),
              "facs": ("Frame_Labels/FACS", "frame FACS labels"),
              "aam": ("AAM_landmarks", "AAM landmarks")}
    folders = {
        kind: require_folder(root, relative, dataset=DATASET, what=what,
                             together_with=[r for r, _ in layout.values() if r != relative])
        for kind, (relative, what) in layout.items()
    }
    records, aus, landmarks = [], [], []
    for subject, sequence, frame, image in _walk_frames(folders["images"], report=report):
        stem = image.stem
        rel = Path(subject) / sequence
        files = {
            "PSPI": folders["pspi"] / rel / f"{stem}_facs.txt",
            "FACS": folders["facs"] / rel / f"{stem}_facs.txt",
            "landmark": folders["aam"] / rel / f"{stem}_aam.txt",
        }
        absent = [kind for kind, path in files.items() if not path.is_file()]
        if absent:
            message = (f"frame {image} has no {absent[0]} file: expected {files[absent[0]]}")
            if on_missing == "raise":
                raise DatasetFormatError(
                    f"{DATASET}: {message} (pass on_missing='skip' to skip and count such frames)"
                )
            report.skip(f"{absent[0]} file missing", message)
            continue
        score = read_single_float(files["PSPI"], dataset=DATASET)
        if not np.isfinite(score) or score < 0:
            raise DatasetFormatError(
                f"{DATASET}: {files['PSPI']}, line 1: expected a PSPI >= 0, found {score!r}"
            )
        vector = au_vector(read_au_lines(files["FACS"], dataset=DATASET), path=files["FACS"],
                           dataset=DATASET, report=report)
        implied = float(pspi(vector[None])[0])
        if abs(implied - score) > 1e-6:
            report.note("PSPI file differs from the PSPI of the FACS-coded AUs",
                        f"{files['PSPI']}: {score:g} vs {implied:g}")
        points = read_points(files["landmark"], n_points=N_AAM_POINTS, dataset=DATASET)
        records.append((os.fspath(image), subject, sequence, frame, score))
        aus.append(vector)
        landmarks.append(landmarks_66_to_68(points))
    index = pd.DataFrame.from_records(
        records, columns=["path", "subject", "sequence", "frame", "pspi"]
    )
    index["frame"] = index["frame"].astype(int)
    index["pspi"] = index["pspi"].astype(float)
    index["label"] = (index["pspi"] > 0).astype(int)
    published = published_counts(DATASET)
    for what, value in (("frames", len(index)),
                        ("pain frames (PSPI > 0)", int(index["label"].sum())),
                        ("subjects", index["subject"].nunique()),
                        ("sequences", len(index[["subject", "sequence"]].drop_duplicates()))):
        report.count(what, value, release=published[what])
    return finish_frame_index(index, aus, landmarks, report=report)


def _walk_frames(image_root: Path, *, report: ReadReport):
    """``(subject, sequence, frame, path)`` of every frame image, in sorted order."""
    for subject_dir in _sorted_entries(image_root, report=report):
        for sequence_dir in _sorted_entries(subject_dir, report=report):
            sequence = sequence_dir.name
            pattern = re.compile(rf"^{re.escape(sequence)}(\d+)$")
            for image in sorted(sequence_dir.iterdir()):
                match = pattern.match(image.stem)
                if not image.is_file() or image.suffix.lower() not in IMAGE_EXTENSIONS or not match:
                    report.skip(
                        "not a frame image (expected <sequence><frame:03d>.png)", f"{image}"
                    )
                    continue
                yield subject_dir.name, sequence, int(match.group(1)), image


def _sorted_entries(folder: Path, *, report: ReadReport) -> list[Path]:
    """Sub-folders of ``folder``, sorted; stray files are counted as skipped."""
    entries = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            entries.append(entry)
        else:
            report.skip("stray file where a folder was expected", f"{entry}")
    return entries


# --------------------------------------------------------------------------- protocol


def unbc_protocol(index: pd.DataFrame, *, test_subjects: list[str] | int, n_pain: int = 500,
                  n_no_pain: int = 500, n_val: int = 100, seed: int) -> pd.DataFrame:
    """The paper's UNBC protocol: test subjects, then 1000 non-consecutive frames, 900/100.

    Parameters
    ----------
    index : DataFrame
        From :func:`read_unbc` (needs ``subject``, ``sequence``, ``frame``, ``label``).
    test_subjects : list of str or int, keyword-only
        Subject names whose frames all form the test set, or how many to draw: the subjects
        are sorted by name and that many drawn with the seed.
    n_pain, n_no_pain : int, keyword-only
        Frames with PSPI > 0 and PSPI = 0 to select from the other subjects.
    n_val : int, keyword-only
        Selected frames that go to validation, stratified by label
        (``round(n_val * n_pain / (n_pain + n_no_pain))`` pain frames).
    seed : int, keyword-only
        Seed; the same seed and index give the same selection.

    Returns
    -------
    DataFrame
        A copy with ``split`` in {'train', 'val', 'test', 'unused'}.

    Raises
    ------
    ValueError
        If the selection is infeasible, saying how many frames were possible and why.

    Notes
    -----
    Selection: frames are grouped into *runs* (consecutive frame numbers of one sequence
    with the same label). In every run, an alternating pattern (every second frame, from a
    random end when the run length is even) holds the most frames a run can give without
    two consecutive ones, ``ceil(L / 2)``. First every non-test subject gets one pain and
    one non-adjacent no-pain frame (pattern frames first), then pain frames, then no-pain
    frames, are drawn at random from the pattern frames that are not next to an already
    selected frame (then from any such frame, if the patterns ran short).
    """
    for name in ("n_pain", "n_no_pain", "n_val"):
        if int(locals()[name]) < 0:
            raise ValueError(f"{name} must be >= 0, got {locals()[name]}")
    if n_val > n_pain + n_no_pain:
        raise ValueError(f"n_val={n_val} exceeds the {n_pain + n_no_pain} selected frames")
    test_rng, select_rng, val_rng = (np.random.default_rng(s)
                                     for s in np.random.SeedSequence(seed).spawn(3))
    out = index.sort_values(["subject", "sequence", "frame"], kind="stable").reset_index(drop=True)
    test = _choose_test_subjects(out["subject"].unique().tolist(), test_subjects, rng=test_rng)
    is_test = out["subject"].isin(test).to_numpy()
    selected = _select_frames(out, candidates=~is_test, n_pain=n_pain, n_no_pain=n_no_pain,
                              rng=select_rng)
    labels = out["label"].to_numpy()
    split = np.full(len(out), "unused", dtype=object)
    split[is_test] = "test"
    split[selected] = "train"
    n_val_pain = int(round(n_val * n_pain / (n_pain + n_no_pain))) if n_pain + n_no_pain else 0
    for label, count in ((1, n_val_pain), (0, n_val - n_val_pain)):
        pool = selected[labels[selected] == label]
        split[val_rng.permutation(pool)[:count]] = "val"
    out["split"] = split
    check_unbc_selection(out, n_pain=n_pain, n_no_pain=n_no_pain, n_val=n_val)
    return out


def _choose_test_subjects(subjects: list[str], test_subjects: list[str] | int, *,
                          rng: np.random.Generator) -> list[str]:
    """Named test subjects (validated), or ``k`` drawn from the sorted subjects."""
    subjects = sorted(subjects)
    if isinstance(test_subjects, (int, np.integer)) and not isinstance(test_subjects, bool):
        k = int(test_subjects)
        if not 0 <= k < len(subjects):
            raise ValueError(
                f"test_subjects={k}: expected between 0 and {len(subjects) - 1} "
                f"(the index has {len(subjects)} subjects)"
            )
        return sorted(subjects[i] for i in rng.choice(len(subjects), size=k, replace=False))
    names = [str(name) for name in test_subjects]
    unknown = [name for name in names if name not in subjects]
    if unknown:
        raise ValueError(
            f"test_subjects {unknown} are not in the index; its subjects are {subjects}"
        )
    return sorted(set(names))


def _neighbours(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row of the previous and next frame (same sequence, frame number -1 / +1), or -1."""
    key = frame["subject"].astype(str) + "\x00" + frame["sequence"].astype(str)
    numbers = frame["frame"].to_numpy()
    same_prev = np.r_[False, (key.to_numpy()[1:] == key.to_numpy()[:-1])
                      & (numbers[1:] - numbers[:-1] == 1)]
    rows = np.arange(len(frame))
    prev = np.where(same_prev, rows - 1, -1)
    same_next = np.r_[same_prev[1:], False]
    nxt = np.where(same_next, rows + 1, -1)
    return prev, nxt


def _pattern_rows(labels: np.ndarray, prev: np.ndarray, candidates: np.ndarray, *,
                  rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of the alternating pattern of every same-label run of candidates."""
    run_start = ~((prev >= 0) & (labels == labels[np.maximum(prev, 0)])
                  & candidates[np.maximum(prev, 0)])
    run_id = np.cumsum(run_start) - 1
    position = np.arange(len(labels)) - np.flatnonzero(run_start)[run_id]
    run_length = np.bincount(run_id)
    offset = np.where(run_length % 2 == 0, rng.integers(0, 2, size=len(run_length)), 0)
    return candidates & ((position - offset[run_id]) % 2 == 0) & (position >= offset[run_id])


#: Randomised greedy attempts before a selection is declared infeasible.
SELECTION_ATTEMPTS = 25


def _select_frames(frame: pd.DataFrame, *, candidates: np.ndarray, n_pain: int,
                   n_no_pain: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of the selection (sorted); ValueError naming why when infeasible.

    The greedy fill is randomised; near the limit of what the data allow one draw can fall
    short where another succeeds, so up to ``SELECTION_ATTEMPTS`` draws (from the same
    seeded stream, hence deterministic) are tried before giving up.
    """
    labels = frame["label"].to_numpy()
    subjects = frame["subject"].astype(str).to_numpy()
    prev, nxt = _neighbours(frame)
    wanted = {1: int(n_pain), 0: int(n_no_pain)}
    best = None
    for _attempt in range(SELECTION_ATTEMPTS):
        selected, have = _select_once(labels, subjects, candidates, prev, nxt, wanted, rng)
        if have == wanted:
            return np.flatnonzero(selected)
        if best is None or sum(have.values()) > sum(best.values()):
            best = have
    label = 1 if best[1] < wanted[1] else 0
    name = "pain" if label == 1 else "no-pain"
    mask = candidates & (labels == label)
    raise ValueError(
        f"infeasible UNBC selection: asked for {wanted[label]} {name} frames with no two "
        f"consecutive, but only {best[label]} could be selected (best of "
        f"{SELECTION_ATTEMPTS} randomised attempts). The non-test subjects have "
        f"{int(mask.sum())} {name} frames in {_count_runs(mask, prev)} runs of consecutive "
        f"frames, which allow at most {_capacity(mask, prev)} non-consecutive ones (ceil(L/2) "
        f"per run of length L), fewer once neighbours of the other class's selected frames "
        f"are excluded. Lower n_{name.replace('-', '_')} or use fewer test subjects."
    )


def _select_once(labels, subjects, candidates, prev, nxt, wanted, rng):
    """One randomised greedy selection: ``(selected mask, {label: count reached})``."""
    pattern = _pattern_rows(labels, prev, candidates, rng=rng)
    selected = np.zeros(len(labels), dtype=bool)
    blocked = ~candidates.copy()

    def take(row: int) -> None:
        selected[row] = True
        blocked[row] = True
        for neighbour in (prev[row], nxt[row]):
            if neighbour >= 0:
                blocked[neighbour] = True

    _take_one_pair_per_subject(subjects, labels, candidates, pattern, prev, nxt, rng, take)
    reached = {}
    for label, name in ((1, "pain"), (0, "no-pain")):
        have = int((selected & (labels == label)).sum())
        if have > wanted[label]:
            raise ValueError(
                f"infeasible UNBC selection: every one of the {have} non-test subjects needs "
                f"at least one {name} frame, but only n_{name.replace('-', '_')}="
                f"{wanted[label]} {name} frames are to be selected"
            )
        for pool in (pattern, np.ones(len(labels), dtype=bool)):
            for row in rng.permutation(np.flatnonzero(pool & candidates & (labels == label))):
                if have == wanted[label]:
                    break
                if not blocked[row]:
                    take(row)
                    have += 1
        reached[label] = have
    return selected, reached


def _take_one_pair_per_subject(subjects, labels, candidates, pattern, prev, nxt, rng,
                               take) -> None:
    """Give every candidate subject one pain and one non-adjacent no-pain frame."""
    problems = []
    for subject in sorted(set(subjects[candidates])):
        mine = candidates & (subjects == subject)
        pains = np.flatnonzero(mine & (labels == 1))
        calm = np.flatnonzero(mine & (labels == 0))
        if pains.size == 0 or calm.size == 0:
            problems.append(f"{subject} has {pains.size} pain and {calm.size} no-pain frames")
            continue
        # Pattern frames first, so the mandatory picks cost the runs no capacity.
        pains = np.r_[rng.permutation(pains[pattern[pains]]),
                      rng.permutation(pains[~pattern[pains]])]
        # No-pain frames that touch no pain pattern frame first, so this pick does not
        # block a pain frame the fill could use (pain frames are the scarce class).
        calm = rng.permutation(calm)
        cost = sum(((nb >= 0) & pattern[np.maximum(nb, 0)] & (labels[np.maximum(nb, 0)] == 1))
                   .astype(int) for nb in (prev[calm], nxt[calm]))
        calm = calm[np.argsort(cost, kind="stable")]
        for pain_row in pains:
            allowed = calm[(calm != prev[pain_row]) & (calm != nxt[pain_row])]
            if allowed.size:
                take(int(pain_row))
                take(int(allowed[0]))
                break
        else:
            problems.append(
                f"{subject}: each of its {pains.size} pain frames is next to all of its "
                f"{calm.size} no-pain frames"
            )
    if problems:
        raise ValueError(
            "infeasible UNBC selection: every non-test subject needs at least one pain and "
            "one no-pain frame that are not consecutive, but " + "; ".join(problems)
            + ". Make these subjects test subjects or fix their labels."
        )


def _count_runs(mask: np.ndarray, prev: np.ndarray) -> int:
    starts = mask & ~((prev >= 0) & mask[np.maximum(prev, 0)])
    return int(starts.sum())


def _capacity(mask: np.ndarray, prev: np.ndarray) -> int:
    """Most frames of ``mask`` selectable with no two consecutive: sum of ceil(L/2)."""
    starts = mask & ~((prev >= 0) & mask[np.maximum(prev, 0)])
    run_id = np.cumsum(starts)[mask]
    lengths = np.bincount(run_id)[1:] if run_id.size else np.zeros(0, dtype=int)
    return int(((lengths + 1) // 2).sum())


def check_unbc_selection(index: pd.DataFrame, *, n_pain: int | None = None,
                         n_no_pain: int | None = None, n_val: int | None = None) -> dict:
    """Check a UNBC split against the paper's protocol; raise naming the first violation.

    Checks that ``split`` takes values in {'train', 'val', 'test', 'unused'}; test subjects
    have all their frames (and only theirs) in 'test'; every other subject has at least one
    pain and one no-pain frame among the selected ('train' or 'val'); no two selected
    frames are consecutive (same sequence, frame numbers differing by 1); and, when given,
    the numbers of pain, no-pain and validation frames (validation stratified by label).

    Returns
    -------
    dict
        Counts: ``test_subjects``, ``n_test``, ``n_train``, ``n_val``, ``n_pain``,
        ``n_no_pain``, ``n_val_pain``.

    Raises
    ------
    SelectionCheckError
        A subclass of AssertionError, naming the rule and an offending subject or frame.
    """
    split = index["split"].astype(str).to_numpy()
    unknown = sorted(set(split) - set(SPLITS))
    if unknown:
        raise SelectionCheckError(f"split has values {unknown}; expected only {SPLITS}")
    subjects = index["subject"].astype(str).to_numpy()
    labels = index["label"].to_numpy()
    test_subjects = sorted(set(subjects[split == "test"]))
    mixed = sorted(set(subjects[np.isin(subjects, test_subjects) & (split != "test")]))
    if mixed:
        raise SelectionCheckError(
            f"test subjects {mixed} also have frames outside the test split; all frames of a "
            f"test subject must be in 'test'"
        )
    chosen = np.isin(split, ("train", "val"))
    for subject in sorted(set(subjects) - set(test_subjects)):
        mine = chosen & (subjects == subject)
        if not (mine & (labels == 1)).any() or not (mine & (labels == 0)).any():
            raise SelectionCheckError(
                f"subject {subject} has {int((mine & (labels == 1)).sum())} pain and "
                f"{int((mine & (labels == 0)).sum())} no-pain selected frames; expected >= 1 each"
            )
    order = index[chosen].sort_values(["subject", "sequence", "frame"])
    same_sequence = ((order["subject"].to_numpy()[1:] == order["subject"].to_numpy()[:-1])
                     & (order["sequence"].to_numpy()[1:] == order["sequence"].to_numpy()[:-1]))
    step = np.diff(order["frame"].to_numpy())
    bad = np.flatnonzero(same_sequence & (np.abs(step) <= 1))
    if bad.size:
        row = order.iloc[bad[0] + 1]
        raise SelectionCheckError(
            f"selected frames {row['sequence']} {row['frame'] - step[bad[0]]} and {row['frame']} "
            f"are consecutive (or duplicated); no two selected frames may be"
        )
    counts = {
        "test_subjects": test_subjects,
        "n_test": int((split == "test").sum()),
        "n_train": int((split == "train").sum()),
        "n_val": int((split == "val").sum()),
        "n_pain": int((chosen & (labels == 1)).sum()),
        "n_no_pain": int((chosen & (labels == 0)).sum()),
        "n_val_pain": int(((split == "val") & (labels == 1)).sum()),
    }
    expected = {"n_pain": n_pain, "n_no_pain": n_no_pain, "n_val": n_val}
    for key, value in expected.items():
        if value is not None and counts[key] != value:
            raise SelectionCheckError(f"{key} is {counts[key]}, expected {value}")
    if None not in expected.values() and n_pain + n_no_pain:
        want = int(round(n_val * n_pain / (n_pain + n_no_pain)))
        if counts["n_val_pain"] != want:
            raise SelectionCheckError(
                f"validation holds {counts['n_val_pain']} pain frames, expected {want} "
                f"(stratified by label)"
            )
    return counts
