"""Where the parallel loops run: loky here or a Dask cluster, with the same results."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from forgetting_aus import concepts, config, parallel


def _cfg(**changes) -> config.Config:
    return config.load_config("smoke", overrides=changes)


def test_worker_count_resolves_every_core_and_rejects_nonsense():
    assert parallel.worker_count(3) == 3
    assert parallel.worker_count(-1) == (os.cpu_count() or 1)
    with pytest.raises(ValueError, match="worker count must be >= 1, or -1 for every core"):
        parallel.worker_count(0)


def test_unknown_backend_is_refused_by_the_profile():
    with pytest.raises(ValueError, match="parallel_backend' must be one of .*loky.*dask.*ray"):
        _cfg(parallel_backend="spark")


def test_old_knob_name_says_what_replaced_it():
    with pytest.raises(KeyError, match="'n_jobs' \\(renamed: use parallel_workers .* and training_workers"):
        _cfg(n_jobs=2)


def _sweep(cfg: config.Config) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(20, int), np.zeros(20, int)]
    features = {(k, "full"): rng.normal(size=(40, 16)) + 0.5 * k * y[:, None] for k in (0, 5)}
    labels = {14: (np.arange(40), y), 5: (np.arange(40), 1 - y)}
    with parallel.backend(cfg) as workers:
        return concepts.fold_scores(features, labels, models=[0, 5], groups=np.arange(40) % 8,
                                    folds=["stratified"], n_repeats=6, seed=3, variants={14: "full", 5: "full"},
                                    n_jobs=workers)


def test_probe_sweep_on_a_local_dask_cluster_equals_loky():
    pytest.importorskip("distributed")
    loky = _sweep(_cfg(parallel_backend="loky", parallel_workers=2))
    dask = _sweep(_cfg(parallel_backend="dask", parallel_workers=2))
    assert len(loky) == 2 * 2 * 6 * 2  # AUs x models x repetitions x folds
    pd.testing.assert_frame_equal(loky, dask)
