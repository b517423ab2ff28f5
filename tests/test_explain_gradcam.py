"""Tests of forgetting_aus.explain.gradcam (Grad-CAM) and .overlap (DICE, IoU)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from forgetting_aus.explain import gradcam, overlap  # noqa: E402

keras = tf.keras


def _net(strides: int = 1, fused_softmax: bool = False) -> keras.Model:
    keras.utils.set_random_seed(1)
    inp = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, strides=strides, padding="same", activation="relu",
                            name="block5_conv3")(inp)
    x = keras.layers.Flatten(name="flatten")(x)
    if fused_softmax:
        out = keras.layers.Dense(4, activation="softmax", name="predictions")(x)
    else:
        x = keras.layers.Dense(4, name="predictions")(x)
        out = keras.layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inp, out)


def _conv_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, strides: int) -> np.ndarray:
    """'same' convolution in numpy (TF pads the extra pixel at the bottom/right)."""
    n, h, w, _ = x.shape
    k = kernel.shape[0]
    out_h, out_w = -(-h // strides), -(-w // strides)
    pad_h = max((out_h - 1) * strides + k - h, 0)
    pad_w = max((out_w - 1) * strides + k - w, 0)
    xp = np.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    out = np.zeros((n, out_h, out_w, kernel.shape[-1]))
    for i in range(out_h):
        for j in range(out_w):
            patch = xp[:, i * strides:i * strides + k, j * strides:j * strides + k]
            out[:, i, j] = np.einsum("nabc,abcd->nd", patch, kernel)
    return out + bias


def _bilinear(maps: np.ndarray, size: int) -> np.ndarray:
    """Half-pixel-centre bilinear resize of (n, h, w) maps (tf.image.resize's convention)."""
    def axis_weights(n_in):
        src = np.clip((np.arange(size) + 0.5) * n_in / size - 0.5, 0, n_in - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        m = np.zeros((size, n_in))
        m[np.arange(size), lo] += 1 - (src - lo)
        m[np.arange(size), hi] += src - lo
        return m
    rows, cols = axis_weights(maps.shape[1]), axis_weights(maps.shape[2])
    return np.einsum("ia,nab,jb->nij", rows, maps, cols)


def _hand_grad_cam(model: keras.Model, images: np.ndarray, targets: np.ndarray, strides: int):
    kernel, bias = model.get_layer("block5_conv3").get_weights()
    dense_kernel = model.get_layer("predictions").get_weights()[0]
    acts = np.maximum(_conv_same(images.astype(np.float64), kernel, bias, strides), 0)
    # logits = flatten(A) @ W + b, so d logit_c / dA = W[:, c] reshaped like A (for every image).
    grads = dense_kernel[:, targets].T.reshape(len(images), *acts.shape[1:])
    weights = grads.mean(axis=(1, 2))
    cam = np.maximum(np.einsum("nhwk,nk->nhw", acts, weights), 0)
    cam = _bilinear(cam, images.shape[1])
    peak = cam.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0)


@pytest.mark.parametrize("strides", [1, 2])
def test_grad_cam_matches_hand_computation(strides):
    model = _net(strides)
    images = np.random.default_rng(0).normal(size=(5, 6, 6, 2)).astype(np.float32)
    targets = np.array([0, 1, 2, 3, 1])
    maps = gradcam.grad_cam(model, images, targets, batch_size=2)
    assert maps.shape == (5, 6, 6) and maps.dtype == np.float32
    expected = _hand_grad_cam(model, images, targets, strides)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-5)
    assert maps.min() >= 0 and maps.max() <= 1
    assert (maps.max(axis=(1, 2)) == 1).sum() >= 2  # the check is not about all-zero maps


