"""Statistical tests shared by the evaluation and the concept probes.

Small pure functions on arrays. Every two-sample test returns a :class:`TestResult` so
that the book can tabulate the paper's test next to the better-calibrated ones:

- :func:`mcnemar_test` — McNemar's test on the discordant counts of a paired 2x2 table
  (paper §4.1), exact binomial for few discordant pairs, chi-square otherwise;
- :func:`paired_t_test_over_repeats` — the paper's §4.3 test: a paired t-test over the
  per-repetition mean F1 of repeated 2-fold cross-validation;
- :func:`corrected_repeated_cv_t_test` — Bouckaert & Frank's (2004) corrected repeated
  k-fold cv t-test (the Nadeau & Bengio variance correction);
- :func:`dietterich_5x2cv_t_test` — Dietterich's (1998) 5x2cv paired t-test;
- :func:`mean_difference_ci` — mean difference with a confidence interval;
- :func:`holm` — Holm's step-down correction of a family of p-values.

Sign convention: a "difference" is always ``a - b``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats as sps

#: Why the paper's test (a paired t-test over 500 repetitions of 2-fold CV) overstates
#: significance, for the book to show next to its p-values.
NAIVE_TEST_CAVEAT: str = (
    "The repetitions of cross-validation reuse the same images, so their F1 differences "
    "are strongly correlated rather than independent samples of the model difference. "
    "Treating N = 500 of them as independent shrinks the standard error by about sqrt(500) "
    "artificially, so the p-value goes to 0 as N grows even for a fixed, tiny effect: more "
    "repetitions buy a smaller p, not more evidence."
)

#: Significance level of every test in the book, fixed in advance.
ALPHA = 0.05


class TestResult(NamedTuple):
    """Outcome of a paired comparison of two models (differences are ``a - b``).

    Attributes
    ----------
    test : str
        Name of the test.
    statistic : float
        The t statistic (or McNemar's statistic).
    df : float
        Degrees of freedom of the reference t distribution (``nan`` where none).
    p_value : float
        Two-sided p-value.
    mean_difference : float
        Mean of all the differences ``a - b`` the test was given.
    estimate : float
        The quantity the test's numerator estimates and the interval is centred on:
        the mean difference for the t-tests, the first fold's difference for 5x2cv.
    ci_low, ci_high : float
        Confidence interval of ``estimate`` obtained by inverting the test.
    """

    # pytest would otherwise try to collect a class whose name starts with "Test".
    __test__ = False

    test: str
    statistic: float
    df: float
    p_value: float
    mean_difference: float
    estimate: float
    ci_low: float
    ci_high: float


def _t_result(test: str, *, estimate: float, standard_error: float, df: float,
              level: float, mean_difference: float) -> TestResult:
    """Two-sided t-test of ``estimate / standard_error`` and its inverted interval.

    A zero standard error (all differences identical) gets the limit of the test instead
    of scipy's ``nan``: no difference at all is ``t = 0, p = 1``; a constant non-zero
    difference is ``t = ±inf, p = 0``.
    """
    _check_level(level)
    if standard_error > 0:
        statistic = estimate / standard_error
        p_value = float(2 * sps.t.sf(abs(statistic), df))
    elif estimate == 0:
        statistic, p_value = 0.0, 1.0
    else:
        statistic, p_value = float(np.copysign(np.inf, estimate)), 0.0
    half_width = float(sps.t.ppf(0.5 + level / 2, df)) * standard_error
    return TestResult(test, float(statistic), float(df), p_value, float(mean_difference),
                      float(estimate), float(estimate - half_width),
                      float(estimate + half_width))


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"confidence level must lie in (0, 1), got {level}; use e.g. 0.95")


def _as_diff_matrix(diffs: np.ndarray, name: str) -> np.ndarray:
    d = np.asarray(diffs, dtype=float)
    if d.ndim != 2 or d.size < 2:
        raise ValueError(f"{name}: expected fold differences of shape (n_repeats, n_folds) "
                         f"with at least 2 values, got shape {d.shape}")
    if not np.all(np.isfinite(d)):
        raise ValueError(f"{name}: the differences contain NaN or inf; drop or fix the "
                         "failed folds first")
    return d


def paired_t_test_over_repeats(f1_a_per_rep: np.ndarray, f1_b_per_rep: np.ndarray, *,
                               level: float = 0.95) -> TestResult:
    """The paper's test: paired t-test over the per-repetition mean scores.

    Parameters
    ----------
    f1_a_per_rep, f1_b_per_rep : array-like of shape (n_repeats,)
        Per repetition, the mean over the folds of model a's (b's) score, e.g. F1 in [0, 1].
    level : float, keyword-only
        Confidence level of the interval of the mean difference.

    Returns
    -------
    TestResult
        ``scipy.stats.ttest_rel(a, b)``: t, ``df = n_repeats - 1``, two-sided p, and the
        t interval of the mean difference ``a - b``. See :data:`NAIVE_TEST_CAVEAT`: the
        repetitions are not independent, so this p-value is far too small.
    """
    a = np.asarray(f1_a_per_rep, dtype=float).ravel()
    b = np.asarray(f1_b_per_rep, dtype=float).ravel()
    if a.shape != b.shape or a.size < 2:
        raise ValueError("paired_t_test_over_repeats: expected two score vectors of equal "
                         f"length >= 2 (one value per repetition), got {a.shape} and {b.shape}")
    d = a - b
    n = d.size
    # Same as scipy.stats.ttest_rel (checked in the tests), with a defined limit when all
    # differences are equal.
    return _t_result("paired t over repeats (paper)", estimate=d.mean(),
                     standard_error=d.std(ddof=1) / np.sqrt(n), df=n - 1, level=level,
                     mean_difference=d.mean())


def corrected_repeated_cv_t_test(diffs: np.ndarray, *, n_train: float, n_test: float,
                                 level: float = 0.95) -> TestResult:
    """Corrected repeated k-fold cross-validation t-test (Bouckaert & Frank 2004).

    Uses all ``k * r`` fold differences with the Nadeau & Bengio variance correction,
    which accounts for the overlap of training sets between folds and repetitions:
    ``t = mean(d) / sqrt((1 / (k r) + n_test / n_train) * var(d))``, ``df = k r - 1``.

    Parameters
    ----------
    diffs : array-like of shape (n_repeats, n_folds)
        Score differences ``a - b`` per repetition and fold.
    n_train, n_test : float, keyword-only
        Number of training and test samples of one fold (the mean if folds differ).
    level : float, keyword-only
        Confidence level of the corrected interval of the mean difference.
    """
    d = _as_diff_matrix(diffs, "corrected_repeated_cv_t_test").ravel()
    if n_train <= 0 or n_test <= 0:
        raise ValueError(f"n_train and n_test must be positive, got {n_train} and {n_test}")
    kr = d.size
    variance = (1 / kr + n_test / n_train) * d.var(ddof=1)
    return _t_result("corrected repeated CV t (Bouckaert & Frank)", estimate=d.mean(),
                     standard_error=np.sqrt(variance), df=kr - 1, level=level,
                     mean_difference=d.mean())


def dietterich_5x2cv_t_test(diffs: np.ndarray, *, level: float = 0.95) -> TestResult:
    """Dietterich's (1998) 5x2cv paired t-test.

    ``t = d_11 / sqrt(mean_i s_i^2)`` with ``s_i^2 = (d_i1 - m_i)^2 + (d_i2 - m_i)^2``,
    ``m_i = (d_i1 + d_i2) / 2``, ``df = 5``.

    Parameters
    ----------
    diffs : array-like of shape (5, 2)
        Score differences ``a - b`` of five repetitions of 2-fold CV (pass the first five
        repetitions of a longer run).
    level : float, keyword-only
        Confidence level; the interval is centred on ``d_11``, the test's numerator.
    """
    d = _as_diff_matrix(diffs, "dietterich_5x2cv_t_test")
    if d.shape != (5, 2):
        raise ValueError(f"dietterich_5x2cv_t_test: expected shape (5, 2), got {d.shape}; "
                         "pass diffs[:5] of a 2-fold run with at least 5 repetitions")
    per_rep_mean = d.mean(axis=1, keepdims=True)
    per_rep_var = ((d - per_rep_mean) ** 2).sum(axis=1)
    return _t_result("5x2cv paired t (Dietterich)", estimate=d[0, 0],
                     standard_error=np.sqrt(per_rep_var.mean()), df=5, level=level,
                     mean_difference=d.mean())


def mean_difference_ci(diffs: np.ndarray, *, n_train: float | None = None,
                       n_test: float | None = None, level: float = 0.95) -> TestResult:
    """Mean difference ``a - b`` of repeated CV with a confidence interval.

    With ``n_train`` and ``n_test`` the interval uses the corrected variance of
    :func:`corrected_repeated_cv_t_test` (recommended); without them it is the naive
    t interval over the per-repetition means (the paper's implicit interval, too narrow).

    Parameters
    ----------
    diffs : array-like of shape (n_repeats, n_folds)
        Score differences ``a - b`` per repetition and fold.
    """
    d = _as_diff_matrix(diffs, "mean_difference_ci")
    if n_train is not None and n_test is not None:
        return corrected_repeated_cv_t_test(d, n_train=n_train, n_test=n_test, level=level)
    if (n_train is None) != (n_test is None):
        raise ValueError("mean_difference_ci: give both n_train and n_test, or neither")
    per_rep = d.mean(axis=1)
    return paired_t_test_over_repeats(per_rep, np.zeros_like(per_rep), level=level)


#: What the prose writes for a p-value that underflowed to 0.0 in double precision: the
#: test's tail is below the smallest positive double, not zero.
UNDERFLOW_P_TEXT = "< 1e-300"


def p_text(p: float, *, digits: int = 3) -> str:
    """A p-value as the prose writes it: ``digits`` significant digits, never "0".

    Parameters
    ----------
    p : float
        In [0, 1], or NaN.
    digits : int, keyword-only

    Returns
    -------
    str
        ``f"{p:.{digits}g}"``; :data:`UNDERFLOW_P_TEXT` for an exact 0.0 (the tail
        underflowed); "n/a" for NaN.

    Examples
    --------
    >>> p_text(0.006812), p_text(3.2e-7), p_text(0.0), p_text(float("nan"))
    ('0.00681', '3.2e-07', '< 1e-300', 'n/a')
    """
    p = float(p)
    if np.isnan(p):
        return "n/a"
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a p-value lies in [0, 1], got {p}")
    return UNDERFLOW_P_TEXT if p == 0.0 else f"{p:.{digits}g}"


def estimate_text(value: float, spec: str = ".2f") -> str:
    """An estimate as the prose and the claims write it: ``format(value, spec)``, "n/a" when not finite.

    A run with too little data (e.g. a method that ranked nothing, or one fold, whose
    t interval is infinite) leaves some estimates undefined; the reader sees "n/a"
    there, as :func:`p_text` writes an undefined p, never "nan" or "inf".

    Examples
    --------
    >>> estimate_text(0.6234), estimate_text(-0.05, "+.3f"), estimate_text(float("nan"), "+.2f")
    ('0.62', '-0.050', 'n/a')
    """
    value = float(value)
    return format(value, spec) if np.isfinite(value) else "n/a"


def p_equation(p: float, *, digits: int = 3) -> str:
    """``"p = <p_text>"``, or ``"p < 1e-300"`` for a p that underflowed: never "p = 0".

    Examples
    --------
    >>> p_equation(0.006812), p_equation(0.0), p_equation(float("nan"))
    ('p = 0.00681', 'p < 1e-300', 'p = n/a')
    """
    text = p_text(p, digits=digits)
    return f"p {text}" if text == UNDERFLOW_P_TEXT else f"p = {text}"


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values of one family of tests.

    Parameters
    ----------
    p_values : array-like of shape (m,)
        Raw p-values in [0, 1]; ``nan`` entries (tests that could not run) are left out
        of the family and stay ``nan``.

    Returns
    -------
    ndarray of shape (m,)
        ``statsmodels.stats.multitest.multipletests(p, method="holm")[1]``.
    """
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float).ravel()
    ok = ~np.isnan(p)
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ValueError(f"holm: p-values must lie in [0, 1], got min {p[ok].min()} "
                         f"and max {p[ok].max()}")
    adjusted = np.full_like(p, np.nan)
    if ok.any():
        adjusted[ok] = multipletests(p[ok], method="holm")[1]
    return adjusted


