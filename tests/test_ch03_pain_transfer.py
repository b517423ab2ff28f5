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
