"""Tests of chapter 04's recall drops, McNemar numbers and claims on hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgetting_aus import facs, paper_values, pipeline, stats
from forgetting_aus.chapters import ch04_measuring_forgetting as ch04


def _recalls(drop: dict[str, float], n_rep: int = 3) -> pd.DataFrame:
    """Recall 0.8 everywhere, minus ``drop[emotion]`` for FreezeB0 and B1, with a little noise per repetition."""
    rows = []
    for k in pipeline.FREEZE_LEVELS:
        for r in range(n_rep):
            for emotion in facs.EMOTIONS:
                lower = drop.get(emotion, 0.0) if k in (0, 1) else 0.0
                rows.append({"model": pipeline.model_name(k), "frozen_blocks": k, "repetition": r,
                             "emotion": emotion, "recall": 0.8 - lower + 0.01 * r * (k == 0)})
    return pd.DataFrame(rows)


def _mcnemar(p_holm: float) -> pd.DataFrame:
    rows = [{"model_b": f"FreezeB{k}", "class": e, "n": 50, "a_only": 5, "b_only": 1, "test": "exact",
             "p_value": p_holm / 2, "p_holm": p_holm, "recall_a": 0.8, "recall_b": 0.7}
            for k in (4, 3, 2, 1, 0) for e in facs.EMOTIONS]
    return pd.DataFrame(rows)


def test_recall_drop_is_paired_against_the_reference():
    drop = ch04.recall_drop(_recalls({"surprise": 0.2}), "surprise", 0)
    # B5 - B0 per repetition: 0.2, 0.19, 0.18.
    assert drop["mean"] == pytest.approx(0.19) and drop["n"] == 3
    assert drop["low"] < 0.19 < drop["high"]
    assert pipeline.REFERENCE_K == 5


def test_forgetting_claims_follow_drops_and_alpha():
    found = {c.claim_id: c for c in ch04.forgetting_claims(None, _recalls({"surprise": 0.2, "contempt": 0.3}),
                                                           _mcnemar(stats.ALPHA / 10))}
    assert found["F4-surprise-lower-in-B0-B1"].verdict == "holds"
    assert found["F4-surprise-falls-over-blocks"].verdict == "holds"  # B0 and B1 lower: a positive slope
    assert found["M-contempt-B5-vs-B0-holm"].verdict == "holds"
    assert found["F4-surprise-contempt-most-affected"].verdict == "holds"
    assert "at 0.05;" in found["M-surprise-B5-vs-B0-holm"].evidence
    found = {c.claim_id: c for c in ch04.forgetting_claims(None, _recalls({"happy": 0.2}), _mcnemar(stats.ALPHA))}
    assert found["M-surprise-B5-vs-B0-holm"].verdict == "fails"  # p must lie below alpha
    assert found["M-surprise-B5-vs-B0-uncorrected"].verdict == "holds"  # p / 2 does
    assert found["F4-surprise-contempt-most-affected"].verdict != "holds"


def test_the_papers_test_and_the_corrected_one_are_two_claims():
    table = _mcnemar(0.2)  # Holm: not significant; the uncorrected test at p = 0.1 neither
    b0_surprise = (table["model_b"] == "FreezeB0") & (table["class"] == "surprise")
    table.loc[b0_surprise, "p_value"] = 0.0068
    found = {c.claim_id: c for c in ch04.forgetting_claims(None, _recalls({"surprise": 0.2}), table)}
    assert found["M-surprise-B5-vs-B0-uncorrected"].verdict == "holds"
    assert found["M-surprise-B5-vs-B0-holm"].verdict == "fails"
    assert found["M-contempt-B5-vs-B0-uncorrected"].verdict == "fails"
    table.loc[b0_surprise, "recall_b"] = 0.9  # significant, but FreezeB0 higher: not the paper's claim
    found = {c.claim_id: c for c in ch04.forgetting_claims(None, _recalls({"surprise": 0.2}), table)}
    assert found["M-surprise-B5-vs-B0-uncorrected"].verdict == "fails"


def _drops(means: dict[str, float], half: float = 0.05) -> dict[str, dict]:
    return {e: {"mean": means.get(e, 0.0), "low": means.get(e, 0.0) - half, "high": means.get(e, 0.0) + half}
            for e in facs.EMOTIONS}


def test_mainly_affected_holds_only_beyond_the_spread_and_fails_in_the_lower_half():
    assert ch04.mainly_affected_verdict(_drops({"surprise": 0.4, "contempt": 0.3})) == "holds"
    # the two largest, but a third within the spread of contempt's: inconclusive
    assert ch04.mainly_affected_verdict(_drops({"surprise": 0.4, "contempt": 0.3, "fear": 0.25})) == "inconclusive"
    # broad forgetting, surprise 4th of 8: not in the lower half, not beyond the spread
    broad = {"disgust": 0.36, "fear": 0.33, "sad": 0.28, "surprise": 0.30, "contempt": 0.4}
    assert ch04.mainly_affected_verdict(_drops(broad)) == "inconclusive"
    # the pattern the issue found: disgust, fear and sad drop more than surprise (5th of 8)
    broad["surprise"] = 0.16
    assert ch04.mainly_affected_verdict(_drops(broad)) == "fails"


def test_forgetting_breadth_counts_drops_beyond_the_spread():
    narrow = ch04.forgetting_breadth(_drops({"surprise": 0.4, "contempt": 0.3, "fear": 0.04}))
    assert narrow == {"emotions": ["surprise", "contempt"], "count": 2, "pattern": "narrow"}
    broad = ch04.forgetting_breadth(_drops({"disgust": 0.36, "fear": 0.33, "sad": 0.28, "surprise": 0.16}))
    assert broad["pattern"] == "broad" and broad["emotions"] == ["disgust", "fear", "sad", "surprise"]
    assert ch04.forgetting_breadth(_drops({"a": 0.1} | {"disgust": 0.2, "fear": 0.2, "sad": 0.2}))["pattern"] == "moderate"


def test_recall_trend_is_the_least_squares_slope_per_block():
    rows = [{"frozen_blocks": k, "repetition": r, "emotion": "surprise", "recall": 0.5 + 0.05 * k + 0.01 * r * k}
            for k in pipeline.FREEZE_LEVELS for r in range(3)]
    trend = ch04.recall_trend(pd.DataFrame(rows), "surprise")
    # slopes 0.05, 0.06, 0.07 per block, by hand
    assert trend["mean"] == pytest.approx(0.06) and trend["n"] == 3
    half = 2.0 * 0.01 * np.sqrt(1 / 3) * 4.302652729911275 / 2  # t(0.975, 2) x SD 0.01 / sqrt(3)
    assert trend["high"] - trend["mean"] == pytest.approx(half)


def test_mcnemar_numbers_and_display():
    table = _mcnemar(0.01)
    table.loc[(table["model_b"] == "FreezeB0") & (table["class"] == "contempt"), "p_value"] = 1e-6
    numbers = ch04.mcnemar_numbers(table)
    assert numbers["p_contempt"] == "p = 1e-06" and numbers["p_holm_surprise"] == "p = 0.01"
    assert numbers["paper_p_surprise"] == f"p = {paper_values.MCNEMAR_P['surprise']:.3g}"
    shown = ch04.mcnemar_display(table)
    assert list(shown.index.names) == ["vs. FreezeB5", "class"] and "recall Bk" in shown.columns
    assert len(shown) == len(table) and np.isclose(shown["p_value"].iloc[0], 0.005)
    paper_comparison = ch04.mcnemar_display(table, model="FreezeB0")
    assert set(paper_comparison.index.get_level_values("vs. FreezeB5")) == {"FreezeB0"}
    assert paper_comparison.loc[("FreezeB0", "contempt"), "p_value"] == 1e-6
    with pytest.raises(ValueError, match="no tests against 'FreezeB9'"):
        ch04.mcnemar_display(table, model="FreezeB9")


def test_breadth_numbers_name_the_emotions_for_the_prose():
    numbers = ch04.breadth_numbers(_recalls({"surprise": 0.2, "contempt": 0.3}))
    assert numbers == {"forgetting_pattern": "narrow", "n_forgotten": 2, "forgotten_list": "contempt, surprise"}
    assert ch04.breadth_numbers(_recalls({}))["forgotten_list"] == "none"


def test_forgetting_claims_leave_models_below_their_floor_uncompared():
    from forgetting_aus import claims as claims_module

    recall = {f"FreezeB{k}": 0.6 for k in range(6)} | {"FreezeB1": 0.2}  # floor 1/8 + 0.2 = 0.325
    floors = claims_module.learnability_floors(recall, n_classes=8, margin=0.2)
    found = {c.claim_id: c for c in ch04.forgetting_claims(None, _recalls({"surprise": 0.2, "contempt": 0.3}),
                                                           _mcnemar(stats.ALPHA / 10), floors=floors)}
    assert found["F4-surprise-lower-in-B0-B1"].verdict == "inconclusive"  # compares FreezeB1
    assert "not compared: FreezeB1 (0.20)" in found["F4-surprise-lower-in-B0-B1"].this_run
    assert found["F4-surprise-falls-over-blocks"].verdict == "inconclusive"  # the trend uses every model
    assert found["M-contempt-B5-vs-B0-holm"].verdict == "holds"  # FreezeB5 and FreezeB0 both learned
    assert found["F4-surprise-contempt-most-affected"].verdict == "holds"
