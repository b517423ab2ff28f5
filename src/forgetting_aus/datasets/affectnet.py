"""AffectNet reader (``training.csv``, ``validation.csv``, ``Manually_Annotated_Images/``).

As the release ships, the label lists sit in ``Manually_Annotated_file_lists/``; many copies
(and the synthetic twin) keep them beside the images at the root. Both are read (the
release location first), many copies of ``validation.csv`` lack the header line (detected
from the first row), and image extensions come in mixed case; the read report says which
variant was met.

The paper (section 3.1) drops expression codes 8-10 (None, Uncertain, Non-Face), trains on
``training.csv`` with its own validation split, and tests on ``validation.csv`` (500 images
per class). Real AffectNet has neither AU coding nor subject ids, so those columns are
missing (NaN / NA); the synthetic twin is written the same way, and its ground truth
``au_intensities.csv`` (``subDirectory_filePath,subject,AU1,...,AU43,unilateral``) sits in a
separate folder that is joined only when named (``truth=``), by the parts of the book
that check the synthetic world.
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
    check_on_error,
    check_on_missing,
    landmark_frame,
    new_report,
    require_dir,
    safe_join_many,
)
from .release import published_counts, require_folder

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

#: Where the release puts ``training.csv`` and ``validation.csv`` (copies also keep them at
#: the root, beside ``IMAGE_FOLDER``).
LABEL_LIST_FOLDER = "Manually_Annotated_file_lists"

#: Codes 8-10 carry no emotion; the paper excludes them (counted in the report).
EXCLUDED_CODES: dict[int, str] = {8: "None", 9: "Uncertain", 10: "Non-Face"}

#: Which CSV feeds which split: validation.csv is the paper's test set.
CSV_SPLITS: dict[str, str] = {"training.csv": "train", "validation.csv": "test"}

_CHUNK_ROWS = 50_000


def read_affectnet(root: str | os.PathLike, *, report: ReadReport | None = None,
                   on_missing: str = "raise", on_error: str = "raise",
                   check_images: bool = True, truth: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read AffectNet's two CSVs into a tidy index, one row per image.

    Parameters
    ----------
    root : path-like
        Folder holding ``Manually_Annotated_Images/`` and the label lists ``training.csv``
        and ``validation.csv``, in ``Manually_Annotated_file_lists/`` (as the release ships;
        read first) or beside the images (see :func:`~forgetting_aus.datasets.resolve_root`).
        A label list whose first row is data (no header line) is read by the release's
        column order.
    report : ReadReport, optional, keyword-only
        Filled with rows read and rows skipped by reason (codes 8-10, impossible face boxes,
        missing images, with their files), how the lists were read (location, header) and
        the counts beside the release's (:data:`~forgetting_aus.datasets.PUBLISHED_COUNTS`).
    on_missing : {"raise", "skip"}, keyword-only
        What to do with a row whose image file does not exist (a file with the same name
        but a differently-cased extension, e.g. ``.JPG`` for ``.jpg``, is used instead and
        counted in the report's notes).
    on_error : {"raise", "skip"}, keyword-only
        What to do with a row whose face box is impossible: a non-finite number, width or
        height <= 0, or a box wholly left of or above the image (known without decoding;
        :func:`~forgetting_aus.datasets.load_faces` checks the rest).
    check_images : bool, keyword-only
        Check that every image file exists (one ``stat`` per row).
    truth : path-like, optional, keyword-only
        A synthetic twin's ground-truth folder (:func:`forgetting_aus.synth.truth_root`);
        its ``au_intensities.csv`` fills ``subject``, the AU columns and ``unilateral``.
        Without it nothing beyond the release's files is read.

    Returns
    -------
    DataFrame
        Columns: ``path`` (absolute), ``rel_path`` (``subDirectory_filePath``), ``source``
        (CSV file name), ``line`` (1-based CSV line), ``subject`` (string, NA unless
        ``truth`` is given), ``label`` (int, index into ``facs.EMOTIONS`` = AffectNet code),
        ``emotion`` (class name), ``face_x, face_y, face_width, face_height`` (pixels),
        ``valence``, ``arousal``, ``AU1..AU43`` (``truth`` intensities, NaN without it),
        ``unilateral`` (``truth``, NA without it), ``split`` ('train' for training.csv,
        'test' for validation.csv; see :func:`affectnet_splits`) and the 136 landmark
        columns (see :func:`~forgetting_aus.datasets.landmarks_array`).

    Raises
    ------
    DatasetFormatError
        Missing files or folders (with the folder found one level off, if any, and the
        root to set), wrong headers, unparsable numbers, unknown expression codes, landmark
        strings without 68 points, paths escaping ``root``, impossible face boxes (with
        ``on_error="raise"``), missing images (with ``on_missing="raise"``); the message
        names the file and line.
    """
    check_on_missing(on_missing)
    check_on_error(on_error)
    report = new_report(report, DATASET)
    root = Path(root).absolute()
    require_dir(root, dataset=DATASET, what="the AffectNet root")
    image_root = require_folder(
        root, IMAGE_FOLDER, dataset=DATASET, what="the face images",
        together_with=[(f"{LABEL_LIST_FOLDER}/{name}", name) for name in CSV_SPLITS],
    )
    parts, tally = [], {}
    for csv_name, split in CSV_SPLITS.items():
        csv_path = _label_list(root, csv_name, report=report)
        frame = _read_label_csv(csv_path, image_root=image_root, report=report,
                                on_error=on_error, tally=tally)
        frame["split"] = split
        parts.append(frame)
    index = pd.concat(parts, ignore_index=True)
    if truth is not None:
        index = _join_sidecar(index, truth_root=Path(truth).absolute())
    if check_images:
        index = _check_images_exist(index, on_missing=on_missing, report=report)
    report.rows_read += len(index)
    _count(report, tally, n_index=len(index))
    index.attrs["read_report"] = str(report)
    return index


