"""Profiles load into a typed frozen config; bad knobs are rejected with a useful message."""

import dataclasses
import random

import numpy as np
import pytest

from forgetting_aus import config


@pytest.mark.parametrize("profile", ["default", "smoke", "paper"])
def test_every_profile_loads(profile):
    cfg = config.load_config(profile)
    assert cfg.profile == profile
    assert cfg.image_size > 0 and 0 < cfg.width <= 1


def test_default_profile_pins_every_knob():
    values = config.read_profile("default")
    missing = set(config.FIELDS) - set(values)
    assert not missing, f"params/default.yml must pin every knob; missing {sorted(missing)}"


def test_config_is_frozen():
    cfg = config.load_config("default")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1


def test_inherit_and_overrides():
    smoke = config.load_config("smoke")
    default = config.load_config("default")
    assert smoke.learning_rate == default.learning_rate  # inherited
    assert smoke.image_size != default.image_size  # overridden
    assert config.load_config("smoke", overrides={"image_size": 48}).image_size == 48


def test_unknown_knob_is_rejected_with_suggestion(tmp_path):
    path = tmp_path / "typo.yml"
    path.write_text("inherit: default\npain_epoch: 3\n")
    with pytest.raises(KeyError, match="did you mean 'pain_epochs'"):
        config.load_config(path)


def test_wrong_type_is_rejected(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("inherit: default\nimage_size: big\n")
    with pytest.raises(TypeError, match="'image_size' must be int"):
        config.load_config(path)


def test_int_accepted_for_float_and_bool_not_for_int():
    cfg = config.load_config("default", overrides={"learning_rate": 1})
    assert isinstance(cfg.learning_rate, float)
    with pytest.raises(TypeError):
        config.load_config("default", overrides={"seed": True})


def test_missing_profile_lists_available():
    with pytest.raises(FileNotFoundError, match="available profiles"):
        config.load_config("nonexistent")


def test_knobs_from_namespace_picks_only_knobs():
    namespace = {"seed": 3, "profile": "x", "np": np, "pain_epochs": 2}
    assert config.knobs_from(namespace) == {"seed": 3, "pain_epochs": 2}


def test_seed_everything_is_reproducible():
    config.seed_everything(7)
    first = (random.random(), np.random.rand())
    config.seed_everything(7)
    assert (random.random(), np.random.rand()) == first


def test_seed_everything_switches_op_determinism_both_ways():
    from tensorflow.python.framework import config as tf_config

    try:
        config.seed_everything(7, deterministic=False)
        assert not tf_config.is_op_determinism_enabled()
        config.seed_everything(7, deterministic=True)
        assert tf_config.is_op_determinism_enabled()
    finally:
        config.seed_everything(7)


def test_replace_validates():
    cfg = config.load_config("default")
    assert cfg.replace(seed=5).seed == 5
    with pytest.raises(KeyError):
        cfg.replace(nonsense=1)


def test_paper_smoke_keeps_the_papers_shapes_and_optimiser_and_asks_for_the_preflight():
    paper, smoke = config.load_config("paper"), config.load_config("paper-smoke")
    same = ("image_size", "width", "head_units", "imagenet_weights", "learning_rate", "momentum", "emotion_gamma",
            "pain_gamma", "cb_beta", "dropout", "bad_images", "mixed_precision")
    assert smoke.subset(same) == paper.subset(same)
    assert smoke.preflight and smoke.smoke_weights and not paper.smoke_weights and smoke.twin_release_quirks
    assert (smoke.emotion_epochs, smoke.pain_epochs, smoke.retrain_epochs, smoke.retrain_seeds) == (1, 1, 1, 1)
    assert smoke.keras_home.startswith(f"{smoke.results_dir}/paper-smoke/")
