"""Run the book's chapters in order: jupytext reads, papermill executes, the book builds.

``python -m forgetting_aus.runner --profile default`` executes every
``notebooks/NN_*.py`` (then ``notebooks/summary.py``, the landing page) with the
profile's knobs injected, into ``book/chapters/*.ipynb``. A chapter is skipped when its
*stamp* is unchanged: the hash of its source, the knobs injected into it, every source
file of the ``forgetting_aus`` package, and the stamps of the chapters before it (so a
changed upstream chapter reruns everything downstream). Expensive steps inside chapters
are cached separately by :mod:`forgetting_aus.cache`, so even a rerun chapter reuses
unchanged models.

While a chapter runs, its printed output (training bars with loss and ETA, messages)
reaches the terminal as the kernel prints it and ``results/<profile>/logs/<chapter>.log``,
and a heartbeat line gives the elapsed time and the time left by the last run's measure
(:mod:`forgetting_aus.progress`).

A failing cell stops the run with the chapter and the cell named; the partially executed
notebook stays in ``book/chapters`` for inspection, and its stamp is removed so the next
run retries it.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from . import config as config_module
from . import progress, truth_audit
from .cache import read_json, source_digest, write_json

KERNEL_NAME = "forgetting-aus"
SUMMARY = "summary"
PACKAGE_DIR = Path(__file__).resolve().parent
#: What the book build needs besides the executed chapters.
BOOK_SOURCES = ("_config.yml", "_toc.yml", "book/references.bib", "book/references.md", "book/figure_code.md",
                "_static")
#: Seconds between the heartbeat lines of a running chapter.
HEARTBEAT_SECONDS = 20.0


class ChapterFailed(RuntimeError):
    """A cell of a chapter raised; the message names the chapter and the cell."""


class PreflightFailed(RuntimeError):
    """A real-data profile lacks something it needs; the message lists every problem and its fix."""


def book_folder(repo: Path, profile: str) -> Path:
    """Where a profile's book is assembled and built: ``_build/<profile>/``.

    One folder per profile, so that building another profile never replaces the pages of
    the default book (the runner's skip stamps are per profile too, under
    ``results/<profile>/.runner``). The HTML lands in ``_build/<profile>/_build/html``.
    """
    return repo / "_build" / profile


def discover_chapters(notebooks_dir: Path) -> list[Path]:
    """``NN_*.py`` chapters in order, then ``summary.py`` (the landing page) last."""
    chapters = sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.py"))
    summary = notebooks_dir / f"{SUMMARY}.py"
    if summary.exists():
        chapters.append(summary)
    return chapters


def select_chapters(chapters: list[Path], only: str | None) -> list[Path]:
    """Chapters matching ``only`` (a number like ``03`` or a name); all when None."""
    if not only:
        return chapters
    chosen = [c for c in chapters if c.stem == only or c.stem.split("_", 1)[0] == only.zfill(2)]
    if not chosen:
        raise SystemExit(f"no chapter matches '{only}'; chapters: {[c.stem for c in chapters]}")
    return chosen


def parameter_names(source: str, path: Path) -> list[str]:
    """Names assigned in the cell tagged ``parameters`` of a py:percent notebook."""
    import jupytext

    notebook = jupytext.reads(source, fmt="py:percent")
    cells = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    names = []
    for node in ast.parse(cells[0].source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def chapter_parameters(source: str, path: Path, profile: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Knobs injected into a chapter: the profile's values for the names it declares, plus every override."""
    values = config_module.read_profile(profile)
    values.update(overrides)
    config_module.load_config(profile, overrides=overrides)  # validate before running anything
    names = parameter_names(source, path)
    unknown = [n for n in names if n not in config_module.FIELDS]
    if unknown:
        raise ValueError(f"{path}: parameters {unknown} are not knobs of forgetting_aus.config.Config")
    injected = {n: values[n] for n in names if n in values}
    # An override reaches every chapter, even one whose parameters cell does not list the
    # knob (e.g. ``results_dir``): otherwise the runner and the chapter disagree.
    injected.update(overrides)
    injected["profile"] = profile
    return injected


def package_hash(package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 over the code of every source file of the package.

    Comments, docstrings and layout are ignored (:func:`forgetting_aus.cache.source_digest`),
    so rewording a docstring reruns no chapter; a change to code reruns them all.
    """
    digest = hashlib.sha256()
    for file in sorted(package_dir.rglob("*.py")):
        digest.update(file.relative_to(package_dir).as_posix().encode())
        digest.update(source_digest(file).encode())
    return digest.hexdigest()


def chapter_stamp(source: str, parameters: dict[str, Any], code_hash: str, upstream: str) -> str:
    """Hash of what a chapter's output depends on.

    ``source`` is the notebook's text as written (its prose is part of the page, so it is
    hashed verbatim); ``code_hash`` is :func:`package_hash`; ``upstream`` is the stamp of
    the chapter before.
    """
    payload = json.dumps({"source": source, "parameters": parameters, "code": code_hash, "upstream": upstream},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _hide_injected_cells(output: Path) -> None:
    """Remove papermill's injected cell from the book and collapse the defaults cell."""
    import nbformat

    notebook = nbformat.read(output, as_version=4)
    for cell in notebook.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
        if "parameters" in tags and "hide-cell" not in tags:
            tags.append("hide-cell")
    nbformat.write(notebook, output)


