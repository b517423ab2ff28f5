"""Tests of forgetting_aus.concepts: labels, features, the one probe path, fold scores, the tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from forgetting_aus import cache, concepts, facs, probe_engine
from forgetting_aus.concepts import TEST_KEYS, compare_probes, cv_splits, fold_scores, paired_frame
from forgetting_aus.stats import (
    corrected_repeated_cv_t_test,
    dietterich_5x2cv_t_test,
    holm,
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


def _scores(xa, xb, y, *, groups=None, folds=("stratified",), n_repeats, seed, n_jobs=1, C=1.0):
    """:func:`fold_scores` of FreezeB0 (xa) and FreezeB5 (xb) on one AU (14) present where y == 1."""
    groups = np.arange(len(y)) if groups is None else groups
    labels = {14: (np.arange(len(y)), np.asarray(y))}
    return fold_scores({(0, "full"): xa, (5, "full"): xb}, labels, models=[0, 5], groups=groups, folds=list(folds),
                       n_repeats=n_repeats, C=C, seed=seed, n_jobs=n_jobs)


def _pair(xa, xb, y, *, folds="stratified", **kwargs):
    """Paired fold scores a = xa, b = xb, as :func:`compare_probes` takes them."""
    scores = _scores(xa, xb, y, folds=(folds,), **kwargs)
    return paired_frame(scores, au=14, model_a="FreezeB0", model_b="FreezeB5", folds=folds)


# --------------------------------------------------------------------------- labels
def test_au_labels_drop_rare_and_unknown():
    aus = np.zeros((20, len(facs.AU_CODES)))
    aus[:10, facs.au_index(1)] = 3  # 10 present, 10 absent: kept
    aus[:2, facs.au_index(2)] = 1  # 2 present: too rare
    aus[:6, facs.au_index(4)] = 1
    aus[15:, facs.au_index(4)] = np.nan  # unknown rows are left out
    labels = concepts.au_labels(aus, min_per_class=4)
    assert 1 in labels and 2 not in labels
    rows, y = labels[4]
    assert len(rows) == 15 and y.sum() == 6
    np.testing.assert_array_equal(rows, np.arange(15))
    with pytest.raises(ValueError, match="shape"):
        concepts.au_labels(np.zeros((3, 5)))


# --------------------------------------------------------------------------- the probe: one fit, one score
@pytest.mark.parametrize("seed", range(6))
def test_probe_predict_equals_the_sklearn_pipeline_on_random_data(seed):
    """The one fit path is StandardScaler then SVC(linear, C, balanced), fitted on the training fold."""
    rng = np.random.default_rng(seed)
    n_train, n_test, d = rng.integers(12, 60), rng.integers(5, 30), rng.integers(2, 80)
    C = float(rng.choice([0.01, 0.5, 1.0, 10.0]))
    x = rng.normal(size=(n_train + n_test, d)) * rng.uniform(0.1, 10, size=d) + rng.normal(0, 5, size=d)
    y = (rng.random(n_train + n_test) < rng.uniform(0.15, 0.6)).astype(int)
    y[:2] = [0, 1]
    x[:, 0] += 1.5 * y  # some signal, so that both classes get predicted
    x[:, -1] = 3.0  # a constant feature: scaled by 1, as sklearn does
    reference = make_pipeline(StandardScaler(), SVC(kernel="linear", C=C, class_weight="balanced"))
    expected = reference.fit(x[:n_train], y[:n_train]).predict(x[n_train:])
    predicted = concepts.probe_predict(x[:n_train], y[:n_train], x[n_train:], C=C)
    np.testing.assert_array_equal(predicted, expected)
    assert concepts.f1_positive(y[n_train:], predicted) == pytest.approx(
        f1_score(y[n_train:], expected, pos_label=1, zero_division=0))


def test_make_probe_is_the_model_probe_predict_fits():
    probe = concepts.make_probe()
    assert [type(step) for _, step in probe.steps] == [StandardScaler, SVC]
    svm = probe.named_steps["svm"]
    assert svm.kernel == "linear" and svm.C == 1.0 and svm.class_weight == "balanced"
    xa, _, y, _ = _data(seed=3)
    np.testing.assert_array_equal(concepts.probe_predict(xa[:40], y[:40], xa[40:]),
                                  probe.fit(xa[:40], y[:40]).predict(xa[40:]))


def test_standardisation_uses_the_training_fold_only():
    xa, _, y, _ = _data(seed=1)
    # No statistic of the test fold enters: changing the other test rows leaves row 0's answer.
    shifted = xa[40:].copy()
    shifted[1:] = 1000 * shifted[1:] + 50
    first = concepts.probe_predict(xa[:40], y[:40], xa[40:], C=1.0)[0]
    assert concepts.probe_predict(xa[:40], y[:40], shifted, C=1.0)[0] == first


def test_probe_predict_with_one_class_answers_that_class():
    x = np.random.default_rng(0).normal(size=(6, 3))
    np.testing.assert_array_equal(concepts.probe_predict(x[:4], np.zeros(4, int), x[4:], C=1.0), [0, 0])


def _planted_features(n: int, d: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """ReLU-like float32 features (as block5's) of n images, 30 % present, a weak concept in 2 % of them."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    x = np.maximum(rng.normal(size=(n, d)), 0).astype(np.float32)
    x[:, -3:] = 0.0  # dead units: constant features, scaled by 1
    x[np.ix_(y == 1, np.arange(max(1, d // 50)))] += 0.6
    return x, y


@pytest.mark.parametrize(("n", "d", "n_repeats"), [(600, 256, 5), (200, 25088, 2)])
def test_gram_engine_equals_the_pipeline_at_the_probe_sizes(n, d, n_repeats):
    """The precomputed-kernel engine against make_probe's Pipeline on the chapters' folds, at block5's
    size of the default profile (256) and of the paper (7 x 7 x 512 = 25 088)."""
    x, y = _planted_features(n, d, seed=d)
    same = total = 0
    for rep in range(n_repeats):
        for train, test in cv_splits(y, random_state=rep):
            fast = concepts.fold_predict(x, y, train, test, engine="gram")
            reference = concepts.fold_predict(x, y, train, test, engine="pipeline")
            same, total = same + int(np.sum(fast == reference)), total + len(test)
            assert abs(concepts.f1_positive(y[test], fast) - concepts.f1_positive(y[test], reference)) <= 1e-3
            assert 0 < reference.sum() < len(test)  # a real decision, not one class everywhere
    assert same / total >= 0.999


def test_standardised_fold_is_the_scaler_and_its_kernel():
    x, _ = _planted_features(40, 2500, seed=1)  # several column blocks
    train = np.arange(25)
    fold = probe_engine.standardised_fold(x, train)
    z_train = np.hstack(fold.z)
    scaler = StandardScaler().fit(x[train].astype(np.float64))
    np.testing.assert_allclose(z_train, scaler.transform(x[train].astype(np.float64)), atol=1e-12)
    np.testing.assert_allclose(fold.mean, scaler.mean_, rtol=1e-12)
    np.testing.assert_allclose(fold.scale, scaler.scale_, rtol=1e-12)
    np.testing.assert_allclose(fold.kernel, z_train @ z_train.T, rtol=1e-12, atol=1e-9)


def test_standardise_scales_constant_features_by_one_and_leaves_its_input_alone():
    x = np.array([[1.0, 5.0, 0.0], [3.0, 5.0, 2.0], [5.0, 5.0, 4.0]], dtype=np.float32)
    before = x.copy()
    z, mean, scale = probe_engine.standardise(x)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(mean, [3.0, 5.0, 2.0])
    np.testing.assert_allclose(scale, [np.sqrt(8 / 3), 1.0, np.sqrt(8 / 3)])  # population SD; 1 where constant
    np.testing.assert_allclose(z[:, 1], 0.0)
    assert z.dtype == np.float64


def test_svm_predict_is_the_linear_svm_on_the_standardised_test_rows():
    """Decisions from the raw test rows and the scaled primal weights equal sklearn's SVC on the standardised rows."""
    x, y = _planted_features(90, 3000, seed=7)
    train, test = np.arange(60), np.arange(60, 90)
    scaler = StandardScaler().fit(x[train].astype(np.float64))
    svc = SVC(kernel="linear", class_weight="balanced").fit(scaler.transform(x[train].astype(np.float64)), y[train])
    expected = svc.predict(scaler.transform(x[test].astype(np.float64)))
    predicted = probe_engine.svm_predict(probe_engine.standardised_fold(x, train), y[train], x[test])
    np.testing.assert_array_equal(predicted, expected)


def test_engines_give_the_same_fold_scores_and_unknown_engines_fail():
    xa, xb, y, groups = _data(n=80, d=40, signal=0.5, seed=4)
    kwargs = dict(groups=groups, folds=("stratified", "grouped"), n_repeats=4, seed=0)
    fast = _scores(xa, xb, y, **kwargs)
    labels = {14: (np.arange(len(y)), y)}
    reference = fold_scores({(0, "full"): xa, (5, "full"): xb}, labels, models=[0, 5], engine="pipeline",
                            **{**kwargs, "folds": list(kwargs["folds"])})
    pd.testing.assert_frame_equal(fast, reference)
    with pytest.raises(ValueError, match="engine"):
        fold_scores({(0, "full"): xa}, labels, models=[0], engine="liblinear", **{**kwargs, "folds": ["stratified"]})
    with pytest.raises(ValueError, match="engine"):
        concepts.probe_predict(xa[:40], y[:40], xa[40:], engine="liblinear")


@pytest.mark.parametrize("seed", range(4))
def test_libsvm_fit_is_svc_fit_on_the_precomputed_kernel(seed):
    """The engine's direct libsvm call returns what SVC(kernel="precomputed", balanced).fit stores, bit for bit."""
    x, y = _planted_features(90, 40, seed=seed)
    train = np.arange(60)
    k_train = probe_engine.standardised_fold(x, train).kernel
    C = [1.0, 0.1, 3.0, 1.0][seed]
    svc = SVC(kernel="precomputed", C=C, class_weight="balanced").fit(k_train, y[train])
    support, dual_coef, intercept = probe_engine.libsvm_fit(k_train, y[train], C=C)
    np.testing.assert_array_equal(support, svc.support_)
    np.testing.assert_array_equal(dual_coef, svc.dual_coef_[0])
    assert intercept == svc.intercept_[0]
    np.testing.assert_array_equal(probe_engine.balanced_class_weight(y[train]), svc.class_weight_)


def test_libsvm_fit_prints_nothing(capfd):
    """libsvm's verbosity is process-wide and on in a fresh process; the engine turns it off as SVC.fit does."""
    from sklearn.svm import _libsvm

    x, y = _planted_features(60, 20, seed=5)
    _libsvm.set_verbosity_wrap(1)
    k_train = probe_engine.standardised_fold(x, np.arange(40)).kernel
    probe_engine.libsvm_fit(k_train, y[:40])
    assert capfd.readouterr().out == ""


@pytest.mark.parametrize("row", [3, 25])  # a training row, a test row
def test_svm_predict_refuses_non_finite_features(row):
    x, y = _planted_features(30, 8, seed=2)
    x[row, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        concepts.fold_predict(x, y, np.arange(20), np.arange(20, 30))


@pytest.mark.parametrize("truth,pred", [([1, 0, 1, 1], [1, 1, 0, 1]), ([0, 0], [0, 0]), ([0, 1], [0, 0]),
                                        ([0, 0, 1], [1, 1, 1])])
def test_f1_positive_equals_sklearn(truth, pred):
    assert concepts.f1_positive(truth, pred) == pytest.approx(f1_score(truth, pred, pos_label=1, zero_division=0))


def test_f1_positive_by_hand():
    # tp = 2, present 3, predicted 4: F1 = 2 * 2 / (3 + 4)
    assert concepts.f1_positive([1, 1, 1, 0, 0, 0], [1, 1, 0, 1, 1, 0]) == pytest.approx(4 / 7)


# --------------------------------------------------------------------------- folds and fold scores
def test_fold_scores_layout():
    xa, xb, y, _ = _data()
    scores = _scores(xa, xb, y, n_repeats=3, seed=0)
    assert list(scores.columns) == ["au", "variant", "folds", "k", "model", "repeat", "fold", "f1", "n_train",
                                    "n_test", "n_pos_test"]
    assert len(scores) == 2 * 3 * 2  # models x repeats x folds
    assert set(scores["model"]) == {"FreezeB0", "FreezeB5"} and set(scores["variant"]) == {"full"}
    assert (scores["n_train"] + scores["n_test"] == 60).all()
    assert scores["f1"].between(0, 1).all()


def test_fold_scores_progress_counts_every_fit_and_changes_nothing(capsys):
    xa, xb, y, _ = _data()
    labels = {14: (np.arange(len(y)), y), 15: (np.arange(len(y)), 1 - y)}
    kwargs = dict(models=[0, 5], groups=np.arange(len(y)), folds=["stratified"], n_repeats=25, seed=0, n_jobs=2)
    quiet = fold_scores({(0, "full"): xa, (5, "full"): xb}, labels, **kwargs)
    capsys.readouterr()
    shown = fold_scores({(0, "full"): xa, (5, "full"): xb}, labels, progress="sweep", **kwargs)
    pd.testing.assert_frame_equal(quiet, shown)
    # 2 AUs x 25 repetitions x 2 folds x 2 models, in tasks of at most REPEATS_PER_TASK repetitions
    shown_on_stderr = capsys.readouterr().err
    assert "sweep: 100%" in shown_on_stderr and "200/200" in shown_on_stderr


@pytest.mark.parametrize("folds", ["stratified", "grouped"])
def test_repetition_r_is_the_pipeline_on_the_seed_plus_r_folds(folds):
    """Every fold score is the sklearn Pipeline's F1 on the folds cv_splits draws with seed + r."""
    xa, xb, y, groups = _data()
    pair = _pair(xa, xb, y, groups=groups, folds=folds, n_repeats=3, seed=10)
    assert len(pair) == 3 * 2
    for rep in range(3):
        for fold, (train, test) in enumerate(cv_splits(y, groups=groups, folds=folds, random_state=10 + rep)):
            row = pair[(pair["repeat"] == rep) & (pair["fold"] == fold)].iloc[0]
            assert row["n_train"] == len(train) and row["n_pos_test"] == y[test].sum()
            for x, column in ((xa, "f1_a"), (xb, "f1_b")):
                predicted = concepts.make_probe().fit(x[train], y[train]).predict(x[test])
                assert row[column] == pytest.approx(f1_score(y[test], predicted, zero_division=0), abs=1e-15)


def test_fold_scores_do_not_depend_on_n_jobs_and_depend_on_the_seed():
    xa, xb, y, groups = _data()
    kwargs = dict(groups=groups, folds=("stratified", "grouped"), n_repeats=30)  # two chunks of repetitions
    serial = _scores(xa, xb, y, seed=4, n_jobs=1, **kwargs)
    pd.testing.assert_frame_equal(serial, _scores(xa, xb, y, seed=4, n_jobs=2, **kwargs))
    pd.testing.assert_frame_equal(serial, _scores(xa, xb, y, seed=4, n_jobs=1, **kwargs))
    assert not np.allclose(serial["f1"], _scores(xa, xb, y, seed=5, **kwargs)["f1"])


def test_identical_features_give_zero_differences():
    xa, _, y, _ = _data(signal=0.5)
    pair = _pair(xa, xa.copy(), y, n_repeats=5, seed=1)
    np.testing.assert_array_equal(pair["f1_a"], pair["f1_b"])
    assert pair["f1_a"].nunique() > 1  # the folds do differ between repetitions
    summary = compare_probes(pair)
    assert summary["mean_difference"] == 0
    assert summary["paired_t_statistic"] == 0 and summary["paired_t_p"] == 1
    assert summary["corrected_t_p"] == 1 and summary["dietterich_5x2cv_p"] == 1


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


@pytest.mark.parametrize("case", range(8))
def test_grouped_folds_are_sklearns_stratified_group_kfold(case):
    """cv_splits' own StratifiedGroupKFold gives sklearn's folds exactly, ties included."""
    from sklearn.model_selection import StratifiedGroupKFold

    rng = np.random.default_rng(case)
    per_subject = rng.integers(1, 8, size=int(rng.integers(6, 130)))
    groups = np.repeat(np.arange(len(per_subject)), per_subject).astype(str)
    if case % 2:  # labels of whole subjects, as an AU a subject shows at every peak
        y = (rng.random(len(per_subject)) < 0.3).astype(int)[np.repeat(np.arange(len(per_subject)), per_subject)]
    else:
        y = (rng.random(len(groups)) < rng.uniform(0.1, 0.6)).astype(int)
    y[:2] = [0, 1]
    for seed in range(25):
        expected = StratifiedGroupKFold(2, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, groups)
        for (train, test), (want_train, want_test) in zip(cv_splits(y, groups=groups, folds="grouped",
                                                                    random_state=seed), expected, strict=True):
            np.testing.assert_array_equal(train, want_train)
            np.testing.assert_array_equal(test, want_test)


def test_grouped_folds_remove_identity_leakage():
    """Features that only encode identity look like a concept under stratified folds."""
    rng = np.random.default_rng(3)
    n_subjects, per_subject = 20, 4
    groups = np.repeat(np.arange(n_subjects), per_subject)
    y = rng.permutation(np.arange(n_subjects) % 2)[groups]
    identity = np.eye(n_subjects)[groups] * 3 + rng.normal(0, 0.1, (len(y), n_subjects))
    leaky = _pair(identity, identity, y, groups=groups, folds="stratified", n_repeats=4, seed=0)
    honest = _pair(identity, identity, y, groups=groups, folds="grouped", n_repeats=4, seed=0)
    assert leaky["f1_a"].mean() > 0.9
    assert honest["f1_a"].mean() < 0.75


def test_planted_concept_near_one_and_random_label_near_chance():
    rng = np.random.default_rng(7)
    n, d = 80, 30
    y = rng.permutation(np.arange(n) % 2)
    planted = rng.normal(size=(n, d))
    planted[:, 3] += 6.0 * (2 * y - 1)  # separable along one direction
    good = _pair(planted, planted, y, n_repeats=3, seed=0)
    chance = _pair(planted, planted, rng.permutation(y), n_repeats=10, seed=0)
    assert good["f1_a"].mean() > 0.97
    assert 0.3 < chance["f1_a"].mean() < 0.7


def test_fold_scores_variants_and_errors():
    xa, xb, y, groups = _data()
    labels = {14: (np.arange(len(y)), y), 5: (np.arange(len(y)), y)}
    features = {(0, "full"): xa, (5, "full"): xb, (0, "mouth_masked"): xb, (5, "mouth_masked"): xa}
    scores = fold_scores(features, labels, models=[0, 5], groups=groups, folds=["stratified"], n_repeats=2, seed=0)
    assert dict(scores.groupby("au")["variant"].first()) == {5: "mouth_masked", 14: "full"}  # variant_for
    # AU5 on the masked images swaps the models' features: FreezeB0's AU5 scores are FreezeB5's AU14 scores.
    np.testing.assert_array_equal(scores.query("au == 5 and k == 0")["f1"], scores.query("au == 14 and k == 5")["f1"])
    kwargs = dict(models=[0, 5], groups=groups, folds=["stratified"], n_repeats=2, seed=0)
    with pytest.raises(ValueError, match="no features for FreezeB5 on the 'mouth_masked'"):
        fold_scores({(0, "mouth_masked"): xa}, {5: labels[5]}, **kwargs)
    with pytest.raises(ValueError, match="folds must be among"):
        fold_scores(features, labels, **{**kwargs, "folds": ["kfold"]})
    with pytest.raises(ValueError, match="n_repeats"):
        fold_scores(features, labels, **{**kwargs, "n_repeats": 0})
    with pytest.raises(ValueError, match="needs groups"):
        cv_splits(y, folds="grouped", random_state=0)
    with pytest.raises(ValueError, match="'stratified'"):
        cv_splits(y, folds="kfold", random_state=0)


def test_paired_frame_checks_models_and_folds():
    xa, xb, y, _ = _data()
    scores = _scores(xa, xb, y, n_repeats=2, seed=0)
    with pytest.raises(ValueError, match="for FreezeB3"):
        paired_frame(scores, au=14, model_a="FreezeB3", model_b="FreezeB5", folds="stratified")
    broken = scores.drop(index=scores.index[(scores["model"] == "FreezeB5") & (scores["repeat"] == 1)])
    with pytest.raises(ValueError, match="same folds"):
        paired_frame(broken, au=14, model_a="FreezeB0", model_b="FreezeB5", folds="stratified")


# --------------------------------------------------------------------------- tests
def test_compare_probes_runs_each_test_on_the_right_numbers():
    xa, xb, y, _ = _data(signal=0.6, seed=2)
    pair = _pair(xa, xb, y, n_repeats=7, seed=0)
    out = compare_probes(pair)
    diffs = (pair.f1_a - pair.f1_b).to_numpy().reshape(7, 2)  # rows are repeat-major
    per_rep = pair.groupby("repeat")[["f1_a", "f1_b"]].mean()
    naive = paired_t_test_over_repeats(per_rep.f1_a, per_rep.f1_b)
    corrected = corrected_repeated_cv_t_test(diffs, n_train=pair.n_train.mean(), n_test=pair.n_test.mean())
    dietterich = dietterich_5x2cv_t_test(diffs[:5])
    assert out["paired_t_statistic"] == pytest.approx(naive.statistic)
    assert out["corrected_t_p"] == pytest.approx(corrected.p_value)
    assert out["corrected_t_ci_low"] == pytest.approx(corrected.ci_low)
    assert out["dietterich_5x2cv_statistic"] == pytest.approx(dietterich.statistic)
    assert out["mean_difference"] == pytest.approx(diffs.mean())
    assert out["mean_f1_a"] > out["mean_f1_b"]  # a carries the stronger signal
    assert "correlated" in out["naive_test_caveat"]
    short = compare_probes(pair[pair.repeat < 3])
    assert np.isnan(short["dietterich_5x2cv_p"]) and not np.isnan(short["corrected_t_p"])
    with pytest.raises(ValueError, match="lacks columns"):
        compare_probes(pair.drop(columns="n_test"))


def test_comparison_table_holm_per_fold_scheme():
    xa, xb, y, groups = _data(n=48)
    rng = np.random.default_rng(1)
    y2 = (rng.random(len(y)) < 0.4).astype(int)
    aus = np.zeros((len(y), len(facs.AU_CODES)))
    aus[:, facs.au_index(14)] = y
    aus[:, facs.au_index(12)] = y2
    labels = concepts.au_labels(aus)
    xc = xa + rng.normal(0, 0.5, xa.shape)
    scores = fold_scores({(0, "full"): xb, (3, "full"): xc, (5, "full"): xa}, labels, models=[0, 3, 5],
                         groups=groups, folds=["stratified", "grouped"], n_repeats=5, seed=0)
    table = concepts.comparison_table(scores, models=["FreezeB0", "FreezeB3", "FreezeB5"])
    assert len(table) == 2 * 2 * 2  # schemes x AUs x models (the reference skipped)
    assert set(table["model"]) == {"FreezeB0", "FreezeB3"} and (table["reference"] == "FreezeB5").all()
    for _, part in table.groupby("folds"):
        for key in TEST_KEYS:
            np.testing.assert_allclose(part[f"{key}_p_holm"], holm(part[f"{key}_p"].to_numpy()))
    row = table[(table.folds == "stratified") & (table.au == 14) & (table.model == "FreezeB0")].iloc[0]
    expected = compare_probes(paired_frame(scores, au=14, model_a="FreezeB0", model_b="FreezeB5",
                                           folds="stratified"))
    assert row["mean_difference"] == expected["mean_difference"] < 0  # FreezeB0 carries AU14 less strongly
    assert row["corrected_t_p"] == expected["corrected_t_p"]
    assert row["n_pos"] == y.sum()


def test_chance_f1_by_hand():
    assert concepts.chance_f1(0.25) == pytest.approx(0.4)
    np.testing.assert_allclose(concepts.chance_f1(np.array([0.0, 1.0])), [0.0, 1.0])


def test_probe_speed_reports_fits_per_second():
    assert concepts.probe_speed(20, 10, n_fits=3, n_jobs=1) > 0
    assert concepts.probe_speed(20, 10, n_fits=3, n_jobs=1, engine="pipeline") > 0


# --------------------------------------------------------------------------- features
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


def _tiny_model(path, seed):
    import tensorflow as tf

    keras = tf.keras
    keras.utils.set_random_seed(seed)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, padding="same", name="block5_conv1")(inp)
    x = keras.layers.MaxPooling2D(name="block5_pool")(x)
    out = keras.layers.Dense(2)(keras.layers.Flatten()(x))
    keras.Model(inp, out).save(path)
    return path


def _template(size: int) -> np.ndarray:
    from forgetting_aus.explain import regions

    return regions.template_landmarks(size)


def test_cached_features_key_changes_with_the_model_and_hits_otherwise(tmp_path, monkeypatch):
    store = cache.Store(tmp_path / "store")
    images = np.random.default_rng(0).integers(0, 255, size=(3, 8, 8, 3), dtype=np.uint8)
    landmarks = np.repeat(_template(8)[None], 3, axis=0)
    path_a = _tiny_model(tmp_path / "a.keras", 0)
    path_b = _tiny_model(tmp_path / "b.keras", 1)
    kwargs = dict(images=images, landmarks=landmarks)
    xa, key_a = concepts.cached_features(store, model_path=path_a, model_key="model-a", **kwargs)
    xb, key_b = concepts.cached_features(store, model_path=path_b, model_key="model-b", **kwargs)
    assert xa.shape == (3, 4 * 4 * 2) and key_a != key_b and not np.allclose(xa, xb)
    calls = []
    monkeypatch.setattr(concepts, "block5_features", lambda *a, **k: calls.append(1))
    again, key_again = concepts.cached_features(store, model_path=path_a, model_key="model-a", **kwargs)
    assert key_again == key_a and not calls  # a hit: nothing recomputed
    np.testing.assert_array_equal(again, xa)
    masked_key = concepts.features_params(model_key="model-a", variant="mouth_masked", **kwargs)
    plain_key = concepts.features_params(model_key="model-a", variant="full", **kwargs)
    assert cache.hash_params(masked_key) != cache.hash_params(plain_key)
    other_images = concepts.features_params(model_key="model-a", variant="full", images=images[::-1],
                                            landmarks=landmarks)
    assert cache.hash_params(other_images) != cache.hash_params(plain_key)


def test_variant_images_masks_only_below_the_mouth_cut():
    from forgetting_aus import models
    from forgetting_aus.explain import regions

    images = np.full((1, 32, 32, 3), 200, dtype=np.uint8)
    images[0, 28:, :, :] = 10
    landmarks = regions.template_landmarks(32)[None]
    full = concepts.variant_images(images, landmarks, "full")
    masked = concepts.variant_images(images, landmarks, "mouth_masked")
    np.testing.assert_allclose(full, models.preprocess(images))
    cut = int(regions.mouth_cut_rows(landmarks)[0])
    np.testing.assert_allclose(masked[0, :cut], full[0, :cut])
    assert not np.allclose(masked[0, 28:], full[0, 28:])
    with pytest.raises(ValueError, match="variant"):
        concepts.variant_images(images, landmarks, "cropped")
    assert concepts.variant_for(5) == "mouth_masked" and concepts.variant_for(14) == "full"


def test_family_features_are_each_models_own_artifact(tmp_path, monkeypatch):
    """Made together (shared blocks run once), each model's features are the artifact
    cached_features makes alone: same key, same values bit for bit; a second call hits."""
    from fixtures_models import freeze_family

    from forgetting_aus import models, shared_blocks

    family = {k: (str(models.save_model(model, tmp_path / f"FreezeB{k}.keras")), f"model-{k}")
              for k, model in freeze_family((0, 3, 5)).items()}
    images = np.random.default_rng(0).integers(0, 255, size=(5, 32, 32, 3), dtype=np.uint8)
    landmarks = np.repeat(_template(32)[None], 5, axis=0)
    together = concepts.cached_family_features(cache.Store(tmp_path / "together"), family, reference=5,
                                               images=images, landmarks=landmarks)
    assert sorted(together) == sorted((k, v) for k in family for v in concepts.VARIANTS)
    for (k, variant), (x, key) in together.items():
        alone, alone_key = concepts.cached_features(cache.Store(tmp_path / "alone"), model_path=family[k][0],
                                                    model_key=family[k][1], images=images, landmarks=landmarks,
                                                    variant=variant)
        assert key == alone_key
        np.testing.assert_array_equal(x, alone)
    monkeypatch.setattr(shared_blocks, "shared_block_features", lambda *a, **k: pytest.fail("recomputed"))
    again = concepts.cached_family_features(cache.Store(tmp_path / "together"), family, reference=5,
                                            images=images, landmarks=landmarks)
    assert {pair: key for pair, (_, key) in again.items()} == {pair: key for pair, (_, key) in together.items()}
