"""Assets the built book serves itself, so that it reads the same offline.

MathJax 3 comes from a package registry, not a CDN: the PyPI package
``django-static-mathjax`` (a dependency in ``pyproject.toml``) ships MathJax's ``es5``
bundle, and this Sphinx extension (listed under ``sphinx.extra_extensions`` in
``_config.yml``) copies it to ``_build/html/_static/mathjax/`` when the HTML build
finishes; ``mathjax_path: mathjax/tex-mml-chtml.js`` in ``_config.yml`` points the pages
at that copy (Sphinx reads a relative ``mathjax_path`` inside ``_static``).

Why a build step and not the book's ``_static`` folder: Jupyter Book adds every ``.js``
file under ``_static`` to every page's scripts, which for MathJax's 100-odd components
would load them all on each page.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

#: Where the copy goes, relative to the HTML output folder.
TARGET = Path("_static") / "mathjax"
#: The entry script, relative to the bundle (``mathjax_path`` names it relative to ``_static``).
ENTRY = "tex-mml-chtml.js"


def mathjax_bundle() -> Path:
    """The installed MathJax 3 ``es5`` folder (with ``tex-mml-chtml.js`` and its fonts).

    Raises
    ------
    RuntimeError
        When the package is missing or ships no ``es5/tex-mml-chtml.js``, saying how to install it.
    """
    try:
        import mathjax  # the django-static-mathjax distribution
    except ImportError:
        raise RuntimeError("MathJax is not installed: the book serves math offline from the PyPI package "
                           "django-static-mathjax; run `make env` (or pip install -e .)") from None
    bundle = Path(mathjax.__file__).resolve().parent / "static" / "mathjax" / "es5"
    if not (bundle / ENTRY).is_file():
        raise RuntimeError(f"expected MathJax 3's {ENTRY} in {bundle}, found none: the installed "
                           "django-static-mathjax is not the pinned version; run `make env`")
    return bundle


def copy_mathjax(outdir: str | Path) -> Path:
    """Copy the MathJax bundle to ``<outdir>/_static/mathjax``; returns the entry script's path.

    Files already there with the same size are left alone, so a rebuild copies nothing.
    """
    source = mathjax_bundle()
    target = Path(outdir) / TARGET
    for path in source.rglob("*"):
        if path.is_dir():
            continue
        destination = target / path.relative_to(source)
        if destination.exists() and destination.stat().st_size == path.stat().st_size:
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
    return target / ENTRY


def _build_finished(app: Any, exception: BaseException | None) -> None:
    if exception is None and app.builder.format == "html":
        copy_mathjax(app.outdir)


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point: copy MathJax into the HTML output after each successful build."""
    mathjax_bundle()  # fail at the start of a build, not after it
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
