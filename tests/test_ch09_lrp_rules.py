"""Tests of chapter 09 (Weitz et al. 2018): data selection, folds, scoring, tables, numbers, tiny study."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgetting_aus import config, facs, pipeline
from forgetting_aus.chapters import ch09_lrp_rules as ch09
from forgetting_aus.datasets.common import AU_COLUMNS, FACE_BOX_COLUMNS, LANDMARK_COLUMNS
from forgetting_aus.explain import regions
from forgetting_aus.plots import ch09_lrp_rules as plots09

# --- fixtures: indexes without images --------------------------------------------------

def _rows(n: int, *, subjects, prefix: str) -> pd.DataFrame:
    frame = pd.DataFrame({"path": [f"/data/{prefix}_{i}.png" for i in range(n)], "subject": subjects})
    for column in FACE_BOX_COLUMNS:
        frame[column] = 10.0
    landmarks = np.tile(regions.template_landmarks(48).reshape(1, -1), (n, 1))
    frame = pd.concat([frame, pd.DataFrame(landmarks, columns=list(LANDMARK_COLUMNS))], axis=1)
    for column in AU_COLUMNS:
        frame[column] = 0.0
    return frame


def _unbc(n: int = 60, *, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = _rows(n, subjects=[f"s{i % 6}" for i in range(n)], prefix="unbc")
    frame["pspi"] = rng.integers(0, 8, size=n).astype(float)
    frame.loc[0, "pspi"] = 2.999  # just below the threshold
    return frame


def _affectnet(n_per_class: int = 20) -> pd.DataFrame:
    parts = []
    for emotion in ("happy", "disgust", "neutral"):
        part = _rows(n_per_class, subjects=[f"{emotion}{i // 2}" for i in range(n_per_class)], prefix=emotion)
        part["emotion"] = emotion
        # 4 test, 4 val, the rest train
        part["split"] = ["test"] * 4 + ["val"] * 4 + ["train"] * (n_per_class - 8)
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    frame["subject"] = frame["subject"].astype("string")
    return frame


# --- data selection --------------------------------------------------------------------

def test_selection_respects_pspi_threshold_and_balances_classes():
    unbc, affectnet = _unbc(), _affectnet()
    chosen = ch09.study.select_images(unbc, affectnet, pspi_min=3.0, per_class=6, seed=0)
    assert chosen["label"].value_counts().sort_index().tolist() == [6, 6, 6]
    pain = chosen[chosen["class"] == "pain"]
    assert (pain["pspi"] >= 3.0).all()
    assert set(pain["path"]) <= set(unbc.loc[unbc["pspi"] >= 3.0, "path"])
    assert chosen.loc[chosen["source"] == "affectnet", "pspi"].isna().all()
    assert list(ch09.study.CLASSES) == ["pain", "disgust", "happy"]
    assert set(chosen.loc[chosen["class"] == "happy", "path"]) <= set(affectnet.loc[affectnet["emotion"] == "happy", "path"])
    # subjects of the two twins cannot collide
    assert chosen["subject"].str.match(r"^(unbc|affectnet):").all()


def test_selection_prefers_images_the_emotion_model_never_trained_on():
    chosen = ch09.study.select_images(_unbc(), _affectnet(), pspi_min=3.0, per_class=10, seed=3)
    for name in ("happy", "disgust"):
        part = chosen[chosen["class"] == name]
        # 8 test/val faces exist per class, so exactly 2 come from the training split
        assert int(part["seen_by_emotion_model"].sum()) == 2
    assert not chosen.loc[chosen["class"] == "pain", "seen_by_emotion_model"].any()


def test_selection_is_deterministic_from_the_seed():
    a = ch09.study.select_images(_unbc(), _affectnet(), pspi_min=3.0, per_class=6, seed=5)
    b = ch09.study.select_images(_unbc(), _affectnet(), pspi_min=3.0, per_class=6, seed=5)
    c = ch09.study.select_images(_unbc(), _affectnet(), pspi_min=3.0, per_class=6, seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert not a["path"].equals(c["path"])


def test_selection_error_says_how_many_and_which_knob():
    with pytest.raises(ValueError, match=r"asks for 500 pain frames with PSPI >= 3.*weitz_images_per_class"):
        ch09.study.select_images(_unbc(), _affectnet(), pspi_min=3.0, per_class=500, seed=0)
    with pytest.raises(ValueError, match="asks for 25 disgust faces, but the AffectNet data have 20"):
        ch09.study.select_images(_unbc(200), _affectnet(), pspi_min=3.0, per_class=25, seed=0)


# --- folds -----------------------------------------------------------------------------

def test_folds_keep_subjects_within_one_fold_and_are_deterministic():
    rng = np.random.default_rng(0)
    groups = np.array([f"g{i}" for i in rng.integers(0, 30, size=300)])
    labels = rng.integers(0, 3, size=300)
    folds = ch09.study.assign_folds(labels, groups, n_folds=5, seed=0)
    assert set(np.unique(folds)) == set(range(5))
    for g in np.unique(groups):
        assert len(np.unique(folds[groups == g])) == 1, f"subject {g} is split across folds"
    np.testing.assert_array_equal(folds, ch09.study.assign_folds(labels, groups, n_folds=5, seed=0))
    with pytest.raises(ValueError, match="weitz_folds=5.*3 subjects"):
        ch09.study.assign_folds(labels[:6], np.array(["a", "b", "c"] * 2), n_folds=5, seed=0)


def test_inner_validation_is_grouped():
    groups = np.repeat([f"g{i}" for i in range(16)], 5)
    labels = np.tile(np.arange(3), 27)[:80]
    val = ch09.study.inner_validation(labels, groups, seed=0)
    assert 0 < val.sum() < len(val)
    assert not set(groups[val]) & set(groups[~val])


# --- scoring ---------------------------------------------------------------------------

def test_class_region_masks_are_the_union_of_the_class_aus():
    size = 48
    landmarks = np.stack([regions.template_landmarks(size)] * 3)
    masks = ch09.analysis.class_region_masks(landmarks, np.array([0, 1, 2]), size=size)
    for label, name in enumerate(ch09.study.CLASSES):
        expected = np.zeros((size, size), dtype=bool)
        for mask in regions.au_masks(landmarks[:1], size, aus=ch09.analysis.CLASS_AUS[name]).values():
            expected |= mask[0]
        np.testing.assert_array_equal(masks[label], expected)
    assert ch09.analysis.CLASS_AUS["pain"] == tuple(facs.PSPI_AUS)
    assert ch09.analysis.CLASS_AUS["happy"] == tuple(facs.EMOTION_PROTOTYPES["happy"])


def test_relevance_share_on_a_hand_made_map():
    size = 48
    landmarks = regions.template_landmarks(size)[None]
    mask = ch09.analysis.class_region_masks(landmarks, np.array([2]), size=size)[0]  # happy: AU6, 12, 25
    inside = np.where(mask, 1.0, 0.0)
    half = np.where(mask, 1.0, 0.0) + np.where(~mask, -5.0, 0.0)  # negatives do not count
    quarter = inside.copy()
    quarter[np.flatnonzero(~mask.ravel())[0] // size, np.flatnonzero(~mask.ravel())[0] % size] = mask.sum() * 3.0
    uniform = np.ones((size, size))
    shares = regions.relevance_share_in_masks(np.stack([inside, half, quarter, uniform]), [np.stack([mask] * 4)])
    np.testing.assert_allclose(shares["share"], [1.0, 1.0, 0.25, mask.mean()])
    np.testing.assert_allclose(shares["uniform_baseline"], mask.mean())
    np.testing.assert_allclose(shares.loc[3, "excess"], 0.0, atol=1e-12)


def test_summary_and_cluster_bootstrap():
    scores = pd.DataFrame({
        "rule": ["R"] * 6, "image": range(6), "class": ["Pain"] * 3 + ["Happiness"] * 3,
        "subject": ["a", "a", "b", "c", "c", "d"], "share": [0.5, 0.7, 0.6, 0.1, np.nan, 0.3],
        "uniform_baseline": [0.2] * 6})
    scores["excess"] = scores["share"] - scores["uniform_baseline"]
    summary = ch09.analysis.summarize_region_scores(scores, n_boot=200, seed=0)
    assert summary.loc[("R", "Pain"), "excess"] == pytest.approx(0.4)
    assert summary.loc[("R", "Happiness"), "n"] == 2  # the NaN share is left out
    assert summary.loc[("R", "Happiness"), "above_baseline"] == pytest.approx(0.5)
    assert summary.loc[("R", "all"), "n"] == 5
    shown = ch09.tables.region_summary_display(summary)
    assert list(shown.columns) == list(ch09.tables.REGION_COLUMNS.values())
    assert shown.loc[("R", "Pain"), "excess"] == summary.loc[("R", "Pain"), "excess"]
    assert all("_" not in name for name in shown.columns)
    mean, low, high = ch09.analysis.cluster_bootstrap_mean(np.array([1.0, 1.0, 3.0]), np.array(["a", "a", "b"]),
                                                   n_boot=500, seed=0)
    assert mean == pytest.approx(5 / 3)
    assert low >= 1.0 and high <= 3.0 and low < high


def test_class_table_by_hand_and_paper_table():
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 2, 1, 0, 2, 0])
    table = ch09.tables.class_table(y_true, y_pred)
    assert table.loc["Pain", "Precision"] == pytest.approx(3 / 5)
    assert table.loc["Pain", "Recall"] == pytest.approx(3 / 4)
    assert table.loc["Happiness", "F1-score"] == pytest.approx(0.5)
    assert table.loc["Average/Total", "#Images"] == 8
    assert table.loc["Average/Total", "Recall"] == pytest.approx(5 / 8)  # weighted recall = accuracy
    both = ch09.tables.table2_beside_paper(table)
    assert both[("Weitz et al. 2018", "#Images")].iloc[-1] == 14322
    # The paper's weighted averages follow from its class rows (up to rounding).
    paper = ch09.tables.PAPER_TABLE2
    weights = paper["#Images"].iloc[:3]
    assert np.average(paper["Recall"].iloc[:3], weights=weights) == pytest.approx(paper.loc["Average/Total", "Recall"], abs=0.01)


def _weitz_inputs(accuracy: list[float], macro_f1: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-fold scores of three folds (happy read as pain more than as disgust) and LRP parts."""
    scores = pd.DataFrame({"accuracy": accuracy, "macro_f1": [macro_f1] * 3, "n_test": [10] * 3,
                           "happy_as_pain": [0.3, 0.35, 0.32], "happy_as_disgust": [0.05, 0.1, 0.04],
                           "best_epoch": [0] * 3}, index=pd.Index([0, 1, 2], name="fold"))
    parts = pd.DataFrame({"class": ["Pain"] * 4 + ["Happiness"] * 4, "subject": list("abcdefgh"),
                          "excess": [0.1, 0.2, 0.15, 0.12, 0.05, 0.08, 0.07, 0.06]})
    return scores, parts


