"""Shared machinery of the dataset readers: errors, read reports, roots, paths, parsers.

Every reader builds a *tidy index*: a :class:`pandas.DataFrame` with one row per image.
The columns shared by all three datasets are defined here (``AU_COLUMNS``,
``LANDMARK_COLUMNS``, ``FACE_BOX_COLUMNS``), so that the image loader and the notebooks
treat AffectNet, UNBC-McMaster and CK+ (real or synthetic twin) alike.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forgetting_aus.facs import AU_NAMES
from forgetting_aus.geometry import face_box_from_landmarks

#: Action-unit intensity columns, in ``facs.AU_NAMES`` order (0 = not coded, NaN = the
#: row has no AU coding at all).
AU_COLUMNS: tuple[str, ...] = AU_NAMES

#: Number of iBUG landmarks every index carries.
N_LANDMARKS = 68

#: 136 float32 columns ``lm0_x, lm0_y, lm1_x, ...``: row-major ``(68, 2)`` so that
#: ``values.reshape(n, 68, 2)`` recovers the landmarks (pixel coordinates of the image file).
LANDMARK_COLUMNS: tuple[str, ...] = tuple(
    f"lm{i}_{axis}" for i in range(N_LANDMARKS) for axis in ("x", "y")
)

#: Face box in pixels of the image file: top-left corner, width, height.
FACE_BOX_COLUMNS: tuple[str, ...] = ("face_x", "face_y", "face_width", "face_height")

#: How many example messages a report keeps per skip reason.
MAX_EXAMPLES = 3

#: How many skipped files a report's text lists per reason (all are in ``skipped_paths``).
MAX_LISTED_PATHS = 20


class DatasetFormatError(ValueError):
    """A dataset on disk does not follow its native format (message says where and how)."""


class DatasetNotFoundError(FileNotFoundError):
    """A dataset root folder is missing (message says which folder and how to configure it)."""


class ImageLoadError(DatasetFormatError):
    """An image file is unreadable or truncated."""


class FaceBoxError(DatasetFormatError):
    """A face box cannot crop a face from its image (empty, non-finite, or outside it)."""


@dataclass
class ReadReport:
    """What a reader read and what it skipped, with examples, so nothing is dropped silently.

    Attributes
    ----------
    dataset : str
        Dataset name, for the summary.
    rows_read : int
        Rows kept in the index (or images loaded, for the image loader).
    skipped : dict of str to int
        Rows skipped, by reason.
    examples : dict of str to list of str
        Up to ``MAX_EXAMPLES`` messages per skip reason (file, line, what was found).
    skipped_paths : dict of str to list of str
        Every skipped file, by reason, for the reasons whose skips name one (unreadable
        images, impossible face boxes, missing images): the list to re-extract or inspect.
    notes : dict of str to int
        Things that are not skipped rows but worth knowing (e.g. AUs outside the study's
        vocabulary that were ignored), counted by kind.
    note_examples : dict of str to list of str
        Up to ``MAX_EXAMPLES`` messages per note kind.
    info : list of str
        How the data was read where the release allows variants (which label-list location,
        a CSV without its header line), one sentence each.
    counts : dict of str to (int, int or None)
        What was read beside the release's published number (None where it publishes none),
        e.g. ``{"frames": (960, 48398)}``; see :func:`format_counts`.
    """

    dataset: str = ""
    rows_read: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    skipped_paths: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)
    note_examples: dict[str, list[str]] = field(default_factory=dict)
    info: list[str] = field(default_factory=list)
    counts: dict[str, tuple[int, int | None]] = field(default_factory=dict)

    def skip(self, reason: str, example: str, *, count: int = 1, path: str | None = None) -> None:
        """Count ``count`` rows skipped for ``reason``; keep ``example`` if there is room.

        ``path``, when given, is the skipped file; every one is kept in ``skipped_paths``.
        """
        self.skipped[reason] = self.skipped.get(reason, 0) + int(count)
        kept = self.examples.setdefault(reason, [])
        if len(kept) < MAX_EXAMPLES:
            kept.append(example)
        if path is not None:
            self.skipped_paths.setdefault(reason, []).append(os.fspath(path))

    def note(self, kind: str, example: str, *, count: int = 1) -> None:
        """Count a non-fatal observation of ``kind``."""
        self.notes[kind] = self.notes.get(kind, 0) + int(count)
        kept = self.note_examples.setdefault(kind, [])
        if len(kept) < MAX_EXAMPLES:
            kept.append(example)

    def state(self, sentence: str) -> None:
        """Record how the data was read (once per distinct sentence)."""
        if sentence not in self.info:
            self.info.append(sentence)

    def count(self, what: str, value: int, *, release: int | None = None) -> None:
        """Record that ``value`` of ``what`` were read, beside the release's ``release``."""
        self.counts[what] = (int(value), None if release is None else int(release))

    @property
    def n_skipped(self) -> int:
        """Total rows skipped, all reasons together."""
        return sum(self.skipped.values())

    def __str__(self) -> str:
        name = self.dataset or "dataset"
        lines = [f"{name}: {self.rows_read} rows read, {self.n_skipped} skipped"]
        lines.extend(f"  read: {sentence}" for sentence in self.info)
        for reason, count in sorted(self.skipped.items()):
            lines.append(f"  skipped {count}: {reason}")
            lines.extend(f"    e.g. {example}" for example in self.examples.get(reason, []))
            paths = self.skipped_paths.get(reason, [])
            if paths:
                shown = paths[:MAX_LISTED_PATHS]
                lines.append(f"    files ({len(paths)}): " + ", ".join(shown)
                             + (f", ... ({len(paths) - len(shown)} more in "
                                f"ReadReport.skipped_paths)" if len(paths) > len(shown) else ""))
        for kind, count in sorted(self.notes.items()):
            lines.append(f"  note {count}: {kind}")
            lines.extend(f"    e.g. {example}" for example in self.note_examples.get(kind, []))
        if self.counts:
            lines.append(format_counts(self, indent="  "))
        return "\n".join(lines)


