"""The pipeline end to end at tiny scale: twins round-trip through the readers, the
`paper` profile's code paths run, and the same seed gives the same Table 1."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from forgetting_aus import (
    cache,
    concepts,
    config,
    datasets,
    evaluation,
    facs,
    losses,
    models,
    pipeline,
    synth,
    training,
    truth_audit,
)
from forgetting_aus.chapters import ch01_datasets as ch01
from forgetting_aus.chapters import ch02_emotion_model as ch02


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    root = tmp_path_factory.mktemp("twins")
    return {
        "affectnet": synth.write_affectnet_twin(root / "affectnet", n_train=80, n_test_per_class=2, image_size=48, seed=3),
        "unbc": synth.write_unbc_twin(root / "unbc", n_subjects=3, sequences_per_subject=2, frames_per_sequence=12,
                                      image_size=48, seed=3),
        "ckplus": synth.write_ckplus_twin(root / "ckplus", n_subjects=4, sequences_per_subject=2,
                                          frames_per_sequence=3, image_size=48, seed=3),
    }


def test_twins_round_trip_through_the_readers(twins):
    # Read as the release: no subject ids, no AU coding.
    as_released = datasets.read_affectnet(twins["affectnet"])
    assert as_released["subject"].isna().all() and as_released[list(facs.AU_NAMES)].isna().all().all()
    affectnet = datasets.read_affectnet(twins["affectnet"], truth=synth.truth_root(twins["affectnet"]))
    assert set(affectnet["label"]) <= set(range(len(facs.EMOTIONS)))
    assert affectnet[list(facs.AU_NAMES)].notna().all().all(), "the twin's AU truth must be joined when named"
    test = affectnet[affectnet["split"] == "test"]
    assert np.bincount(test["label"], minlength=8).tolist() == [2] * 8

    unbc = datasets.read_unbc(twins["unbc"])
    assert len(unbc) == 3 * 2 * 12
    # PSPI written to Frame_Labels/PSPI equals PSPI computed from the written FACS files.
    np.testing.assert_allclose(unbc["pspi"].to_numpy(), facs.pspi(unbc[list(facs.AU_NAMES)].to_numpy()))
    assert datasets.landmarks_array(unbc).shape == (len(unbc), 68, 2)

    ckplus = datasets.read_ckplus(twins["ckplus"])
    peaks = datasets.ckplus_peak_frames(ckplus)
    assert len(peaks) == 4 * 2 and peaks[list(facs.AU_NAMES)].notna().all().all()

    subjects = [set(affectnet["subject"].astype(str)), set(unbc["subject"].astype(str)), set(ckplus["subject"].astype(str))]
    assert not (subjects[0] & subjects[1]) and not (subjects[1] & subjects[2])


def test_paper_profile_code_paths_one_batch_at_224(twins):
    """One training batch as the `paper` profile runs it: 224 px, full-width VGG16,
    class-balanced focal loss with gamma 5 and beta 0.99998, then a pain head with gamma 2."""
    paper = config.load_config("paper")
    assert (paper.image_size, paper.width, paper.cb_beta, paper.emotion_gamma, paper.pain_gamma) == (224, 1.0, 0.99998, 5.0, 2.0)
    index = datasets.read_affectnet(twins["affectnet"]).head(4)
    images, _ = datasets.load_faces(index, size=paper.image_size, crop="box")
    labels = index["label"].to_numpy()
    weights = losses.class_balanced_weights([134415, 74874, 25459, 14090, 6378, 3803, 24882, 3750], beta=paper.cb_beta)
    model = models.build_vgg16(8, input_size=paper.image_size, width=paper.width, head_units=paper.head_units, seed=0)
    history = training.fit_classifier(model, (images, labels), (images, labels),
                                      loss=losses.focal_loss(gamma=paper.emotion_gamma, class_weights=weights),
                                      epochs=1, batch_size=4, learning_rate=paper.learning_rate, momentum=paper.momentum,
                                      augment="flip", seed=0, progress=False)
    assert np.isfinite(history["loss"][0])
    pain = models.with_new_head(history["model"], 2, head_units=64, seed=1)
    models.freeze_blocks(pain, 3)
    pain_history = training.fit_classifier(pain, (images, labels % 2), (images, labels % 2),
                                           loss=losses.focal_loss(gamma=paper.pain_gamma), epochs=1, batch_size=4,
                                           learning_rate=paper.learning_rate, augment="pain", seed=0, progress=False)
    assert np.isfinite(pain_history["loss"][0])


def _table1_of_run(results_dir: Path, *, data_jobs: int):
    cfg = config.load_config("smoke", overrides={"results_dir": str(results_dir)})
    config.seed_everything(cfg.seed)
    pipeline.prepare_data(cfg, n_jobs=data_jobs)
    test = pipeline.pain_data(cfg)["test"]
    outputs = {pipeline.model_name(k): pipeline.pain_model(cfg, k).predictions() for k in (5, 0)}
    predictions = {name: output["y_pred"] for name, output in outputs.items()}
    probabilities = np.stack([output["probabilities"] for output in outputs.values()])
    retrained = pipeline.retrained_models(cfg, n_jobs=data_jobs)
    retrained_probabilities = np.stack([trained.predictions()["probabilities"] for trained in retrained.values()])
    table = evaluation.table1(predictions, test.labels, class_names=pipeline.PAIN_CLASSES)
    return table, probabilities, retrained_probabilities


@pytest.mark.slow
def test_same_seed_same_table1(tmp_path):
    """Same seed, same Table 1 and re-trained heads, whether made in one process or in two."""
    first, first_probabilities, first_retrained = _table1_of_run(tmp_path / "a", data_jobs=1)
    second, second_probabilities, second_retrained = _table1_of_run(tmp_path / "b", data_jobs=2)
    np.testing.assert_array_equal(first_retrained, second_retrained)
    assert first.equals(second)
    # The probabilities are continuous, so this catches non-determinism that a
    # degenerate smoke model's identical predictions would hide.
    np.testing.assert_array_equal(first_probabilities, second_probabilities)


def test_save_trained_writes_what_trained_reads(tmp_path):
    """The one model writer (pipeline stages and chapter 08's controls): model, history, predictions."""
    model = models.build_vgg16(3, input_size=32, width=1 / 16, head_units=8, dropout=0.0, seed=0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (5, 32, 32, 3)).astype(np.uint8)
    test = pipeline.Split(images=images, labels=np.zeros(5, dtype=np.int64), landmarks=np.zeros((5, 68, 2), np.float32),
                          groups=np.full(5, ""), aus=np.zeros((5, 18), np.float32))
    info = pipeline.save_trained(tmp_path, model, {"best_epoch": 2, "best_score": 0.5}, test)
    assert info == {"best_epoch": 2, "best_score": 0.5}
    trained = pipeline.Trained(tmp_path)
    assert trained.history() == {"best_epoch": 2, "best_score": 0.5}
    predictions = trained.predictions()
    expected = model.predict(models.preprocess(images), batch_size=256, verbose=0)
    np.testing.assert_array_equal(predictions["probabilities"], expected)
    np.testing.assert_array_equal(predictions["y_pred"], expected.argmax(axis=1))
    np.testing.assert_array_equal(trained.load().predict(models.preprocess(images), verbose=0), expected)
    assert pipeline.save_trained(tmp_path, model, {}, test) == {"best_epoch": None, "best_score": None}


def test_world_hardness_verdict_follows_the_stated_bar():

    bar = ch02.HARD_ENOUGH_MARGIN
    assert ch02.world_hardness_verdict(bar).startswith("far above")
    assert ch02.world_hardness_verdict(bar - 0.01).startswith("not far above")
    assert ch02.world_hardness_verdict(0.15, bar=0.1).startswith("far above")
    assert "synthetic pain task" in ch02.world_hardness_verdict(0.3, task="pain")


def test_world_hardness_takes_the_better_baseline_of_the_task():
    import pandas as pd

    baselines = pd.DataFrame({"task": ["emotion (8 classes)"] * 2 + ["pain (2 classes)"] * 2,
                              "baseline": ["pixels_8x8", "region_means"] * 2,
                              "macro_recall": [0.55, 0.40, 0.60, 0.70]})
    pain = ch02.world_hardness(baselines, 0.85, task="pain")
    assert pain["best_baseline"] == 0.70
    assert pain["margin"] == pytest.approx(0.15)
    assert pain["verdict"].startswith("not far above")
    emotion = ch02.world_hardness(baselines, 0.80, task="emotion")
    assert emotion["margin"] == pytest.approx(0.25) and emotion["verdict"].startswith("far above")
    with pytest.raises(ValueError, match="no trivial baseline for task 'speech'"):
        ch02.world_hardness(baselines, 0.9, task="speech")


def test_a_real_data_profile_never_falls_back_to_the_twins(tmp_path, monkeypatch):
    from forgetting_aus.datasets import DatasetNotFoundError

    monkeypatch.delenv("FORGETTING_AUS_UNBC", raising=False)
    cfg = config.load_config("smoke", overrides={"results_dir": str(tmp_path), "data_source": "real"})
    with pytest.raises(DatasetNotFoundError, match="unbc_root"):
        pipeline.dataset_root(cfg, "unbc")
    assert not (cfg.run_dir() / "twin_unbc").exists()


def test_the_real_path_skips_and_counts_a_truncated_image_or_names_it(tmp_path, monkeypatch):
    from fixtures_release import affectnet_line, write_affectnet

    from forgetting_aus.datasets import ImageLoadError

    training = [affectnet_line(f"1/t{i}.png", code=i % 4) for i in range(12)]
    root = write_affectnet(tmp_path / "AffectNet", training=training, lists_at="release", validation_header=False)
    broken = root / "Manually_Annotated_Images" / "1" / "t5.png"
    broken.write_bytes(broken.read_bytes()[:40])  # a truncated file, as the release holds a few
    monkeypatch.delenv("FORGETTING_AUS_AFFECTNET", raising=False)
    overrides = {"results_dir": str(tmp_path / "results"), "data_source": "real", "affectnet_root": str(root),
                 "affectnet_val_rows": 2, "bad_images": "skip"}
    cfg = config.load_config("smoke", overrides=overrides)
    folder = pipeline._emotion_data_folder(cfg)
    info = cache.read_json(folder / cache.MANIFEST)["info"]
    assert sum(info["sizes"].values()) == 12 + 2 - 1
    assert [Path(p).name for p in info["image_report"]["skipped_paths"]["unreadable or truncated image"]] == ["t5.png"]
    assert "validation.csv has no header line" in info["read_report"]["text"]  # detected and reported
    failing = config.load_config("smoke", overrides={**overrides, "bad_images": "fail"})
    with pytest.raises(ImageLoadError, match="t5.png"):
        pipeline._emotion_data_folder(failing)


def test_the_studys_data_stages_read_twins_as_releases_and_open_no_ground_truth(tmp_path):
    """Chapters 01-07 get their data only from these stages: they never open a twin's truth folder."""
    cfg = config.load_config("smoke", overrides={"results_dir": str(tmp_path)})
    truths = [pipeline.twin_truth(cfg, kind) for kind in ("affectnet", "unbc", "ckplus")]
    assert all(folder.is_dir() for folder in truths)
    for kind in ("affectnet", "unbc", "ckplus"):
        root = pipeline.dataset_root(cfg, kind)[0]
        assert not any(path.name in ("au_intensities.csv", "subjects.csv") for path in root.rglob("*.csv"))

    # The reads run in a fresh process with the project's ground-truth audit on, as the book's kernels do.
    record = tmp_path / "opened.tsv"
    code = ("from forgetting_aus import config, pipeline; from forgetting_aus.chapters import ch01_datasets as ch01, "
            f"ch02_emotion_model as ch02; cfg = config.load_config('smoke', overrides={{'results_dir': {str(tmp_path)!r}}}); "
            "pipeline.emotion_data(cfg), pipeline.pain_data(cfg), pipeline.ckplus_data(cfg), pipeline.pain_test_meta(cfg); "
            "ch01.dataset_sizes(cfg), ch01.au_roles(cfg), ch01.ckplus_cooccurrence(cfg), ch01.trivial_baselines(cfg); "
            "ch02.training_set(cfg)")
    subprocess.run([sys.executable, "-c", code], env={**os.environ, truth_audit.AUDIT_ENV: str(record)}, check=True)
    assert truth_audit.opened(record) == []
    emotion = pipeline.emotion_data(cfg)
    assert all((split.groups == "").all() and np.isnan(split.aus).all() for split in emotion.values())
    baselines = ch01.trivial_baselines(cfg).set_index("task")["held_out_by"]
    assert set(baselines["emotion (8 classes)"]) == {"stratified rows (no subject ids)"}
    assert set(baselines["pain (2 classes)"]) == {"subject"}
    assert ch02.training_set(cfg)["validation_split"] == "rows stratified by class (AffectNet has no subject ids)"


def test_twin_truth_exists_only_for_the_synthetic_world(tmp_path):
    real = config.load_config("paper", overrides={"results_dir": str(tmp_path)})
    with pytest.raises(ValueError, match=r"only for the synthetic twins.*cfg.synthetic_world\(\)"):
        pipeline.twin_truth(real, "affectnet")
    world = real.synthetic_world()
    assert world.data_source == "twins" and world.affectnet_val_rows is None  # 14 382 rows are real AffectNet's
    assert world.replace(data_source="real", affectnet_val_rows=real.affectnet_val_rows) == real
    default = config.load_config("default")
    assert default.synthetic_world() is default


def test_stored_model_deletes_checkpoints_once_the_model_is_stored_and_keeps_them_on_failure(tmp_path):
    cfg = config.load_config("smoke", overrides={"results_dir": str(tmp_path)})
    checkpoints = tmp_path / "checkpoints" / "run"

    def fails(folder):
        (checkpoints / "epoch_1").mkdir(parents=True)
        raise KeyboardInterrupt  # a run killed mid-training

    with pytest.raises(KeyboardInterrupt):
        pipeline.stored_model(cfg, "emotion_model", {"x": 1}, fails, checkpoints=checkpoints)
    assert (checkpoints / "epoch_1").is_dir(), "a killed run keeps its checkpoints, so it resumes"

    def trains(folder):
        assert (checkpoints / "epoch_1").is_dir()  # the resumed run finds them
        cache.write_json(folder / "history.json", {})
        return {}

    folder = pipeline.stored_model(cfg, "emotion_model", {"x": 1}, trains, checkpoints=checkpoints)
    assert (folder / "history.json").is_file() and not checkpoints.exists()
    assert not checkpoints.parent.exists(), "an emptied stage folder of checkpoints goes too"


def test_models_trained_without_op_determinism_are_marked_in_their_key_and_others_keep_theirs(tmp_path):
    deterministic = config.load_config("smoke", overrides={"results_dir": str(tmp_path)})
    free = deterministic.replace(deterministic_ops=False)

    def trains(folder):
        cache.write_json(folder / "history.json", {})
        return {}

    kept = pipeline.stored_model(deterministic, "emotion_model", {"x": 1}, trains)
    marked = pipeline.stored_model(free, "emotion_model", {"x": 1}, trains)
    assert kept.name == pipeline.store(deterministic).key("emotion_model", {"x": 1})
    assert marked.name == pipeline.store(free).key("emotion_model", {"x": 1, "nondeterministic_ops": True})
    assert marked != kept


def test_twins_with_release_quirks_are_read_as_the_releases_would_be(tmp_path):
    """Lists in their folder, a header-less validation.csv, a truncated image, an upper-case
    extension, CK+ AUs listed with intensity 0: read, reported, skipped with the path, or positive."""
    affectnet = synth.write_affectnet_twin(tmp_path / "affectnet", n_train=40, n_test_per_class=1, image_size=32,
                                           seed=1, release_quirks=True)
    assert not (affectnet / "training.csv").exists()
    lists = affectnet / "Manually_Annotated_file_lists"
    assert not (lists / "validation.csv").read_text().startswith("subDirectory_filePath")
    report = datasets.ReadReport(dataset="AffectNet")
    index = datasets.read_affectnet(affectnet, report=report)
    assert "validation.csv has no header line" in str(report) and "differently-cased extension" in str(report)
    images = datasets.ReadReport(dataset="AffectNet images")
    split = pipeline.split_from_index(index, size=32, crop="box", on_error="skip", report=images)
    truncated = images.skipped_paths["unreadable or truncated image"]
    assert len(split) == len(index) - 1 and [Path(p).name for p in truncated] == ["train_000000.png"]
    with pytest.raises(datasets.ImageLoadError, match="train_000000.png"):
        pipeline.split_from_index(index, size=32, crop="box")
    # Decoded straight into the store's memory-mapped file (cut to the rows loaded), saved
    # without a second copy of the images, read back memory-mapped: the same split.
    stored = pipeline.split_from_index(index, size=32, crop="box", on_error="skip", n_jobs=2,
                                       images_file=pipeline.split_images_file(tmp_path, "train"))
    pipeline.save_split(tmp_path, "train", stored)
    loaded = pipeline.load_split(tmp_path, "train")
    assert isinstance(loaded.images, np.memmap) and not loaded.images.flags.writeable
    for field in ("images", "labels", "landmarks", "groups", "aus", "present"):
        np.testing.assert_array_equal(getattr(loaded, field), getattr(split, field))
    assert "images" not in np.load(tmp_path / "train.npz").files

    ckplus = synth.write_ckplus_twin(tmp_path / "ckplus", n_subjects=6, sequences_per_subject=2, frames_per_sequence=2,
                                     image_size=32, seed=1, release_quirks=True)
    peaks = datasets.ckplus_peak_frames(datasets.read_ckplus(ckplus))
    present, intensity = datasets.au_presence(peaks), peaks[list(facs.AU_NAMES)].to_numpy()
    uncoded = (present == 1) & (intensity == 0)
    assert uncoded.sum() >= 1, "some AUs are listed with intensity 0"
    labels = concepts.au_labels(present, min_per_class=1)
    for i, j in np.argwhere(uncoded):  # a probe's label of an AU listed with intensity 0 is "present"
        rows, y = labels[facs.AU_CODES[j]]
        assert y[list(rows).index(i)] == 1


def test_the_truth_audit_records_a_read_of_the_ground_truth_in_a_fresh_process(tmp_path):
    truth = tmp_path / "twin-truth"
    truth.mkdir()
    (truth / "au_intensities.csv").write_text("x\n")
    (tmp_path / "release.csv").write_text("y\n")
    record = tmp_path / "opened.tsv"
    env = {**os.environ, truth_audit.AUDIT_ENV: str(record), truth_audit.CHAPTER_ENV: "99_demo"}
    code = (f"import forgetting_aus; open({str(tmp_path / 'release.csv')!r}).read(); "
            f"open({str(truth / 'subjects.csv')!r}, 'w').write('written, not read'); "
            f"from forgetting_aus import cache; cache._sha256_file(__import__('pathlib').Path({str(truth / 'subjects.csv')!r})); "
            f"open({str(truth / 'au_intensities.csv')!r}).read()")
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    assert truth_audit.opened(record) == [("99_demo", str(truth / "au_intensities.csv"))]


def test_read_only_load_is_shared_and_equals_a_fresh_load(tmp_path):
    from forgetting_aus import models

    model = models.build_vgg16(2, input_size=32, width=0.0625, head_units=8, seed=0)
    models.save_model(model, tmp_path / "model.keras")
    trained = pipeline.Trained(tmp_path)
    shared = trained.load_read_only()
    assert pipeline.Trained(tmp_path).load_read_only() is shared  # read from disk once
    fresh = trained.load()
    assert fresh is not shared
    for a, b in zip(shared.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_float16_features_give_chapter_04_the_same_recalls_at_smoke_scale(tmp_path):
    """The paper profile caches block-5 features as float16: the re-trained heads' recalls match float32's.

    At smoke scale the heads barely learn, so this checks the float16 path end to end more
    than it measures equivalence; ``scripts/bench.py``'s ``feature_dtype`` item compares
    the two on the default run's features (README).
    """
    from forgetting_aus.chapters import ch04_measuring_forgetting as ch04

    cfg = config.load_config("smoke", overrides={"results_dir": str(tmp_path)})
    config.seed_everything(cfg.seed)
    recalls = {dtype: ch04.retrained_recalls(cfg.replace(feature_dtype=dtype)).set_index(
        ["model", "repetition", "emotion"])["recall"] for dtype in ("float32", "float16")}
    halves = {path.parent.name for path in tmp_path.rglob("FreezeB0_train.npy")
              if np.load(path, mmap_mode="r").dtype == np.float16}
    assert len(halves) == 1, "one feature artifact of each dtype"
    difference = (recalls["float16"] - recalls["float32"]).abs()
    assert difference.max() <= 0.05, difference[difference > 0.05]
