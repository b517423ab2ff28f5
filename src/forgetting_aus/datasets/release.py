"""What the releases ship: their published sizes, and their folders where users put them.

:data:`PUBLISHED_COUNTS` holds the sizes the datasets' authors publish, so that a read
report can state "read N (release: M)" and a partial or damaged copy shows at a glance.
:func:`require_folder` finds a dataset's folder under the configured root and, when it is
not there, looks one folder deeper and one higher (an extra level from unzipping, or a
root that points inside the dataset) to say where it is and what to set; it never reads
from the other place silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .common import DatasetFormatError

#: Published sizes of the releases, by reader dataset name, then by what is counted.
#: AffectNet (Mollahosseini et al. 2019): 420 299 manually annotated images, 414 799 in
#: ``training.csv`` and 5 500 in ``validation.csv`` (500 per code 0-10); the paper keeps the
#: 287 651 emotion rows of ``training.csv`` (273 269 train + 14 382 own validation) and the
#: 4 000 emotion rows of ``validation.csv`` (its test set). UNBC-McMaster (Lucey et al.
#: 2011): 48 398 frames of 200 sequences of 25 subjects, 8 369 with PSPI > 0. CK+ (Lucey et
#: al. 2010): 593 sequences of 123 subjects, each FACS coded at its peak, 327 with an
#: emotion label.
PUBLISHED_COUNTS: dict[str, dict[str, int]] = {
    "AffectNet": {
        "manually annotated images (both label lists)": 420_299,
        "training.csv rows": 414_799,
        "validation.csv rows": 5_500,
        "training.csv emotion rows (codes 0-7; paper: 273 269 train + 14 382 validation)": 287_651,
        "validation.csv emotion rows (codes 0-7; the paper's test set)": 4_000,
    },
    "UNBC-McMaster": {
        "frames": 48_398,
        "pain frames (PSPI > 0)": 8_369,
        "subjects": 25,
        "sequences": 200,
    },
    "CK+": {
        "sequences": 593,
        "subjects": 123,
        "FACS-coded peak frames": 593,
        "sequences with an emotion label": 327,
    },
}

#: Profile key and environment variable that name each dataset's root folder (the
#: error messages say which to set; ``pipeline`` resolves them).
ROOT_KNOBS: dict[str, tuple[str, str]] = {
    "AffectNet": ("affectnet_root", "FORGETTING_AUS_AFFECTNET"),
    "UNBC-McMaster": ("unbc_root", "FORGETTING_AUS_UNBC"),
    "CK+": ("ckplus_root", "FORGETTING_AUS_CKPLUS"),
}

#: Folders an unzip leaves beside the data that never hold it (macOS resource forks).
_NOT_DATA = ("__MACOSX",)

#: How many entries of a root an error lists when the expected folder is nowhere near.
_LISTED_ENTRIES = 8


def published_counts(dataset: str) -> dict[str, int]:
    """The release's published sizes of ``dataset`` ("AffectNet", "UNBC-McMaster", "CK+").

    Returns
    -------
    dict of str to int
        What is counted -> the published number (see :data:`PUBLISHED_COUNTS`).

    Raises
    ------
    KeyError
        For another name; the message lists the known ones.
    """
    if dataset not in PUBLISHED_COUNTS:
        raise KeyError(f"no published counts for {dataset!r}; expected one of "
                       f"{sorted(PUBLISHED_COUNTS)}")
    return dict(PUBLISHED_COUNTS[dataset])


def require_folder(root: Path, relative: str | os.PathLike, *, dataset: str, what: str,
                   together_with: Iterable[str | os.PathLike | tuple] = ()) -> Path:
    """``root / relative`` if it is a folder, else an error saying where it is and what to set.

    Parameters
    ----------
    root : Path
        The configured dataset root (absolute).
    relative : path-like
        The folder the release puts under the root, e.g. ``"Images"`` or
        ``"Frame_Labels/PSPI"``.
    dataset : str, keyword-only
        Reader dataset name (a key of :data:`ROOT_KNOBS`), for the message.
    what : str, keyword-only
        What the folder holds, for the message.
    together_with : iterable of path-like or of tuples of path-like, keyword-only
        The other folders (or files) the release puts beside ``relative``, a tuple where
        any one of several places will do: if a folder one level below ``root`` holds them
        all, the fix is to set the root to it; otherwise to move the misplaced folder.

    Returns
    -------
    Path
        ``root / relative``.

    Raises
    ------
    DatasetFormatError
        Naming the folder expected and, when found one level deeper or higher, the folder
        found and the fix ("set unbc_root ... to <found>", or "move <found> to <expected>").
    """
    expected = root / relative
    if expected.is_dir():
        return expected
    head = f"{dataset}: expected the folder {expected} ({what}), found nothing there"
    key, env_var = ROOT_KNOBS.get(dataset, ("the dataset root", "its environment variable"))

    def set_root(found: Path) -> str:
        return f"Set {key} to {found} (in params/paper.yml, or the environment variable {env_var})."

    deeper = [child for child in _subfolders(root) if (child / relative).is_dir()]
    if deeper:
        found = deeper[0]
        if all(_holds(found, other) for other in together_with):
            fix = set_root(found)
        else:
            fix = f"Move {found / relative} to {expected}."
        raise DatasetFormatError(
            f"{head}; found {found / relative} one folder deeper (an extra folder level, e.g. "
            f"from unzipping). {fix}"
        )
    if (root.parent / relative).is_dir() and root.parent != root:
        raise DatasetFormatError(
            f"{head}; found {root.parent / relative} one folder higher (the root points inside "
            f"the dataset). {set_root(root.parent)}"
        )
    entries = sorted(entry.name for entry in root.iterdir()) if root.is_dir() else []
    listed = ", ".join(entries[:_LISTED_ENTRIES]) + (", ..." if len(entries) > _LISTED_ENTRIES
                                                      else "")
    raise DatasetFormatError(
        f"{head} (the root holds: {listed or 'nothing'}). Check that the dataset root points at "
        f"the top of the extracted dataset ('{key}' in params/paper.yml, or {env_var})."
    )


def _holds(folder: Path, entry: str | os.PathLike | tuple) -> bool:
    """Whether ``folder`` holds ``entry`` (any one of them, for a tuple)."""
    options = entry if isinstance(entry, tuple) else (entry,)
    return any((folder / option).exists() for option in options)


def _subfolders(root: Path) -> list[Path]:
    """Sub-folders of ``root`` that may hold data, sorted (none if ``root`` is no folder)."""
    if not root.is_dir():
        return []
    return sorted(child for child in root.iterdir()
                  if child.is_dir() and child.name not in _NOT_DATA)
