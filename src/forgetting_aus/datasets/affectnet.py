"""AffectNet reader (``training.csv``, ``validation.csv``, ``Manually_Annotated_Images/``).

The paper (section 3.1) drops expression codes 8-10 (None, Uncertain, Non-Face), trains on
``training.csv`` with its own validation split, and tests on ``validation.csv`` (500 images
per class). The synthetic twin writes the same files plus a ground-truth sidecar
``au_intensities.csv`` (``subDirectory_filePath,subject,AU1,...,AU43,unilateral``), which
the reader joins when present; real AffectNet has neither AU coding nor subject ids, so
those columns are missing (NaN / NA) for it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from forgetting_aus.facs import EMOTIONS

from .common import (
    AU_COLUMNS,
    FACE_BOX_COLUMNS,
    N_LANDMARKS,
    DatasetFormatError,
    ReadReport,
    check_on_missing,
    landmark_frame,
    new_report,
    require_dir,
    require_file,
    safe_join_many,
)

DATASET = "AffectNet"

#: Header of ``training.csv`` and ``validation.csv``.
CSV_COLUMNS: tuple[str, ...] = (
    "subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
    "facial_landmarks", "expression", "valence", "arousal",
)

#: Header of the synthetic twin's ground-truth sidecar.
SIDECAR_NAME = "au_intensities.csv"
SIDECAR_COLUMNS: tuple[str, ...] = ("subDirectory_filePath", "subject", *AU_COLUMNS, "unilateral")

IMAGE_FOLDER = "Manually_Annotated_Images"

#: Codes 8-10 carry no emotion; the paper excludes them (counted in the report).
EXCLUDED_CODES: dict[int, str] = {8: "None", 9: "Uncertain", 10: "Non-Face"}

#: Which CSV feeds which split: validation.csv is the paper's test set.
CSV_SPLITS: dict[str, str] = {"training.csv": "train", "validation.csv": "test"}

_CHUNK_ROWS = 50_000


def read_affectnet(root: str | os.PathLike, *, report: ReadReport | None = None,
                   on_missing: str = "raise", check_images: bool = True) -> pd.DataFrame:
    """Read AffectNet's two CSVs into a tidy index, one row per image.

    Parameters
    ----------
    root : path-like
        Folder holding ``training.csv``, ``validation.csv`` and ``Manually_Annotated_Images/``
        (see :func:`~forgetting_aus.datasets.resolve_root`).
    report : ReadReport, optional, keyword-only
        Filled with rows read and rows skipped by reason (codes 8-10, missing images).
    on_missing : {"raise", "skip"}, keyword-only
        What to do with a row whose image file does not exist.
    check_images : bool, keyword-only
        Check that every image file exists (one ``stat`` per row).

    Returns
    -------
    DataFrame
        Columns: ``path`` (absolute), ``rel_path`` (``subDirectory_filePath``), ``source``
        (CSV file name), ``line`` (1-based CSV line), ``subject`` (string, NA for real
        AffectNet), ``label`` (int, index into ``facs.EMOTIONS`` = AffectNet code),
        ``emotion`` (class name), ``face_x, face_y, face_width, face_height`` (pixels),
        ``valence``, ``arousal``, ``AU1..AU43`` (sidecar intensities, NaN without one),
        ``unilateral`` (sidecar, NA without one), ``split`` ('train' for training.csv,
        'test' for validation.csv; see :func:`affectnet_splits`) and the 136 landmark
        columns (see :func:`~forgetting_aus.datasets.landmarks_array`).

    Raises
    ------
    DatasetFormatError
        Missing files or folders, wrong headers, unparsable numbers, unknown expression
        codes, landmark strings without 68 points, paths escaping ``root``, missing images
        (with ``on_missing="raise"``); the message names the file and line.
    """
    check_on_missing(on_missing)
    report = new_report(report, DATASET)
    root = Path(root).absolute()
    require_dir(root, dataset=DATASET, what="the AffectNet root")
    image_root = require_dir(root / IMAGE_FOLDER, dataset=DATASET, what="the face images")
    parts = []
    for csv_name, split in CSV_SPLITS.items():
        csv_path = require_file(root / csv_name, dataset=DATASET, what="AffectNet labels")
        frame = _read_label_csv(csv_path, image_root=image_root, report=report)
        frame["split"] = split
        parts.append(frame)
    index = pd.concat(parts, ignore_index=True)
    index = _join_sidecar(index, root=root)
    if check_images:
        index = _check_images_exist(index, on_missing=on_missing, report=report)
    report.rows_read += len(index)
    index.attrs["read_report"] = str(report)
    return index


def _read_label_csv(csv_path: Path, *, image_root: Path, report: ReadReport) -> pd.DataFrame:
    """One AffectNet CSV, validated, codes 8-10 counted and dropped."""
    _check_header(csv_path, CSV_COLUMNS)
    chunks = []
    try:
        reader = pd.read_csv(csv_path, dtype=str, keep_default_na=False, na_filter=False,
                             chunksize=_CHUNK_ROWS)
        for chunk in reader:
            chunks.append(_parse_chunk(chunk, csv_path=csv_path, image_root=image_root,
                                       report=report))
    except pd.errors.ParserError as error:
        raise DatasetFormatError(
            f"{DATASET}: {csv_path}: expected {len(CSV_COLUMNS)} comma-separated fields per "
            f"line, found otherwise ({error})"
        ) from None
    if not chunks:
        return _parse_chunk(pd.DataFrame(columns=list(CSV_COLUMNS), dtype=str),
                            csv_path=csv_path, image_root=image_root, report=report)
    return pd.concat(chunks, ignore_index=True)


def _check_header(csv_path: Path, expected: tuple[str, ...]) -> None:
    """Error naming the missing and unexpected columns of a CSV header."""
    with open(csv_path, encoding="utf-8-sig") as handle:
        first = handle.readline().rstrip("\r\n")
    found = [name.strip() for name in first.split(",")] if first else []
    missing = [name for name in expected if name not in found]
    unexpected = [name for name in found if name not in expected]
    if missing or unexpected:
        raise DatasetFormatError(
            f"{DATASET}: {csv_path}, line 1: wrong CSV header. Expected columns "
            f"{','.join(expected)}; missing: {missing or 'none'}; unexpected: "
            f"{unexpected or 'none'}"
        )


def _parse_chunk(chunk: pd.DataFrame, *, csv_path: Path, image_root: Path,
                 report: ReadReport) -> pd.DataFrame:
    """Validate and convert one chunk of CSV rows (index = 0-based data row)."""
    lines = chunk.index.to_numpy() + 2  # line 1 is the header
    codes = _numbers(chunk["expression"], lines, csv_path=csv_path, name="expression")
    bad_code = (codes != np.round(codes)) | (codes < 0) | (codes > 10)
    if bad_code.any():
        i = int(np.flatnonzero(bad_code)[0])
        raise DatasetFormatError(
            f"{DATASET}: {csv_path}, line {lines[i]}, column expression: expected a code "
            f"0-7 ({', '.join(EMOTIONS)}) or 8-10 (None, Uncertain, Non-Face, which are "
            f"excluded), found {chunk['expression'].iloc[i]!r}"
        )
    codes = codes.astype(int)
    keep = codes < len(EMOTIONS)
    for code, name in EXCLUDED_CODES.items():
        excluded = np.flatnonzero(codes == code)
        if excluded.size:
            report.skip(
                f"expression {code} ({name}): no emotion label, excluded as in the paper",
                f"{csv_path.name}, line {lines[excluded[0]]}",
                count=excluded.size,
            )
    chunk, lines, codes = chunk[keep], lines[keep], codes[keep]
    out = pd.DataFrame(index=pd.RangeIndex(len(chunk)))
    where = [f"{csv_path}, line {line}" for line in lines]
    out["path"] = safe_join_many(
        image_root, chunk["subDirectory_filePath"],
        wheres=[f"{DATASET}: {w}, column subDirectory_filePath" for w in where],
    )
    out["rel_path"] = chunk["subDirectory_filePath"].to_numpy()
    out["source"] = csv_path.name
    out["line"] = lines
    out["subject"] = pd.Series([pd.NA] * len(chunk), dtype="string")
    out["label"] = codes
    out["emotion"] = np.asarray(EMOTIONS, dtype=object)[codes]
    for column in (*FACE_BOX_COLUMNS, "valence", "arousal"):
        out[column] = _numbers(chunk[column], lines, csv_path=csv_path, name=column)
    too_small = (out["face_width"] <= 0) | (out["face_height"] <= 0)
    if too_small.any():
        i = int(np.flatnonzero(too_small.to_numpy())[0])
        raise DatasetFormatError(
            f"{DATASET}: {csv_path}, line {lines[i]}: expected a face box of positive width "
            f"and height, found {out['face_width'].iloc[i]} x {out['face_height'].iloc[i]}"
        )
    for column in AU_COLUMNS:
        out[column] = np.nan
    out["unilateral"] = pd.Series([pd.NA] * len(chunk), dtype="object")
    landmarks = _landmarks(chunk["facial_landmarks"], lines, csv_path=csv_path)
    return pd.concat([out, landmark_frame(landmarks, index=out.index)], axis=1)


def _numbers(cells: pd.Series, lines: np.ndarray, *, csv_path: Path, name: str) -> np.ndarray:
    """Float values of a string column; error naming the first unparsable cell."""
    values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DatasetFormatError(
            f"{DATASET}: {csv_path}, line {lines[i]}, column {name}: expected a number, "
            f"found {cells.iloc[i]!r}"
        )
    return values


def _landmarks(cells: pd.Series, lines: np.ndarray, *, csv_path: Path) -> np.ndarray:
    """``(n, 68, 2)`` landmarks from ``x;y;x;y;...`` strings (136 numbers each)."""
    n_numbers = 2 * N_LANDMARKS
    texts = cells.to_numpy(dtype=object)
    # Fast path: numpy's C parser over the joined chunk, once every row has 136 fields;
    # the slow path below finds the bad line.
    if len(texts) == 0:
        return np.zeros((0, N_LANDMARKS, 2))
    if (cells.str.count(";") == n_numbers - 1).all():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # "could not be read to its end"
            values = np.fromstring(";".join(texts), dtype=float, sep=";")
        if values.size == n_numbers * len(texts) and np.isfinite(values).all():
            return values.reshape(len(texts), N_LANDMARKS, 2)
    for text, line in zip(texts, lines, strict=True):
        where = f"{DATASET}: {csv_path}, line {line}, column facial_landmarks"
        parts = text.split(";") if text.strip() else []
        if len(parts) != n_numbers:
            raise DatasetFormatError(
                f"{where}: expected {N_LANDMARKS} 'x;y' pairs ({n_numbers} numbers joined by "
                f"';'), found {len(parts)} numbers"
            )
        for token in parts:
            try:
                float(token)
            except ValueError:
                raise DatasetFormatError(f"{where}: expected a number, found {token!r}") from None
    raise AssertionError("unreachable: a bad landmark cell should have been found")


def _join_sidecar(index: pd.DataFrame, *, root: Path) -> pd.DataFrame:
    """Fill subject, AU intensities and ``unilateral`` from the twin's sidecar, if present."""
    sidecar_path = root / SIDECAR_NAME
    if not sidecar_path.is_file():
        return index
    _check_header(sidecar_path, SIDECAR_COLUMNS)
    try:
        sidecar = pd.read_csv(sidecar_path, dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.ParserError as error:
        raise DatasetFormatError(f"{DATASET}: {sidecar_path}: malformed CSV ({error})") from None
    lines = sidecar.index.to_numpy() + 2
    duplicated = sidecar["subDirectory_filePath"].duplicated()
    if duplicated.any():
        i = int(np.flatnonzero(duplicated.to_numpy())[0])
        raise DatasetFormatError(
            f"{DATASET}: {sidecar_path}, line {lines[i]}: expected one row per image, found "
            f"{sidecar['subDirectory_filePath'].iloc[i]!r} a second time"
        )
    position = pd.Series(np.arange(len(sidecar)), index=sidecar["subDirectory_filePath"])
    rows = index["rel_path"].map(position)
    if rows.isna().any():
        i = int(np.flatnonzero(rows.isna().to_numpy())[0])
        raise DatasetFormatError(
            f"{DATASET}: {sidecar_path}: expected a row for every image of the label CSVs, "
            f"found none for {index['rel_path'].iloc[i]!r} ({index['source'].iloc[i]}, line "
            f"{index['line'].iloc[i]}; {int(rows.isna().sum())} images without a row)"
        )
    rows = rows.to_numpy(dtype=int)
    index = index.copy()
    index["subject"] = pd.array(sidecar["subject"].to_numpy()[rows], dtype="string")
    for column in AU_COLUMNS:
        values = _numbers(sidecar[column], lines, csv_path=sidecar_path, name=column)
        if (values < 0).any():
            i = int(np.flatnonzero(values < 0)[0])
            raise DatasetFormatError(
                f"{DATASET}: {sidecar_path}, line {lines[i]}, column {column}: expected an "
                f"intensity >= 0, found {sidecar[column].iloc[i]!r}"
            )
        index[column] = values[rows]
    unilateral = pd.to_numeric(sidecar["unilateral"], errors="coerce")
    if unilateral.notna().all():
        index["unilateral"] = unilateral.to_numpy()[rows]
    else:  # free text (e.g. "left"/"right"/""), kept as given
        index["unilateral"] = sidecar["unilateral"].to_numpy(dtype=object)[rows]
    return index


def _check_images_exist(index: pd.DataFrame, *, on_missing: str,
                        report: ReadReport) -> pd.DataFrame:
    """Rows whose image exists; missing images raise or are skipped and counted."""
    exists = np.fromiter((os.path.isfile(p) for p in index["path"]), dtype=bool,
                         count=len(index))
    if exists.all():
        return index
    missing = np.flatnonzero(~exists)
    first = index.iloc[missing[0]]
    message = (f"{first['source']}, line {first['line']}: image {first['path']} does not exist")
    if on_missing == "raise":
        raise DatasetFormatError(
            f"{DATASET}: {message} (expected it under {IMAGE_FOLDER}/; "
            f"{missing.size} images missing in all; pass on_missing='skip' to skip and count them)"
        )
    for i in missing:
        row = index.iloc[i]
        report.skip("image file missing", f"{row['source']}, line {row['line']}: {row['path']}")
    return index[exists].reset_index(drop=True)


def affectnet_splits(index: pd.DataFrame, *, val_fraction: float, seed: int) -> pd.DataFrame:
    """The paper's AffectNet splits: training.csv -> train + own validation; validation.csv -> test.

    Parameters
    ----------
    index : DataFrame
        From :func:`read_affectnet`.
    val_fraction : float, keyword-only
        Fraction (0-1) of training.csv rows that go to the validation split.
    seed : int, keyword-only
        Seed of the split (deterministic).

    Returns
    -------
    DataFrame
        A copy with ``split`` in {'train', 'val', 'test'}. When every training row has a
        subject id (the synthetic twin), the split is grouped by subject, so no person is
        in both train and val (subjects are drawn in random order until the validation
        split holds at least ``val_fraction`` of the rows). Otherwise (real AffectNet has no
        subject ids) it is stratified by label: ``round(val_fraction * n_class)`` rows of
        each class.
    """
    if not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    rng = np.random.default_rng(seed)
    out = index.copy()
    from_training = (out["source"] == "training.csv").to_numpy()
    out["split"] = np.where(from_training, "train", "test")
    rows = np.flatnonzero(from_training)
    subjects = out["subject"].iloc[rows]
    if len(rows) and subjects.notna().all():
        val_rows = _grouped_validation(rows, subjects.to_numpy(dtype=object),
                                       val_fraction=val_fraction, rng=rng)
    else:
        val_rows = _stratified_validation(rows, out["label"].to_numpy()[rows],
                                          val_fraction=val_fraction, rng=rng)
    split = out["split"].to_numpy(dtype=object)
    split[val_rows] = "val"
    out["split"] = split
    return out


def _grouped_validation(rows: np.ndarray, subjects: np.ndarray, *, val_fraction: float,
                        rng: np.random.Generator) -> np.ndarray:
    """Rows of whole subjects, drawn in random order until ``val_fraction`` is reached."""
    names, inverse, counts = np.unique(subjects.astype(str), return_inverse=True,
                                       return_counts=True)
    target = val_fraction * len(rows)
    chosen, total = [], 0
    for k in rng.permutation(len(names)):
        if total >= target:
            break
        chosen.append(k)
        total += counts[k]
    return rows[np.isin(inverse, chosen)]


def _stratified_validation(rows: np.ndarray, labels: np.ndarray, *, val_fraction: float,
                           rng: np.random.Generator) -> np.ndarray:
    """``round(val_fraction * n_c)`` random rows of every class ``c``."""
    picked = []
    for label in np.unique(labels):
        members = rows[labels == label]
        n_val = int(round(val_fraction * len(members)))
        picked.append(rng.permutation(members)[:n_val])
    return np.sort(np.concatenate(picked)) if picked else rows[:0]