def test_claims_verdicts_follow_the_folds():
    scores, parts = _weitz_inputs([0.6, 0.7, 0.65], 0.6)
    found = {c.claim_id: c for c in ch09.tables.weitz_claims(scores, 1, parts, n_boot=200, seed=0)}
    assert found["W-happy-as-pain"].verdict == "holds"
    assert found["W-eyes-nose-mouth"].verdict == "holds"
    assert found["W-best-fold-accuracy"].verdict == "holds"
    scores["happy_as_disgust"] = [0.5, 0.6, 0.55]
    parts["excess"] = -parts["excess"]
    found = {c.claim_id: c for c in ch09.tables.weitz_claims(scores, 1, parts, n_boot=200, seed=0)}
    assert found["W-happy-as-pain"].verdict == "fails"
    assert found["W-eyes-nose-mouth"].verdict == "fails"


def test_models_below_their_learnability_floor_are_not_read():
    scores, parts = _weitz_inputs([0.35, 0.4, 0.38], 0.3)
    floor = ch09.tables.learnability_floor(scores)
    assert floor["floor"] == pytest.approx(1 / 3 + 0.2) and not floor["met"]
    found = {c.claim_id: c for c in ch09.tables.weitz_claims(scores, 1, parts, n_boot=200, seed=0)}
    for claim_id in ("W-happy-as-pain", "W-eyes-nose-mouth"):  # holds above the floor (test above)
        assert found[claim_id].verdict == "inconclusive"
        assert "below their learnability floor" in found[claim_id].this_run


