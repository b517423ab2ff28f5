"""Content-addressed, atomic, verified artifact store under ``results/<profile>/``.

An artifact is a folder ``<root>/<stage>/<key>/`` holding the files a stage wrote plus a
``manifest.json``. Its key hashes the parameters the artifact depends on and the *code*
of the modules that make it (:data:`CODE`), so a changed parameter or a changed function
gives a new key (a miss), and unchanged inputs find the old folder (a hit). Code is
hashed without comments, docstrings and layout (:func:`source_digest`), so rewording a
docstring remakes nothing.

Writes are atomic: a stage writes into ``<root>/<stage>/.tmp-<key>-<pid>/``, the manifest
is written last, and the folder is renamed into place. A killed write leaves only a
``.tmp-*`` folder, which is never read and is cleaned up by the next write of that stage;
a folder without a manifest is not trusted. The manifest lists every file with its size
and SHA-256, and every read checks them (:meth:`Store.has`): a truncated or corrupted
artifact is discarded and remade instead of being trusted. Only safe formats are read and
written: JSON, CSV and ``.npz`` without pickles (Keras models are saved by :mod:`models`
as ``.keras``).

Setting the environment variable ``FORGETTING_AUS_CODE_AUDIT`` to a folder records, for
every artifact made, which package modules its ``make`` executed (see
:func:`audit_records` and ``tests/test_book.py``), which proves :data:`CODE` complete.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.machinery
import importlib.util
import io
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "manifest.json"
#: Files up to this size are checksummed on every first read in a process; bigger files
#: are only size-checked. SHA-256 runs at ~0.2-0.5 GB/s on the 2-core machine (64 MiB took
#: 0.1-0.2 s), so a hit stays cheap, while the only files above the line (decoded image
#: stores of the ``paper`` profile, gigabytes) would cost seconds to minutes per read;
#: their size still catches truncation, the common failure of a killed copy or a full disk.
CHECKSUM_MAX_BYTES = 64 * 2**20
#: Environment variable naming a folder: when set, :meth:`Store.get_or_make` records the
#: package code each ``make`` executes (one JSON per artifact made) into it.
AUDIT_ENV = "FORGETTING_AUS_CODE_AUDIT"
#: Set by an audited ``make`` for the subprocesses it starts: ``<stage>/<key>`` being made.
AUDIT_STAGE_ENV = "FORGETTING_AUS_CODE_AUDIT_STAGE"
_PACKAGE = __name__.rsplit(".", 1)[0]
_PACKAGE_DIR = Path(__file__).resolve().parent

# --- the one registry of the code behind every cached artifact ------------------------
# A stage's key hashes the code of the modules listed here (a package covers its
# submodules), so editing any of them remakes exactly the artifacts that list it. Every
# stage of the study is registered. ``tests/test_book.py`` runs the smoke book with the
# code audit on and fails when a stage executes package code its entry does not cover, or
# when an entry is never made. The audit sees functions that run; it cannot see
# (so entries list them by reading the code):
# - constants read from a module (``facs`` vocabulary, ``attention`` layers that
#   ``models`` imports to load saved models by name);
# - code that runs in the LRP worker subprocess (``explain._lrp_worker``);
# - the code of an upstream artifact read inside a make whose key is not in the stage's
#   parameters (``gt_control_model`` reads ``gt_control_data`` by knobs, so it lists the
#   renderer and the pair code too).
_PKG = "forgetting_aus"
_CH = f"{_PKG}.chapters"
#: The face renderer of the synthetic world.
_RENDER = tuple(f"{_PKG}.synth.{name}" for name in ("render", "canvas", "geometry", "imaging", "paint", "identity",
                                                    "expressions"))
_TWINS = _RENDER + (f"{_PKG}.synth.twins", f"{_PKG}.facs", f"{_PKG}.geometry", f"{_PKG}.pipeline")
_DATA = (f"{_PKG}.datasets", f"{_PKG}.geometry", f"{_PKG}.facs", f"{_PKG}.pipeline")
_MODELS = (f"{_PKG}.models", f"{_PKG}.attention")
_TRAIN = _MODELS + (f"{_PKG}.losses", f"{_PKG}.training", f"{_PKG}.augmentation", f"{_PKG}.pipeline", f"{_PKG}.facs",
                     f"{_PKG}.distribute")
_LRP = _MODELS + (f"{_PKG}.explain.lrp", f"{_PKG}.explain._lrp_worker", f"{_PKG}.pipeline")
_GT_PAIRS = _RENDER + (f"{_PKG}.facs", f"{_PKG}.geometry", f"{_PKG}.datasets.images", f"{_CH}.ch08_ground_truth.pairs")
_GT_CONTROLS = f"{_CH}.ch08_ground_truth.controls"
#: The probe fits: the one probe, its engine, their workers.
_PROBES = (f"{_PKG}.concepts", f"{_PKG}.probe_engine", f"{_PKG}.parallel", f"{_PKG}.pipeline")
CODE: dict[str, tuple[str, ...]] = {
    # machinery stages (pipeline)
    "twin_affectnet": _TWINS, "twin_unbc": _TWINS, "twin_ckplus": _TWINS,
    "emotion_data": _DATA, "pain_data": _DATA, "ckplus_data": _DATA,
    "emotion_model": _TRAIN + _DATA, "pain_model": _TRAIN + _DATA,
    "emotion_features": _TRAIN + (f"{_PKG}.shared_blocks",), "retrained_model": _TRAIN,
    "probe_features": _MODELS + (f"{_PKG}.concepts", f"{_PKG}.explain.regions", f"{_PKG}.shared_blocks"),
    # chapter 01
    "au_visibility": (f"{_PKG}.synth", f"{_PKG}.facs", f"{_PKG}.geometry", f"{_PKG}.parallel", f"{_CH}.ch01_datasets"),
    "trivial_baselines": (f"{_PKG}.synth", f"{_PKG}.facs", f"{_PKG}.geometry", f"{_PKG}.pipeline",
                          f"{_CH}.ch01_datasets"),
    # chapter 05
    "visual_lrp": _LRP + (f"{_CH}.ch05_visual_analysis",),
    # chapter 06
    "probe_paper_tests": _PROBES + (f"{_CH}.ch06_concept_embedding",),
    "probe_sweep": _PROBES + (f"{_CH}.ch06_concept_embedding",),
    "probe_crop_validation": _PROBES + (f"{_CH}.ch06_concept_embedding",),
    # chapter 08
    "gt_pairs": _GT_PAIRS,
    "gt_pair_outputs": _MODELS + (f"{_PKG}.pipeline", f"{_PKG}.shared_blocks", f"{_CH}.ch08_ground_truth.truth"),
    "gt_control_data": _GT_PAIRS + (_GT_CONTROLS,),
    "gt_control_model": _TRAIN + _GT_PAIRS + (_GT_CONTROLS,),
    "gt_null_model": _TRAIN + (_GT_CONTROLS,),
    "gt_null_retrained": _TRAIN + (f"{_PKG}.shared_blocks", _GT_CONTROLS),
    "gt_lrp": _LRP + (f"{_CH}.ch05_visual_analysis", f"{_CH}.ch08_ground_truth.methods"),
    "gt_probe_scores": _PROBES + (f"{_CH}.ch08_ground_truth.methods",),
    # chapter 09: the stages live in its ``study`` module
    "weitz_data": (f"{_PKG}.datasets", f"{_PKG}.geometry", f"{_PKG}.facs", f"{_CH}.ch09_lrp_rules.study"),
    "weitz_fold": _TRAIN + (f"{_PKG}.datasets", f"{_PKG}.geometry", f"{_CH}.ch09_lrp_rules.study"),
    "weitz_lrp": _LRP + (f"{_CH}.ch09_lrp_rules.study",),
    # chapter 10
    "arabian_sets": _TWINS + (f"{_PKG}.datasets", f"{_CH}.ch10_transfer_vs_scratch.study"),
    "arabian_fold": _TRAIN + (f"{_PKG}.explain.gradcam", f"{_CH}.ch10_transfer_vs_scratch.study"),
}


def stage_code(stage: str, registry: Mapping[str, Iterable[str]] | None = None) -> tuple[str, ...]:
    """Modules behind a stage's artifacts, from the registry (:data:`CODE` by default)."""
    registry = CODE if registry is None else registry
    if stage not in registry:
        raise KeyError(f"stage '{stage}' is not in the code registry; add it to forgetting_aus.cache.CODE "
                       "with the modules whose code makes its artifact")
    return tuple(registry[stage])


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


