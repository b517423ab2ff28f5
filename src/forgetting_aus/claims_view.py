"""How the book shows claims: one HTML renderer for the landing page and every chapter.

The landing page groups all claims of a run by paper, then by chapter (the chapter's
title links to its page); a chapter shows its own claims the same way without the
chapter rows. Each row reads: the verdict (a colour-coded badge, the first column, so it
is never pushed out of view), the statement (wrapped, with the paper's section and, on
request, the evidence), what the paper reports and what this run measured. The table is
laid out to the content column's width (``table-layout: fixed``), so no cell is clipped
at any page width; the colours and widths live in ``_static/claims.css``.

Written by hand: pandas' ``Styler`` cannot group rows or wrap a column to a share of the
page, and the markup here is a few lines of escaped strings.
"""

from __future__ import annotations

import datetime
import html
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from forgetting_aus.cache import read_json

#: What a reader sees for each verdict (the badge's text and its hover explanation).
VERDICT_HELP = {
    "holds": "the claim is true here, beyond the uncertainty of this run",
    "fails": "the claim is false here, beyond the uncertainty of this run",
    "inconclusive": "the uncertainty of this run straddles the claim",
}
#: A paper value that says the paper reports none (claims beyond the paper): the row's
#: measured text then spans the paper's column too.
NO_PAPER_VALUE = frozenset({"", "—", "-", "–"})
#: The columns a claims table needs (a :func:`forgetting_aus.claims.collect` table has them all).
REQUIRED = ("paper", "section", "statement", "paper_value", "this_run", "verdict")


def chapter_titles(notebooks_dir: str | Path) -> dict[str, str]:
    """The title of each chapter, from the first ``# `` heading of ``notebooks/<stem>.py``.

    Parameters
    ----------
    notebooks_dir : str or Path
        The folder of the py:percent chapters.

    Returns
    -------
    dict of str to str
        Chapter stem (e.g. ``"04_measuring_forgetting"``) to its title; chapters without a
        heading are left out.
    """
    titles = {}
    for path in sorted(Path(notebooks_dir).glob("*.py")):
        for line in path.read_text().splitlines():
            if line.startswith("# # "):
                titles[path.stem] = line[4:].strip()
                break
    return titles


def chapter_label(stem: str, titles: Mapping[str, str]) -> str:
    """``"04 · Measuring forgetting by re-training (§4.1, Figure 4)"``; ``"04 · measuring forgetting"`` when untitled."""
    number, _, rest = stem.partition("_")
    title = titles.get(stem, rest.replace("_", " ") or stem)
    return f"{number} · {title}" if number.isdigit() else title


def _cell(text: object, css: str) -> str:
    return f'<td class="{css}">{html.escape(str(text))}</td>'


def _row(claim: Mapping[str, object], *, evidence: bool) -> str:
    verdict = str(claim["verdict"])
    help_text = VERDICT_HELP.get(verdict, "")
    badge = (f'<td class="claim-verdict"><span class="verdict-badge verdict-{html.escape(verdict)}" '
             f'title="{html.escape(help_text)}">{html.escape(verdict)}</span></td>')
    statement = html.escape(str(claim["statement"]))
    section = str(claim.get("section", "") or "")
    if section:
        statement += f' <span class="claim-section">· {html.escape(section)}</span>'
    details = str(claim.get("evidence", "") or "")
    if evidence and details:
        statement += (f'<details class="claim-evidence"><summary>evidence</summary>'
                      f'{html.escape(details)}</details>')
    claim_id = html.escape(str(claim.get("claim_id", "") or ""))
    if str(claim["paper_value"]).strip() in NO_PAPER_VALUE:  # this run's text gets both columns
        values = (f'<td class="claim-run" colspan="2"><span class="claim-no-paper">paper: none</span> '
                  f'{html.escape(str(claim["this_run"]))}</td>')
    else:
        values = _cell(claim["paper_value"], "claim-paper") + _cell(claim["this_run"], "claim-run")
    return (f'<tr class="claim-row" data-claim-id="{claim_id}" data-verdict="{html.escape(verdict)}">'
            f'{badge}<td class="claim-statement">{statement}</td>{values}</tr>')


def _group_row(text: str, css: str, *, href: str | None = None, note: str = "") -> str:
    label = html.escape(text)
    if href:
        label = f'<a class="reference internal" href="{html.escape(href)}">{label}</a>'
    if note:
        label += f'<span class="claims-paper-note">{html.escape(note)}</span>'
    return f'<tr class="{css}"><th colspan="4" scope="rowgroup">{label}</th></tr>'


