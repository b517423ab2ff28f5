"""Tests of chapter 02's pure helpers: the class-weight table and the headline numbers."""

from __future__ import annotations

import pandas as pd
import pytest

from forgetting_aus import facs
from forgetting_aus.chapters import ch02_emotion_model as ch02


def _baselines() -> pd.DataFrame:
    return pd.DataFrame({"task": ["emotion (8 classes)", "emotion (8 classes)", "pain (2 classes)",
                                  "pain (2 classes)"],
                         "baseline": ["pixels_8x8", "region_means"] * 2, "macro_recall": [0.30, 0.35, 0.6, 0.7]})


def test_class_weights_table_rounds_weights_beside_counts():
    counts = pd.Series(range(1, 9), index=facs.EMOTIONS, name="training images")
    table = ch02.class_weights_table(counts, {"class_weights": [1.23456] * 8})
    assert list(table.columns) == ["training images", "class weight"]
    assert list(table.index) == list(facs.EMOTIONS)
    assert table["class weight"].iloc[0] == 1.235


def test_headline_numbers_against_the_better_emotion_baseline():
    summary = {"macro_recall": 0.8, "accuracy": 0.81}
    numbers = ch02.headline_numbers(summary, _baselines())
    assert numbers["emotion_baseline_pixels"] == 0.30 and numbers["emotion_baseline_regions"] == 0.35
    assert numbers["emotion_margin"] == pytest.approx(0.45)  # against regions, the better one
    assert numbers["hard_enough_margin"] == ch02.HARD_ENOUGH_MARGIN
    assert numbers["emotion_world_verdict"].startswith("far above")
    assert ch02.headline_numbers({"macro_recall": 0.4, "accuracy": 0.4}, _baselines())[
        "emotion_world_verdict"].startswith("not far above")
