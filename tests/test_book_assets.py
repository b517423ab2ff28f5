"""MathJax is served from the book's own static files, installed from PyPI, never a CDN."""

import os
from pathlib import Path

import pytest
import yaml

from forgetting_aus import book_assets, config


def test_the_installed_bundle_is_mathjax_3_with_its_fonts():
    bundle = book_assets.mathjax_bundle()
    assert 'VERSION="3.2.2"' in (bundle / "tex-mml-chtml.js").read_text()
    assert list((bundle / "output" / "chtml" / "fonts" / "woff-v2").glob("MathJax_Main-Regular.woff"))


def test_copy_puts_the_entry_script_where_mathjax_path_points_and_a_rebuild_copies_nothing(tmp_path):
    entry = book_assets.copy_mathjax(tmp_path)
    settings = yaml.safe_load((config.REPO_ROOT / "_config.yml").read_text())
    sphinx = settings["sphinx"]
    assert "forgetting_aus.book_assets" in sphinx["extra_extensions"]
    mathjax_path = sphinx["config"]["mathjax_path"]
    assert not mathjax_path.startswith(("http:", "https:", "//")), "math must not need the network"
    assert entry == tmp_path / "_static" / mathjax_path and entry.is_file()
    os.utime(entry, ns=(0, 0))  # a copy would give it the source's time
    book_assets.copy_mathjax(tmp_path)
    assert entry.stat().st_mtime_ns == 0


def test_a_missing_bundle_says_how_to_install_it(monkeypatch, tmp_path):
    import mathjax

    monkeypatch.setattr(mathjax, "__file__", str(tmp_path / "mathjax" / "__init__.py"))
    with pytest.raises(RuntimeError, match="make env"):
        book_assets.mathjax_bundle()


def test_the_book_stages_its_static_folder():
    from forgetting_aus import runner

    assert "_static" in runner.BOOK_SOURCES
    assert Path(config.REPO_ROOT / "_static" / "claims.css").is_file()
