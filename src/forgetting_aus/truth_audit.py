"""Opt-in record of every file a process opens inside a synthetic twin's ground-truth folder.

The study's chapters (01-07) must read a twin exactly as they read a release, so they may
never open its ground truth (``<twin>-truth/``, :func:`forgetting_aus.synth.truth_root`).
Setting ``FORGETTING_AUS_TRUTH_AUDIT`` to a file makes every process that imports this
package (the book's kernels and their workers inherit the variable) append one line per
such open for reading (writing the twins writes their truth): ``<chapter>\\t<path>``, the chapter taken from ``FORGETTING_AUS_CHAPTER``, which
the runner sets before each chapter. The smoke book's test reads the record. Python's
audit hooks (:func:`sys.addaudithook`) see every ``open``, whatever library makes it.
"""

from __future__ import annotations

import os
import sys

AUDIT_ENV = "FORGETTING_AUS_TRUTH_AUDIT"
CHAPTER_ENV = "FORGETTING_AUS_CHAPTER"
#: What every ground-truth path contains (``synth.twins.TRUTH_SUFFIX`` and a separator).
MARKER = "-truth" + os.sep

_installed = [False]


def install() -> None:
    """Install the hook once per process when :data:`AUDIT_ENV` is set (a no-op otherwise)."""
    record = os.environ.get(AUDIT_ENV)
    if not record or _installed[0]:
        return
    _installed[0] = True
    chapter = os.environ.get(CHAPTER_ENV, "?")

    def hook(event: str, args: tuple) -> None:
        if event != "open" or not args or not isinstance(args[0], str | bytes | os.PathLike):
            return
        path = os.fsdecode(args[0])
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        writing = flags & (os.O_WRONLY | os.O_RDWR)  # the twin writers write the truth; only reads count
        if MARKER in path and not writing and not _checksum_read(sys._getframe(1)):
            with open(record, "a") as handle:  # the record never lies in a truth folder: no recursion
                handle.write(f"{chapter}\t{path}\n")

    sys.addaudithook(hook)


def _checksum_read(frame) -> bool:
    """Whether ``frame`` is the artifact store hashing a file to check its manifest.

    The store checks every file of a cached twin, truth included, by its SHA-256: bytes
    hashed, never interpreted, so nothing of the truth reaches a result.
    """
    code = frame.f_code
    return code.co_name == "_sha256_file" and code.co_filename.endswith(os.path.join("forgetting_aus", "cache.py"))


def opened(record: str | os.PathLike) -> list[tuple[str, str]]:
    """The ``(chapter, path)`` pairs recorded in ``record`` (empty when nothing was opened)."""
    try:
        with open(record) as handle:
            return [tuple(line.rstrip("\n").split("\t", 1)) for line in handle if line.strip()]
    except FileNotFoundError:
        return []