def _label_list(root: Path, name: str, *, report: ReadReport) -> Path:
    """Path of the label list ``name``: the release location, else beside the images.

    Which one was read is stated in ``report``; neither is an error naming both (and, if
    the list sits one folder deeper, where).
    """
    release, beside = root / LABEL_LIST_FOLDER / name, root / name
    if release.is_file():
        if beside.is_file():
            report.state(f"{name}: found both {release} (the release location) and {beside}; "
                         f"read the release location")
        else:
            report.state(f"{name}: read from {LABEL_LIST_FOLDER}/ (the release location)")
        return release
    if beside.is_file():
        report.state(f"{name}: read beside the images at the root ({beside}); the release "
                     f"keeps it in {LABEL_LIST_FOLDER}/")
        return beside
    head = (f"{DATASET}: expected the label list {name} at {release} (as the release ships) "
            f"or at {beside} (as many copies keep it), found neither")
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        for candidate in (child / LABEL_LIST_FOLDER / name, child / name):
            if candidate.is_file():
                raise DatasetFormatError(
                    f"{head}; found {candidate} one folder deeper. Move it to {release}."
                )
    raise DatasetFormatError(f"{head}. Copy {name} from the AffectNet release into {release}.")


def _count(report: ReadReport, tally: dict[str, int], *, n_index: int) -> None:
    """Counts of the label lists and the index, beside the release's published ones."""
    published = published_counts(DATASET)
    both = tally.get("training.csv rows", 0) + tally.get("validation.csv rows", 0)
    report.count("manually annotated images (both label lists)", both,
                 release=published["manually annotated images (both label lists)"])
    for what, value in tally.items():
        # Published names extend the tally's (e.g. "... emotion rows (codes 0-7; ...)").
        name = next((key for key in published if key.startswith(what)), what)
        report.count(name, value, release=published.get(name))
    report.count("images in the index (emotion rows kept)", n_index)


