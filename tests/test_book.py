"""Smoke run of the whole book: every chapter of params/smoke.yml through papermill, then
jupyter-book with warnings as errors, into a temporary copy of the book."""

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
    log = runner.run("smoke", book_dir=smoke_book)
    assert {entry["status"] for entry in log} == {"skipped"}


def test_rendered_chapters_carry_no_log_noise(smoke_book):
    """TensorFlow's C++ start-up messages and progress-bar text belong to the terminal or
    the executed notebook, not to the pages a reader reads."""
    noisy = {}
    for page in sorted((smoke_book / "_build" / "html" / "book" / "chapters").glob("*.html")):
        html = page.read_text()
        found = [marker for marker in ("Unable to register", "TqdmWarning", "stream_executor", "it/s]")
                 if marker in html]
        if found:
            noisy[page.stem] = found
    assert not noisy, f"log noise in the rendered book: {noisy}"


def test_every_glued_figure_carries_an_image(smoke_book):
    """A figure glued without its PNG renders as an empty box (e.g. when a module forces
    a non-inline matplotlib backend); every glued Figure must carry image/png."""
    import nbformat

    missing = []
    for path in sorted((smoke_book / "book" / "chapters").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                record = output.get("metadata", {}).get("scrapbook")
                text = output.get("data", {}).get("application/papermill.record/text/plain", "")
                if record and text.startswith("<Figure") and \
                        "application/papermill.record/image/png" not in output["data"]:
                    missing.append(f"{path.stem}:{record['name']}")
    assert not missing, f"glued figures without an image: {missing}"