def test_grad_cam_uses_pre_softmax_score_with_fused_softmax():
    separate = _net()
    fused = _net(fused_softmax=True)  # same seed: same weights
    images = np.random.default_rng(1).normal(size=(3, 6, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(gradcam.grad_cam(fused, images, 2),
                               gradcam.grad_cam(separate, images, 2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gradcam.grad_cam(separate, images, 2),
                               _hand_grad_cam(separate, images, np.full(3, 2), 1),
                               rtol=1e-4, atol=1e-5)


def test_grad_cam_errors():
    model = _net()
    images = np.zeros((2, 6, 6, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="no layer 'block4_conv3'"):
        gradcam.grad_cam(model, images, 0, layer_name="block4_conv3")
    with pytest.raises(ValueError, match="0..3"):
        gradcam.grad_cam(model, images, [0, 4])


def test_class_average_maps():
    maps = np.arange(4 * 2 * 2, dtype=float).reshape(4, 2, 2)
    out = gradcam.class_average_maps(maps, [0, 2, 0, 2], 3)
    np.testing.assert_allclose(out[0], (maps[0] + maps[2]) / 2)
    np.testing.assert_allclose(out[2], (maps[1] + maps[3]) / 2)
    assert np.isnan(out[1]).all()
    with pytest.raises(ValueError, match="labels"):
        gradcam.class_average_maps(maps, [0, 1, 2, 3], 3)


# ------------------------------------------------------------------------------ overlap


def test_dice_and_iou_on_known_masks():
    a = np.zeros((4, 4), dtype=bool)
    b = np.zeros((4, 4), dtype=bool)
    a[0, :4] = True  # 4 pixels
    b[0, 2:4] = True
    b[1, :4] = True  # 6 pixels, 2 shared with a
    assert overlap.dice(a, b) == pytest.approx(2 * 2 / (4 + 6))
    assert overlap.iou(a, b) == pytest.approx(2 / 8)
    assert overlap.dice(a, a) == 1.0 and overlap.iou(a, a) == 1.0
    assert overlap.dice(a, ~a) == 0.0 and overlap.iou(a, ~a) == 0.0


def test_empty_masks_and_vectorisation():
    a = np.zeros((3, 4, 4), dtype=bool)
    b = np.zeros((3, 4, 4), dtype=bool)
    a[1, 0, 0] = True  # pair 1: one empty mask
    a[2, :2] = True
    b[2, 1:3] = True  # pair 2: 4 shared of 8 and 8
    np.testing.assert_allclose(overlap.dice(a, b), [1.0, 0.0, 0.5])
    np.testing.assert_allclose(overlap.iou(a, b), [1.0, 0.0, 4 / 12])
    assert np.isnan(overlap.dice(a, b, empty=np.nan)[0])
    with pytest.raises(ValueError, match="same shape"):
        overlap.iou(a, b[:2])


def test_threshold_map():
    m = np.arange(16, dtype=float).reshape(4, 4)
    top = overlap.threshold_map(m, quantile=0.75)
    assert top.sum() == 4 and top[3].all()
    np.testing.assert_array_equal(overlap.threshold_map(m, value=10), m >= 10)
    stacked = overlap.threshold_map(np.stack([m, m[::-1]]), quantile=0.75)  # per map
    np.testing.assert_array_equal(stacked[1], top[::-1])
    with pytest.raises(ValueError, match="exactly one"):
        overlap.threshold_map(m)
    with pytest.raises(ValueError, match="exactly one"):
        overlap.threshold_map(m, quantile=0.5, value=1)


@pytest.mark.parametrize("attention", [None, "se"])
def test_recording_only_the_head_equals_recording_everything(attention, monkeypatch):
    """VGG16's layers after block5_conv3 form a chain, so only they are recorded; the maps
    and scores are those of the full-tape computation, bit for bit."""
    from forgetting_aus import models

    model = models.build_vgg16(3, input_size=32, width=0.0625, head_units=8, attention=attention, seed=0)
    assert gradcam._tail_after(model, model.get_layer("block5_conv3")) is not None
    images = np.random.default_rng(2).normal(size=(5, 32, 32, 3)).astype(np.float32)
    targets = np.array([0, 1, 2, 0, 1])
    maps, scores = gradcam.grad_cam(model, images, targets, batch_size=2, return_scores=True)
    logits = keras.Model(model.inputs, model.get_layer("predictions").output)(images, training=False)
    np.testing.assert_allclose(scores, logits.numpy(), rtol=1e-6, atol=1e-6)
    monkeypatch.setattr(gradcam, "_tail_after", lambda model, layer: None)
    full_maps, full_scores = gradcam.grad_cam(model, images, targets, batch_size=2, return_scores=True)
    np.testing.assert_array_equal(maps, full_maps)
    np.testing.assert_array_equal(scores, full_scores)


def test_fused_softmax_is_not_split():
    fused = _net(fused_softmax=True)
    assert gradcam._tail_after(fused, fused.get_layer("block5_conv3")) is None
