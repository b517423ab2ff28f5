"""Tests of forgetting_aus.attention: SE and CBAM layers."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from forgetting_aus import attention, models

X = np.random.default_rng(0).normal(size=(2, 6, 5, 8)).astype(np.float32)


@pytest.mark.parametrize("kind", ["se", "cbam"])
def test_output_shape_equals_input_shape(kind):
    layer = attention.make_attention(kind, name="a", reduction=4, seed=0)
    assert layer(X).shape == X.shape


def test_se_hand_computed_rescaling():
    layer = attention.SqueezeExcitation(reduction=4)
    layer.build(X.shape)
    w1 = np.full((8, 2), 0.1, np.float32)
    b1 = np.array([0.0, -100.0], np.float32)  # second hidden unit is dead after ReLU
    w2 = np.arange(16, dtype=np.float32).reshape(2, 8) / 10
    b2 = np.full(8, -0.5, np.float32)
    layer.set_weights([w1, b1, w2, b2])
    squeezed = X.mean(axis=(1, 2))  # (2, 8)
    hidden = np.maximum(squeezed @ w1 + b1, 0)
    gates = 1 / (1 + np.exp(-(hidden @ w2 + b2)))
    np.testing.assert_allclose(layer(X).numpy(), X * gates[:, None, None, :], rtol=1e-5)


def test_cbam_ablations_each_change_the_output():
    full = attention.CBAM(reduction=4, seed=1)
    channel = attention.CBAM(reduction=4, spatial=False, seed=1)
    spatial = attention.CBAM(reduction=4, channel=False, seed=1)
    for layer in (full, channel, spatial):
        layer.build(X.shape)
    channel.set_weights(full.get_weights()[:4])
    spatial.set_weights(full.get_weights()[4:])
    out_full = full(X).numpy()
    out_channel = channel(X).numpy()
    out_spatial = spatial(X).numpy()
    assert not np.allclose(out_full, out_channel)  # spatial attention matters
    assert not np.allclose(out_full, out_spatial)  # channel attention matters
    # Full CBAM = spatial attention applied to the channel-attended map.
    np.testing.assert_allclose(
        out_full, out_channel * spatial.spatial_attention(out_channel).numpy(), rtol=1e-5
    )
    gates = channel.channel_attention(X).numpy()
    assert gates.shape == (2, 1, 1, 8) and np.all((gates > 0) & (gates < 1))
    with pytest.raises(ValueError, match="neither"):
        attention.CBAM(channel=False, spatial=False)


def test_cbam_channel_attention_by_hand():
    layer = attention.CBAM(reduction=4, spatial=False, seed=2)
    layer.build(X.shape)
    w1, b1, w2, b2 = layer.get_weights()

    def mlp(v):
        return np.maximum(v @ w1 + b1, 0) @ w2 + b2

    logits = mlp(X.mean(axis=(1, 2))) + mlp(X.max(axis=(1, 2)))
    expected = X / (1 + np.exp(-logits))[:, None, None, :]
    np.testing.assert_allclose(layer(X).numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["se", "cbam"])
def test_config_roundtrip(kind):
    layer = attention.make_attention(kind, name="att", reduction=2, seed=3)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    layer.build(X.shape)
    clone.build(X.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(X).numpy(), layer(X).numpy())


@pytest.mark.parametrize("kind", ["se", "cbam"])
def test_vgg_with_attention_saves_and_reloads(tmp_path, kind):
    model = models.build_vgg16(3, input_size=32, width=0.125, attention=kind, seed=0)
    path = models.save_model(model, tmp_path / f"{kind}.keras")
    loaded = models.load_model(path)
    images = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3)).astype(np.uint8)
    x = models.preprocess(images)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert type(loaded.get_layer(f"block3_{kind}")) is attention.ATTENTION_LAYERS[kind]


def test_attention_under_mixed_bfloat16():
    model = models.build_vgg16(
        3, input_size=32, width=0.125, attention="cbam", dtype_policy="mixed_bfloat16", seed=0
    )
    out = model(models.preprocess(np.zeros((1, 32, 32, 3), np.uint8)))
    assert out.dtype == tf.float32 and np.isfinite(out.numpy()).all()


def test_unknown_attention():
    with pytest.raises(ValueError, match="Unknown attention"):
        models.build_vgg16(3, input_size=32, width=0.125, attention="nonlocal", seed=0)


def test_gate_bias_opens_the_gates_of_a_fresh_layer():
    """With gate_bias b every gate starts at sigmoid(b + what the fresh kernels add): by hand
    with zero kernels, and the CBAM channel logit sums its two MLP outputs."""
    x = tf.random.stateless_uniform((2, 8, 8, 32), seed=(1, 2))
    se = attention.SqueezeExcitation(4, kernel_initializer="zeros", gate_bias=3.0)
    se(x)
    np.testing.assert_allclose(se.channel_weights(x).numpy(), 1 / (1 + np.exp(-3.0)), rtol=1e-6)
    cbam = attention.CBAM(4, kernel_initializer="zeros", gate_bias=3.0)
    cbam(x)
    np.testing.assert_allclose(cbam.channel_attention(x).numpy(), 1 / (1 + np.exp(-3.0)), rtol=1e-6)
    np.testing.assert_allclose(cbam.spatial_attention(x).numpy(), 1 / (1 + np.exp(-3.0)), rtol=1e-6)
    assert attention.CBAM.from_config(cbam.get_config()).gate_bias == 3.0
    # the default is the modules' own start: gates at one half
    closed = attention.SqueezeExcitation(4, kernel_initializer="zeros")
    closed(x)
    np.testing.assert_allclose(closed.channel_weights(x).numpy(), 0.5)


def test_build_vgg16_passes_the_gate_bias_to_every_attention_module():
    model = models.build_vgg16(6, input_size=32, width=0.0625, head_units=16, attention="cbam",
                               attention_gate_bias=2.0, seed=0)
    gates = [layer for layer in model.layers if isinstance(layer, attention.CBAM)]
    assert len(gates) == 3 and all(layer.gate_bias == 2.0 for layer in gates)
    np.testing.assert_array_equal(gates[0].spatial_bias.numpy(), [2.0])