def test_one_trained_fold_of_two_leaves_the_fold_claims_inconclusive():
    scores = pd.DataFrame({"accuracy": [0.67], "macro_f1": [0.6], "n_test": [10], "happy_as_pain": [0.3],
                           "happy_as_disgust": [0.05], "best_epoch": [0]}, index=pd.Index([0], name="fold"))
    parts = pd.DataFrame({"class": ["Pain"] * 4 + ["Happiness"] * 4, "subject": list("abcdefgh"),
                          "excess": [0.1, 0.2, 0.15, 0.12, 0.05, 0.08, 0.07, 0.06]})
    found = {c.claim_id: c for c in ch09.tables.weitz_claims(scores, 0, parts, n_boot=200, seed=0, n_folds=2)}
    # One fold: no spread of the per-fold difference, and the other fold might be the best one.
    assert found["W-happy-as-pain"].verdict == "inconclusive"
    assert found["W-best-fold-accuracy"].verdict == "inconclusive"
    assert "only 1 of 2 folds trained" in found["W-best-fold-accuracy"].evidence
    assert found["W-eyes-nose-mouth"].verdict == "holds"  # the explained model's maps, whichever fold
    # Every fold trained: the accuracy verdict is decided as before.
    found = {c.claim_id: c for c in ch09.tables.weitz_claims(scores, 0, parts, n_boot=200, seed=0, n_folds=1)}
    assert found["W-best-fold-accuracy"].verdict == "holds"


