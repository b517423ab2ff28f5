"""Tests of forgetting_aus.models: VGG16 layout, freezing, ImageNet folding, saving, LRP."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from tensorflow import keras

from forgetting_aus import models


def _images(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3)).astype(np.uint8)


def _tiny(**kwargs) -> keras.Model:
    options = dict(input_size=32, width=0.125, seed=0)
    options.update(kwargs)
    return models.build_vgg16(3, **options)


def test_conv_layers_match_keras_vgg16():
    ours = models.build_vgg16(8, input_size=64, width=1.0, seed=0)
    reference = keras.applications.VGG16(include_top=False, weights=None, input_shape=(64, 64, 3))

    def describe(layers):
        return [(lay.name, lay.output_shape, [w.shape for w in lay.weights]) for lay in layers]

    ref_layers = describe(reference.layers[1:])
    our_layers = describe(ours.layers[1:])
    assert our_layers[: len(ref_layers)] == ref_layers
    head = [layer.name for layer in ours.layers[len(ref_layers) + 1 :]]
    assert head == ["flatten", "fc1", "dropout", "predictions", "softmax"]
    assert ours.get_layer("fc1").units == 4096
    assert ours.get_layer("predictions").get_config()["activation"] == "linear"


def test_width_scales_channels_and_head():
    model = models.build_vgg16(2, input_size=64, width=0.125, seed=0)
    filters = [model.get_layer(f"block{b}_conv1").filters for b in range(1, 6)]
    assert filters == [8, 16, 32, 64, 64]
    assert model.get_layer("fc1").units == 512
    assert models.default_head_units(0.001) == 32
    assert model.output_shape == (None, 2)


def test_predictions_are_probabilities_and_seeded():
    x = models.preprocess(_images(4, 32))
    probs = _tiny()(x).numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(probs, _tiny()(x).numpy())
    assert not np.array_equal(probs, _tiny(seed=1)(x).numpy())


def test_preprocess_formula():
    images = _images(2, 4)
    out = models.preprocess(images)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[..., 0], (images[..., 0] - 123.68) / 255, rtol=1e-6)
    assert out.min() >= models.INPUT_LOW.min() and out.max() <= models.INPUT_HIGH.max()
    with pytest.raises(ValueError, match="3 channels"):
        models.preprocess(np.zeros((2, 4, 4, 1), np.uint8))


@pytest.mark.parametrize("n_frozen", range(6))
def test_freeze_blocks_counts_trainable_weights(n_frozen):
    model = models.freeze_blocks(_tiny(), n_frozen)
    for block, (n_convs, _) in enumerate(models.VGG16_BLOCKS, start=1):
        layers = models.block_layers(model, block)
        assert len(layers) == n_convs + 1  # convolutions and the pool
        trainable = sum(len(layer.trainable_weights) for layer in layers)
        assert trainable == (0 if block <= n_frozen else 2 * n_convs)
    head_trainable = sum(
        len(model.get_layer(name).trainable_weights) for name in ("fc1", "predictions")
    )
    assert head_trainable == 4
    assert len(model.trainable_weights) == 4 + 2 * sum(
        n for b, (n, _) in enumerate(models.VGG16_BLOCKS, 1) if b > n_frozen
    )


def test_freeze_blocks_rejects_bad_count():
    with pytest.raises(ValueError, match="0..5"):
        models.freeze_blocks(_tiny(), 6)


def test_reinitialise_block_redraws_only_that_block_and_is_seeded():
    model = _tiny()
    for layer in model.layers:  # non-zero biases, so that zeroing them is visible
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(tf.ones_like(layer.bias))
    before = {w.name: w.numpy().copy() for w in model.weights}
    models.reinitialise_block(model, 5, seed=7)
    for w in model.weights:
        in_block5 = w.name.startswith("block5_conv")
        assert np.array_equal(w.numpy(), before[w.name]) != in_block5, w.name
        if in_block5 and "bias" in w.name:
            assert not w.numpy().any()
    kernel = model.get_layer("block5_conv1").kernel.numpy()
    # A fresh draw of the layer's own initializer: the same scale as the built kernel.
    assert kernel.std() == pytest.approx(before[model.get_layer("block5_conv1").kernel.name].std(), rel=0.3)
    again = models.reinitialise_block(_tiny(), 5, seed=7).get_layer("block5_conv1").kernel.numpy()
    other = models.reinitialise_block(_tiny(), 5, seed=8).get_layer("block5_conv1").kernel.numpy()
    assert np.array_equal(kernel, again) and not np.array_equal(kernel, other)


def test_attention_layers_belong_to_their_block():
    model = _tiny(attention="se")
    assert [layer.name for layer in models.block_layers(model, 3)][-1] == "block3_se"
    names = [layer.name for layer in model.layers]
    assert names.index("block2_se") == names.index("block2_pool") + 1
    assert "block1_se" not in names and "block5_se" not in names


def test_missing_imagenet_weights_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        models.build_vgg16(8, input_size=32, weights="imagenet", seed=0)
    message = str(error.value)
    assert models.IMAGENET_WEIGHTS_FILE in message
    assert str(tmp_path / "models") in message
    assert "keras.applications.VGG16(include_top=False)" in message
    assert "default" in message and "do not need" in message


def test_imagenet_weights_need_full_width():
    with pytest.raises(ValueError, match="width"):
        models.build_vgg16(8, input_size=32, width=0.5, weights="imagenet", seed=0)


def test_imagenet_loading_folds_caffe_preprocessing(tmp_path):
    # A stand-in for the ImageNet file: random weights saved like Keras' notop file.
    reference = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / models.IMAGENET_WEIGHTS_FILE
    reference.save_weights(str(path))
    ours = models.build_vgg16(2, input_size=32, weights=path, seed=0)
    images = _images(3, 32)
    expected = reference.predict(
        keras.applications.vgg16.preprocess_input(images.astype(np.float32)), verbose=0
    )
    got = models.conv_base(ours).predict(models.preprocess(images), verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_conv_base_shares_weights_and_with_new_head_copies():
    model = _tiny()
    base = models.conv_base(model)
    assert base.output_shape == (None, 1, 1, 64)
    assert base.get_layer("block1_conv1") is model.get_layer("block1_conv1")
    fresh = models.with_new_head(model, 5, head_units=32, seed=7)
    assert fresh.output_shape == (None, 5) and fresh.get_layer("fc1").units == 32
    assert fresh.get_layer("block4_conv2") is not model.get_layer("block4_conv2")
    np.testing.assert_array_equal(
        fresh.get_layer("block4_conv2").get_weights()[0],
        model.get_layer("block4_conv2").get_weights()[0],
    )
    assert all(layer.trainable for layer in fresh.layers)


def test_without_softmax_gives_logits():
    model = _tiny()
    x = models.preprocess(_images(2, 32))
    logits = models.without_softmax(model)(x).numpy()
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), model(x).numpy(), rtol=1e-5)


def test_save_load_roundtrip_is_atomic(tmp_path):
    model = _tiny(attention="cbam")
    path = models.save_model(model, tmp_path / "sub" / "model.keras")
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.keras"]
    loaded = models.load_model(path)
    x = models.preprocess(_images(2, 32))
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    with pytest.raises(ValueError, match=".keras"):
        models.save_model(model, tmp_path / "model.h5")


def test_load_model_equals_keras_loader(tmp_path, monkeypatch):
    """The fast loader gives Keras' own model: weights, config, trainable flags; draws stay random."""
    # A private temporary folder: the check below must see only this loader's leftovers,
    # not those of a run killed or running elsewhere on the machine.
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    model = _tiny(attention="se")
    models.freeze_blocks(model, 2)
    path = models.save_model(model, tmp_path / "model.keras")
    ours, theirs = models.load_model(path), tf.keras.models.load_model(path, compile=False)
    for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert ours.get_config() == theirs.get_config()
    assert [layer.trainable for layer in ours.layers] == [layer.trainable for layer in theirs.layers]
    assert not any(name.startswith("forgetting-aus-load-") for name in os.listdir(private_tmp))
    # The initial draws are skipped only while loading: a new layer still draws random weights.
    dense = tf.keras.layers.Dense(4, kernel_initializer="he_normal")
    dense.build((None, 8))
    assert np.abs(dense.kernel.numpy()).sum() > 0
    with pytest.raises(FileNotFoundError, match="save_model"):
        models.load_model(tmp_path / "missing.keras")