class McNemarResult(NamedTuple):
    """McNemar's test of a paired 2x2 table (see :func:`mcnemar_test`)."""

    test: str
    statistic: float
    p_value: float


def mcnemar_test(table: np.ndarray, *, exact_below: int = 25) -> McNemarResult:
    """McNemar's test on a paired correct/incorrect 2x2 table.

    Parameters
    ----------
    table : array-like of shape (2, 2)
        Counts ``[[both correct, a correct & b wrong], [a wrong & b correct, both wrong]]``.
    exact_below : int, keyword-only
        Use the exact binomial test when the discordant count ``b + c`` is below this,
        else the chi-square statistic ``(|b - c| - 1)^2 / (b + c)`` with continuity
        correction (1 df).

    Returns
    -------
    McNemarResult
        Test used, statistic (``min(b, c)`` for the exact test) and two-sided p-value, from
        ``statsmodels.stats.contingency_tables.mcnemar``.
    """
    from statsmodels.stats.contingency_tables import mcnemar

    t = np.asarray(table)
    if t.shape != (2, 2) or np.any(t < 0):
        raise ValueError(f"mcnemar_test: expected a (2, 2) table of counts, got {t!r}")
    discordant = int(t[0, 1] + t[1, 0])
    exact = discordant < exact_below
    if discordant == 0:
        # statsmodels' chi-square divides by zero here; with no discordant pair the two
        # models agree on every image and there is nothing to test.
        return McNemarResult("exact binomial", 0.0, 1.0)
    res = mcnemar(t, exact=exact, correction=True)
    name = "exact binomial" if exact else "chi2 (continuity corrected)"
    return McNemarResult(name, float(res.statistic), float(res.pvalue))