def test_trained_folds_are_the_first_ones_and_checked():
    cfg = config.load_config("smoke").replace(weitz_folds=3)
    assert cfg.weitz_trained_folds is None
    assert list(ch09.study.trained_folds(cfg)) == [0, 1, 2]
    assert list(ch09.study.trained_folds(cfg.replace(weitz_trained_folds=1))) == [0]
    with pytest.raises(ValueError, match="weitz_trained_folds must lie in 1..weitz_folds=3"):
        ch09.study.trained_folds(cfg.replace(weitz_trained_folds=4))
    with pytest.raises(ValueError, match="weitz_trained_folds must lie in 1..weitz_folds=3"):
        ch09.study.trained_folds(cfg.replace(weitz_trained_folds=0))


def test_cross_validate_trains_only_the_trained_folds(monkeypatch):
    cfg = config.load_config("smoke").replace(weitz_folds=3, weitz_trained_folds=1)
    monkeypatch.setattr(ch09.study, "three_class_data", lambda _cfg: "data")
    calls = []
    monkeypatch.setattr(ch09.study, "fold_model", lambda _cfg, fold, *, data: calls.append((fold, data)) or fold)
    assert ch09.study.cross_validate(cfg) == [0] and calls == [(0, "data")]
    assert ch09.study.cross_validate(cfg.replace(weitz_trained_folds=None)) == [0, 1, 2]


# --- the study at tiny scale -----------------------------------------------------------

@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """Smoke-sized twins in a temporary store, and a random tiny emotion model."""
    from forgetting_aus import models

    cfg = config.load_config("smoke").replace(results_dir=str(tmp_path / "results"), weitz_images_per_class=6,
                                              weitz_folds=2, weitz_epochs=1, weitz_heatmap_images=2,
                                              lrp_max_images=2, mixed_precision=False)
    folder = tmp_path / "emotion"
    model = models.build_vgg16(len(facs.EMOTIONS), input_size=cfg.image_size, width=cfg.width,
                               head_units=cfg.head_units, seed=0)
    models.save_model(model, folder / "model.keras")
    monkeypatch.setattr(pipeline, "emotion_model", lambda _cfg: pipeline.Trained(folder))
    return cfg


def test_tiny_study_cross_validates_and_caches(tiny, monkeypatch):
    from forgetting_aus import training

    data = ch09.study.three_class_data(tiny)
    assert np.bincount(data.split.labels).tolist() == [6, 6, 6]
    assert data.split.images.shape == (18, tiny.image_size, tiny.image_size, 3)
    folds = ch09.study.cross_validate(tiny)
    covered = np.concatenate([f.predictions()["test_index"] for f in folds])
    np.testing.assert_array_equal(np.sort(covered), np.arange(18))
    for fold, trained in enumerate(folds):
        pred = trained.predictions()
        np.testing.assert_array_equal(data.folds[pred["test_index"]], fold)
        np.testing.assert_array_equal(pred["y_true"], data.split.labels[pred["test_index"]])
        assert pred["probabilities"].shape == (len(pred["y_true"]), 3)
    scores = ch09.study.fold_scores(folds)
    assert scores["accuracy"].between(0, 1).all()
    assert ch09.study.best_fold(scores) == int(scores["accuracy"].idxmax())
    assert ch09.tables.best_fold_confusion(folds[0]).to_numpy().sum() == scores.loc[0, "n_test"]

    def no_training(*args, **kwargs):
        raise AssertionError("a cached fold was trained again")

    monkeypatch.setattr(training, "fit_classifier", no_training)
    again = ch09.study.cross_validate(tiny)
    assert [f.folder for f in again] == [f.folder for f in folds]


