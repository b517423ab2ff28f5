"""The claims table: each claim of a paper as a predicate tested on this run's artifacts.

Every chapter records its claims with :func:`record`; the landing page (the summary
notebook, executed last) collects them with :func:`collect` and renders one table. A
claim carries the paper's value, this run's value and a verdict:

- ``holds``: the predicate is true and its uncertainty (spread over seeds, a confidence
  interval, a test) does not overlap the opposite;
- ``fails``: the predicate is false, likewise beyond the uncertainty;
- ``inconclusive``: the uncertainty straddles the decision.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from forgetting_aus.cache import read_json, write_json
from forgetting_aus.claims_view import ClaimsTable

VERDICTS = ("holds", "fails", "inconclusive")


@dataclasses.dataclass(frozen=True)
class Claim:
    """One testable statement of a paper, and what this run says about it."""

    claim_id: str  # short stable id, e.g. "P-T1-pain-recall-saturates"
    paper: str  # which paper: "Prajod 2022", "Weitz 2018", "Arabian 2022"
    section: str  # where the paper says it, e.g. "§5, Table 1"
    statement: str  # the claim, in the form the paper's text states it
    paper_value: str  # what the paper reports (text; numbers as the paper prints them)
    this_run: str  # what this run measured (text, formatted from computed numbers)
    verdict: str  # one of VERDICTS
    evidence: str = ""  # how the verdict was reached (test, interval, rule)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim {self.claim_id}: verdict must be one of {VERDICTS}, got {self.verdict!r}")


def verdict_from_interval(low: float, high: float, *, threshold: float = 0.0, greater: bool = True) -> str:
    """Verdict for "the quantity is greater (or less) than ``threshold``" given an interval.

    ``holds`` when the whole interval lies on the claimed side, ``fails`` when it lies
    wholly on the other side, ``inconclusive`` when it contains the threshold.
    """
    if low > high:
        raise ValueError(f"interval low {low} exceeds high {high}")
    above, below = low > threshold, high < threshold
    if greater:
        return "holds" if above else "fails" if below else "inconclusive"
    return "holds" if below else "fails" if above else "inconclusive"


def learnability_floors(validation_recall: Mapping[str, float], *, n_classes: int, margin: float) -> pd.DataFrame:
    """Each compared model's floor: chance plus ``margin`` on its validation macro recall.

    A model below its floor did not learn its task well enough for a comparison with
    another model to say anything about the paper's claim (:func:`floored`).

    Parameters
    ----------
    validation_recall : mapping model name -> float
        Macro recall (0-1) on the validation data, at the epoch the training selected.
    n_classes : int, keyword-only
        Classes of the task: chance macro recall is ``1 / n_classes``.
    margin : float, keyword-only
        Fixed before any run (chapter 02's ``HARD_ENOUGH_MARGIN``).

    Returns
    -------
    DataFrame, index model name
        ``recall``, ``floor``, ``met`` (bool).
    """
    if n_classes < 2:
        raise ValueError(f"learnability_floors: a task needs at least 2 classes, got {n_classes}")
    table = pd.DataFrame({"recall": pd.Series(validation_recall, dtype=float)})
    table["floor"] = 1.0 / n_classes + margin
    table["met"] = table["recall"] >= table["floor"]
    return table


def floored(claim: Claim, floors: pd.DataFrame | None, *, compared: Sequence[str]) -> Claim:
    """The claim, or, when a model it compares is below its floor, the claim made inconclusive with the reason.

    Parameters
    ----------
    claim : Claim
    floors : DataFrame or None
        As :func:`learnability_floors`; None: no floors, the claim unchanged.
    compared : sequence of str, keyword-only
        The models the claim's predicate compares.
    """
    if floors is None:
        return claim
    missed = [name for name in compared if name in floors.index and not floors.loc[name, "met"]]
    if not missed:
        return claim
    reason = ("not compared: " + ", ".join(f"{name} ({floors.loc[name, 'recall']:.2f})" for name in missed)
              + f" below the learnability floor of {floors.loc[missed[0], 'floor']:.2f} validation macro recall")
    return dataclasses.replace(claim, verdict="inconclusive", this_run=f"{claim.this_run}; {reason}")


def claims_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "claims"


def record(run_dir: str | Path, chapter: str, claims: list[Claim]) -> Path:
    """Write a chapter's claims to ``<run_dir>/claims/<chapter>.json`` (replacing old ones)."""
    ids = [c.claim_id for c in claims]
    if len(set(ids)) != len(ids):
        raise ValueError(f"chapter {chapter}: duplicate claim ids {ids}")
    path = claims_dir(run_dir) / f"{chapter}.json"
    write_json(path, {"chapter": chapter, "claims": [dataclasses.asdict(c) for c in claims]})
    return path


def table(claims: list[Claim], *, chapter: str | None = None) -> ClaimsTable:
    """A chapter's claims as its notebook shows them: the landing page's renderer, one chapter.

    Parameters
    ----------
    claims : list of Claim
    chapter : str, optional, keyword-only
        The chapter's stem; given, the table opens with the chapter's row (as on the landing page).

    Returns
    -------
    ClaimsTable
        Renders as HTML in the book (:func:`forgetting_aus.claims_view.render`); ``.to_frame()``
        gives the rows.
    """
    rows = pd.DataFrame([dataclasses.asdict(c) for c in claims],
                        columns=[f.name for f in dataclasses.fields(Claim)])
    if chapter is not None:
        rows.insert(0, "chapter", chapter)
    return ClaimsTable(rows)


def collect(run_dir: str | Path) -> pd.DataFrame:
    """All recorded claims, one row each, ordered by chapter."""
    rows = []
    for path in sorted(claims_dir(run_dir).glob("*.json")):
        data = read_json(path)
        for claim in data["claims"]:
            rows.append({"chapter": data["chapter"], **claim})
    columns = ["chapter"] + [f.name for f in dataclasses.fields(Claim)]
    return pd.DataFrame(rows, columns=columns)


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """``{"claims": n, "holds": n, "fails": n, "inconclusive": n}`` of a :func:`collect` table."""
    counts = table["verdict"].value_counts().reindex(list(VERDICTS), fill_value=0)
    return {"claims": len(table), **{verdict: int(counts[verdict]) for verdict in VERDICTS}}


def data_statement(*, data_source: str, smoke_weights: bool, imagenet_weights: bool) -> str:
    """One sentence, for the landing page, on what a run's numbers rest on.

    Parameters
    ----------
    data_source : {"twins", "real"}, keyword-only
    smoke_weights, imagenet_weights : bool, keyword-only
        The profile's knobs of those names.
    """
    if smoke_weights and imagenet_weights:
        return ("a smoke test of the paper's code path: random weights in the Keras layout stand in for ImageNet's "
                "and a handful of synthetic images per class are trained for one epoch, so no verdict below "
                "means anything about the paper")
    if data_source == "real":
        return ("the licensed AffectNet, UNBC-McMaster and CK+ releases for chapters 01-07; chapters 08-10 run "
                "on the synthetic world, which alone has their ground truth or datasets")
    return ("synthetic twins of AffectNet, UNBC-McMaster and CK+ rendered from a FACS face model, read exactly "
            "as the real releases are; a verdict tests the paper's method in this world, not the paper's data")