def ensure_kernel(kernel: str = KERNEL_NAME) -> None:
    """Register this environment's Python as Jupyter kernel ``kernel`` if it is missing."""
    from jupyter_client.kernelspec import KernelSpecManager

    if kernel in KernelSpecManager().find_kernel_specs():
        return
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", kernel,
                    "--display-name", "Python (forgetting-aus)"], check=True, stdout=subprocess.DEVNULL)


def execute_chapter(source: str, path: Path, output: Path, parameters: dict[str, Any], *, kernel: str,
                    log: progress.ChapterLog | None = None) -> None:
    """Execute one chapter with papermill; raise :class:`ChapterFailed` naming the cell.

    ``log`` receives the chapter's printed output (stdout and stderr) live, as papermill
    streams it from the kernel.
    """
    import jupytext
    import papermill

    notebook = jupytext.reads(source, fmt="py:percent")
    notebook.metadata["kernelspec"] = {"name": kernel, "display_name": "Python (forgetting-aus)", "language": "python"}
    output.parent.mkdir(parents=True, exist_ok=True)
    os.environ[truth_audit.CHAPTER_ENV] = path.stem  # the kernel inherits it: audits name the chapter
    try:
        papermill.execute_notebook(notebook, str(output), parameters=parameters, kernel_name=kernel,
                                   cwd=str(path.parent), progress_bar=False, log_output=False,
                                   stdout_file=log, stderr_file=log)
    except papermill.PapermillExecutionError as error:
        first_line = error.source.strip().splitlines()[0] if error.source.strip() else ""
        raise ChapterFailed(
            f"chapter {path.stem} failed in cell {error.cell_index} (execution count {error.exec_count}, "
            f"starting '{first_line[:80]}'): {error.ename}: {error.evalue}\n"
            f"The partly executed notebook is {output}; open it to see the traceback."
        ) from None
    _hide_injected_cells(output)