# --- code hashes: the code, not its comments or docstrings -----------------------------

def module_files(module_name: str) -> list[Path]:
    """Source files of a module, or of every module of a package (its sub-packages too).

    The files are located with the import system's finders, without importing (so hashing
    never executes a chapter module).

    Raises
    ------
    ModuleNotFoundError
        When no such module exists (e.g. a typo in :data:`CODE`).
    """
    parts = module_name.split(".")
    spec = importlib.util.find_spec(parts[0])
    for depth in range(2, len(parts) + 1):
        if spec is None or not spec.submodule_search_locations:
            spec = None
            break
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[:depth]), list(spec.submodule_search_locations))
    if spec is None:
        raise ModuleNotFoundError(f"module '{module_name}' (listed in a code registry) was not found; "
                                  "fix the name in forgetting_aus.cache.CODE")
    if spec.submodule_search_locations:
        return sorted(f for folder in spec.submodule_search_locations for f in Path(folder).rglob("*.py"))
    return [Path(spec.origin)]


_DOCSTRING_OWNERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
#: ``(path, mtime_ns, size) -> digest``: a file is parsed once per process while unchanged.
_DIGESTS: dict[tuple[str, int, int], str] = {}


def code_text(source: str) -> str:
    """The code of a Python source as text, without comments, docstrings or layout.

    The abstract syntax tree drops comments and formatting; docstrings (a string
    expression opening a module, class or function) are removed from it; ``ast.dump``
    without line attributes prints what is left. Source that does not parse is returned
    unchanged (importing it will report the error).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    for node in ast.walk(tree):
        if isinstance(node, _DOCSTRING_OWNERS) and node.body and isinstance(node.body[0], ast.Expr) \
                and isinstance(node.body[0].value, ast.Constant) and isinstance(node.body[0].value.value, str):
            node.body = node.body[1:]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def source_digest(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of the code of one source file (:func:`code_text`), memoised per process."""
    path = Path(path)
    stat = path.stat()
    memo = (str(path), stat.st_mtime_ns, stat.st_size)
    if memo not in _DIGESTS:
        text = code_text(path.read_bytes().decode("utf-8", errors="surrogateescape"))
        _DIGESTS[memo] = hashlib.sha256(text.encode("utf-8", errors="surrogateescape")).hexdigest()
    return _DIGESTS[memo]


