"""Tests of forgetting_aus.probe_folds: sklearn's StratifiedGroupKFold folds, drawn without sklearn's loop."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.model_selection import StratifiedGroupKFold

from forgetting_aus.probe_folds import stratified_group_splits


def _sklearn(y, groups, *, n_splits=2, seed):
    return list(StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, groups))


def _assert_same(got, want):
    assert len(got) == len(want)
    for (train, test), (want_train, want_test) in zip(got, want, strict=True):
        np.testing.assert_array_equal(train, want_train)
        np.testing.assert_array_equal(test, want_test)
        assert train.dtype == want_train.dtype and test.dtype == want_test.dtype


@pytest.mark.parametrize("case", range(40))
def test_folds_are_sklearns_on_random_subjects_labels_and_seeds(case):
    """Subjects of 1-8 rows, labels per row or per subject (an AU a subject shows at every peak), rows in any
    order, int or string subject ids, seeds near 0 and large: the same index arrays as sklearn's."""
    rng = np.random.default_rng(100 + case)
    per_subject = rng.integers(1, 9, size=int(rng.integers(2, 140)))
    subject = np.repeat(np.arange(len(per_subject)), per_subject)
    if case % 2:
        y = (rng.random(len(per_subject)) < rng.uniform(0.05, 0.7)).astype(int)[subject]
    else:
        y = (rng.random(len(subject)) < rng.uniform(0.05, 0.7)).astype(int)
    y[:2], y[-2:] = [0, 1], [1, 0]  # two of each class at least
    order = rng.permutation(len(y))
    y, groups = y[order], subject[order]
    if case % 4 == 3:
        groups = np.char.add("s", groups.astype(str))
    for seed in [*range(15), *rng.integers(0, 2**31 - 1, size=5).tolist()]:
        _assert_same(stratified_group_splits(y, groups, n_splits=2, random_state=seed), _sklearn(y, groups, seed=seed))


def test_folds_are_sklearns_on_ties():
    """Equal subjects (same size, same labels) tie at every step: the tie rule decides, as in sklearn."""
    groups = np.repeat(np.arange(40), 3)
    y = np.tile([1, 0, 0], 40)
    for seed in range(30):
        _assert_same(stratified_group_splits(y, groups, n_splits=2, random_state=seed), _sklearn(y, groups, seed=seed))


@pytest.mark.parametrize(("y", "n_splits", "seed"), [
    (np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]), 2, 0),  # three classes
    (np.array([0, 1] * 6), 3, 1),  # three folds
    (np.array([0.0, 1.0] * 6), 2, 2),  # float labels
    (np.array([0, 1] * 6), 2, np.random.RandomState(3)),  # a RandomState, not an int
])
def test_other_cases_are_sklearns_own(y, n_splits, seed):
    groups = np.arange(len(y)) // 2
    want_seed = np.random.RandomState(3) if isinstance(seed, np.random.RandomState) else seed
    _assert_same(stratified_group_splits(y, groups, n_splits=n_splits, random_state=seed),
                 _sklearn(y, groups, n_splits=n_splits, seed=want_seed))


def test_rare_class_and_too_few_subjects_warn_and_fail_as_sklearn():
    y = np.array([0, 0, 0, 0, 0, 1])  # one present row: sklearn warns
    groups = np.arange(6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = stratified_group_splits(y, groups, n_splits=2, random_state=0)
        want = _sklearn(y, groups, seed=0)
    assert sum("least populated class" in str(w.message) for w in caught) == 2  # ours, then sklearn's
    _assert_same(got, want)
    with pytest.raises(ValueError, match="number of groups"):
        stratified_group_splits(np.array([0, 1, 0, 1]), np.zeros(4), n_splits=2, random_state=0)