@pytest.mark.slow
def test_tiny_study_explains_under_every_rule(tiny):

    maps = ch09.study.rule_maps(tiny)
    assert set(maps.score_maps) == set(ch09.study.RULES)
    n_scored = len(maps.score_index)
    assert 3 <= n_scored <= 3 * tiny.lrp_max_images
    for rule in ch09.study.RULES:
        assert maps.score_maps[rule].shape == (n_scored, tiny.image_size, tiny.image_size)
        assert maps.seconds[rule] > 0
    shown = ch09.analysis.rule_heatmaps(tiny, maps=maps)
    assert shown["true"] == ["Pain"] * len(shown["images"])
    region = ch09.analysis.rule_region_scores(tiny, maps=maps)
    assert len(region) == len(ch09.study.RULES) * n_scored
    runtimes = ch09.analysis.rule_runtimes(maps)
    assert (runtimes["maps_per_second"] > 0).all()
    assert list(ch09.tables.runtimes_display(runtimes).columns) == ["maps", "seconds", "maps per second"]
    fig = plots09.rule_heatmaps_figure(shown["images"], shown["maps"], true=shown["true"],
                                           predicted=shown["predicted"])
    labels = {ax.get_ylabel() for ax in fig.axes}
    assert any(label.startswith("relevance (a.u.)") for label in labels)
    assert set(ch09.study.RULES) <= labels


def test_rule_heatmaps_put_the_power_of_ten_in_the_label_not_in_an_offset_text():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (2, 8, 8, 3)).astype(np.uint8)
    small = (rng.random((2, 8, 8)) - 0.5) * 4e-3  # max |R| between 1e-3 and 2e-3
    fig = plots09.rule_heatmaps_figure(images, {"z": small, "flat": np.zeros((2, 8, 8))}, true=["a", "b"],
                                       predicted=["a", "a"])
    fig.canvas.draw()
    bars = [ax for ax in fig.axes if ax.get_ylabel().startswith(plots09.RELEVANCE_LABEL)]
    assert len(bars) == 4
    assert all(bar.yaxis.get_offset_text().get_text() == "" for bar in bars)
    assert {bar.get_ylabel() for bar in bars} == {plots09.RELEVANCE_LABEL + " ×1e-3", plots09.RELEVANCE_LABEL}
    drawn = [image for ax in fig.axes for image in ax.images if image.get_array().ndim == 2]
    np.testing.assert_allclose(drawn[0].get_array(), small[0] / 1e-3, rtol=1e-6)
    assert drawn[0].get_clim() == pytest.approx((-np.abs(small[0]).max() / 1e-3, np.abs(small[0]).max() / 1e-3))
    plots09.plt.close(fig)


def test_shared_class_aus_come_from_the_class_definitions():
    shared = ch09.analysis.shared_class_aus()
    expected = sorted(set(facs.PSPI_AUS) & set(facs.EMOTION_PROTOTYPES["happy"]))
    assert shared[("pain", "happy")] == " and ".join(f"AU{a}" for a in expected)
    assert shared[("pain", "happy")] == shared[("happy", "pain")]


# --- the numbers the prose quotes --------------------------------------------------------

def _fold_table() -> pd.DataFrame:
    return pd.DataFrame({"accuracy": [0.6, 0.8, 0.7], "macro_f1": [0.6] * 3, "n_test": [10] * 3,
                         "happy_as_pain": [0.3, 0.1, 0.2], "happy_as_disgust": [0.0, 0.3, 0.3],
                         "best_epoch": [0] * 3}, index=pd.Index([0, 1, 2], name="fold"))


def test_fold_numbers_by_hand():
    numbers = ch09.tables.fold_numbers(_fold_table(), 1)
    assert numbers["best_fold"] == 1 and numbers["n_folds"] == 3
    assert numbers["best_accuracy"] == pytest.approx(0.8)
    assert numbers["mean_accuracy"] == pytest.approx(0.7)
    assert numbers["sd_accuracy"] == "0.10"  # ddof 1
    assert ch09.tables.fold_numbers(_fold_table().iloc[:1], 0)["sd_accuracy"] == "n/a"  # one fold: no SD
    assert numbers["best_happy_as_pain"] == pytest.approx(0.1)
    assert numbers["best_happy_as_disgust"] == pytest.approx(0.3)
    assert numbers["mean_happy_as_pain"] == pytest.approx(0.2)
    assert numbers["mean_happy_as_disgust"] == pytest.approx(0.2)
    assert numbers["paper_accuracy"] == 0.67 and numbers["paper_happy_as_pain"] == 0.28
    assert numbers["pain_happy_shared"] == ch09.analysis.shared_class_aus()[("pain", "happy")]


