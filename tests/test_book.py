"""Smoke run of the whole book: every chapter of params/smoke.yml through papermill, then
jupyter-book with warnings as errors, into a temporary copy of the book."""

import time

import pytest

from forgetting_aus import runner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_book(tmp_path_factory):
    book_dir = tmp_path_factory.mktemp("book")
    assert runner.main(["--profile", "smoke", "--book-dir", str(book_dir), "--force", "--build"]) == 0
    return book_dir


def test_every_chapter_executed_and_built(smoke_book):
    chapters = runner.discover_chapters(runner.config_module.REPO_ROOT / "notebooks")
    for chapter in chapters:
        assert (smoke_book / "book" / "chapters" / f"{chapter.stem}.ipynb").exists(), chapter.stem
        assert (smoke_book / "_build" / "html" / "book" / "chapters" / f"{chapter.stem}.html").exists(), chapter.stem
    assert (smoke_book / "_build" / "html" / "index.html").exists()


def test_glued_numbers_are_pasted(smoke_book):
    html = (smoke_book / "_build" / "html" / "book" / "chapters" / "summary.html").read_text()
    assert 'class="pasted-text"' in html


def test_noop_rerun_skips_every_chapter(smoke_book):
    started = time.time()
    log = runner.run("smoke", book_dir=smoke_book)
    assert {entry["status"] for entry in log} == {"skipped"}
    assert time.time() - started < 30
