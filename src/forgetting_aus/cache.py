"""Content-addressed, atomic artifact store under ``results/<profile>/``.

An artifact is a folder ``<root>/<stage>/<key>/`` holding the files a stage wrote plus a
``manifest.json``. Its key hashes the parameters the artifact depends on and the source
code of the modules that make it, so a changed parameter or a changed function gives a
new key (a miss), and unchanged inputs find the old folder (a hit).

Writes are atomic: a stage writes into ``<root>/<stage>/.tmp-<key>-<pid>/``, the manifest
is written last, and the folder is renamed into place. A killed write leaves only a
``.tmp-*`` folder, which is never read and is cleaned up by the next write of that stage;
a folder without a manifest is not trusted. Only safe formats are read and written:
JSON, CSV and ``.npz`` without pickles (Keras models are saved by :mod:`models` as
``.keras``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "manifest.json"


def _canonical(value: Any) -> Any:
    """JSON-able canonical form: dict keys sorted, tuples as lists, numpy as Python."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return {"ndarray_sha256": hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest(),
                "shape": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot hash parameter value {value!r} of type {type(value).__name__}")


def hash_params(params: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a parameter mapping."""
    text = json.dumps(_canonical(params), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def module_files(module_name: str) -> list[Path]:
    """Source files of a module, or of every module of a package."""
    module = importlib.import_module(module_name)
    path = Path(module.__file__)
    if path.name == "__init__.py":
        return sorted(path.parent.rglob("*.py"))
    return [path]


def hash_code(modules: Iterable[str]) -> str:
    """SHA-256 over the source files of the given modules (order-independent)."""
    digest = hashlib.sha256()
    files = sorted({f for name in modules for f in module_files(name)})
    for file in files:
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def artifact_key(params: Mapping[str, Any], code: Iterable[str] = ()) -> str:
    """Key of an artifact: 16 hex digits of the hash of its parameters and its code."""
    return hashlib.sha256((hash_params(params) + hash_code(code)).encode()).hexdigest()[:16]


class Store:
    """Artifact store rooted at a folder (usually ``Config.run_dir()``)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def has(self, stage: str, key: str) -> bool:
        """True only for a completed artifact (its manifest exists)."""
        return (self.path(stage, key) / MANIFEST).is_file()

    def manifest(self, stage: str, key: str) -> dict[str, Any]:
        return json.loads((self.path(stage, key) / MANIFEST).read_text())

    def get_or_make(
        self,
        stage: str,
        params: Mapping[str, Any],
        make: Callable[[Path], Mapping[str, Any] | None],
        *,
        code: Iterable[str] = (),
    ) -> Path:
        """Folder of the artifact for ``params``; run ``make(tmp_folder)`` on a miss.

        Parameters
        ----------
        stage : str
            Name of the stage, e.g. ``"emotion_model"`` (a sub-folder of the store).
        params : mapping
            Everything the artifact depends on (knob values, upstream artifact keys).
        make : callable
            Writes the artifact's files into the folder it is given; may return a small
            JSON-able mapping stored in the manifest under ``"info"``.
        code : iterable of str
            Module names whose source the artifact depends on, e.g.
            ``["forgetting_aus.training"]``.
        """
        code = tuple(code)
        key = artifact_key(params, code)
        final = self.path(stage, key)
        if self.has(stage, key):
            return final
        stage_dir = self.root / stage
        stage_dir.mkdir(parents=True, exist_ok=True)
        self._clean_stale_temps(stage_dir)
        tmp = stage_dir / f".tmp-{key}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        started = time.time()
        try:
            info = make(tmp)
            manifest = {
                "stage": stage,
                "key": key,
                "params": _canonical(params),
                "code": list(code),
                "code_sha256": hash_code(code),
                "seconds": round(time.time() - started, 3),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "info": _canonical(info or {}),
            }
            write_json(tmp / MANIFEST, manifest)
            if final.exists():  # an untrusted leftover without manifest
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    @staticmethod
    def _clean_stale_temps(stage_dir: Path) -> None:
        for leftover in stage_dir.glob(".tmp-*"):
            pid = leftover.name.rsplit("-", 1)[-1]
            if pid.isdigit() and _pid_alive(int(pid)) and int(pid) != os.getpid():
                continue
            shutil.rmtree(leftover, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


# --- safe readers and writers (atomic: temp file + rename) ---------------------------

def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON atomically (numpy scalars and arrays converted)."""
    def _write(tmp: Path) -> None:
        tmp.write_text(json.dumps(_to_jsonable(data), indent=2, sort_keys=True))
    _atomic_write(Path(path), _write)


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write arrays to ``.npz`` atomically (no object arrays: they would need pickle)."""
    for name, array in arrays.items():
        if np.asarray(array).dtype == object:
            raise TypeError(f"array '{name}' has dtype object, which .npz can only store by pickling")

    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
    _atomic_write(Path(path), _write)


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read all arrays of an ``.npz`` (pickles refused)."""
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def write_csv(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame to CSV atomically."""
    _atomic_write(Path(path), lambda tmp: frame.to_csv(tmp, index=True))


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