def _file_label(path: Path) -> str:
    """A file's name in code hashes: its path inside the package, so keys survive a move of the checkout."""
    try:
        return path.resolve().relative_to(_PACKAGE_DIR).as_posix()
    except ValueError:
        return path.name


def hash_code(modules: Iterable[str]) -> str:
    """SHA-256 over the code of the given modules (order-independent; comments and docstrings ignored)."""
    digest = hashlib.sha256()
    files = sorted({f for name in modules for f in module_files(name)})
    for file in files:
        digest.update(_file_label(file).encode())
        digest.update(source_digest(file).encode())
    return digest.hexdigest()


def artifact_key(params: Mapping[str, Any], code: Iterable[str] = ()) -> str:
    """Key of an artifact: 16 hex digits of the hash of its parameters and its code."""
    return hashlib.sha256((hash_params(params) + hash_code(code)).encode()).hexdigest()[:16]


# --- the code audit: which package code a make executes ---------------------------------
# Opt-in (``FORGETTING_AUS_CODE_AUDIT``), for the smoke book's registry check. A global
# trace function sees every Python call of this thread; it keeps the file of each function
# (not module or class bodies, which run once per process at import, whichever stage
# imports first) under the package folder and attributes it to the innermost artifact
# being made, so an upstream stage made inside a downstream make is recorded as itself.