def _read_label_csv(csv_path: Path, *, image_root: Path, report: ReadReport, on_error: str,
                    tally: dict[str, int]) -> pd.DataFrame:
    """One AffectNet CSV, validated, codes 8-10 counted and dropped.

    A CSV whose first row is data (many copies of ``validation.csv``) is read by the
    release's column order ``CSV_COLUMNS``; its line numbers start at 1.
    """
    has_header = _has_header(csv_path)
    if has_header:
        _check_header(csv_path, CSV_COLUMNS)
    else:
        report.state(f"{csv_path.name} has no header line (its first row is data): read by the "
                     f"release's column order {','.join(CSV_COLUMNS)}")
    first_line = 2 if has_header else 1
    options = {} if has_header else {"header": None}
    chunks = []
    try:
        reader = pd.read_csv(csv_path, dtype=str, keep_default_na=False, na_filter=False,
                             chunksize=_CHUNK_ROWS, **options)
        for chunk in reader:
            if not has_header:
                chunk = _name_columns(chunk, csv_path=csv_path)
            chunks.append(_parse_chunk(chunk, csv_path=csv_path, image_root=image_root,
                                       report=report, first_line=first_line,
                                       on_error=on_error, tally=tally))
    except pd.errors.ParserError as error:
        raise DatasetFormatError(
            f"{DATASET}: {csv_path}: expected {len(CSV_COLUMNS)} comma-separated fields per "
            f"line, found otherwise ({error})"
        ) from None
    if not chunks:
        return _parse_chunk(pd.DataFrame(columns=list(CSV_COLUMNS), dtype=str),
                            csv_path=csv_path, image_root=image_root, report=report,
                            first_line=first_line, on_error=on_error, tally=tally)
    return pd.concat(chunks, ignore_index=True)


def _has_header(csv_path: Path) -> bool:
    """False if the first line is data: its ``face_x`` cell (the second) is a number."""
    with open(csv_path, encoding="utf-8-sig") as handle:
        cells = handle.readline().rstrip("\r\n").split(",")
    if len(cells) < 2:
        return True
    try:
        float(cells[1])
    except ValueError:
        return True
    return False


def _name_columns(chunk: pd.DataFrame, *, csv_path: Path) -> pd.DataFrame:
    """Name the columns of a header-less chunk by the release's order, if they fit."""
    if chunk.shape[1] != len(CSV_COLUMNS):
        raise DatasetFormatError(
            f"{DATASET}: {csv_path}, line 1: the file has no header line, so its rows must have "
            f"the release's {len(CSV_COLUMNS)} fields {','.join(CSV_COLUMNS)}; found "
            f"{chunk.shape[1]} fields"
        )
    chunk.columns = list(CSV_COLUMNS)
    return chunk


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
                 report: ReadReport, first_line: int, on_error: str,
                 tally: dict[str, int]) -> pd.DataFrame:
    """Validate and convert one chunk of CSV rows (index = 0-based data row).

    ``first_line`` is the file line of data row 0 (2 below a header line, else 1);
    ``tally`` accumulates the rows and emotion rows of each CSV.
    """
    lines = chunk.index.to_numpy() + first_line
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
    for what, value in ((f"{csv_path.name} rows", len(codes)),
                        (f"{csv_path.name} emotion rows", int(keep.sum()))):
        tally[what] = tally.get(what, 0) + value
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
    for column in FACE_BOX_COLUMNS:
        out[column] = _numbers(chunk[column], lines, csv_path=csv_path, name=column,
                               finite=False)
    for column in ("valence", "arousal"):
        out[column] = _numbers(chunk[column], lines, csv_path=csv_path, name=column)
    for column in AU_COLUMNS:
        out[column] = np.nan
    out["unilateral"] = pd.Series([pd.NA] * len(chunk), dtype="object")
    landmarks = _landmarks(chunk["facial_landmarks"], lines, csv_path=csv_path)
    out = pd.concat([out, landmark_frame(landmarks, index=out.index)], axis=1)
    return _drop_impossible_boxes(out, csv_path=csv_path, on_error=on_error, report=report)


