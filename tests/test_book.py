"""Smoke run of the whole book: every chapter of params/smoke.yml through papermill, then
jupyter-book with warnings as errors, into a temporary copy of the book.

The run starts from an empty results folder with the code audit on
(``FORGETTING_AUS_CODE_AUDIT``), so every stage is made here and records the package code
it executed: the registry check below proves :data:`forgetting_aus.cache.CODE` complete.
The ground-truth audit (``FORGETTING_AUS_TRUTH_AUDIT``) records which chapter opens a
twin's ground truth: chapters 01-07 must not.

The book is built once per session (``smoke_run`` in ``conftest.py``), so that the browser
test (``test_browser.py``) reads the same pages.
"""

import pytest

from forgetting_aus import cache, runner, truth_audit

pytestmark = pytest.mark.slow

#: Stages of cache.CODE that the smoke profile legitimately does not make, with the reason.
NOT_MADE_AT_SMOKE_SCALE: dict[str, str] = {
    "visual_lrp": "the smoke models are too small to disagree: no contempt or surprise test image is right "
                  "for FreezeB5 and wrong for FreezeBk, so chapter 05 has nothing to explain (gt_lrp runs the "
                  "same LRP path)",
}


def test_every_chapter_executed_and_built(smoke_book):
    chapters = runner.discover_chapters(runner.config_module.REPO_ROOT / "notebooks")
    for chapter in chapters:
        assert (smoke_book / "book" / "chapters" / f"{chapter.stem}.ipynb").exists(), chapter.stem
        assert (smoke_book / "_build" / "html" / "book" / "chapters" / f"{chapter.stem}.html").exists(), chapter.stem
    assert (smoke_book / "_build" / "html" / "index.html").exists()


def test_glued_numbers_are_pasted(smoke_book):
    html = (smoke_book / "_build" / "html" / "book" / "chapters" / "summary.html").read_text()
    assert 'class="pasted-text"' in html


def test_noop_rerun_skips_every_chapter(smoke_run):
    log = runner.run("smoke", book_dir=smoke_run.book_dir, overrides=smoke_run.overrides)
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


def test_code_registry_covers_what_each_stage_executed(smoke_run):
    """Each artifact's key must hash all the package code its make ran (a package covers its modules)."""
    executed = cache.audit_records(smoke_run.audit_dir)
    unregistered = sorted(set(executed) - set(cache.CODE))
    assert not unregistered, f"stages made but missing from forgetting_aus.cache.CODE: {unregistered}"
    uncovered = {stage: cache.uncovered_modules(stage, modules) for stage, modules in sorted(executed.items())}
    uncovered = {stage: modules for stage, modules in uncovered.items() if modules}
    assert not uncovered, "stages executed package code their registry entry does not cover: " + "; ".join(
        f"{stage} ran {modules}" for stage, modules in uncovered.items()) + \
        ". Add these modules to the stages' entries in forgetting_aus.cache.CODE."


def test_every_registered_stage_is_made_in_the_smoke_run(smoke_run):
    """No dead registry entries: the smoke book makes every stage of cache.CODE at least once."""
    made = set(cache.audit_records(smoke_run.audit_dir))
    never = sorted(set(cache.CODE) - made - set(NOT_MADE_AT_SMOKE_SCALE))
    assert not never, (f"stages of forgetting_aus.cache.CODE never made by the smoke book: {never}; remove "
                       "them, or name them in NOT_MADE_AT_SMOKE_SCALE with the reason")


def test_chapters_01_to_07_never_open_a_twins_ground_truth(smoke_run):
    """The study reads the twins as releases: only chapters 08-10 (the world's checks) open the truth."""
    opened = truth_audit.opened(smoke_run.truth_record)
    chapters = {chapter for chapter, _ in opened}
    assert chapters <= {"08_ground_truth", "09_lrp_rules", "10_transfer_vs_scratch"}, sorted(opened)
    # The record works: chapter 09's subject-grouped folds read the AffectNet twin's subject ids.
    assert any(chapter == "09_lrp_rules" and path.endswith("au_intensities.csv") for chapter, path in opened)
