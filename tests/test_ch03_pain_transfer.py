"""Tests of chapter 03's paper-vs-run arithmetic and headline numbers."""

from __future__ import annotations

import pandas as pd
import pytest

from forgetting_aus import paper_values
from forgetting_aus.chapters import ch03_pain_transfer as ch03


def _estimate(shift: float = 0.0) -> pd.DataFrame:
    return paper_values.table1() + shift


def test_difference_to_paper_is_run_minus_paper_rounded():
    difference = ch03.difference_to_paper(_estimate(0.1234))
    assert (difference.to_numpy() == 0.12).all()
    # Rows are matched by name, not position.
    reordered = _estimate().iloc[::-1]
    assert (ch03.difference_to_paper(reordered).to_numpy() == 0).all()


def test_headline_numbers_by_hand():
    estimate = _estimate()
    baselines = pd.DataFrame({"task": ["pain (2 classes)"] * 2, "baseline": ["pixels_8x8", "region_means"],
                              "macro_recall": [0.55, 0.6]})
    numbers = ch03.headline_numbers(estimate, baselines)
    assert numbers["best_f1_model"] == "FreezeB3" and numbers["best_f1"] == pytest.approx(0.86)
    assert numbers["b0_pain_recall"] == pytest.approx(0.71) and numbers["b5_pain_recall"] == pytest.approx(0.54)
    assert numbers["pain_best_macro_recall"] == pytest.approx(0.84)  # FreezeB2
    assert numbers["pain_baseline_best"] == pytest.approx(0.6)
    assert numbers["pain_margin"] == pytest.approx(0.24)
    assert "synthetic pain task" in numbers["pain_world_verdict"]
    # The paper's values come from its Table 1 (the prose used to type them in).
    assert (numbers["paper_best_f1_model"], numbers["paper_best_f1"]) == ("FreezeB3", 0.86)
    assert (numbers["paper_b5_pain_recall"], numbers["paper_b0_pain_recall"]) == (0.54, 0.71)


def _with_ci(estimate: pd.DataFrame, half: float = 0.02) -> pd.DataFrame:
    """Table 1 with intervals, shaped as evaluation.table1_with_ci: rows (model, stat)."""
    parts = {"estimate": estimate, "low": estimate - half, "high": estimate + half}
    table = pd.concat(parts, names=["stat", "model"]).swaplevel().sort_index()
    return table


def test_table1_claims_on_the_papers_own_table():
    """The paper's Table 1, given narrow intervals, satisfies the paper's readings of it."""
    claims = {c.claim_id: c for c in ch03.table1_claims(None, {"with_ci": _with_ci(_estimate())})}
    assert claims["T1-pain-precision-at-least-recall"].verdict == "holds"  # 0.72-0.90 against 0.54-0.71
    assert claims["T1-more-blocks-more-pain-recall"].verdict == "holds"
    assert claims["T1-best-F1-FreezeB3"].verdict == "holds"
    assert "precision B5 0.87" in claims["T1-pain-precision-at-least-recall"].paper_value


def test_precision_verdict_fails_only_beyond_the_intervals():
    precision, recall = {0: 0.4, 5: 0.9}, {0: 0.7, 5: 0.5}
    assert ch03.precision_verdict(precision, {0: 0.6, 5: 0.95}, recall, {0: 0.65, 5: 0.45}) == "fails"
    assert ch03.precision_verdict(precision, {0: 0.7, 5: 0.95}, recall, {0: 0.65, 5: 0.45}) == "inconclusive"
    assert ch03.precision_verdict({0: 0.7, 5: 0.9}, {0: 0.8, 5: 0.95}, recall, {0: 0.65, 5: 0.45}) == "holds"


def test_a_claim_comparing_a_pain_model_below_its_floor_is_inconclusive():
    from forgetting_aus import claims as claims_module

    # FreezeB4 never learned pain (validation macro recall 0.55 < 0.5 + 0.2); the others did.
    recall = {f"FreezeB{k}": 0.9 for k in range(6)} | {"FreezeB4": 0.55}
    floors = claims_module.learnability_floors(recall, n_classes=2, margin=0.2)
    assert floors.loc["FreezeB4", "floor"] == pytest.approx(0.7) and not floors.loc["FreezeB4", "met"]
    found = {c.claim_id: c for c in ch03.table1_claims(None, {"with_ci": _with_ci(_estimate())}, floors=floors)}
    assert found["T1-more-blocks-more-pain-recall"].verdict == "inconclusive"
    assert found["T1-more-blocks-more-pain-recall"].this_run.endswith(
        "not compared: FreezeB4 (0.55) below the learnability floor of 0.70 validation macro recall")
    # the saturation claim compares only FreezeB0-2, which all learned
    unfloored = {c.claim_id: c for c in ch03.table1_claims(None, {"with_ci": _with_ci(_estimate())})}
    assert found["T1-pain-recall-saturates"] == unfloored["T1-pain-recall-saturates"]
