"""Tests of chapter 10 (transfer vs. scratch, Arabian et al. 2022)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from scipy import stats

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from forgetting_aus import config, facs, models, pipeline  # noqa: E402
from forgetting_aus.chapters import ch10_transfer_vs_scratch as ch10
from forgetting_aus.explain import regions  # noqa: E402

SIZE = 32


def _split(landmarks: np.ndarray, labels) -> pipeline.Split:
    n = len(labels)
    return pipeline.Split(images=np.zeros((n, SIZE, SIZE, 3), np.uint8), labels=np.asarray(labels, np.int64),
                          landmarks=landmarks.astype(np.float32), groups=np.array([f"s{i}" for i in range(n)]),
                          aus=np.full((n, len(facs.AU_CODES)), np.nan, np.float32))


def _prototype_union(landmarks: np.ndarray, emotion: str) -> np.ndarray:
    masks = regions.au_masks(landmarks, SIZE, aus=facs.EMOTION_PROTOTYPES[emotion])
    return np.logical_or.reduce(list(masks.values()))


# --------------------------------------------------------------------------- regions of importance

def test_reference_masks_average_the_prototype_regions_per_class():
    face = regions.template_landmarks(SIZE)
    shifted = face + np.array([3.0, 0.0])
    happy, sad = ch10.study.SIX_EMOTIONS.index("happy"), ch10.study.SIX_EMOTIONS.index("sad")
    split = _split(np.stack([face, shifted, face]), [happy, happy, sad])
    share = ch10.study.reference_masks(split)
    assert share.shape == (6, SIZE, SIZE)
    expected_happy = (_prototype_union(face[None], "happy")[0].astype(float)
                      + _prototype_union(shifted[None], "happy")[0]) / 2
    np.testing.assert_allclose(share[happy], expected_happy)
    assert set(np.unique(share[happy])) <= {0.0, 0.5, 1.0}
    np.testing.assert_array_equal(share[sad], _prototype_union(face[None], "sad")[0].astype(float))
    assert np.isnan(share[ch10.study.SIX_EMOTIONS.index("anger")]).all()  # no anger image


def test_class_overlap_dice_and_iou_on_a_known_case():
    face = regions.template_landmarks(SIZE)
    happy = ch10.study.SIX_EMOTIONS.index("happy")
    references = np.full((6, SIZE, SIZE), np.nan, np.float32)
    region = _prototype_union(face[None], "happy")[0]
    references[happy] = region
    cams = np.full((6, SIZE, SIZE), np.nan, np.float32)

    cams[happy] = region * 0.9  # a map exactly on the region: perfect agreement
    perfect = ch10.gradcam.class_overlap(cams, references)
    assert list(perfect["class"]) == ["happy"]
    assert perfect.loc[0, "dice"] == pytest.approx(1.0) and perfect.loc[0, "iou"] == pytest.approx(1.0)
    area = region.mean()
    assert perfect.loc[0, "area"] == pytest.approx(area) and perfect.loc[0, "dice_chance"] == pytest.approx(area)

    # A map lighting up the image's left half only: its salient pixels are that half
    # (ties at the top value are all kept), so DICE and IoU follow from counts by hand.
    left = np.zeros((SIZE, SIZE), bool)
    left[:, : SIZE // 2] = True
    cams[happy] = left.astype(np.float32)
    half = ch10.gradcam.class_overlap(cams, references)
    inter = np.sum(left & region)
    assert half.loc[0, "dice"] == pytest.approx(2 * inter / (left.sum() + region.sum()))
    assert half.loc[0, "iou"] == pytest.approx(inter / np.sum(left | region))

    cams[happy] = 0.0  # no positive evidence: nothing salient, no overlap
    assert ch10.gradcam.class_overlap(cams, references).loc[0, "dice"] == 0.0

    with pytest.raises(ValueError, match="classes, S, S"):
        ch10.gradcam.class_overlap(cams[:, :4], references)


# --------------------------------------------------------------------------- transfer initialisation

def _cfg(tmp_path, **changes) -> config.Config:
    return config.load_config("smoke", overrides={"results_dir": str(tmp_path), **changes})


def test_transfer_copies_conv_weights_and_leaves_attention_and_head_fresh(tmp_path):
    cfg = _cfg(tmp_path)
    source = models.build_vgg16(8, input_size=cfg.image_size, width=cfg.width, head_units=cfg.head_units, seed=7)
    transfer = ch10.study.initial_model(cfg, attention="se", scheme="transfer", seed=3, source=source)
    scratch = ch10.study.initial_model(cfg, attention="se", scheme="scratch", seed=3)
    convs = [layer.name for layer in source.layers if layer.name.startswith("block") and "_conv" in layer.name]
    assert len(convs) == 13
    for name in convs:
        for got, want in zip(transfer.get_layer(name).get_weights(), source.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(got, want)
        assert not np.array_equal(transfer.get_layer(name).get_weights()[0], scratch.get_layer(name).get_weights()[0])
    attention = [layer.name for layer in transfer.layers if layer.name.endswith("_se")]
    assert attention == ["block2_se", "block3_se", "block4_se"]
    for name in attention + ["fc1", "predictions"]:  # fresh: identical to the scratch twin of the same seed
        for got, want in zip(transfer.get_layer(name).get_weights(), scratch.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(got, want)
    assert transfer.output_shape == (None, 6)


def test_copy_conv_weights_refuses_another_width():
    small = models.build_vgg16(6, input_size=SIZE, width=0.0625, head_units=32, seed=0)
    wide = models.build_vgg16(6, input_size=SIZE, width=0.125, head_units=32, seed=0)
    with pytest.raises(ValueError, match="same width"):
        ch10.study.copy_conv_weights(small, wide)


# --------------------------------------------------------------------------- folds

def test_folds_are_subject_grouped_balanced_and_reproducible():
    groups = np.repeat([f"subject{i}" for i in range(11)], 5)
    folds = ch10.study.subject_folds(groups, n_folds=3, seed=4)
    for subject in np.unique(groups):
        assert len(np.unique(folds[groups == subject])) == 1
    subjects_per_fold = [len(np.unique(groups[folds == k])) for k in range(3)]
    assert sorted(subjects_per_fold) == [3, 4, 4]
    np.testing.assert_array_equal(folds, ch10.study.subject_folds(groups, n_folds=3, seed=4))
    assert not np.array_equal(folds, ch10.study.subject_folds(groups, n_folds=3, seed=5))

    parts = ch10.study.fold_split(groups, 1, n_folds=3, seed=4)
    together = np.concatenate(list(parts.values()))
    assert sorted(together) == list(range(len(groups)))
    subject_sets = [set(groups[idx]) for idx in parts.values()]
    assert all(a.isdisjoint(b) for i, a in enumerate(subject_sets) for b in subject_sets[i + 1:])
    assert set(groups[parts["validation"]]) == set(groups[folds == 1])
    assert len(set(groups[parts["selection"]])) == 1  # 10 % of 7 training subjects, at least one

    with pytest.raises(ValueError, match="number of subjects"):
        ch10.study.subject_folds(groups, n_folds=12, seed=0)


def test_scheme_difference_is_paired_by_fold():
    rows = []
    for fold, (t, s) in enumerate([(50.0, 54.0), (40.0, 42.0)]):
        for scheme, value in (("transfer", t), ("scratch", s)):
            rows.append({"model": "Base", "scheme": scheme, "fold": fold, "dataset": "FACES", "accuracy": value})
    diff = ch10.tables.scheme_difference(pd.DataFrame(rows), value="accuracy", datasets=["FACES"])
    assert diff["per_fold"] == [4.0, 2.0]
    assert diff["mean"] == pytest.approx(3.0) and diff["sd"] == pytest.approx(np.sqrt(2.0))
    assert diff["low"] < 3.0 < diff["high"]


def test_one_fold_gives_infinite_intervals_and_inconclusive_claims(tmp_path):
    rows = []
    for dataset, (t, s) in {"OULU-CASIA": (90.0, 60.0), "FACES": (50.0, 54.0), "JAFFE": (40.0, 30.0)}.items():
        for scheme, value in (("transfer", t), ("scratch", s)):
            rows.append({"model": "Base", "scheme": scheme, "fold": 0, "dataset": dataset, "accuracy": value})
    accuracies = pd.DataFrame(rows)
    diff = ch10.tables.scheme_difference(accuracies, value="accuracy", datasets=["FACES"])
    assert diff["n_folds"] == 1 and np.isnan(diff["sd"]) and np.isinf(diff["low"]) and np.isinf(diff["high"])
    overlaps = pd.DataFrame([{**{k: r[k] for k in ("model", "scheme", "fold", "dataset")}, "class": "happy",
                              "dice": 0.5, "iou": 0.3} for r in rows])
    results = ch10.study.StudyResults(accuracies=accuracies, training=pd.DataFrame(), cams={}, references={})
    assert {c.verdict for c in ch10.tables.study_claims(results, overlaps)} == {"inconclusive"}


def test_trained_folds_are_the_first_ones_and_checked(tmp_path):
    cfg = _cfg(tmp_path, arabian_folds=3)
    assert list(ch10.study.trained_folds(cfg)) == [0, 1, 2]
    assert list(ch10.study.trained_folds(cfg.replace(arabian_trained_folds=1))) == [0]
    with pytest.raises(ValueError, match="arabian_trained_folds must lie in 1..arabian_folds=3"):
        ch10.study.trained_folds(cfg.replace(arabian_trained_folds=4))


# --------------------------------------------------------------------------- the whole study, tiny

def _tiny_study(root):
    cfg = _cfg(root, arabian_folds=2, arabian_epochs=1, arabian_oulu_subjects=4, arabian_faces_subjects=2,
               arabian_jaffe_subjects=2, arabian_images_per_subject_class=1)
    config.seed_everything(cfg.seed)
    source = models.build_vgg16(8, input_size=cfg.image_size, width=cfg.width, head_units=cfg.head_units, seed=9)
    return cfg, ch10.study.run_study(cfg, models=("CBAM",), source=source, source_id="tiny")


def test_run_study_is_deterministic_and_feeds_the_tables(tmp_path):
    cfg, first = _tiny_study(tmp_path / "a")
    _, second = _tiny_study(tmp_path / "b")
    pd.testing.assert_frame_equal(first.accuracies, second.accuracies)
    for key, cams in first.cams.items():
        np.testing.assert_array_equal(cams, second.cams[key])
    assert len(first.accuracies) == 2 * 2 * 3  # folds x schemes x datasets
    assert set(first.accuracies["dataset"]) == {"OULU-CASIA", "FACES", "JAFFE"}
    assert (cfg.run_dir() / "arabian" / "accuracies.csv").exists()
    # FACES has no surprise class: its class average is NaN there.
    faces_cams = first.cams[("CBAM", "scratch", 0, "FACES")]
    assert np.isnan(faces_cams[ch10.study.SIX_EMOTIONS.index("surprise")]).all()

    overlaps = ch10.gradcam.gradcam_overlap(first)
    assert "surprise" not in set(overlaps.query("dataset == 'FACES'")["class"])
    assert overlaps[["dice", "iou"]].apply(lambda v: v.between(0, 1)).all().all()
    table = ch10.tables.table2(first)
    assert table.shape == (3, 6) and table.loc["FACES"].str.contains("±").sum() == 2  # CBAM only, both schemes
    found = ch10.tables.study_claims(first, overlaps)
    assert [c.verdict in ("holds", "fails", "inconclusive") for c in found] == [True] * 4
    curves = ch10.tables.learning_curves(first)
    epochs = ch10.tables.selected_epochs(first, curves)
    assert epochs == {"selected_epoch_transfer": 1.0, "selected_epoch_scratch": 1.0, "epochs_trained": 1}
    assert len(curves) == 2 * 2 * 1 and set(curves["epoch"]) == {1}  # folds x schemes x epochs
    assert curves["val_macro_recall"].between(0, 1).all()
    from forgetting_aus.plots import ch10_transfer_vs_scratch as plots10

    figure = plots10.learning_curves(curves, models=["CBAM"], chance=100 / 6)
    assert figure.axes[0].get_title() == "CBAM"
    assert {text.get_text() for text in figure.legends[0].get_texts()} == {"transfer learning", "from scratch",
                                                                          "chance"}

    # Cached: a second call in the same folder reads the artifacts back unchanged.
    again = ch10.study.run_study(cfg, models=("CBAM",), source=models.build_vgg16(
        8, input_size=cfg.image_size, width=cfg.width, head_units=cfg.head_units, seed=9), source_id="tiny")
    pd.testing.assert_frame_equal(first.accuracies, again.accuracies)


def test_paper_table2_and_labels_come_from_paper_values():
    from forgetting_aus import paper_values

    assert list(ch10.tables.PAPER_TABLE2) == ch10.tables.dataset_names() == ["OULU-CASIA", "FACES", "JAFFE"]
    for (dataset, scheme), by_model in paper_values.ARABIAN_TABLE2.items():
        assert ch10.tables.PAPER_TABLE2[dataset][scheme] == by_model
    # Stage code only in .study: paper values and the chapter stem live in .tables.
    assert not hasattr(ch10.study, "PAPER_TABLE2") and not hasattr(ch10.study, "CHAPTER")
    assert ch10.tables.CHAPTER == "10_transfer_vs_scratch"


def _study_table(oulu: dict[str, float], unseen: dict[str, float], n_folds: int = 3):
    """Accuracies (%) of every model and scheme per fold; overlaps alike for both schemes."""
    rows = []
    for fold in range(n_folds):
        for model in ch10.study.MODELS:
            for scheme in ch10.study.SCHEMES:
                for dataset, value in (("OULU-CASIA", oulu[scheme]), ("FACES", unseen[scheme]),
                                       ("JAFFE", unseen[scheme] - 5)):
                    rows.append({"model": model, "scheme": scheme, "fold": fold, "dataset": dataset,
                                 "accuracy": value + fold})
    accuracies = pd.DataFrame(rows)
    overlaps = accuracies.assign(**{"class": "happy", "dice": 0.5, "iou": 0.3})
    return ch10.study.StudyResults(accuracies=accuracies, training=pd.DataFrame(), cams={}, references={}), overlaps


def test_no_claim_compares_an_arm_below_its_learnability_floor():
    # the pattern: scratch at chance on OULU (16.7 %), transfer at 84 %
    results, overlaps = _study_table({"transfer": 84.0, "scratch": 20.0}, {"transfer": 60.0, "scratch": 17.0})
    floors = ch10.tables.arm_floors(results.accuracies)
    assert floors["floor"].iloc[0] == pytest.approx(100 / 6 + 20)
    assert not floors.loc["scratch", "met"].any() and floors.loc["transfer", "met"].all()
    assert ch10.tables.floor_numbers(floors)["arms_below"] == "scratch SE, scratch CBAM, scratch Base"
    found = {c.claim_id: c for c in ch10.tables.study_claims(results, overlaps)}
    for claim_id in ("A22-scratch-generalises", "A22-scratch-attends-regions", "A22-transfer-better-on-oulu"):
        assert found[claim_id].verdict == "inconclusive"
        assert found[claim_id].this_run.startswith("not compared: scratch SE, scratch CBAM, scratch Base below the "
                                                   "learnability floor")
    # the drop is measured on the arms that learned: transfer, 84 against 57.5 on average
    assert found["A22-cross-dataset-drop"].verdict == "holds"
    assert "left out: scratch SE" in found["A22-cross-dataset-drop"].this_run


def test_arms_above_their_floor_are_compared_as_before():
    results, overlaps = _study_table({"transfer": 84.0, "scratch": 60.0}, {"transfer": 40.0, "scratch": 50.0})
    found = {c.claim_id: c for c in ch10.tables.study_claims(results, overlaps)}
    assert found["A22-scratch-generalises"].verdict == "holds"  # +10 pp in every fold
    assert found["A22-transfer-better-on-oulu"].verdict == "holds"
    assert "not compared" not in found["A22-scratch-generalises"].this_run


def test_dataset_drops_are_per_set_fold_means_with_t_intervals():
    results, _ = _study_table({"transfer": 84.0, "scratch": 20.0}, {"transfer": 60.0, "scratch": 17.0})
    learned = ch10.tables.learned_accuracies(results)
    assert set(learned["scheme"]) == {"transfer"}  # the scratch arms are below their floor
    drops = ch10.tables.dataset_drops(learned, scheme="transfer")
    # OULU 84 + fold against FACES 60 + fold and JAFFE 55 + fold: constant drops, zero spread
    assert drops.loc["FACES", "mean"] == pytest.approx(24.0) and drops.loc["JAFFE", "mean"] == pytest.approx(29.0)
    assert drops.loc["FACES", "low"] == drops.loc["FACES", "high"] == pytest.approx(24.0)
    assert ch10.tables.dataset_drops(learned, scheme="scratch").empty

    # by hand: per-fold drops 10, 14, 12 -> mean 12, sd 2, t(0.975, 2) * 2 / sqrt(3)
    rows = [{"model": "Base", "scheme": "transfer", "fold": f, "dataset": d, "accuracy": a}
            for f, gap in enumerate((10.0, 14.0, 12.0))
            for d, a in (("OULU-CASIA", 80.0), ("FACES", 80.0 - gap), ("JAFFE", 80.0))]
    drops = ch10.tables.dataset_drops(pd.DataFrame(rows), scheme="transfer")
    half = stats.t.ppf(0.975, 2) * 2.0 / np.sqrt(3)
    assert drops.loc["FACES", ["mean", "low", "high"]].tolist() == pytest.approx([12.0, 12.0 - half, 12.0 + half])
    assert drops.loc["JAFFE", "mean"] == 0.0


def test_shift_numbers_word_follows_the_interval():
    domains = pd.DataFrame({"accuracy": [0.9, 0.5], "low": [0.85, 0.45], "high": [0.95, 0.55]},
                           index=["OULU-CASIA vs. FACES", "OULU-CASIA vs. JAFFE"])
    drops = pd.DataFrame({"mean": [12.0, 1.0], "low": [3.0, -4.0], "high": [21.0, 6.0]}, index=["FACES", "JAFFE"])
    numbers = ch10.tables.shift_numbers(domains, drops)
    assert numbers["domain_accuracy_faces"] == pytest.approx(90.0)
    assert numbers["transfer_drop_word_faces"] == "lower" and numbers["transfer_drop_faces"] == "12.0"
    assert (numbers["transfer_drop_low_faces"], numbers["transfer_drop_high_faces"]) == ("3.0", "21.0")
    assert numbers["transfer_drop_word_jaffe"] == "not measurably different"
    higher = ch10.tables.shift_numbers(domains, drops.assign(low=[-9.0, -9.0], high=[-1.0, -1.0]))
    assert higher["transfer_drop_word_faces"] == "higher"
    missing = ch10.tables.shift_numbers(domains, drops.iloc[:0])
    assert missing["transfer_drop_faces"] == "n/a" and missing["transfer_drop_low_faces"] == "n/a"


def test_domain_classifier_tells_a_tinted_set_and_not_a_set_from_itself():
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 200, (80, 32, 32, 3), dtype=np.uint8)
    tinted = rng.integers(0, 200, (80, 32, 32, 3), dtype=np.uint8)
    tinted[..., 2] += 40  # a blue cast: one linear direction of the thumbnails
    subjects_a, subjects_b = np.repeat(np.arange(20), 4), np.repeat(np.arange(100, 120), 4)
    apart = ch10.domains.domain_separability(colour, subjects_a, tinted, subjects_b, seed=0, pixels=4)
    assert apart["accuracy"] > 0.9 and apart["low"] > 0.5 and apart["n_images"] == 160
    more = rng.integers(0, 200, (80, 32, 32, 3), dtype=np.uint8)
    alike = ch10.domains.domain_separability(colour, subjects_a, more, subjects_b, seed=0, pixels=4)
    assert alike["low"] < 0.5 < alike["high"]
    with pytest.raises(ValueError, match="share subject ids"):
        ch10.domains.domain_separability(colour, subjects_a, more, subjects_a, seed=0)
    with pytest.raises(ValueError, match="S >= 16"):
        ch10.domains.thumbnails(colour[:, :8, :8])


def test_thumbnails_are_block_means():
    image = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    thumb = ch10.domains.thumbnails(image, pixels=2)
    expected = image[0, :2, :2, 0].mean() / 255.0
    assert thumb.shape == (2, 12) and thumb[0, 0] == pytest.approx(expected)


def test_stand_ins_pose_milder_outside_oulu():
    from forgetting_aus import synth

    kwargs = ch10.study.set_kwargs(config.load_config("smoke"))
    assert {k: v["posed_intensity"] for k, v in kwargs.items()} == {"oulu": 1.0, "faces": 0.75, "jaffe": 0.5}
    labels = np.repeat(np.arange(1, 7), 50)
    full, _ = synth.sample_emotion_aus(labels, np.random.default_rng(3))
    mild, _ = synth.sample_emotion_aus(labels, np.random.default_rng(3), posed_intensity=0.5)
    # The same draws: prototype AUs halved, off-prototype AUs unchanged, so milder is never stronger.
    assert (mild <= full + 1e-9).all() and mild.sum() < 0.75 * full.sum()
    with pytest.raises(ValueError, match="posed_intensity"):
        synth.sample_emotion_aus(labels, np.random.default_rng(3), posed_intensity=1.5)


def test_folds_trained_in_worker_processes_equal_those_trained_here(tmp_path):
    def scratch_study(root, workers):
        cfg = _cfg(root, arabian_folds=2, arabian_epochs=1, arabian_oulu_subjects=4, arabian_faces_subjects=2,
                   arabian_jaffe_subjects=2, arabian_images_per_subject_class=1, training_workers=workers)
        config.seed_everything(cfg.seed)
        return cfg, ch10.study.run_study(cfg, models=("SE", "Base"), schemes=("scratch",))

    _, here = scratch_study(tmp_path / "here", 1)
    cfg, workers = scratch_study(tmp_path / "workers", 2)
    pd.testing.assert_frame_equal(here.accuracies, workers.accuracies)
    for key, cams in here.cams.items():
        np.testing.assert_array_equal(cams, workers.cams[key])
    # every run is stored now: a second call trains nothing in workers
    runs = [(m, "scratch", f) for f in range(2) for m in ("SE", "Base")]
    assert ch10.study.train_missing_folds(cfg, runs, source_id=None, n_jobs=2) == 0
