"""Tests of forgetting_aus.concepts: the paired repeated-CV concept probes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from forgetting_aus import concepts
from forgetting_aus.concepts import (
    TEST_KEYS,
    compare_probes,
    cv_splits,
    make_probe,
    probe_concept,
    probe_speed,
    probe_sweep,
)
from forgetting_aus.stats import (
    corrected_repeated_cv_t_test,
    dietterich_5x2cv_t_test,
    paired_t_test_over_repeats,
)


def _data(n: int = 60, d: int = 12, *, signal: float = 1.0, seed: int = 0):
    """Two feature sets of the same images; a carries the concept more strongly than b."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=int)
    y[: n // 3] = 1
    rng.shuffle(y)
    xa = rng.normal(size=(n, d))
    xb = rng.normal(size=(n, d))
    xa[:, 0] += signal * 2.0 * y
    xb[:, 0] += signal * 0.8 * y
    groups = np.repeat(np.arange(n // 4), 4)
    return xa, xb, y, groups


def test_probe_concept_layout():
    xa, xb, y, _ = _data()
    df = probe_concept(xa, xb, y, n_repeats=3, seed=0)
    assert len(df) == 3 * 2
    assert list(df.columns[:4]) == ["repeat", "fold", "f1_a", "f1_b"]
    assert set(df["repeat"]) == {0, 1, 2} and set(df["fold"]) == {0, 1}
    assert (df["n_train"] + df["n_test"] == 60).all()
    assert df[["f1_a", "f1_b"]].stack().between(0, 1).all()


def test_probe_concept_identical_for_any_n_jobs_and_same_seed():
    xa, xb, y, _ = _data()
    serial = probe_concept(xa, xb, y, n_repeats=6, seed=4, n_jobs=1)
    parallel = probe_concept(xa, xb, y, n_repeats=6, seed=4, n_jobs=2)
    again = probe_concept(xa, xb, y, n_repeats=6, seed=4, n_jobs=1)
    pd.testing.assert_frame_equal(serial, parallel)
    pd.testing.assert_frame_equal(serial, again)
    other = probe_concept(xa, xb, y, n_repeats=6, seed=5, n_jobs=1)
    assert not np.allclose(serial["f1_a"], other["f1_a"])


def test_same_folds_for_both_models_identical_features_give_zero_differences():
    xa, _, y, _ = _data(signal=0.5)
    df = probe_concept(xa, xa.copy(), y, n_repeats=5, seed=1)
    np.testing.assert_array_equal(df["f1_a"], df["f1_b"])
    assert df["f1_a"].nunique() > 1  # the folds do differ between repetitions
    summary = compare_probes(df)
    assert summary["mean_difference"] == 0
    assert summary["paired_t_statistic"] == 0 and summary["paired_t_p"] == 1
    assert summary["corrected_t_p"] == 1 and summary["dietterich_5x2cv_p"] == 1


def test_repetition_r_uses_seed_plus_r_split():
    xa, xb, y, _ = _data()
    df = probe_concept(xa, xb, y, n_repeats=3, seed=10)
    for rep in range(3):
        for fold, (train, test) in enumerate(cv_splits(y, random_state=10 + rep)):
            row = df[(df.repeat == rep) & (df.fold == fold)].iloc[0]
            assert row.n_train == len(train) and row.n_pos_test == y[test].sum()
            probe = make_probe().fit(xa[train], y[train])
            from sklearn.metrics import f1_score
            assert row.f1_a == pytest.approx(f1_score(y[test], probe.predict(xa[test])))


def test_grouped_folds_never_share_a_subject():
    _, _, y, groups = _data(n=80)
    for rep in range(5):
        splits = cv_splits(y, groups=groups, folds="grouped", random_state=rep)
        assert len(splits) == 2
        for train, test in splits:
            assert not set(groups[train]) & set(groups[test])
            assert 0 < y[test].sum() < len(test)  # still stratified enough to score F1
    stratified = cv_splits(y, groups=groups, folds="stratified", random_state=0)
    assert any(set(groups[tr]) & set(groups[te]) for tr, te in stratified)


def test_grouped_folds_remove_identity_leakage():
    """Features that only encode identity look like a concept under stratified folds."""
    rng = np.random.default_rng(3)
    n_subjects, per_subject = 20, 4
    groups = np.repeat(np.arange(n_subjects), per_subject)
    subject_has_au = rng.permutation(np.arange(n_subjects) % 2)
    y = subject_has_au[groups]
    identity = np.eye(n_subjects)[groups] * 3 + rng.normal(0, 0.1, (len(y), n_subjects))
    leaky = probe_concept(identity, identity, y, groups=groups, n_repeats=4,
                          folds="stratified", seed=0)
    honest = probe_concept(identity, identity, y, groups=groups, n_repeats=4,
                           folds="grouped", seed=0)
    assert leaky["f1_a"].mean() > 0.9
    assert honest["f1_a"].mean() < 0.75


def test_scaler_is_fitted_inside_each_fold(monkeypatch):
    fitted_sizes = []

    class RecordingScaler(StandardScaler):
        def fit(self, X, y=None, sample_weight=None):
            fitted_sizes.append(len(X))
            return super().fit(X, y, sample_weight)

    monkeypatch.setattr(concepts, "StandardScaler", RecordingScaler)
    xa, xb, y, _ = _data(n=60)
    df = probe_concept(xa, xb, y, n_repeats=2, seed=0, n_jobs=1)
    assert len(fitted_sizes) == 2 * 2 * 2  # repeats x folds x models
    assert sorted(fitted_sizes) == sorted(np.repeat(df["n_train"].to_numpy(), 2))
    assert max(fitted_sizes) < len(y)


def test_probe_pipeline_is_scaler_then_linear_svm():
    probe = make_probe()
    assert [type(step) for _, step in probe.steps] == [StandardScaler, SVC]
    svm = probe.named_steps["svm"]
    assert svm.kernel == "linear" and svm.C == 1.0 and svm.class_weight == "balanced"


def test_planted_concept_near_one_and_random_label_near_chance():
    rng = np.random.default_rng(7)
    n, d = 80, 30
    y = rng.permutation(np.arange(n) % 2)
    planted = rng.normal(size=(n, d))
    planted[:, 3] += 6.0 * (2 * y - 1)  # separable along one direction
    random_label = rng.permutation(y)
    good = probe_concept(planted, planted, y, n_repeats=3, seed=0)
    chance = probe_concept(planted, planted, random_label, n_repeats=10, seed=0)
    assert good["f1_a"].mean() > 0.97
    assert 0.3 < chance["f1_a"].mean() < 0.7


def test_compare_probes_runs_each_test_on_the_right_numbers():
    xa, xb, y, _ = _data(signal=0.6, seed=2)
    df = probe_concept(xa, xb, y, n_repeats=7, seed=0)
    out = compare_probes(df)
    diffs = (df.f1_a - df.f1_b).to_numpy().reshape(7, 2)  # rows are repeat-major
    per_rep = df.groupby("repeat")[["f1_a", "f1_b"]].mean()
    naive = paired_t_test_over_repeats(per_rep.f1_a, per_rep.f1_b)
    corrected = corrected_repeated_cv_t_test(diffs, n_train=df.n_train.mean(),
                                             n_test=df.n_test.mean())
    dietterich = dietterich_5x2cv_t_test(diffs[:5])
    assert out["paired_t_statistic"] == pytest.approx(naive.statistic)
    assert out["corrected_t_p"] == pytest.approx(corrected.p_value)
    assert out["corrected_t_ci_low"] == pytest.approx(corrected.ci_low)
    assert out["dietterich_5x2cv_statistic"] == pytest.approx(dietterich.statistic)
    assert out["mean_difference"] == pytest.approx(diffs.mean())
    assert out["mean_f1_a"] > out["mean_f1_b"]  # a carries the stronger signal
    assert "correlated" in out["naive_test_caveat"]
    short = compare_probes(df[df.repeat < 3])
    assert np.isnan(short["dietterich_5x2cv_p"]) and not np.isnan(short["corrected_t_p"])


def test_probe_sweep_family_and_holm():
    xa, xb, y, groups = _data(n=48)
    rng = np.random.default_rng(1)
    features = {"FreezeB5": xa, "FreezeB0": xb, "FreezeB3": xa + rng.normal(0, 0.5, xa.shape)}
    labels = {"AU14": y, "AU5": rng.permutation(y)}
    sweep = probe_sweep(features, labels, reference="FreezeB5", n_repeats=5, seed=0)
    assert len(sweep) == 2 * 2
    assert set(sweep["model"]) == {"FreezeB0", "FreezeB3"}
    assert (sweep["reference"] == "FreezeB5").all()
    for key in TEST_KEYS:
        p, adj = sweep[f"{key}_p"].to_numpy(), sweep[f"{key}_p_holm"].to_numpy()
        assert np.all(adj >= p - 1e-15)
        assert adj.min() == pytest.approx(min(1.0, len(p) * p.min()))
    # FreezeB0 carries AU14 less strongly than the reference: negative difference (a - b)
    row = sweep[(sweep.au == "AU14") & (sweep.model == "FreezeB0")].iloc[0]
    assert row.mean_difference < 0
    # per-AU features (e.g. AU5 on cropped images) give the same numbers for the same arrays
    per_au = probe_sweep({"AU14": features, "AU5": features}, labels, reference="FreezeB5",
                         n_repeats=5, seed=0)
    pd.testing.assert_frame_equal(per_au, sweep)
    with pytest.raises(ValueError, match="reference 'FreezeB9'"):
        probe_sweep(features, labels, reference="FreezeB9", n_repeats=2, seed=0)


def test_probe_inputs_are_validated_with_clear_errors():
    xa, xb, y, groups = _data()
    with pytest.raises(ValueError, match="binary 0/1"):
        probe_concept(xa, xb, y * 2, n_repeats=1, seed=0)
    with pytest.raises(ValueError, match="needs groups"):
        probe_concept(xa, xb, y, folds="grouped", n_repeats=1, seed=0)
    with pytest.raises(ValueError, match="one label per image"):
        probe_concept(xa, xb[:-1], y, n_repeats=1, seed=0)
    with pytest.raises(ValueError, match="'stratified'"):
        probe_concept(xa, xb, y, folds="kfold", n_repeats=1, seed=0)
    few = np.zeros_like(y)
    few[0] = 1
    with pytest.raises(ValueError, match="positive"):
        probe_concept(xa, xb, few, n_repeats=1, seed=0)


def test_probe_speed_reports_fits_per_second():
    assert probe_speed(20, 10, n_fits=3, n_jobs=1) > 0


def test_block5_features_flattens_the_named_layer(tmp_path):
    tf = pytest.importorskip("tensorflow")
    keras = tf.keras
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="block5_conv1")(inp)
    x = keras.layers.MaxPooling2D(name="block5_pool")(x)
    base = keras.Model(inp, x, name="vgg16")
    flat = keras.Sequential([base, keras.layers.Flatten(), keras.layers.Dense(2)])
    images = np.random.default_rng(0).random((5, 8, 8, 3)).astype(np.float32)
    expected = base.predict(images, verbose=0).reshape(5, -1)

    direct = concepts.block5_features(base, images, batch_size=2)
    assert direct.shape == (5, 4 * 4 * 4) and direct.dtype == np.float32
    np.testing.assert_allclose(direct, expected, rtol=1e-5)
    nested = concepts.block5_features(flat, images)  # the base inside a model with a head
    np.testing.assert_allclose(nested, expected, rtol=1e-5)
    path = tmp_path / "model.keras"
    flat.save(path)
    np.testing.assert_allclose(concepts.block5_features(path, images), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="not found"):
        concepts.block5_features(base, images, layer="block9_pool")
    with pytest.raises(ValueError, match="expects images of shape"):
        concepts.block5_features(base, images[:, :4])
