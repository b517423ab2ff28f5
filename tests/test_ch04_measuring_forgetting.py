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
    assert found["M-contempt-B5-vs-B0"].verdict == "holds"
    assert found["F4-surprise-contempt-most-affected"].verdict == "holds"
    assert "at 0.05;" in found["M-surprise-B5-vs-B0"].evidence
    found = {c.claim_id: c for c in ch04.forgetting_claims(None, _recalls({"happy": 0.2}), _mcnemar(stats.ALPHA))}
    assert found["M-surprise-B5-vs-B0"].verdict == "fails"  # p must lie below alpha
    assert found["F4-surprise-contempt-most-affected"].verdict != "holds"


def test_mcnemar_numbers_and_display():
    table = _mcnemar(0.01)
    table.loc[(table["model_b"] == "FreezeB0") & (table["class"] == "contempt"), "p_value"] = 1e-6
    numbers = ch04.mcnemar_numbers(table)
    assert numbers["p_contempt"] == 1e-6 and numbers["p_holm_surprise"] == 0.01
    assert numbers["paper_p_surprise"] == paper_values.MCNEMAR_P["surprise"]
    shown = ch04.mcnemar_display(table)
    assert list(shown.columns[:2]) == ["vs. FreezeB5", "class"] and "recall Bk" in shown.columns
    assert np.isclose(shown["p_value"].iloc[0], 0.005)
