"""The preflight: every missing piece of a real-data run is named with its fix, in seconds."""

import inspect
import subprocess
import sys

import pytest

from forgetting_aus import config, models, preflight


def paper_config(tmp_path, **changes):
    return config.load_config("paper", overrides={"results_dir": str(tmp_path / "results"), **changes})


@pytest.fixture
def no_dataset_env(monkeypatch, tmp_path):
    for _, env_var, _ in preflight.RELEASE_LAYOUT.values():
        monkeypatch.delenv(env_var, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))


def release_tree(root):
    """Empty folders and label lists laid out as the three releases ship."""
    affectnet = root / "AffectNet"
    (affectnet / "Manually_Annotated_Images").mkdir(parents=True)
    lists = affectnet / "Manually_Annotated_file_lists"
    lists.mkdir()
    header = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n"
    (lists / "training.csv").write_text(header)
    # many copies of validation.csv have no header line: the first row is data
    (lists / "validation.csv").write_text("1/a.jpg,0,0,10,10," + ";".join(["1"] * 136) + ",1,0.5,0.2\n")
    for folder in ("Images", "Frame_Labels/PSPI", "Frame_Labels/FACS", "AAM_landmarks"):
        (root / "UNBC" / folder).mkdir(parents=True)
    for folder in ("cohn-kanade-images", "FACS", "Emotion", "Landmarks"):
        (root / "CKplus" / folder).mkdir(parents=True)
    return {"affectnet_root": str(affectnet), "unbc_root": str(root / "UNBC"), "ckplus_root": str(root / "CKplus")}


def test_twins_profiles_need_no_preflight():
    assert preflight.check(config.load_config("default")) == []


def test_without_datasets_or_weights_every_item_is_reported_with_its_fix(tmp_path, no_dataset_env):
    cfg = paper_config(tmp_path, allow_cpu=True)
    text = preflight.report(cfg, preflight.check(cfg))
    for name in ("AffectNet", "UNBC-McMaster", "CK+"):
        assert f"{name}: no folder given" in text
    for knob in ("affectnet_root", "unbc_root", "ckplus_root"):
        assert f"set '{knob}' in params/paper.yml" in text
    assert "ImageNet VGG16 weights missing" in text and "never downloads" in text


def test_a_wrong_weights_file_is_named_with_the_expected_hash(tmp_path, no_dataset_env):
    path = models.imagenet_weights_path(must_exist=False)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not the weights")
    problems = preflight.check_weights(paper_config(tmp_path))
    assert len(problems) == 1
    assert str(path) in problems[0].what and models.IMAGENET_WEIGHTS_MD5 in problems[0].what
    assert preflight.file_md5(path) in problems[0].what


def test_the_expected_hash_is_the_one_keras_publishes():
    from keras.src.applications import vgg16

    assert f'file_hash="{models.IMAGENET_WEIGHTS_MD5}"' in inspect.getsource(vgg16)


def test_a_release_tree_passes_the_dataset_checks(tmp_path, no_dataset_env):
    cfg = paper_config(tmp_path, **release_tree(tmp_path))
    assert [p for knob in preflight.RELEASE_LAYOUT for p in preflight.check_dataset(cfg, knob)] == []


def test_an_extra_folder_level_from_unzipping_is_named(tmp_path, no_dataset_env):
    roots = release_tree(tmp_path / "unzipped")
    cfg = paper_config(tmp_path, unbc_root=str(tmp_path / "unzipped"))  # one level too high
    problems = preflight.check_dataset(cfg, "unbc_root")
    assert problems and all(f"set unbc_root to {roots['unbc_root']}" in p.fix for p in problems)


def test_no_accelerator_is_refused_unless_the_cpu_is_allowed(tmp_path):
    refused = preflight.check_accelerator(paper_config(tmp_path), devices=[])
    assert len(refused) == 1 and "tensorflow[and-cuda]==2.14.1" in refused[0].fix and "allow_cpu=true" in refused[0].fix
    assert preflight.check_accelerator(paper_config(tmp_path, allow_cpu=True), devices=[]) == []
    assert preflight.check_accelerator(paper_config(tmp_path), devices=["/physical_device:GPU:0"]) == []


def test_disk_and_memory_are_compared_with_the_estimate(tmp_path):
    cfg = paper_config(tmp_path)
    needs = preflight.estimated_needs(cfg)
    # at the paper's scale the features of six models in two orientations dominate
    assert needs["disk"] > needs["memory"] > 1
    short = preflight.check_resources(cfg, free_disk=needs["disk"] / 2, free_memory=needs["memory"] / 2)
    assert [p.what.split(":")[0] for p in short] == [f"free disk under {tmp_path}", "available memory"]
    assert preflight.check_resources(cfg, free_disk=needs["disk"] * 2, free_memory=needs["memory"] * 2) == []


def test_the_command_exits_non_zero_with_one_report(tmp_path, no_dataset_env):
    result = subprocess.run([sys.executable, "-m", "forgetting_aus.preflight", "--profile", "paper",
                             "--set", f"results_dir={tmp_path / 'results'}", "--set", "allow_cpu=true"],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "problem(s) to fix before the run can start" in result.stderr


def smoke_config(tmp_path, **changes):
    results = tmp_path / "results"
    return config.load_config("paper-smoke", overrides={"results_dir": str(results),
                                                        "keras_home": str(results / "paper-smoke" / "keras"), **changes})


def test_the_paper_smoke_weights_are_keras_layout_random_values_the_paper_profile_refuses(tmp_path, no_dataset_env):
    from forgetting_aus import pipeline

    smoke = smoke_config(tmp_path)
    assert preflight.check_weights(smoke) == []  # writes the stand-in into the run folder's Keras home
    path = pipeline.imagenet_weights_file(smoke)
    assert path.is_relative_to(smoke.run_dir()) and path.name == models.IMAGENET_WEIGHTS_FILE
    # The exact Keras layout: Keras' own VGG16 loads it, and so does the paper's model builder.
    model = models.build_vgg16(2, input_size=32, width=1.0, head_units=8, weights=path, seed=0)
    assert model.get_layer("block5_conv3").get_weights()[0].shape == (3, 3, 512, 512)
    # The paper profile, pointed at that very file, names it and the published hash.
    problems = preflight.check_weights(paper_config(tmp_path, keras_home=str(path.parent.parent)))
    assert len(problems) == 1 and str(path) in problems[0].what and models.IMAGENET_WEIGHTS_MD5 in problems[0].what


def test_smoke_weights_are_never_written_into_a_keras_home_outside_the_run_folder(tmp_path, no_dataset_env):
    from forgetting_aus import pipeline

    outside = smoke_config(tmp_path, keras_home=str(tmp_path / "keras"))
    with pytest.raises(ValueError, match="must lie inside the run folder .*never the user's Keras home"):
        pipeline.imagenet_weights_file(outside)
    assert [p.what for p in preflight.check_weights(outside)] and not (tmp_path / "keras").exists()


def test_the_paper_smoke_preflight_checks_the_twins_as_releases(tmp_path, no_dataset_env):
    cfg = smoke_config(tmp_path, affectnet_n_train=16, affectnet_test_per_class=1, unbc_subjects=3, ckplus_subjects=2)
    assert preflight.wanted(cfg) and not preflight.wanted(config.load_config("default"))
    problems = preflight.check(cfg)
    assert problems == [], preflight.report(cfg, problems)
    assert "random smoke weights" in preflight.report(cfg, problems)