def _grouped(value: int) -> str:
    """``420299`` as ``'420 299'`` (the papers' digit grouping)."""
    return f"{int(value):,}".replace(",", " ")


def format_counts(report: ReadReport, *, indent: str = "") -> str:
    """One line per count of ``report``: ``"<what>: read N (release: M)"``.

    Parameters
    ----------
    report : ReadReport
        A reader's report (its ``counts``).
    indent : str, keyword-only
        Prefix of every line.

    Returns
    -------
    str
        E.g. ``"frames: read 960 (release: 48 398)"``; ``(release: not published)`` where
        the release states no such number.
    """
    lines = []
    for what, (value, release) in report.counts.items():
        published = "not published" if release is None else _grouped(release)
        lines.append(f"{indent}{what}: read {_grouped(value)} (release: {published})")
    return "\n".join(lines)


def new_report(report: ReadReport | None, dataset: str) -> ReadReport:
    """The caller's report (named ``dataset`` if unnamed), or a fresh one."""
    if report is None:
        return ReadReport(dataset=dataset)
    if not report.dataset:
        report.dataset = dataset
    return report


def check_on_missing(on_missing: str) -> None:
    """Validate the ``on_missing`` option shared by the readers."""
    if on_missing not in ("raise", "skip"):
        raise ValueError(f"on_missing must be 'raise' or 'skip', got {on_missing!r}")