def test_to_float32_preserves_predictions():
    model = _tiny(dtype_policy="mixed_bfloat16")
    assert model.get_layer("block1_conv1").compute_dtype == "bfloat16"
    exported = models.to_float32(model)
    assert all(layer.compute_dtype == "float32" for layer in exported.layers)
    assert [w.dtype for w in exported.weights] == [tf.float32] * len(exported.weights)
    x = models.preprocess(_images(8, 32))
    np.testing.assert_allclose(exported(x).numpy(), model(x).numpy(), atol=0.02)
    for a, b in zip(model.get_weights(), exported.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


LRP_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf
    tf.compat.v1.disable_eager_execution()
    from tensorflow import keras
    from innvestigate.analyzer import LRP
    from forgetting_aus import models

    model = models.load_model(sys.argv[1])
    scores = models.without_softmax(model)
    rules = [
        (lambda layer: isinstance(layer, keras.layers.Dense), "Z"),
        (lambda layer: isinstance(layer, keras.layers.Conv2D), "ZPlus"),
    ]
    analyzer = LRP(scores, rule=rules)
    x = np.load(sys.argv[2])
    relevance = analyzer.analyze(x)
    logits = scores.predict(x)
    assert relevance.shape == x.shape, relevance.shape
    assert np.isfinite(relevance).all()
    np.save(sys.argv[3], np.stack([relevance.sum(axis=(1, 2, 3)), logits.max(axis=1)]))
    """
)


def test_saved_model_runs_lrp_in_graph_mode_subprocess(tmp_path):
    model = models.to_float32(_tiny(dtype_policy="mixed_bfloat16"))
    path = models.save_model(model, tmp_path / "model.keras")
    x = models.preprocess(_images(2, 32))
    np.save(tmp_path / "x.npy", x)
    script = tmp_path / "lrp.py"
    script.write_text(LRP_SCRIPT)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, str(script), str(path), str(tmp_path / "x.npy"), str(tmp_path / "r.npy")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    relevance_sum, top_logit = np.load(tmp_path / "r.npy")
    # Conservation: with zero biases at init, relevance sums to the explained score.
    np.testing.assert_allclose(relevance_sum, top_logit, rtol=1e-3, atol=1e-5)
