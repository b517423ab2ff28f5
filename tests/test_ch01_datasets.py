"""Tests of chapter 01's pure helpers: the visibility bar, imbalance, baselines, AU grid labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgetting_aus import facs
from forgetting_aus.chapters import ch01_datasets as ch01


def test_visibility_numbers_apply_the_stated_bar():
    table = pd.DataFrame({"f1": [0.95, 0.8, 0.79, 0.5]}, index=["AU1", "AU2", "AU4", "AU5"])
    numbers = ch01.visibility_numbers(table)
    assert ch01.VISIBILITY_F1_BAR == 0.8
    assert numbers["visibility_bar"] == 0.8
    assert numbers["n_visible"] == 2  # F1 exactly at the bar passes
    assert numbers["least_visible"] == "AU5" and numbers["min_visibility"] == pytest.approx(0.5)
    assert ch01.visibility_numbers(table, bar=0.5)["n_visible"] == 4
    assert isinstance(numbers["n_visible"], int)


def test_imbalance_ratios_are_largest_over_smallest_class():
    distribution = pd.DataFrame({"twin images": [100, 10, 40], "AffectNet images": [134415, 3750, 6378]})
    ratios = ch01.imbalance_ratios(distribution)
    assert ratios["twin_imbalance"] == pytest.approx(10.0)
    assert ratios["real_imbalance"] == pytest.approx(134415 / 3750)


def test_baseline_numbers_are_named_by_task_and_baseline():
    baselines = pd.DataFrame({"task": ["emotion (8 classes)", "emotion (8 classes)", "pain (2 classes)"],
                              "baseline": ["pixels_8x8", "region_means", "pixels_8x8"],
                              "macro_recall": [0.3, 0.25, 0.6]})
    assert ch01.baseline_numbers(baselines) == {"baseline_emotion_pixels_8x8": 0.3,
                                                "baseline_emotion_region_means": 0.25,
                                                "baseline_pain_pixels_8x8": 0.6}


def test_au_grid_labels_match_the_grid():
    labels = ch01.au_row_labels()
    assert len(labels) == len(facs.AU_CODES)
    assert labels[0] == f"AU{facs.AU_CODES[0]} {facs.AU_DESCRIPTIONS[facs.AU_CODES[0]]}"
    assert len(ch01.AU_GRID_LABELS) == len(ch01.AU_GRID_INTENSITIES)
    grid = ch01.au_intensity_examples(intensities=(0, 5), seed=0, size=32)
    assert grid.shape == (len(facs.AU_CODES), 2, 32, 32, 3)


def test_co_occurrence_share_by_hand_with_statsmodels_interval():
    from statsmodels.stats.proportion import proportion_confint

    from forgetting_aus import facs

    presence = pd.DataFrame(0, index=range(10), columns=list(facs.AU_NAMES))
    presence.loc[:7, "AU5"] = 1  # 8 frames with AU5, 6 of them with AU26
    presence.loc[:5, "AU26"] = 1
    presence.loc[9, "AU26"] = 1  # AU26 alone does not count
    share = ch01.co_occurrence_share(presence)
    assert (share["n_given"], share["n_both"], share["share"]) == (8, 6, 0.75)
    assert (share["low"], share["high"]) == pytest.approx(proportion_confint(6, 8, alpha=0.05, method="beta"))
    assert np.isnan(ch01.co_occurrence_share(presence.assign(AU5=0))["share"])


def test_share_words_do_not_overstate():
    assert [ch01.share_word(p) for p in (0.95, 0.9, 0.6, 0.5, 0.45, 0.1, 0.05)] == [
        "nearly always", "nearly always", "mostly", "sometimes", "sometimes", "sometimes", "rarely"]
    with pytest.raises(ValueError, match="a share must lie in"):
        ch01.share_word(1.5)


def test_au5_with_au26_claim_follows_the_interval():
    def verdict(n_both, n_given=100):
        low, high = n_both / n_given - 0.1, n_both / n_given + 0.1
        share = {"n_given": n_given, "n_both": n_both, "share": n_both / n_given, "low": low, "high": high}
        return ch01.dataset_claims(share)[0].verdict

    assert verdict(80) == "holds" and verdict(45) == "inconclusive" and verdict(20) == "fails"
    assert ch01.dataset_claims({"n_given": 0, "n_both": 0, "share": np.nan, "low": np.nan,
                                "high": np.nan})[0].verdict == "inconclusive"


def test_stand_in_styles_are_read_from_the_world():
    from forgetting_aus import synth
    from forgetting_aus.synth.identity import NUISANCE_RANGES

    styles = ch01.stand_in_styles()
    assert list(styles.index) == ["OULU-CASIA", "FACES", "JAFFE"]
    assert styles.loc["JAFFE", "posed intensity"] == synth.POSED_INTENSITY["jaffe"] < 1
    assert styles["grey scale"].tolist() == [False, False, True]
    assert styles.loc["FACES", "head rotation SD (deg)"] == NUISANCE_RANGES["faces"].rotation_sd_deg