def run(profile: str, *, only: str | None = None, force: bool = False, overrides: dict[str, Any] | None = None,
        repo: Path | None = None, book_dir: Path | None = None, kernel: str = KERNEL_NAME) -> list[dict[str, Any]]:
    """Execute the chapters of ``profile`` in order, skipping unchanged ones.

    Parameters
    ----------
    profile : str
        Profile name (``params/<profile>.yml``).
    only : str, optional
        Run only this chapter (e.g. ``"03"``), forced even if unchanged.
    force : bool
        Rerun every chapter even if unchanged.
    overrides : dict, optional
        Knob values overriding the profile (``--set key=value``).
    repo, book_dir : Path, optional
        Repository root (default: the installed one) and where the book is assembled
        (default: :func:`book_folder`, one per profile; the smoke test uses a temporary one).

    Raises
    ------
    PreflightFailed
        For a profile with ``preflight: true`` or ``data_source: real`` that lacks a dataset, the weights, an
        accelerator, disk or memory (:mod:`forgetting_aus.preflight`), before any chapter runs.

    Returns
    -------
    list of dict
        Per chapter: name, status ("ran", "skipped"), seconds.
    """
    repo = repo or config_module.REPO_ROOT
    book_dir = book_dir or book_folder(repo, profile)
    overrides = dict(overrides or {})
    cfg = config_module.load_config(profile, overrides=overrides)
    from forgetting_aus import preflight

    if preflight.wanted(cfg):
        problems = preflight.check(cfg)
        if problems:
            raise PreflightFailed(preflight.report(cfg, problems))
        print(preflight.report(cfg, problems), flush=True)
    stamps_dir = cfg.run_dir() / ".runner"
    chapters = discover_chapters(repo / "notebooks")
    selected = {c.stem for c in select_chapters(chapters, only)}
    code_hash = package_hash()
    ensure_kernel(kernel)
    upstream = ""
    log = []
    timings_file = cfg.run_dir() / "timings.json"
    last_timings = read_json(timings_file) if timings_file.exists() else {}
    devices = None
    for number, path in enumerate(chapters, start=1):
        source = path.read_text()
        parameters = chapter_parameters(source, path, profile, overrides)
        stamp = chapter_stamp(source, parameters, code_hash, upstream)
        upstream = stamp
        if path.stem not in selected:
            continue
        output = book_dir / "book" / "chapters" / f"{path.stem}.ipynb"
        stamp_file = stamps_dir / f"{path.stem}.json"
        previous = read_json(stamp_file) if stamp_file.exists() else {}
        unchanged = previous.get("stamp") == stamp and previous.get("output") == str(output) and output.exists()
        prefix = f"[{number}/{len(chapters)}] {path.stem}"
        if unchanged and not force and only is None:
            print(f"{prefix}: unchanged, skipped", flush=True)
            log.append({"chapter": path.stem, "status": "skipped", "seconds": 0.0})
            continue
        previous_seconds = previous.get("seconds", last_timings.get(path.stem))
        log_file = cfg.run_dir() / "logs" / f"{path.stem}.log"
        estimate = f"last run {progress.duration_text(previous_seconds)}" if previous_seconds else "no earlier timing"
        if devices is None:  # asked once, when the first chapter runs (it imports TensorFlow)
            devices = devices_text(preflight.accelerators(), distribute=cfg.distribute)
        print(f"{prefix}: running {devices} ({estimate}; output below and in {log_file}) ...", flush=True)
        started = time.time()
        stamp_file.unlink(missing_ok=True)
        with progress.ChapterLog(log_file, echo=sys.stderr) as chapter_log, \
                progress.Heartbeat(prefix, previous=previous_seconds, interval=HEARTBEAT_SECONDS):
            execute_chapter(source, path, output, parameters, kernel=kernel, log=chapter_log)
        seconds = time.time() - started
        write_json(stamp_file, {"stamp": stamp, "output": str(output), "seconds": round(seconds, 1),
                                "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
        print(f"{prefix}: done in {seconds:.0f} s", flush=True)
        log.append({"chapter": path.stem, "status": "ran", "seconds": round(seconds, 1)})
    _write_timings(timings_file, log)
    return log


def devices_text(gpus: list[str], *, distribute: str) -> str:
    """Where a chapter's networks run, for its start line: the GPUs TensorFlow sees and how training uses them.

    Parameters
    ----------
    gpus : list of str
        ``preflight.accelerators()``: TensorFlow's physical GPU devices (empty: none).
    distribute : str
        The ``distribute`` knob (:mod:`forgetting_aus.distribute`).
    """
    if not gpus:
        return "on the CPU (TensorFlow sees no GPU)"
    names = ", ".join(name.replace("/physical_device:", "") for name in gpus)
    mirrored = distribute == "mirrored" or (distribute == "auto" and len(gpus) > 1)
    how = (f"MirroredStrategy over {len(gpus)} replica{'s' if len(gpus) > 1 else ''}" if mirrored
           else "one GPU per training run")
    return f"on {len(gpus)} GPU{'s' if len(gpus) > 1 else ''} ({names}; {how})"


def _write_timings(path: Path, log: list[dict[str, Any]]) -> None:
    """Keep the latest measured time of each chapter that actually ran."""
    timings = read_json(path) if path.exists() else {}
    for entry in log:
        if entry["status"] == "ran":
            timings[entry["chapter"]] = entry["seconds"]
    write_json(path, timings)


def stage_book(repo: Path, dest: Path) -> None:
    """Copy the book's non-generated sources (config, toc, bibliography) to ``dest``."""
    for name in BOOK_SOURCES:
        source = repo / name
        target = dest / name
        if not source.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)


def build_book(book_dir: Path) -> Path:
    """``jupyter-book build`` with warnings as errors; returns ``_build/html/index.html``."""
    executable = Path(sys.executable).parent / "jupyter-book"
    command = [str(executable), "build", str(book_dir), "-W", "-n", "--keep-going"]
    result = subprocess.run(command, cwd=book_dir)
    if result.returncode != 0:
        raise SystemExit(f"jupyter-book build failed (exit {result.returncode}); warnings are errors, see above")
    return book_dir / "_build" / "html" / "index.html"


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["pain_epochs=5", "width=0.25"]`` → ``{"pain_epochs": 5, "width": 0.25}`` (YAML values)."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got '{item}'")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m forgetting_aus.runner", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default", help="params/<profile>.yml (default: default)")
    parser.add_argument("--only", help="run only this chapter, e.g. 03 (always reruns it)")
    parser.add_argument("--force", action="store_true", help="rerun every chapter even if unchanged")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KNOB=VALUE",
                        help="override a knob of the profile (repeatable)")
    parser.add_argument("--build", action="store_true", help="build the HTML book afterwards")
    parser.add_argument("--book-dir", type=Path, help="assemble and build the book here (default: _build/<profile>)")
    args = parser.parse_args(argv)
    # Inherited by the chapter kernels: level 3 also hides the harmless "Unable to register
    # cuDNN factory" errors TensorFlow 2.14 prints on import; real failures still raise.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    repo = config_module.REPO_ROOT
    book_dir = args.book_dir.resolve() if args.book_dir else book_folder(repo, args.profile)
    if book_dir != repo:
        stage_book(repo, book_dir)
    try:
        run(args.profile, only=args.only, force=args.force, overrides=parse_overrides(args.overrides),
            repo=repo, book_dir=book_dir)
    except PreflightFailed as error:
        print(f"\n{error}", file=sys.stderr)
        return 2
    except ChapterFailed as error:
        print(f"\nERROR: {error}", file=sys.stderr)
        return 1
    if args.build:
        index = build_book(book_dir)
        print(f"\nThe {args.profile} book is at {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