def test_rule_numbers_pick_the_pooled_extremes():
    index = pd.MultiIndex.from_product([["A", "B", "C"], ["Pain", "all"]], names=["rule", "class"])
    summary = pd.DataFrame({"excess": [0.9, 0.1, -0.5, 0.3, 0.5, -0.2]}, index=index)
    runtimes = pd.DataFrame({"maps_per_second": [5.0, 50.0, 0.5]}, index=pd.Index(["A", "B", "C"], name="rule"))
    numbers = ch09.tables.rule_numbers(summary, runtimes)
    # Pain's 0.9 for A must not count: only the pooled "all" rows decide.
    assert numbers["best_rule"] == "B" and numbers["best_rule_excess"] == pytest.approx(0.3)
    assert numbers["worst_rule"] == "C" and numbers["worst_rule_excess"] == pytest.approx(-0.2)
    assert numbers["fastest_rule"] == "B" and numbers["slowest_rule"] == "C"


def test_claim_numbers_are_found_by_id_not_position():
    parts = pd.DataFrame({"class": ["Pain"] * 4 + ["Happiness"] * 4, "subject": list("abcdefgh"),
                          "excess": [0.1, 0.2, 0.15, 0.12, 0.05, 0.08, 0.07, 0.06]})
    found = ch09.tables.weitz_claims(_fold_table(), 1, parts, n_boot=200, seed=0)
    numbers = ch09.tables.claim_numbers(list(reversed(found)))
    by_id = {c.claim_id: c for c in found}
    assert numbers["parts_this_run"] == by_id["W-eyes-nose-mouth"].this_run
    assert numbers["verdict_accuracy"] == by_id["W-best-fold-accuracy"].verdict
    assert numbers["verdict_happy"] == by_id["W-happy-as-pain"].verdict


def test_paper_labels_and_table_come_from_paper_values():
    from forgetting_aus import paper_values

    found = ch09.tables.weitz_claims(_fold_table(), 1, pd.DataFrame(
        {"class": ["Pain", "Happiness"], "subject": ["a", "b"], "excess": [0.1, 0.1]}), n_boot=10, seed=0)
    assert {c.paper for c in found} == {paper_values.WEITZ} == {"Weitz 2018"}
    paper = ch09.tables.PAPER_TABLE2
    for (name, row), values in zip(paper.iterrows(), paper_values.WEITZ_TABLE2.values(), strict=True):
        assert row.tolist() == values, name
    assert paper["#Images"].dtype == np.int64


def test_weitz_confusion_figure_prints_counts_and_row_shares():
    from forgetting_aus.plots import common

    counts = pd.DataFrame([[6, 2, 2], [0, 4, 0], [1, 0, 3]], index=list(ch09.study.CLASS_NAMES),
                          columns=list(ch09.study.CLASS_NAMES))
    fig = common.confusion_figure(counts, normalize=False, title="best fold (0)")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts[0] == "6\n(60%)" and texts[3] == "0\n(0%)"
    common.close(fig)


def test_data_summary_counts_per_class_and_fold():
    labels = np.array([0, 0, 1, 2, 2, 2])
    split = pipeline.Split(images=np.zeros((6, 4, 4, 3), np.uint8), labels=labels,
                           landmarks=np.zeros((6, 68, 2), np.float32), groups=np.array(list("aabcdd")),
                           aus=np.zeros((6, len(facs.AU_CODES)), np.float32))
    data = ch09.study.ThreeClassData(split=split, folds=np.array([0, 1, 0, 1, 1, 0]), pspi=np.zeros(6, np.float32),
                                     seen_by_emotion_model=np.array([False, False, True, False, True, True]),
                                     key="k")
    table = ch09.tables.data_summary(data)
    assert list(table.index) == list(ch09.study.CLASS_NAMES)
    assert table.loc["Pain", "images"] == 2 and table.loc["Pain", "subjects"] == 1
    assert table.loc["Happiness", "seen_by_emotion_model"] == 2
    assert table.loc["Happiness", "fold 0"] == 1 and table.loc["Happiness", "fold 1"] == 2
