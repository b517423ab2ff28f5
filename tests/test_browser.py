"""The built smoke book as a reader meets it: every page opened from disk in the system
Chromium, offline, 1 280 px wide (:mod:`browser_cdp`, checks in ``browser_checks.js``).

It reuses the book the smoke-book test built (``smoke_run`` of ``conftest.py``; no second
build), or the book folder named by ``FORGETTING_AUS_BROWSER_BOOK`` (e.g. ``_build/smoke``
after ``python -m forgetting_aus.runner --profile smoke --build``) to iterate on the
pages quickly. Screenshots of the landing page and chapters 04 and 05 are always written
to ``_build/screenshots/``, and of every page that fails a check as ``failed-<page>.png``.

Without Chromium the test is skipped, except under CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from browser_cdp import Browser, find_chromium

from forgetting_aus import claims, config

pytestmark = pytest.mark.slow

BOOK_ENV = "FORGETTING_AUS_BROWSER_BOOK"
SCREENSHOT_DIR = config.REPO_ROOT / "_build" / "screenshots"
#: Pages always photographed: (page stem, file name).
SCREENSHOTS = (("summary", "landing.png"), ("04_measuring_forgetting", "04_measuring_forgetting.png"),
               ("05_visual_analysis", "05_visual_analysis.png"))
CHECKS = (Path(__file__).parent / "browser_checks.js").read_text()
WIDTH = 1280


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        message = ("no system Chromium on PATH (Debian: apt-get install -y chromium; or set CHROMIUM=/path): "
                   "the browser test of the built book cannot run")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; under CI it must (.ci/run installs it)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def built_book(request) -> tuple[Path, Path]:
    """(book folder, run folder) of a built smoke book."""
    given = os.environ.get(BOOK_ENV)
    if given:
        return Path(given).resolve(), config.load_config("smoke").run_dir()
    smoke_run = request.getfixturevalue("smoke_run")
    return smoke_run.book_dir, config.load_config("smoke", overrides=smoke_run.overrides).run_dir()


@pytest.fixture(scope="module")
def pages(chromium, built_book) -> dict[str, dict]:
    """What each page shows, measured once: ``{stem: checks + remote requests + seconds}``."""
    book_dir, _ = built_book
    html = book_dir / "_build" / "html"
    assert (html / "index.html").exists(), f"no built book at {html}; build it with --build first"
    paths = sorted((html / "book").rglob("*.html"))
    assert paths, f"no pages under {html / 'book'}"
    wanted = dict(SCREENSHOTS)
    for stale in SCREENSHOT_DIR.glob("failed-*.png"):  # a page that failed before and passes now
        stale.unlink()
    measured = {}
    started = time.monotonic()
    with Browser(chromium, width=WIDTH) as browser:
        for path in paths:
            browser.open(path.as_uri())
            result = browser.evaluate(CHECKS)
            result["remote"] = browser.remote_requests()
            failed = any(result[key] for key in ("verdictProblems", "wide", "shrunk", "raw", "broken", "remote"))
            if path.stem in wanted:
                browser.screenshot(SCREENSHOT_DIR / wanted[path.stem])
            if failed:
                browser.screenshot(SCREENSHOT_DIR / f"failed-{path.stem}.png")
            measured[path.stem] = result
    print(f"\nbrowser test: {len(paths)} pages measured in {time.monotonic() - started:.1f} s; "
          f"screenshots in {SCREENSHOT_DIR}")
    return measured


def _problems(pages: dict[str, dict], key: str) -> str:
    """The pages' problems of one kind, one line each ("" when none)."""
    return "\n".join(f"{stem}: {problem}" for stem, result in pages.items() for problem in result[key])


def test_every_verdict_cell_is_inside_the_viewport_and_not_clipped(pages):
    assert any(result["verdicts"] for result in pages.values()), "no claims table with verdict cells on any page"
    problems = _problems(pages, "verdictProblems")
    assert not problems, f"\n{problems}"


def test_no_table_or_figure_is_wider_than_the_content_column(pages):
    problems = _problems(pages, "wide")
    assert not problems, f"\n{problems}"


def test_no_figure_is_shrunk_below_three_quarters_of_its_size(pages):
    problems = _problems(pages, "shrunk")
    assert not problems, f"\n{problems}"


def test_no_raw_tex_or_glue_text_is_visible(pages):
    problems = _problems(pages, "raw")
    assert not problems, f"\n{problems}"


def test_math_is_typeset_offline(pages):
    """MathJax comes from the book's own static files: no page asks the network for anything."""
    problems = _problems(pages, "remote")
    assert not problems, f"\n{problems}"
    with_math = [stem for stem, result in pages.items() if result["typeset"]]
    assert with_math, "no page has typeset math: MathJax did not load from the book's _static folder"


def test_every_image_loaded(pages):
    problems = _problems(pages, "broken")
    assert not problems, f"\n{problems}"


def test_the_landing_page_shows_a_verdict_for_every_claim(pages, built_book):
    _, run_dir = built_book
    recorded = claims.collect(run_dir)
    assert len(recorded), f"no claims recorded under {run_dir}"
    expected = sorted(zip(recorded["claim_id"], recorded["verdict"], strict=True))
    shown = sorted((row["id"], row["verdict"]) for row in pages["summary"]["verdicts"])
    assert shown == expected
    assert all(row["width"] > 0 for row in pages["summary"]["verdicts"])


def test_the_checks_catch_what_they_look_for(chromium, tmp_path):
    """On a page made to fail: a verdict clipped by a scrolling box, a wide table, raw TeX, a broken image."""
    page = tmp_path / "bad.html"
    page.write_text("""<html><body style="margin:0"><article class="bd-article" style="width:600px">
      <p>raw \\(\\gamma\\) and {glue:text}`x`</p><img src="missing.png">
      <div style="overflow-x:auto; width:600px"><table class="claims-table" style="width:1500px"><tbody>
        <tr class="claim-row" data-claim-id="c1"><td style="width:1400px">wide</td>
        <td class="claim-verdict">fails</td></tr></tbody></table></div>
      <table style="width:900px"><tr><td>too wide</td></tr></table></article></body></html>""")
    with Browser(chromium, width=WIDTH) as browser:
        browser.open(page.as_uri())
        result = browser.evaluate(CHECKS)
    assert [row["id"] for row in result["verdicts"]] == ["c1"]
    assert any("viewport" in problem for problem in result["verdictProblems"])
    assert any("clipped by scrolling" in problem for problem in result["verdictProblems"])
    assert len(result["wide"]) == 2  # the claims table and the other table
    assert any('"\\(' in problem for problem in result["raw"]) and any("{glue:" in p for p in result["raw"])
    assert result["broken"] == ["missing.png"]
