"""Tests of forgetting_aus.evaluation: Table 1, cluster bootstrap, confusion, McNemar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn.metrics import accuracy_score, classification_report
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from forgetting_aus.evaluation import (
    bootstrap_ci,
    classification_table,
    confusion,
    format_with_ci,
    mcnemar_family,
    mcnemar_per_class,
    per_class_recall,
    table1,
    table1_with_ci,
)
from forgetting_aus.facs import EMOTIONS

PAIN = ("No pain", "Pain")


# ------------------------------------------------------------------ Table 1
def test_classification_table_by_hand_and_layout():
    y_true = [0, 0, 0, 0, 1, 1]
    y_pred = [0, 0, 0, 1, 1, 0]
    row = classification_table(y_true, y_pred, class_names=PAIN, name="FreezeB5")
    assert list(row.index) == ["FreezeB5"]
    assert row.columns.nlevels == 2
    assert list(row.columns.get_level_values(0).unique()) == [
        "Precision", "Recall", "F1-score", "Accuracy"]
    assert list(row["Recall"].columns) == ["No pain", "Pain", "Avg."]
    r = row.loc["FreezeB5"]
    assert r[("Precision", "No pain")] == pytest.approx(3 / 4)
    assert r[("Recall", "Pain")] == pytest.approx(1 / 2)
    assert r[("F1-score", "Avg.")] == pytest.approx((3 / 4 + 1 / 2) / 2)
    assert r[("Accuracy", "")] == pytest.approx(4 / 6)


def test_table1_matches_sklearn_classification_report():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 200)
    preds = {"FreezeB5": np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 3, 200)),
             "FreezeB0": np.where(rng.random(200) < 0.5, y_true, rng.integers(0, 3, 200))}
    names = ("a", "b", "c")
    table = table1(preds, y_true, class_names=names)
    assert list(table.index) == ["FreezeB5", "FreezeB0"]
    for model, y_pred in preds.items():
        rep = classification_report(y_true, y_pred, labels=[0, 1, 2], target_names=names,
                                    output_dict=True, zero_division=0)
        for metric, key in [("Precision", "precision"), ("Recall", "recall"),
                            ("F1-score", "f1-score")]:
            for name in names:
                assert table.loc[model, (metric, name)] == pytest.approx(rep[name][key])
            assert table.loc[model, (metric, "Avg.")] == pytest.approx(rep["macro avg"][key])
        assert table.loc[model, ("Accuracy", "")] == pytest.approx(rep["accuracy"])


def test_labels_may_be_class_names_and_bad_labels_are_explained():
    by_name = classification_table(["Pain", "No pain"], ["Pain", "Pain"], class_names=PAIN)
    by_index = classification_table([1, 0], [1, 1], class_names=PAIN)
    pd.testing.assert_frame_equal(by_name, by_index)
    with pytest.raises(ValueError, match="not in class_names"):
        classification_table(["pain"], ["Pain"], class_names=PAIN)
    with pytest.raises(ValueError, match=r"0\.\.1"):
        classification_table([0, 2], [0, 1], class_names=PAIN)
    with pytest.raises(ValueError, match="same test images"):
        classification_table([0, 1], [0], class_names=PAIN)


# ------------------------------------------------------------------ cluster bootstrap
def _grouped_example(one_group_has_all_errors: bool):
    groups = np.repeat(np.arange(10), 20)
    y_true = np.tile(np.array([0] * 10 + [1] * 10), 10)
    y_pred = y_true.copy()
    if one_group_has_all_errors:
        y_pred[:20] = 1 - y_pred[:20]  # subject 0 all wrong: 10% errors, all in one group
    else:
        y_pred[np.arange(10) * 20] = 1  # the same 1 error out of 20 in every subject
        y_pred[np.arange(10) * 20 + 1] = 1  # -> 10% errors, identical groups
    return y_true, y_pred, groups


def test_bootstrap_identical_groups_give_zero_width_ci():
    y_true, y_pred, groups = _grouped_example(False)
    est, low, high = bootstrap_ci(y_true, y_pred, groups=groups, metric=accuracy_score,
                                  n_boot=200, seed=0)
    assert est == pytest.approx(0.9)
    assert low == pytest.approx(0.9) and high == pytest.approx(0.9)


def test_bootstrap_one_group_with_all_errors_gives_wide_ci():
    y_true, y_pred, groups = _grouped_example(True)
    est, low, high = bootstrap_ci(y_true, y_pred, groups=groups, metric=accuracy_score,
                                  n_boot=500, seed=0)
    assert est == pytest.approx(0.9)
    # accuracy = 1 - (draws of subject 0)/10; P(0 draws) = 0.9^10 = 0.35 -> high = 1
    assert high == pytest.approx(1.0)
    assert low <= 0.8
    # an i.i.d. frame bootstrap would be far narrower (sd ~ sqrt(.09/200) = 0.02)


def test_bootstrap_resamples_whole_groups_and_is_deterministic():
    groups = np.repeat([3, 7, 11, 20], [2, 3, 4, 5])
    sizes = {3: 2, 7: 3, 11: 4, 20: 5}

    def whole_groups_only(g_true, _):
        ids, counts = np.unique(g_true, return_counts=True)
        assert all(c % sizes[i] == 0 for i, c in zip(ids, counts, strict=True))
        assert counts.sum() == sum(sizes[i] * (c // sizes[i]) for i, c in zip(ids, counts,
                                                                              strict=True))
        return float(np.mean(g_true))

    first = bootstrap_ci(groups, groups, groups=groups, metric=whole_groups_only,
                         n_boot=100, seed=3)
    again = bootstrap_ci(groups, groups, groups=groups, metric=whole_groups_only,
                         n_boot=100, seed=3)
    other = bootstrap_ci(groups, groups, groups=groups, metric=whole_groups_only,
                         n_boot=100, seed=4)
    assert first == again
    assert first != other


def test_bootstrap_needs_one_group_id_per_image():
    with pytest.raises(ValueError, match="one subject"):
        bootstrap_ci([0, 1], [0, 1], groups=[0], metric=accuracy_score, seed=0)
    with pytest.raises(ValueError, match="at least 2 groups"):
        bootstrap_ci([0, 1], [0, 1], groups=[0, 0], metric=accuracy_score, seed=0)


def test_table1_with_ci_agrees_with_table1_and_bootstrap_ci():
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(12), 15)
    y_true = rng.integers(0, 2, groups.size)
    preds = {"FreezeB5": np.where(rng.random(groups.size) < 0.8, y_true, 1 - y_true),
             "FreezeB0": np.where(rng.random(groups.size) < 0.6, y_true, 1 - y_true)}
    ci = table1_with_ci(preds, y_true, class_names=PAIN, groups=groups, n_boot=300, seed=9)
    point = table1(preds, y_true, class_names=PAIN)
    for model in preds:
        np.testing.assert_allclose(ci.loc[(model, "estimate")].to_numpy(dtype=float),
                                   point.loc[model].to_numpy(dtype=float))
        assert np.all(ci.loc[(model, "low")] <= ci.loc[(model, "estimate")] + 1e-12)
        assert np.all(ci.loc[(model, "estimate")] <= ci.loc[(model, "high")] + 1e-12)
        # same seed -> same resampled groups as the generic bootstrap
        _, low, high = bootstrap_ci(y_true, preds[model], groups=groups,
                                    metric=accuracy_score, n_boot=300, seed=9)
        assert ci.loc[(model, "low"), ("Accuracy", "")] == pytest.approx(low)
        assert ci.loc[(model, "high"), ("Accuracy", "")] == pytest.approx(high)
    text = format_with_ci(ci)
    assert list(text.index) == ["FreezeB5", "FreezeB0"]
    assert text.iloc[0, -1].count("[") == 1


# ------------------------------------------------------------------ recall, confusion
def test_per_class_recall_and_confusion():
    y_true = [0, 0, 1, 1, 1, 2]
    y_pred = [0, 1, 1, 1, 0, 2]
    names = ("neutral", "happy", "sad", "surprise")
    recall = per_class_recall(y_true, y_pred, class_names=names)
    np.testing.assert_allclose(recall[["neutral", "happy", "sad"]], [1 / 2, 2 / 3, 1])
    assert np.isnan(recall["surprise"])  # no test image of that class
    counts = confusion(y_true, y_pred, class_names=names)
    assert counts.loc["happy", "neutral"] == 1 and counts.loc["happy", "happy"] == 2
    assert counts.to_numpy().sum() == 6
    rates = confusion(y_true, y_pred, class_names=names, normalize="true")
    np.testing.assert_allclose(rates.loc["happy"].to_numpy(), [1 / 3, 2 / 3, 0, 0])
    np.testing.assert_allclose(np.diag(rates.to_numpy())[:3], recall.to_numpy()[:3])
    with pytest.raises(ValueError, match="normalize"):
        confusion(y_true, y_pred, class_names=names, normalize="all")


# ------------------------------------------------------------------ McNemar
def _paired_predictions(tables: dict[int, tuple[int, int, int, int]], n_classes: int):
    """Labels and predictions whose per-class 2x2 tables are exactly ``tables``.

    ``tables[k] = (both correct, a only, b only, both wrong)``; a wrong prediction is the
    next class.
    """
    y, a, b = [], [], []
    for k, (n11, n10, n01, n00) in tables.items():
        wrong = (k + 1) % n_classes
        for ca, cb, n in [(1, 1, n11), (1, 0, n10), (0, 1, n01), (0, 0, n00)]:
            y += [k] * n
            a += [k if ca else wrong] * n
            b += [k if cb else wrong] * n
    return np.array(y), np.array(a), np.array(b)


def test_mcnemar_per_class_tables_tests_and_recalls():
    tables = {0: (40, 3, 8, 5),    # 11 discordant -> exact
              1: (30, 30, 6, 4),   # 36 discordant -> chi2
              2: (20, 12, 12, 1)}  # 24 discordant -> exact, just below the switch
    y, a, b = _paired_predictions(tables, 3)
    res = mcnemar_per_class(y, a, b, class_names=("x", "y", "z"))
    for k, name in enumerate(("x", "y", "z")):
        n11, n10, n01, n00 = tables[k]
        row = res.loc[name]
        assert (row.both_correct, row.a_only, row.b_only, row.both_wrong) == tables[k]
        assert row.recall_a == pytest.approx((n11 + n10) / sum(tables[k]))
        assert row.recall_b == pytest.approx((n11 + n01) / sum(tables[k]))
        exact = n10 + n01 < 25
        ref = mcnemar(np.array([[n11, n10], [n01, n00]]), exact=exact, correction=True)
        assert row.p_value == pytest.approx(ref.pvalue, rel=1e-12)
        assert row.test == ("exact binomial" if exact else "chi2 (continuity corrected)")
    hand = sps.chi2.sf((abs(30 - 6) - 1) ** 2 / 36, 1)
    assert res.loc["y", "p_value"] == pytest.approx(hand, rel=1e-12)
    hand_exact = min(1.0, 2 * sps.binom.cdf(3, 11, 0.5))
    assert res.loc["x", "p_value"] == pytest.approx(hand_exact, rel=1e-12)


def test_mcnemar_per_class_only_counts_that_class():
    # Errors on class 1 images must not enter class 0's table.
    y = np.array([0, 0, 0, 1, 1, 1])
    a = np.array([0, 0, 0, 0, 0, 0])
    b = np.array([0, 0, 0, 1, 1, 1])
    res = mcnemar_per_class(y, a, b, class_names=PAIN)
    assert res.loc["No pain", "discordant"] == 0 and res.loc["No pain", "p_value"] == 1.0
    assert res.loc["Pain", "b_only"] == 3 and res.loc["Pain", "n"] == 3


def test_mcnemar_family_holm_over_all_classes_and_comparisons():
    rng = np.random.default_rng(11)
    y = rng.integers(0, 8, 800)
    preds = {"FreezeB5": np.where(rng.random(800) < 0.7, y, (y + 1) % 8),
             "FreezeB1": np.where(rng.random(800) < 0.65, y, (y + 1) % 8),
             "FreezeB0": np.where(rng.random(800) < 0.5, y, (y + 2) % 8)}
    fam = mcnemar_family(y, preds, reference="FreezeB5", class_names=EMOTIONS)
    assert len(fam) == 2 * 8
    assert set(fam["model_a"]) == {"FreezeB5"}
    assert list(fam["model_b"].unique()) == ["FreezeB1", "FreezeB0"]
    np.testing.assert_allclose(fam["p_holm"], multipletests(fam["p_value"], method="holm")[1])
    # Holm by hand for the smallest p: m * p_min
    assert fam["p_holm"].min() == pytest.approx(min(1.0, 16 * fam["p_value"].min()))
    single = mcnemar_per_class(y, preds["FreezeB5"], preds["FreezeB0"], class_names=EMOTIONS)
    np.testing.assert_allclose(fam[fam.model_b == "FreezeB0"]["p_value"], single["p_value"])
    with pytest.raises(ValueError, match="reference 'FreezeB9'"):
        mcnemar_family(y, preds, reference="FreezeB9", class_names=EMOTIONS)
