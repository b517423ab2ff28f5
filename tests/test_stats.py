"""Tests of forgetting_aus.stats: every test against a hand computation or a reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from forgetting_aus import stats
from forgetting_aus.stats import (
    NAIVE_TEST_CAVEAT,
    corrected_repeated_cv_t_test,
    dietterich_5x2cv_t_test,
    holm,
    mcnemar_test,
    mean_difference_ci,
    paired_t_test_over_repeats,
)


# ------------------------------------------------------------------ paired t (paper)
def test_paired_t_matches_scipy_ttest_rel():
    rng = np.random.default_rng(0)
    a = rng.normal(0.74, 0.02, size=50)
    b = a - 0.01 + rng.normal(0, 0.01, size=50)
    res = paired_t_test_over_repeats(a, b)
    ref = sps.ttest_rel(a, b)
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert res.df == 49
    assert res.mean_difference == pytest.approx(np.mean(a - b))
    ci = ref.confidence_interval(0.95)
    assert (res.ci_low, res.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-10)


def test_paired_t_sign_follows_a_minus_b():
    a = np.array([0.70, 0.72, 0.71, 0.73])
    b = a + np.array([0.02, 0.01, 0.03, 0.02])  # b better: negative t, as the paper's -13.13
    assert paired_t_test_over_repeats(a, b).statistic < 0


def test_paired_t_identical_scores_gives_no_difference_not_nan():
    a = np.full(10, 0.8)
    res = paired_t_test_over_repeats(a, a)
    assert (res.statistic, res.p_value, res.ci_low, res.ci_high) == (0.0, 1.0, 0.0, 0.0)
    const = paired_t_test_over_repeats(a + 0.1, a)
    assert const.statistic == math.inf and const.p_value == 0.0


def test_paired_t_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="equal length"):
        paired_t_test_over_repeats([0.1, 0.2, 0.3], [0.1, 0.2])


# ------------------------------------------------------------------ corrected t
def test_corrected_t_by_hand_on_2x3():
    diffs = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]) / 100  # r = 2 repeats, k = 3 folds
    res = corrected_repeated_cv_t_test(diffs, n_train=20, n_test=10)
    # mean 3.5/100; var (ddof 1) of 1..6 is 3.5 -> 3.5e-4; factor 1/6 + 10/20 = 2/3
    t_hand = 0.035 / math.sqrt((1 / 6 + 10 / 20) * 3.5e-4)
    assert t_hand == pytest.approx(3.5 / math.sqrt(3.5 * 2 / 3))
    assert res.statistic == pytest.approx(t_hand, rel=1e-12)
    assert res.df == 5
    assert res.p_value == pytest.approx(2 * sps.t.sf(t_hand, 5), rel=1e-12)
    half = sps.t.ppf(0.975, 5) * math.sqrt((2 / 3) * 3.5e-4)
    assert (res.ci_low, res.ci_high) == pytest.approx((0.035 - half, 0.035 + half))


def test_corrected_t_is_more_conservative_than_uncorrected():
    rng = np.random.default_rng(1)
    diffs = 0.01 + rng.normal(0, 0.02, size=(20, 2))
    corrected = corrected_repeated_cv_t_test(diffs, n_train=100, n_test=100)
    naive = sps.ttest_1samp(diffs.ravel(), 0.0)
    assert abs(corrected.statistic) < abs(naive.statistic)
    assert corrected.p_value > naive.pvalue


def test_corrected_t_validates_shapes_and_sizes():
    with pytest.raises(ValueError, match=r"\(n_repeats, n_folds\)"):
        corrected_repeated_cv_t_test(np.zeros(6), n_train=10, n_test=10)
    with pytest.raises(ValueError, match="positive"):
        corrected_repeated_cv_t_test(np.zeros((2, 2)), n_train=0, n_test=10)


# ------------------------------------------------------------------ 5x2cv
def test_dietterich_5x2cv_by_hand():
    diffs = np.array([[0.1, 0.3], [0.2, 0.2], [0.0, 0.2], [0.1, 0.1], [0.3, 0.1]])
    # s_i^2 = 0.02, 0, 0.02, 0, 0.02 -> mean 0.012; numerator d_11 = 0.1
    t_hand = 0.1 / math.sqrt(0.012)
    res = dietterich_5x2cv_t_test(diffs)
    assert res.statistic == pytest.approx(t_hand, rel=1e-12)
    assert res.statistic == pytest.approx(0.912870929, rel=1e-8)
    assert res.df == 5
    assert res.p_value == pytest.approx(2 * sps.t.sf(t_hand, 5), rel=1e-12)
    assert res.estimate == pytest.approx(0.1)
    assert res.mean_difference == pytest.approx(diffs.mean())


def test_dietterich_5x2cv_needs_5x2():
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        dietterich_5x2cv_t_test(np.zeros((6, 2)))


# ------------------------------------------------------------------ mean difference CI
def test_mean_difference_ci_corrected_is_wider_than_naive():
    rng = np.random.default_rng(2)
    diffs = 0.01 + rng.normal(0, 0.02, size=(30, 2))
    naive = mean_difference_ci(diffs)
    corrected = mean_difference_ci(diffs, n_train=50, n_test=50)
    assert naive.estimate == pytest.approx(diffs.mean())
    assert corrected.estimate == pytest.approx(diffs.mean())
    assert corrected.ci_high - corrected.ci_low > naive.ci_high - naive.ci_low
    with pytest.raises(ValueError, match="both"):
        mean_difference_ci(diffs, n_train=50)


def test_naive_test_shrinks_p_with_repetitions_corrected_does_not():
    """The caveat in action: replaying the same five repetitions many times."""
    diffs = np.array([[0.01, -0.005], [0.02, 0.0], [-0.01, 0.015], [0.005, 0.01],
                      [0.0, 0.012]])
    few, many = diffs, np.tile(diffs, (100, 1))
    naive_few = paired_t_test_over_repeats(few.mean(1), np.zeros(5)).p_value
    naive_many = paired_t_test_over_repeats(many.mean(1), np.zeros(500)).p_value
    corr_many = corrected_repeated_cv_t_test(many, n_train=50, n_test=50).p_value
    assert naive_many < 1e-20 < naive_few
    assert corr_many > 0.05  # no new information, no new significance
    assert "sqrt(500)" in NAIVE_TEST_CAVEAT and "correlated" in NAIVE_TEST_CAVEAT


# ------------------------------------------------------------------ Holm
def test_holm_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> max(0.04, 0.06) = 0.06
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1])


def test_holm_caps_at_one_and_skips_nan():
    adjusted = holm([0.5, np.nan, 0.6])
    assert np.isnan(adjusted[1])
    np.testing.assert_allclose(adjusted[[0, 2]], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.1, 1.5])


# ------------------------------------------------------------------ McNemar
@pytest.mark.parametrize("table", [[[50, 3], [9, 20]], [[100, 40], [12, 30]],
                                   [[10, 0], [5, 4]], [[7, 12], [12, 1]]])
def test_mcnemar_matches_statsmodels_and_hand(table):
    table = np.array(table)
    b, c = table[0, 1], table[1, 0]
    res = mcnemar_test(table)
    if b + c < 25:
        ref = mcnemar(table, exact=True)
        hand_p = min(1.0, 2 * sps.binom.cdf(min(b, c), b + c, 0.5))
        assert res.test == "exact binomial"
        assert res.statistic == min(b, c)
    else:
        ref = mcnemar(table, exact=False, correction=True)
        hand_stat = (abs(b - c) - 1) ** 2 / (b + c)
        hand_p = sps.chi2.sf(hand_stat, 1)
        assert res.test.startswith("chi2")
        assert res.statistic == pytest.approx(hand_stat)
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert res.p_value == pytest.approx(hand_p, rel=1e-12)


def test_mcnemar_switches_to_chi2_at_25_discordant():
    assert mcnemar_test([[10, 6], [18, 3]]).test == "exact binomial"  # b + c = 24
    assert mcnemar_test([[10, 7], [18, 3]]).test.startswith("chi2")  # b + c = 25
    assert mcnemar_test([[10, 7], [18, 3]], exact_below=26).test == "exact binomial"


def test_mcnemar_no_discordant_pairs():
    res = mcnemar_test([[30, 0], [0, 5]])
    assert res.p_value == 1.0
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        mcnemar_test([[1, 2, 3]])


def test_estimate_text_formats_finite_values_as_format_does_and_writes_na_for_nan():
    for value, spec in [(0.6234, ".2f"), (-0.05, "+.3f"), (12.0, "+.1f"), (np.float32(0.5), ".2f")]:
        assert stats.estimate_text(value, spec) == format(float(value), spec)
    assert stats.estimate_text(float("nan"), "+.2f") == "n/a" and stats.estimate_text(np.nan) == "n/a"


def test_p_text_never_writes_zero_and_rejects_what_is_not_a_p_value():
    assert stats.p_text(0.006812) == "0.00681" and stats.p_text(3.2e-7) == "3.2e-07"
    assert stats.p_text(0.0) == stats.UNDERFLOW_P_TEXT == "< 1e-300"
    assert stats.p_text(float("nan")) == "n/a" and stats.p_text(1.0) == "1"
    assert stats.p_text(0.123456, digits=2) == "0.12"
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        stats.p_text(1.5)
    assert stats.p_equation(0.006812) == "p = 0.00681" and stats.p_equation(0.0) == "p < 1e-300"
