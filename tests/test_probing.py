"""Tests of forgetting_aus.probing: fold scores, rules, crop validation, feature caching."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from forgetting_aus import cache, concepts, facs, probing


def _planted(n: int = 48, d: int = 8, *, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=int)
    y[: n // 3] = 1
    rng.shuffle(y)
    groups = np.repeat(np.arange(n // 4), 4).astype(str)
    xa = rng.normal(size=(n, d))
    xb = rng.normal(size=(n, d))
    xa[:, 0] += 2.0 * y
    xb[:, 0] += 0.7 * y
    return xa, xb, y, groups


# --------------------------------------------------------------------------- probe internals
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_probe_predict_equals_the_concepts_pipeline(seed):
    xa, _, y, _ = _planted(seed=seed)
    train, test = np.arange(30), np.arange(30, 48)
    xa[:, 3] = 5.0  # a constant feature: the scaler must leave it at scale 1, as sklearn does
    expected = concepts.make_probe(C=0.5).fit(xa[train], y[train]).predict(xa[test])
    np.testing.assert_array_equal(probing.probe_predict(xa[train], y[train], xa[test], C=0.5), expected)


def test_probe_predict_with_one_class_answers_that_class():
    x = np.random.default_rng(0).normal(size=(6, 3))
    np.testing.assert_array_equal(probing.probe_predict(x[:4], np.zeros(4, int), x[4:], C=1.0), [0, 0])


@pytest.mark.parametrize("truth,pred", [([1, 0, 1, 1], [1, 1, 0, 1]), ([0, 0], [0, 0]), ([0, 1], [0, 0]),
                                        ([0, 0, 1], [1, 1, 1])])
def test_f1_positive_equals_sklearn(truth, pred):
    assert probing.f1_positive(truth, pred) == pytest.approx(f1_score(truth, pred, pos_label=1, zero_division=0))


@pytest.mark.parametrize("folds", ["stratified", "grouped"])
def test_fold_scores_pair_up_to_probe_concept(folds):
    xa, xb, y, groups = _planted()
    aus = np.zeros((len(y), len(facs.AU_CODES)))
    aus[:, facs.au_index(14)] = 2.0 * y
    labels = {14: probing.au_labels(aus)[14]}
    scores = probing.fold_scores({(0, "full"): xa, (5, "full"): xb}, labels, models=[0, 5], groups=groups,
                                 folds=[folds], n_repeats=4, C=1.0, seed=3, n_jobs=1)
    pair = probing.paired_frame(scores, au=14, model_a="FreezeB0", model_b="FreezeB5", folds=folds)
    expected = concepts.probe_concept(xa, xb, y, groups=groups, n_repeats=4, folds=folds, seed=3)
    pd.testing.assert_frame_equal(pair.reset_index(drop=True), expected, check_dtype=False)


def test_fold_scores_do_not_depend_on_n_jobs_and_report_missing_features():
    xa, xb, y, groups = _planted()
    aus = np.zeros((len(y), len(facs.AU_CODES)))
    aus[:, facs.au_index(14)] = y
    labels = {14: probing.au_labels(aus)[14]}
    kwargs = dict(models=[0, 5], groups=groups, folds=["stratified"], n_repeats=30, C=1.0, seed=0)
    serial = probing.fold_scores({(0, "full"): xa, (5, "full"): xb}, labels, n_jobs=1, **kwargs)
    parallel = probing.fold_scores({(0, "full"): xa, (5, "full"): xb}, labels, n_jobs=2, **kwargs)
    pd.testing.assert_frame_equal(serial, parallel)
    with pytest.raises(ValueError, match="no features for FreezeB5"):
        probing.fold_scores({(0, "full"): xa}, labels, **kwargs)


def test_comparison_table_holm_matches_probe_sweep():
    xa, xb, y, groups = _planted()
    rng = np.random.default_rng(1)
    y2 = (rng.random(len(y)) < 0.4).astype(int)
    aus = np.zeros((len(y), len(facs.AU_CODES)))
    aus[:, facs.au_index(14)] = y
    aus[:, facs.au_index(12)] = y2
    labels = probing.au_labels(aus)
    xc = rng.normal(size=xa.shape)
    feats = {(0, "full"): xa, (1, "full"): xc, (5, "full"): xb}
    scores = probing.fold_scores(feats, labels, models=[0, 1, 5], groups=groups, folds=["stratified"],
                                 n_repeats=5, C=1.0, seed=0)
    table = probing.comparison_table(scores, models=["FreezeB0", "FreezeB1"])
    expected = concepts.probe_sweep({"FreezeB0": xa, "FreezeB1": xc, "FreezeB5": xb}, {12: y2, 14: y},
                                    reference="FreezeB5", n_repeats=5, seed=0)
    merged = table.merge(expected, on=["au", "model"], suffixes=("", "_expected"))
    assert len(merged) == 4
    for key in concepts.TEST_KEYS:
        np.testing.assert_allclose(merged[f"{key}_p_holm"], merged[f"{key}_p_holm_expected"])
    np.testing.assert_allclose(merged["mean_difference"], merged["mean_difference_expected"])


def test_au_labels_drop_rare_and_unknown():
    aus = np.zeros((20, len(facs.AU_CODES)))
    aus[:10, facs.au_index(1)] = 3  # 10 present, 10 absent: kept
    aus[:2, facs.au_index(2)] = 1  # 2 present: too rare
    aus[:6, facs.au_index(4)] = 1
    aus[15:, facs.au_index(4)] = np.nan  # unknown rows are left out
    labels = probing.au_labels(aus, min_per_class=4)
    assert 1 in labels and 2 not in labels
    rows, y = labels[4]
    assert len(rows) == 15 and y.sum() == 6
    with pytest.raises(ValueError, match="shape"):
        probing.au_labels(np.zeros((3, 5)))


# --------------------------------------------------------------------------- forgotten AUs
def _sweep_table():
    rows = []
    for au, diff, p_corr, p_naive in [(5, -0.04, 0.001, 1e-9), (14, -0.02, 0.2, 1e-6), (26, +0.05, 0.001, 1e-9),
                                      (4, -0.01, 0.04, 1e-3)]:
        rows.append({"folds": "stratified", "au": au, "model": "FreezeB0", "mean_difference": diff,
                     "corrected_t_p_holm": p_corr, "paired_t_p_holm": p_naive})
    rows.append({"folds": "stratified", "au": 14, "model": "FreezeB1", "mean_difference": -0.1,
                 "corrected_t_p_holm": 1e-5, "paired_t_p_holm": 1e-9})
    rows.append({"folds": "grouped", "au": 14, "model": "FreezeB0", "mean_difference": -0.1,
                 "corrected_t_p_holm": 1e-5, "paired_t_p_holm": 1e-9})
    return pd.DataFrame(rows)


def test_forgotten_aus_rule_negative_and_significant():
    table = _sweep_table()
    assert probing.forgotten_aus(table) == [4, 5]  # AU26 significant but positive; AU14 not significant
    assert probing.forgotten_aus(table, test="paired_t") == [4, 5, 14]
    assert probing.forgotten_aus(table, folds="grouped") == [14]
    assert probing.forgotten_aus(table, model="FreezeB1") == [14]
    assert probing.forgotten_aus(table, alpha=0.01) == [5]
    with pytest.raises(ValueError, match="no rows for FreezeB3"):
        probing.forgotten_aus(table, model="FreezeB3")


def test_forgotten_prototype_check():
    assert probing.forgotten_prototype_check([5, 14])["verdict"] == "holds"
    pain = probing.forgotten_prototype_check([5, 4])
    assert pain["verdict"] == "fails" and pain["pain_aus"] == [4]
    assert probing.forgotten_prototype_check([15])["outside"] == [15]
    assert probing.forgotten_prototype_check([])["verdict"] == "inconclusive"
    assert "contempt" in probing.forgotten_prototype_check([14])["users"][14]


# --------------------------------------------------------------------------- trade-off rule
def _paper_like():
    # Paper's Table 1 pain recall and a Figure-4-like shape of surprise and contempt recall.
    return pd.DataFrame({"pain_recall": [0.54, 0.56, 0.69, 0.71, 0.71, 0.71],
                         "emotion": [0.60, 0.58, 0.55, 0.50, 0.35, 0.30]},
                        index=[f"FreezeB{k}" for k in (5, 4, 3, 2, 1, 0)])


def test_best_tradeoff_picks_b3_and_b2_on_paper_like_recalls():
    chosen = probing.best_tradeoff(_paper_like())
    assert list(chosen.index[chosen["best"]]) == ["FreezeB3", "FreezeB2"]
    # Scaling by hand: B3 pain (0.69-0.54)/0.17, emotion (0.55-0.30)/0.30.
    assert chosen.loc["FreezeB3", "score"] == pytest.approx(min(0.15 / 0.17, 0.25 / 0.30))
    assert chosen.loc["FreezeB5", "score"] == 0 and chosen.loc["FreezeB0", "score"] == 0


def test_best_tradeoff_extremes_never_win_and_ties_are_kept():
    data = _paper_like()
    assert not probing.best_tradeoff(data, n_best=1)["best"][["FreezeB5", "FreezeB0"]].any()
    tied = data.assign(pain_recall=0.7)  # all tie on pain: scaled to 1, emotion decides
    chosen = probing.best_tradeoff(tied, n_best=1)
    assert list(chosen.index[chosen["best"]]) == ["FreezeB5"]
    flat = data.assign(pain_recall=0.7, emotion=0.5)
    assert probing.best_tradeoff(flat)["best"].all()
    with pytest.raises(ValueError, match="n_best"):
        probing.best_tradeoff(data, n_best=7)


def _recalls(values: dict[str, dict[int, list[float]]]) -> pd.DataFrame:
    rows = []
    for emotion, per_model in values.items():
        for k, reps in per_model.items():
            rows += [{"model": f"FreezeB{k}", "frozen_blocks": k, "repetition": r, "emotion": emotion, "recall": v}
                     for r, v in enumerate(reps)]
    return pd.DataFrame(rows)


def test_tradeoff_frame_stability_and_worst_models():
    ks = (5, 4, 3, 2, 1, 0)
    surprise = {k: [0.8 - 0.1 * (5 - k), 0.8 - 0.1 * (5 - k) + 0.01] for k in ks}
    contempt = {k: [0.5 - 0.05 * (5 - k)] * 2 for k in ks}
    recalls = _recalls({"surprise": surprise, "contempt": contempt, "happy": {k: [0.9, 0.9] for k in ks}})
    index = pd.MultiIndex.from_tuples([(f"FreezeB{k}", s) for k in ks for s in ("estimate", "low", "high")])
    pain = {5: 0.54, 4: 0.56, 3: 0.69, 2: 0.71, 1: 0.71, 0: 0.71}
    with_ci = pd.DataFrame({("Recall", "pain"): [pain[k] + d for k in ks for d in (0, -0.1, 0.1)]}, index=index)
    data = probing.tradeoff_frame(with_ci, recalls)
    assert list(data.index) == [f"FreezeB{k}" for k in ks]
    assert data.loc["FreezeB0", "surprise"] == pytest.approx(0.305)
    assert data.loc["FreezeB3", "pain_low"] == pytest.approx(0.59)
    assert data.loc["FreezeB2", "emotion"] == pytest.approx((0.505 + 0.35) / 2)
    chosen = probing.best_tradeoff(data)
    stability = probing.tradeoff_stability(data, recalls)
    assert len(stability) == 2
    worst = probing.worst_for_emotions(recalls)
    assert worst["surprise"]["worst"] == ["FreezeB0", "FreezeB1"] and worst["surprise"]["share_b0_b1"] == 1.0
    claims = probing.discussion_claims(data, chosen, stability, recalls, [5, 14])
    verdicts = {c.claim_id: c.verdict for c in claims}
    assert verdicts["D-B0-B1-worst-surprise-contempt"] == "holds"
    assert verdicts["D-forgotten-AUs-not-pain"] == "holds"
    # By hand: scaled emotion 1, .8, .6, .4, .2, 0 and scaled pain 0, .12, .88, 1, 1, 1 for B5..B0.
    assert list(chosen.index[chosen["best"]]) == ["FreezeB3", "FreezeB2"]
    assert set(stability["best"]) == {"FreezeB3, FreezeB2"}
    assert verdicts["D-best-tradeoff-B3-B2"] == "holds"


# --------------------------------------------------------------------------- crop validation
def test_crop_effect_by_hand():
    effect = probing.crop_effect(0.8, 0.4, 0.25)  # chance 2 * 0.25 / 1.25 = 0.4
    assert effect["chance_f1"] == pytest.approx(0.4)
    assert effect["removed_share"] == pytest.approx(1.0) and effect["removed"]
    assert not probing.crop_effect(0.8, 0.7, 0.25)["removed"]
    assert np.isnan(probing.crop_effect(0.3, 0.2, 0.25)["removed_share"])


def test_crop_validation_on_planted_features():
    """AU26 lives in 'mouth' features that the crop replaces by noise; AU5 in 'eye' features it keeps."""
    rng = np.random.default_rng(0)
    n = 80
    y26 = (rng.random(n) < 0.35).astype(int)
    y5 = (rng.random(n) < 0.35).astype(int)
    eyes = rng.normal(size=(n, 4)) + 2.5 * y5[:, None]
    mouth = rng.normal(size=(n, 4)) + 2.5 * y26[:, None]
    full = np.hstack([eyes, mouth])
    cropped = np.hstack([eyes, rng.normal(size=(n, 4))])
    table = probing.crop_validation(full, cropped, {"AU26": y26, "AU5": y5}, n_repeats=5, C=1.0, seed=0)
    rows = table.set_index("au")
    assert rows.loc["AU26", "f1_full"] > 0.8
    assert rows.loc["AU26", "removed"] and rows.loc["AU26", "corrected_p"] < 0.05
    assert not rows.loc["AU5", "removed"]
    assert rows.loc["AU5", "f1_cropped"] == pytest.approx(rows.loc["AU5", "f1_full"], abs=0.1)
    validation = table.assign(model="FreezeB5")
    assert probing.crop_verdict(validation) == "holds"
    assert probing.crop_verdict(validation.assign(removed=False)) == "fails"
    assert probing.crop_verdict(validation.assign(removed=True)) == "inconclusive"


# --------------------------------------------------------------------------- feature caching
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


def test_cached_features_key_changes_with_the_model_and_hits_otherwise(tmp_path, monkeypatch):
    store = cache.Store(tmp_path / "store")
    images = np.random.default_rng(0).integers(0, 255, size=(3, 8, 8, 3), dtype=np.uint8)
    landmarks = np.repeat(facs_template(8)[None], 3, axis=0)
    path_a = _tiny_model(tmp_path / "a.keras", 0)
    path_b = _tiny_model(tmp_path / "b.keras", 1)
    kwargs = dict(images=images, landmarks=landmarks)
    xa, key_a = probing.cached_features(store, model_path=path_a, model_key="model-a", **kwargs)
    xb, key_b = probing.cached_features(store, model_path=path_b, model_key="model-b", **kwargs)
    assert xa.shape == (3, 4 * 4 * 2) and key_a != key_b and not np.allclose(xa, xb)
    calls = []
    monkeypatch.setattr(probing.concepts, "block5_features", lambda *a, **k: calls.append(1))
    again, key_again = probing.cached_features(store, model_path=path_a, model_key="model-a", **kwargs)
    assert key_again == key_a and not calls  # a hit: nothing recomputed
    np.testing.assert_array_equal(again, xa)
    masked_key = probing.features_params(model_key="model-a", variant="mouth_masked", **kwargs)
    plain_key = probing.features_params(model_key="model-a", variant="full", **kwargs)
    assert cache.hash_params(masked_key) != cache.hash_params(plain_key)
    other_images = probing.features_params(model_key="model-a", variant="full", images=images[::-1],
                                           landmarks=landmarks)
    assert cache.hash_params(other_images) != cache.hash_params(plain_key)


def facs_template(size: int) -> np.ndarray:
    from forgetting_aus.explain import regions

    return regions.template_landmarks(size)


def test_variant_images_masks_only_below_the_mouth_cut():
    from forgetting_aus import models
    from forgetting_aus.explain import regions

    images = np.full((1, 32, 32, 3), 200, dtype=np.uint8)
    images[0, 28:, :, :] = 10
    landmarks = regions.template_landmarks(32)[None]
    full = probing.variant_images(images, landmarks, "full")
    masked = probing.variant_images(images, landmarks, "mouth_masked")
    np.testing.assert_allclose(full, models.preprocess(images))
    cut = int(regions.mouth_cut_rows(landmarks)[0])
    np.testing.assert_allclose(masked[0, :cut], full[0, :cut])
    assert not np.allclose(masked[0, 28:], full[0, 28:])
    with pytest.raises(ValueError, match="variant"):
        probing.variant_images(images, landmarks, "cropped")
