"""The probes' folds, drawn as sklearn draws them, at a fraction of sklearn's cost.

:func:`forgetting_aus.concepts.cv_splits` draws each repetition's two folds with sklearn's
shuffled ``StratifiedKFold`` (the paper's folds) or ``StratifiedGroupKFold`` (by
subject). sklearn's grouped draw assigns the subjects to folds one at a time, with a few
numpy calls on 2 x 2 arrays per subject and fold: measured ~13 ms a draw for ~100 CK+
subjects, a fifth of the time of the twelve probe fits that share the draw on chapter
06's 256-dim features. :func:`stratified_group_splits` takes the same steps on Python
floats — the same permutation from the same ``RandomState``, the same stable order of
the subjects, the same floating-point operations in the same order for every fold's
score, the same tie rule (``np.isclose``, then the emptier fold) — for the case the
probes use (two folds, binary labels, an int seed), and hands every other case to
sklearn. The tests compare its folds with sklearn's on many label sets, subject sizes
and seeds: the same index arrays, element for element.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

#: ``np.isclose``'s default tolerances: sklearn's rule for two equally good folds.
_RTOL, _ATOL = 1e-5, 1e-8


def stratified_group_splits(y: np.ndarray, groups: np.ndarray, *, n_splits: int, random_state: int
                            ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``StratifiedGroupKFold(n_splits, shuffle=True, random_state).split(X, y, groups)``, as a list.

    Parameters
    ----------
    y : array-like of shape (n,)
        Labels the folds are stratified by.
    groups : array-like of shape (n,)
        Group (subject) of every row; a group never spans two folds.
    n_splits : int, keyword-only
    random_state : int, keyword-only

    Returns
    -------
    list of (train, test)
        Row indices (int64, ascending), identical to sklearn's.
    """
    y, groups = np.asarray(y), np.asarray(groups)
    if not _fast_case(y, n_splits=n_splits, random_state=random_state):
        return _sklearn_splits(y, groups, n_splits=n_splits, random_state=random_state)
    _, y_inv, y_cnt = np.unique(y, return_inverse=True, return_counts=True)
    _, groups_inv, groups_cnt = np.unique(groups, return_inverse=True, return_counts=True)
    n_groups = len(groups_cnt)
    if n_groups < n_splits:
        return _sklearn_splits(y, groups, n_splits=n_splits, random_state=random_state)  # which raises
    # y_counts_per_group: present and absent rows of every group (integer-valued floats)
    counts = np.bincount(groups_inv * 2 + y_inv, minlength=2 * n_groups).reshape(n_groups, 2).astype(np.float64)
    perm = np.arange(n_groups)
    np.random.RandomState(random_state).shuffle(perm)  # check_random_state(int), its only draw
    counts = counts[perm]
    inv_perm = np.empty_like(perm)
    inv_perm[perm] = np.arange(perm.size)
    groups_inv = inv_perm[groups_inv]
    order = np.argsort(-np.std(counts, axis=1), kind="stable")
    fold_of_group = _assign(order.tolist(), counts[order].tolist(), totals=(float(y_cnt[0]), float(y_cnt[1])))
    indices = np.arange(len(y))
    splits = []
    for fold in range(n_splits):
        in_test = fold_of_group[groups_inv] == fold
        splits.append((indices[~in_test], indices[in_test]))
    return splits


def _fast_case(y: np.ndarray, *, n_splits: int, random_state: object) -> bool:
    """Whether :func:`stratified_group_splits` reproduces sklearn here: two folds, two integer classes of at least
    two rows each, an int seed. Anything else (and every warning or error sklearn gives) is sklearn's own."""
    if n_splits != 2 or y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        return False
    if not isinstance(random_state, numbers.Integral) or isinstance(random_state, bool):
        return False
    counts = np.unique(y, return_counts=True)[1]
    return len(counts) == 2 and counts.min() >= n_splits


def _assign(order: list[int], group_counts: list[list[float]], *, totals: tuple[float, float]) -> np.ndarray:
    """Fold (0 or 1) of every group, greedily in ``order``: sklearn's ``_find_best_fold`` for two folds, two classes.

    A group goes to the fold whose trial assignment gives the lower mean (over classes)
    population SD (over folds) of the class shares ``count / total``; on a tie within
    ``np.isclose``, to the fold with fewer rows; else to fold 0 (tried first).
    """
    t0, t1 = totals
    a0 = a1 = b0 = b1 = 0.0  # rows of class 0 and 1 in fold 0 (a) and fold 1 (b)
    fold_of_group = np.empty(len(order), dtype=np.intp)
    for group, (g0, g1) in zip(order, group_counts, strict=True):
        first = _fold_score((a0 + g0) / t0, b0 / t0, (a1 + g1) / t1, b1 / t1)
        second = _fold_score(a0 / t0, (b0 + g0) / t0, a1 / t1, (b1 + g1) / t1)
        if second < first or (abs(second - first) <= _ATOL + _RTOL * abs(first) and b0 + b1 < a0 + a1):
            b0, b1 = b0 + g0, b1 + g1
            fold_of_group[group] = 1
        else:
            a0, a1 = a0 + g0, a1 + g1
            fold_of_group[group] = 0
    return fold_of_group


def _fold_score(p0: float, q0: float, p1: float, q1: float) -> float:
    """``np.mean(np.std([[p0, p1], [q0, q1]], axis=0))`` in numpy's operations and order: the class shares of
    fold 0 (p) and fold 1 (q) for class 0 and class 1."""
    return (_sd(p0, q0) + _sd(p1, q1)) / 2


def _sd(p: float, q: float) -> float:
    """``np.std([p, q])``: mean as sum / count, squared deviations, their sum / count, the root."""
    mean = (p + q) / 2
    dp, dq = p - mean, q - mean
    return math.sqrt((dp * dp + dq * dq) / 2)  # correctly rounded, as np.sqrt


def _sklearn_splits(y: np.ndarray, groups: np.ndarray, *, n_splits: int, random_state: object
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
    """sklearn's own draw (every case :func:`_fast_case` leaves out)."""
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    return list(cv.split(np.zeros(len(y)), y, groups))