#: Modules a stage may execute without listing them: the store itself (key, manifest,
#: readers and writers) and the configuration, whose values enter every key as parameters.
AUDIT_EXEMPT: tuple[str, ...] = (f"{_PACKAGE}.cache", f"{_PACKAGE}.config")
_PACKAGE_PREFIXES = tuple({os.path.dirname(os.path.abspath(__file__)) + os.sep, str(_PACKAGE_DIR) + os.sep})
_AUDIT_STACK: list[set[str]] = []
_AUDIT_COUNT = [0]
_CO_NEWLOCALS = 0x0002  # inspect.CO_NEWLOCALS: set for functions, unset for module and class bodies


def _audit_trace(frame, event: str, arg) -> None:
    # Called on every Python call while an audited make runs: keep it to a flag test and a
    # prefix test; returning None asks for no line-by-line tracing of the frame.
    code = frame.f_code
    if code.co_flags & _CO_NEWLOCALS and code.co_filename.startswith(_PACKAGE_PREFIXES) and _AUDIT_STACK:
        _AUDIT_STACK[-1].add(code.co_filename)


def module_of(filename: str | os.PathLike) -> str:
    """Dotted module name of a source file of the package (``.../explain/lrp.py`` -> ``forgetting_aus.explain.lrp``)."""
    path = Path(os.path.abspath(filename))
    for prefix in _PACKAGE_PREFIXES:
        if str(path).startswith(prefix):
            parts = list(Path(str(path)[len(prefix):]).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            return ".".join([_PACKAGE, *parts])
    raise ValueError(f"{filename} is not a source file of {_PACKAGE} ({_PACKAGE_DIR})")


@contextlib.contextmanager
def _audited(stage: str, key: str) -> Iterator[None]:
    """Record the package code run inside the block as the code of artifact ``stage/key``.

    A no-op unless :data:`AUDIT_ENV` names a folder. Inside, joblib runs in this process
    (its sequential backend: the project's parallel stages give the same bytes as serial
    ones) so that the trace sees the workers' code; subprocesses inherit
    :data:`AUDIT_STAGE_ENV` and may record themselves with :func:`audit_subprocess`.
    Records are written only for a make that succeeded.
    """
    folder = os.environ.get(AUDIT_ENV)
    if not folder:
        yield
        return
    from joblib import parallel_config

    executed: set[str] = set()
    outermost = not _AUDIT_STACK
    previous_trace = sys.gettrace()
    previous_stage = os.environ.get(AUDIT_STAGE_ENV)
    _AUDIT_STACK.append(executed)
    os.environ[AUDIT_STAGE_ENV] = f"{stage}/{key}"
    if outermost:
        sys.settrace(_audit_trace)
    try:
        with parallel_config(backend="sequential"):
            yield
    finally:
        if outermost:
            sys.settrace(previous_trace)
        _AUDIT_STACK.pop()
        if previous_stage is None:
            os.environ.pop(AUDIT_STAGE_ENV, None)
        else:
            os.environ[AUDIT_STAGE_ENV] = previous_stage
    _write_audit_record(Path(folder), stage, key, executed)


@contextlib.contextmanager
def audit_subprocess() -> Iterator[None]:
    """In a subprocess started by an audited make, record its package code for that artifact.

    Wrap the subprocess's work in ``with cache.audit_subprocess():`` (e.g. the LRP worker);
    a no-op unless the audit is on and the parent is making an artifact.
    """
    stage, _, key = os.environ.get(AUDIT_STAGE_ENV, "").partition("/")
    if not (os.environ.get(AUDIT_ENV) and stage and key):
        yield
        return
    with _audited(stage, key):
        yield


def _write_audit_record(folder: Path, stage: str, key: str, files: set[str]) -> None:
    _AUDIT_COUNT[0] += 1
    record = {"stage": stage, "key": key, "pid": os.getpid(),
              "modules": sorted({module_of(f) for f in files})}
    write_json(folder / f"{stage}-{key}-{os.getpid()}-{_AUDIT_COUNT[0]}.json", record)


def audit_records(folder: str | os.PathLike) -> dict[str, set[str]]:
    """Union of the audit records in ``folder``: stage -> package modules its makes executed."""
    executed: dict[str, set[str]] = {}
    for path in sorted(Path(folder).glob("*.json")):
        record = read_json(path)
        executed.setdefault(record["stage"], set()).update(record["modules"])
    return executed


def covers(entry: Iterable[str], module: str) -> bool:
    """True when a registry entry lists ``module`` or a package holding it."""
    return any(module == name or module.startswith(name + ".") for name in entry)


def uncovered_modules(stage: str, executed: Iterable[str],
                      registry: Mapping[str, Iterable[str]] | None = None) -> list[str]:
    """Executed modules of ``stage`` that its registry entry does not cover (:data:`AUDIT_EXEMPT` aside)."""
    entry = stage_code(stage, registry)
    return sorted(m for m in set(executed) if not covers(entry, m) and not covers(AUDIT_EXEMPT, m))


# --- file records: what a manifest promises about its folder ----------------------------

#: Files whose checksum matched in this process, as ``(path, size, mtime_ns, inode, sha256)``.
_VERIFIED: set[tuple[str, int, int, int, str]] = set()
#: Artifact folders verified in this process, with their manifest's (size, mtime, inode).
_VERIFIED_FOLDERS: dict[str, tuple[int, int, int]] = {}


def forget_verified() -> None:
    """Forget what this process verified, so the next read checks every file again (as a new process would)."""
    _VERIFIED.clear()
    _VERIFIED_FOLDERS.clear()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_records(folder: str | os.PathLike) -> list[dict[str, Any]]:
    """Relative path (POSIX), size in bytes and SHA-256 of every file under ``folder`` but the manifest."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p != folder / MANIFEST)
    return [{"path": p.relative_to(folder).as_posix(), "bytes": p.stat().st_size, "sha256": _sha256_file(p)}
            for p in files]


def check_files(folder: str | os.PathLike, records: Iterable[Mapping[str, Any]]) -> str | None:
    """What is wrong with ``folder`` against its file records, or None when nothing is.

    Sizes are always compared; checksums for files up to :data:`CHECKSUM_MAX_BYTES`, once
    per process for a file whose size, modification time and inode are unchanged.
    """
    folder = Path(folder)
    for record in records:
        path = folder / record["path"]
        if not path.is_file():
            return f"{record['path']} is missing"
        stat = path.stat()
        if stat.st_size != record["bytes"]:
            return f"{record['path']} has {stat.st_size} bytes, manifest says {record['bytes']}"
        if stat.st_size > CHECKSUM_MAX_BYTES:
            continue
        memo = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino, record["sha256"])
        if memo in _VERIFIED:
            continue
        found = _sha256_file(path)
        if found != record["sha256"]:
            return f"{record['path']} has SHA-256 {found[:12]}..., manifest says {record['sha256'][:12]}..."
        _VERIFIED.add(memo)
    return None


class Store:
    """Artifact store rooted at a folder (usually ``Config.run_dir()``).

    Parameters
    ----------
    root : path
        Folder holding one sub-folder per stage.
    registry : mapping, optional
        Stage -> modules whose code makes its artifact (default :data:`CODE`).
    """

    def __init__(self, root: str | os.PathLike, *, registry: Mapping[str, Iterable[str]] | None = None):
        self.root = Path(root)
        self.registry = CODE if registry is None else registry

    def key(self, stage: str, params: Mapping[str, Any]) -> str:
        """Key of the stage's artifact for ``params`` (its registered code included)."""
        return artifact_key(params, stage_code(stage, self.registry))

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def has(self, stage: str, key: str) -> bool:
        """True only for a complete, intact artifact.

        It must have a manifest listing its files, each of the recorded size and (up to
        :data:`CHECKSUM_MAX_BYTES`) checksum. A damaged artifact, or one whose manifest
        predates file records, is reported in one line on stderr and discarded, so the
        next :meth:`get_or_make` remakes it.
        """
        folder = self.path(stage, key)
        if not (folder / MANIFEST).is_file():
            return False
        problem = self._problem(folder)
        if problem is None:
            return True
        print(f"artifact {stage}/{key}: {problem}: discarded, remaking", file=sys.stderr, flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        return False

    def _problem(self, folder: Path) -> str | None:
        # A folder verified in this process is not walked again while its manifest is
        # unchanged: the check guards against damage between runs (a bad copy, a full
        # disk), and a chapter asks for the same upstream artifacts hundreds of times (the
        # twins hold tens of thousands of files; walking them on every hit cost minutes).
        try:
            stat = (folder / MANIFEST).stat()
        except OSError:
            return f"{MANIFEST} is unreadable"
        signature = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
        if _VERIFIED_FOLDERS.get(str(folder)) == signature:
            return None
        try:
            records = json.loads((folder / MANIFEST).read_text()).get("files")
        except (OSError, ValueError, AttributeError):
            return f"{MANIFEST} is unreadable"
        if not isinstance(records, list):
            return f"{MANIFEST} lists no files (made by an older version of the store), so it is not trusted"
        problem = check_files(folder, records)
        if problem is None:
            _VERIFIED_FOLDERS[str(folder)] = signature
        return problem

    def manifest(self, stage: str, key: str) -> dict[str, Any]:
        return json.loads((self.path(stage, key) / MANIFEST).read_text())

    def get_or_make(
        self,
        stage: str,
        params: Mapping[str, Any],
        make: Callable[[Path], Mapping[str, Any] | None],
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

        The code the artifact depends on comes from the store's registry (:data:`CODE`).
        A hit is verified first (:meth:`has`); a damaged artifact is remade.
        """
        code = stage_code(stage, self.registry)
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
            with _audited(stage, key):
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
                "files": file_records(tmp),
            }
            write_json(tmp / MANIFEST, manifest)
            self._publish(stage, key, tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    def _publish(self, stage: str, key: str, tmp: Path, final: Path) -> None:
        """Rename the finished ``tmp`` into place, unless another process published it first.

        Two processes may make the same artifact at once (e.g. two workers of a run whose
        source changed under it); the first one's folder may already be open in a reader,
        so it is kept and the second copy dropped.
        """
        if self.has(stage, key):
            return
        if final.exists():  # an untrusted leftover without manifest
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.replace(tmp, final)
        except OSError:
            if not self.has(stage, key):  # not a lost race: a real failure
                raise

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


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write one array to ``.npy`` atomically (memory-mappable; no object arrays)."""
    if np.asarray(array).dtype == object:
        raise TypeError(f"{path}: dtype object can only be stored by pickling")

    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
    _atomic_write(Path(path), _write)


def trim_npy(path: str | os.PathLike, rows: int) -> np.ndarray:
    """Cut a ``.npy`` file to its first ``rows`` rows, in place; return it memory-mapped, read-only.

    No data is copied: the header is rewritten with the new shape and the file
    truncated. numpy pads every header with room for the first axis to grow to 21
    digits, so the new header has the old one's length and the data stay where they are.
    """
    array = np.load(path, mmap_mode="r")
    if len(array) == rows:
        return array
    header = {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False,
              "shape": (rows, *array.shape[1:])}
    offset, row_bytes = array.offset, int(np.prod(array.shape[1:])) * array.dtype.itemsize
    del array
    encoded = io.BytesIO()
    np.lib.format.write_array_header_1_0(encoded, header)
    if len(encoded.getvalue()) != offset:
        raise RuntimeError(f"trim_npy: the new header of {path} would move its data ({len(encoded.getvalue())} "
                           f"bytes instead of {offset}); this numpy does not pad .npy headers")
    with open(path, "r+b") as handle:
        handle.write(encoded.getvalue())
        handle.truncate(offset + rows * row_bytes)
    return np.load(path, mmap_mode="r")


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write arrays to ``.npz`` atomically (no object arrays: they would need pickle)."""
    for name, array in arrays.items():
        if np.asarray(array).dtype == object:
            raise TypeError(f"array '{name}' has dtype object, which .npz can only store by pickling")

    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
    _atomic_write(Path(path), _write)


def read_npz(path: str | os.PathLike, *, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Read the arrays of an ``.npz`` (pickles refused): all of them, or only ``names``.

    An ``.npz`` member is decompressed only when asked for, so reading the labels of a
    split does not read its images (tens of GB at the paper's scale).
    """
    with np.load(path, allow_pickle=False) as data:
        missing = sorted(set(names or ()) - set(data.files))
        if missing:
            raise KeyError(f"{path} has no array {missing}; it holds {data.files}")
        return {name: data[name] for name in (data.files if names is None else names)}


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