def render(rows: pd.DataFrame, *, titles: Mapping[str, str] | None = None, papers: Mapping[str, str] | None = None,
           link_suffix: str = ".html", evidence: bool = True) -> str:
    """The claims as one HTML table, grouped by paper and, when known, by chapter.

    Parameters
    ----------
    rows : DataFrame
        One row per claim with the columns :data:`REQUIRED`; optional ``chapter`` (the
        chapter stem: group rows with links), ``claim_id`` and ``evidence``.
    titles : mapping of str to str, optional, keyword-only
        Chapter stem to title (:func:`chapter_titles`) for the chapter rows.
    papers : mapping of str to str, optional, keyword-only
        Paper to a one-line introduction shown in its row (``paper_values.PAPER_NOTES``).
    link_suffix : str, keyword-only
        Appended to a chapter stem to make its link, relative to the page the table is on
        (the chapters sit beside the landing page in the built book).
    evidence : bool, keyword-only
        Show each claim's evidence in a folded ``<details>`` under its statement.

    Returns
    -------
    str
        ``<table class="claims-table">...</table>``; papers in order of first appearance,
        chapters in their order within a paper.
    """
    missing = [column for column in REQUIRED if column not in rows.columns]
    if missing:
        raise ValueError(f"a claims table needs the columns {list(REQUIRED)}; missing {missing}. Pass "
                         "claims.collect(run_dir) or claims.table([...]) rows.")
    titles, papers = titles or {}, papers or {}
    by_chapter = "chapter" in rows.columns
    body = []
    for paper in pd.unique(rows["paper"]):
        of_paper = rows[rows["paper"] == paper]
        body.append(_group_row(str(paper), "claims-paper", note=papers.get(str(paper), "")))
        chapters = pd.unique(of_paper["chapter"]) if by_chapter else [None]
        for chapter in chapters:
            of_chapter = of_paper if chapter is None else of_paper[of_paper["chapter"] == chapter]
            if chapter is not None:
                body.append(_group_row(chapter_label(str(chapter), titles), "claims-chapter",
                                       href=f"{chapter}{link_suffix}"))
            body += [_row(claim, evidence=evidence) for claim in of_chapter.to_dict("records")]
    head = ('<colgroup><col class="col-verdict"><col class="col-statement"><col class="col-paper">'
            '<col class="col-run"></colgroup><thead><tr><th scope="col">verdict</th><th scope="col">claim</th>'
            '<th scope="col">paper</th><th scope="col">this run</th></tr></thead>')
    return f'<table class="claims-table">{head}<tbody>{"".join(body)}</tbody></table>'


class ClaimsTable:
    """A claims table as a notebook shows it: HTML in the book, the rows as a DataFrame.

    Parameters
    ----------
    rows : DataFrame
        As for :func:`render`.
    titles, papers : mapping of str to str, optional
        As for :func:`render`.
    """

    def __init__(self, rows: pd.DataFrame, *, titles: Mapping[str, str] | None = None,
                 papers: Mapping[str, str] | None = None) -> None:
        self.rows = rows.reset_index(drop=True)
        self.titles = dict(titles or {})
        self.papers = dict(papers or {})

    def _repr_html_(self) -> str:
        return render(self.rows, titles=self.titles, papers=self.papers)

    def __repr__(self) -> str:  # the text/plain of the executed notebook
        return f"ClaimsTable({len(self.rows)} claims: " + ", ".join(
            f"{count} {verdict}" for verdict, count in self.rows["verdict"].value_counts().items()) + ")"

    def to_frame(self) -> pd.DataFrame:
        """The rows as given (a copy)."""
        return self.rows.copy()


def commit(repo: str | Path) -> str:
    """The repository's short commit, with ``+changes`` when the tree differs from it; ``"unknown"`` without git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True,
                              check=True, timeout=20).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, check=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}+changes" if dirty else head


def run_seconds(run_dir: str | Path) -> float:
    """Seconds the chapters of this run took: the sum of the runner's per-chapter stamps.

    Parameters
    ----------
    run_dir : str or Path
        ``cfg.run_dir()``; the runner writes ``.runner/<chapter>.json`` with ``seconds``
        as each chapter finishes (the landing page, run last, has none yet).
    """
    return float(sum(read_json(path).get("seconds", 0.0) for path in Path(run_dir, ".runner").glob("*.json")
                     if path.stem != "summary"))


def duration_text(seconds: float) -> str:
    """``"48 s"``, ``"12.5 min"`` or ``"1.6 h"``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def stamp(*, repo: str | Path, run_dir: str | Path, profile: str, now: datetime.datetime | None = None) -> str:
    """One line on what was run: ``commit 4364aa9 · profile smoke · 2026-12-06 05:40 UTC · chapters ran 3.2 min``.

    Parameters
    ----------
    repo, run_dir : str or Path, keyword-only
        The repository (for :func:`commit`) and ``cfg.run_dir()`` (for :func:`run_seconds`).
    profile : str, keyword-only
    now : datetime, optional, keyword-only
        The build time (default: now, in UTC).
    """
    now = now or datetime.datetime.now(datetime.UTC)
    return (f"commit {commit(repo)} · profile {profile} · {now:%Y-%m-%d %H:%M} UTC · "
            f"chapters ran {duration_text(run_seconds(run_dir))}")