#: Why a face box is impossible, tested in this order on ``(x, y, width, height)``.
_IMPOSSIBLE_BOXES = (
    ("a non-finite number", lambda x, y, w, h: ~np.isfinite(np.stack([x, y, w, h])).all(axis=0)),
    ("width or height <= 0", lambda x, y, w, h: (w <= 0) | (h <= 0)),
    ("wholly left of or above the image", lambda x, y, w, h: (x + w <= 0) | (y + h <= 0)),
)


def _drop_impossible_boxes(out: pd.DataFrame, *, csv_path: Path, on_error: str,
                           report: ReadReport) -> pd.DataFrame:
    """Rows whose face box can crop a face; the others raise or are skipped with their files."""
    box = [out[column].to_numpy(dtype=float) for column in FACE_BOX_COLUMNS]
    why = np.full(len(out), "", dtype=object)  # "" = a possible box
    with np.errstate(invalid="ignore"):
        for reason, test in _IMPOSSIBLE_BOXES:
            why[test(*box) & (why == "")] = reason
    bad = np.flatnonzero(why != "")
    if bad.size == 0:
        return out
    for i in bad:
        found = ", ".join(f"{c}={out[c].iloc[i]:g}" for c in FACE_BOX_COLUMNS)
        line = out["line"].iloc[i]
        if on_error == "raise":
            raise DatasetFormatError(
                f"{DATASET}: {csv_path}, line {line}: expected a face box of finite numbers "
                f"with positive width and height that overlaps the image, found {found} "
                f"({why[i]}; {bad.size} such rows in this part of the file). Fix the row, or "
                f"pass on_error='skip' to skip and count such rows."
            )
        report.skip(f"impossible face box ({why[i]})", f"{csv_path.name}, line {line}: {found}",
                    path=out["path"].iloc[i])
    keep = np.ones(len(out), dtype=bool)
    keep[bad] = False
    return out[keep].reset_index(drop=True)


def _numbers(cells: pd.Series, lines: np.ndarray, *, csv_path: Path, name: str,
             finite: bool = True) -> np.ndarray:
    """Float values of a string column; error naming the first unparsable cell.

    With ``finite=False``, ``nan`` and ``inf`` spellings are returned as such (the caller
    judges them) and only text that is no number at all is an error.
    """
    values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) if finite else np.isnan(values) & ~_spells_nan(cells)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DatasetFormatError(
            f"{DATASET}: {csv_path}, line {lines[i]}, column {name}: expected a number, "
            f"found {cells.iloc[i]!r}"
        )
    return values


def _spells_nan(cells: pd.Series) -> np.ndarray:
    """True where a cell is a spelling of NaN that ``float`` accepts (e.g. ``nan``, ``-NaN``)."""
    return cells.astype(str).str.strip().str.lower().str.fullmatch(r"[+-]?nan").to_numpy(bool)


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


def _join_sidecar(index: pd.DataFrame, *, truth_root: Path) -> pd.DataFrame:
    """Fill subject, AU intensities and ``unilateral`` from a twin's ground-truth folder."""
    sidecar_path = truth_root / SIDECAR_NAME
    if not sidecar_path.is_file():
        raise DatasetFormatError(
            f"{DATASET}: no ground truth at {sidecar_path}: truth= names a synthetic twin's ground-truth "
            "folder (forgetting_aus.synth.truth_root of the twin's folder); real AffectNet has none, so "
            "read it without truth=")
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
    """Rows whose image exists; missing images raise or are skipped and counted.

    A listed path is used as is; where it does not exist but the same name with a
    differently-cased extension does (``a.JPG`` for ``a.jpg``), that file is used and
    counted in ``report.notes``.
    """
    exists = np.fromiter((os.path.isfile(p) for p in index["path"]), dtype=bool,
                         count=len(index))
    if exists.all():
        return index
    index = _resolve_extension_case(index, np.flatnonzero(~exists), report=report)
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
        report.skip("image file missing", f"{row['source']}, line {row['line']}: {row['path']}",
                    path=row["path"])
    return index[exists].reset_index(drop=True)