def check_on_error(on_error: str) -> None:
    """Validate the ``on_error`` option (bad rows, unreadable images)."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")


# --------------------------------------------------------------------------- roots


def resolve_root(path_or_none: str | os.PathLike | None, *, dataset: str, profile_key: str,
                 env_var: str) -> Path:
    """The folder of a real dataset, from the environment or the profile.

    Parameters
    ----------
    path_or_none : path-like or None
        The folder named in the profile (``params/paper.yml``), or None if unset.
    dataset : str
        Human-readable dataset name, for the error message.
    profile_key : str, keyword-only
        The profile key that names this folder, e.g. ``"affectnet_root"``.
    env_var : str, keyword-only
        Environment variable that overrides the profile, e.g. ``"FORGETTING_AUS_AFFECTNET"``.

    Returns
    -------
    Path
        The existing folder, absolute.

    Raises
    ------
    DatasetNotFoundError
        If neither names an existing folder; the message names the folder expected, the
        profile key, the environment variable, and that the default profile needs none.
    """
    from_env = os.environ.get(env_var, "").strip()
    chosen = from_env or (None if path_or_none is None else os.fspath(path_or_none))
    how_to_fix = (
        f"Set '{profile_key}' in params/paper.yml or the environment variable {env_var} "
        f"to the folder holding {dataset}. The default profile needs none of this: it reads "
        f"the embedded synthetic twins."
    )
    if not chosen:
        raise DatasetNotFoundError(f"No folder given for {dataset}. {how_to_fix}")
    root = Path(chosen).expanduser()
    if not root.is_dir():
        source = f"environment variable {env_var}" if from_env else f"profile key '{profile_key}'"
        raise DatasetNotFoundError(
            f"{dataset} folder not found: expected a folder at {root} (from {source}). "
            f"{how_to_fix}"
        )
    return root.absolute()


def require_dir(folder: Path, *, dataset: str, what: str) -> Path:
    """``folder`` if it is a directory, else a clear error naming it."""
    if not folder.is_dir():
        raise DatasetFormatError(
            f"{dataset}: expected the folder {folder} ({what}), found nothing there. "
            f"Check that the dataset root points at the top of the extracted dataset."
        )
    return folder


def require_file(path: Path, *, dataset: str, what: str) -> Path:
    """``path`` if it is a file, else a clear error naming it."""
    if not path.is_file():
        raise DatasetFormatError(
            f"{dataset}: expected the file {path} ({what}), found nothing there."
        )
    return path


def safe_join(root: Path, relative: str, *, where: str) -> Path:
    """``root / relative``, refusing paths that are absolute or escape ``root``.

    Parameters
    ----------
    root : Path
        Absolute folder the path must stay in.
    relative : str
        A relative path from a label file (``/`` or ``\\`` separated).
    where : str
        ``"file, line N"``, for the error message.
    """
    text = relative.strip()
    posix = text.replace("\\", "/")
    if not text or posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise DatasetFormatError(
            f"{where}: expected a path relative to {root}, found {relative!r} "
            f"(absolute paths are refused so that a label file cannot point outside the dataset)"
        )
    joined = os.path.normpath(os.path.join(root, posix))
    if os.path.commonpath([joined, os.fspath(root)]) != os.fspath(root):
        raise DatasetFormatError(
            f"{where}: path {relative!r} escapes the dataset root {root} "
            f"(expected a path inside it, without '..' leading out)"
        )
    return Path(joined)


def safe_join_many(root: Path, relatives: pd.Series, *, wheres: list[str]) -> np.ndarray:
    """Vectorised :func:`safe_join`: absolute path strings of ``relatives`` under ``root``.

    Only the paths that could be absolute or escape (a leading separator, a drive letter,
    a ``..``) go through the careful per-path check; for the rest joining is enough, which
    keeps hundreds of thousands of CSV rows fast.
    """
    text = relatives.astype(str).str.strip().str.replace("\\", "/", regex=False)
    suspicious = (text.str.contains("..", regex=False) | text.str.startswith("/")
                  | text.str.match(r"^[A-Za-z]:") | (text == "")).to_numpy()
    joined = (os.fspath(root) + os.sep + text).to_numpy(dtype=object)
    for i in np.flatnonzero(suspicious):
        joined[i] = os.fspath(safe_join(root, relatives.iloc[i], where=wheres[i]))
    return joined


# --------------------------------------------------------------------------- parsers


def parse_numbers(text: str, *, where: str) -> list[float]:
    """All whitespace-separated floats of ``text``; error naming ``where`` otherwise."""
    values = []
    for token in text.split():
        try:
            values.append(float(token))
        except ValueError:
            raise DatasetFormatError(f"{where}: expected a number, found {token!r}") from None
    return values


def read_text(path: Path, *, dataset: str) -> str:
    """The text of a small label file, with a clear error if unreadable."""
    try:
        return path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise DatasetFormatError(
            f"{dataset}: {path} is not a text file (expected plain-text numbers)"
        ) from None


def read_single_float(path: Path, *, dataset: str) -> float:
    """The one number a file such as a PSPI or emotion file holds."""
    text = read_text(path, dataset=dataset)
    lines = [(i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip()]
    if len(lines) != 1:
        raise DatasetFormatError(
            f"{dataset}: {path}: expected exactly one number on one line, "
            f"found {len(lines)} non-empty lines"
        )
    line_no, line = lines[0]
    values = parse_numbers(line, where=f"{dataset}: {path}, line {line_no}")
    if len(values) != 1:
        raise DatasetFormatError(
            f"{dataset}: {path}, line {line_no}: expected one number, found {len(values)} "
            f"({line.strip()!r})"
        )
    return values[0]


def read_au_lines(path: Path, *, dataset: str) -> list[tuple[int, float, int]]:
    """``(au, intensity, line)`` triples of a FACS file: one ``AU intensity`` per line.

    Extra trailing numbers on a line are tolerated (some releases add onset/offset
    columns); fewer than two numbers, a non-integer AU code, or a negative intensity are
    errors naming the line.
    """
    triples = []
    for line_no, line in enumerate(read_text(path, dataset=dataset).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{dataset}: {path}, line {line_no}"
        values = parse_numbers(line, where=where)
        if len(values) < 2:
            raise DatasetFormatError(
                f"{where}: expected 'AU intensity' (two numbers), found {line.strip()!r}"
            )
        au, intensity = values[0], values[1]
        if au != int(au) or au <= 0:
            raise DatasetFormatError(
                f"{where}: expected a positive whole AU number, found {values[0]!r}"
            )
        if not np.isfinite(intensity) or intensity < 0:
            raise DatasetFormatError(
                f"{where}: expected an intensity >= 0 (FACS A-E as 1-5), found {intensity!r}"
            )
        triples.append((int(au), float(intensity), line_no))
    return triples


def au_vector(triples: Iterable[tuple[int, float, int]], *, path: Path, dataset: str,
              report: ReadReport) -> np.ndarray:
    """AU intensities in ``AU_COLUMNS`` order from FACS-file triples (0 where not coded).

    AUs outside the study's vocabulary (real CK+ codes e.g. AU11, AU27) are ignored and
    counted in ``report.notes``.
    """
    vector = np.zeros(len(AU_COLUMNS), dtype=float)
    for au, intensity, _line in triples:
        name = f"AU{au}"
        if name in AU_COLUMNS:
            vector[AU_COLUMNS.index(name)] = intensity
        else:
            report.note(f"{name} coded but outside the study's AUs (ignored)", f"{path}")
    return vector


def read_points(path: Path, *, n_points: int, dataset: str) -> np.ndarray:
    """``(n_points, 2)`` float landmarks of a file of ``x y`` lines."""
    rows = []
    for line_no, line in enumerate(read_text(path, dataset=dataset).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{dataset}: {path}, line {line_no}"
        values = parse_numbers(line, where=where)
        if len(values) != 2:
            raise DatasetFormatError(
                f"{where}: expected one 'x y' pair, found {len(values)} numbers"
            )
        if not np.isfinite(values).all():
            raise DatasetFormatError(
                f"{where}: expected finite 'x y' numbers, found {line.strip()!r}"
            )
        rows.append(values)
    if len(rows) != n_points:
        raise DatasetFormatError(
            f"{dataset}: {path}: expected {n_points} landmark lines 'x y', found {len(rows)}"
        )
    return np.asarray(rows, dtype=float)


# --------------------------------------------------------------------------- index helpers


def landmarks_array(index: pd.DataFrame) -> np.ndarray:
    """The landmarks of an index as an array.

    Parameters
    ----------
    index : DataFrame
        A tidy index with the ``LANDMARK_COLUMNS``.

    Returns
    -------
    ndarray of shape (n, 68, 2), float32
        ``(x, y)`` in pixels of each row's image file (NaN where a row has none).
    """
    missing = [c for c in LANDMARK_COLUMNS if c not in index.columns]
    if missing:
        raise KeyError(
            f"index has no landmark columns (expected {LANDMARK_COLUMNS[0]}..."
            f"{LANDMARK_COLUMNS[-1]}, {len(missing)} missing)"
        )
    values = index.loc[:, list(LANDMARK_COLUMNS)].to_numpy(dtype=np.float32)
    return values.reshape(len(index), N_LANDMARKS, 2)


def landmark_frame(landmarks: np.ndarray, *, index: pd.Index | None = None) -> pd.DataFrame:
    """``(n, 68, 2)`` landmarks as the 136 float32 ``LANDMARK_COLUMNS``."""
    flat = np.asarray(landmarks, dtype=np.float32).reshape(len(landmarks), 2 * N_LANDMARKS)
    return pd.DataFrame(flat, columns=list(LANDMARK_COLUMNS), index=index)


def face_box_frame(landmarks: np.ndarray, *, index: pd.Index | None = None) -> pd.DataFrame:
    """Face boxes (``geometry.face_box_from_landmarks``) as the ``FACE_BOX_COLUMNS``."""
    if len(landmarks) == 0:
        boxes = np.zeros((0, 4))
    else:
        boxes = face_box_from_landmarks(np.asarray(landmarks, dtype=float))
    return pd.DataFrame(boxes, columns=list(FACE_BOX_COLUMNS), index=index)


def finish_frame_index(index: pd.DataFrame, aus, landmarks, *, report: ReadReport,
                       extra: pd.DataFrame | None = None) -> pd.DataFrame:
    """Append AU, face-box and landmark columns to a per-frame index and close the report.

    Shared by the UNBC and CK+ readers, whose frames carry landmarks but no face box (the
    box is derived from the landmarks).

    Parameters
    ----------
    index : DataFrame, one row per frame
    aus : array-like of shape (n, 18), AU intensities in ``facs.AU_CODES`` order
    landmarks : array-like of shape (n, 68, 2), pixel ``(x, y)``
    extra : DataFrame of n rows, optional, keyword-only
        Columns appended last (CK+'s AU presence).
    """
    n = len(index)
    au_block = pd.DataFrame(np.asarray(aus, dtype=float).reshape(n, len(AU_COLUMNS)), columns=list(AU_COLUMNS))
    marks = np.asarray(landmarks, dtype=float).reshape(n, 68, 2)
    blocks = [index, au_block, face_box_frame(marks), landmark_frame(marks)]
    if extra is not None:
        blocks.append(extra.reset_index(drop=True))
    index = pd.concat(blocks, axis=1)
    report.rows_read += n
    index.attrs["read_report"] = str(report)
    return index