def _resolve_extension_case(index: pd.DataFrame, rows: np.ndarray, *,
                            report: ReadReport) -> pd.DataFrame:
    """``index`` with its missing ``rows`` pointed at the file whose extension differs in case."""
    listings: dict[str, dict[tuple[str, str], list[str]]] = {}
    paths = index["path"].to_numpy(dtype=object).copy()
    for i in rows:
        folder, name = os.path.split(paths[i])
        if folder not in listings:
            listings[folder] = _names_by_lower_extension(folder)
        stem, extension = os.path.splitext(name)
        candidates = [c for c in listings[folder].get((stem, extension.lower()), []) if c != name]
        if len(candidates) == 1:  # two spellings on disk would be a guess: leave it missing
            paths[i] = os.path.join(folder, candidates[0])
            report.note("image found under a differently-cased extension (the file on disk was "
                        "used)", f"{index['source'].iloc[i]}, line {index['line'].iloc[i]}: "
                        f"listed {name}, found {candidates[0]}")
    index = index.copy()
    index["path"] = paths
    return index


def _names_by_lower_extension(folder: str) -> dict[tuple[str, str], list[str]]:
    """File names of ``folder`` by ``(stem, lower-case extension)`` (empty if no folder)."""
    names: dict[tuple[str, str], list[str]] = {}
    if os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            stem, extension = os.path.splitext(name)
            names.setdefault((stem, extension.lower()), []).append(name)
    return names


def affectnet_splits(index: pd.DataFrame, *, val_fraction: float, seed: int,
                     val_rows: int | None = None) -> pd.DataFrame:
    """The paper's AffectNet splits: training.csv -> train + own validation; validation.csv -> test.

    Parameters
    ----------
    index : DataFrame
        From :func:`read_affectnet`.
    val_fraction : float, keyword-only
        Fraction (0-1) of training.csv rows that go to the validation split.
    seed : int, keyword-only
        Seed of the split (deterministic).
    val_rows : int, optional, keyword-only
        Exactly this many training.csv rows go to the validation split instead (the
        paper's 14 382 of 287 651), shared among the classes in proportion to their
        sizes by largest remainders; ``val_fraction`` is then unused.

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
    n_training = int((index["source"] == "training.csv").sum())
    if val_rows is not None and not 0 < int(val_rows) < n_training:
        raise ValueError(f"val_rows must be between 1 and the {n_training} rows of training.csv minus one, "
                         f"got {val_rows!r} (affectnet_val_rows in the profile; null uses affectnet_val_fraction)")
    rng = np.random.default_rng(seed)
    out = index.copy()
    from_training = (out["source"] == "training.csv").to_numpy()
    out["split"] = np.where(from_training, "train", "test")
    rows = np.flatnonzero(from_training)
    subjects = out["subject"].iloc[rows]
    if len(rows) and subjects.notna().all():
        held_out = _grouped_validation(rows, subjects.to_numpy(dtype=object),
                                       val_fraction=val_fraction if val_rows is None else val_rows / len(rows),
                                       rng=rng)
    elif val_rows is None:
        held_out = _stratified_validation(rows, out["label"].to_numpy()[rows],
                                          val_fraction=val_fraction, rng=rng)
    else:
        held_out = _stratified_count(rows, out["label"].to_numpy()[rows], n_val=int(val_rows), rng=rng)
    split = out["split"].to_numpy(dtype=object)
    split[held_out] = "val"
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


def _stratified_count(rows: np.ndarray, labels: np.ndarray, *, n_val: int,
                      rng: np.random.Generator) -> np.ndarray:
    """Exactly ``n_val`` random rows, shared among the classes by largest remainders."""
    classes, sizes = np.unique(labels, return_counts=True)
    quotas = n_val * sizes / sizes.sum()
    counts = np.floor(quotas).astype(int)
    # the rows left after flooring go to the classes with the largest remainders
    counts[np.argsort(-(quotas - counts), kind="stable")[: n_val - counts.sum()]] += 1
    picked = [rng.permutation(rows[labels == label])[:count] for label, count in zip(classes, counts, strict=True)]
    return np.sort(np.concatenate(picked))
