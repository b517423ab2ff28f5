"""Tests of forgetting_aus.losses against the paper's formulas computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow import keras

from forgetting_aus import losses

Y_TRUE = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
Y_PRED = np.array([[0.7, 0.2, 0.1], [0.5, 0.25, 0.25], [0.1, 0.1, 0.8]], dtype=np.float32)


def test_gamma_zero_unit_weights_is_cross_entropy():
    ours = losses.focal_loss(gamma=0.0)(Y_TRUE, Y_PRED)
    reference = keras.losses.CategoricalCrossentropy()(Y_TRUE, Y_PRED)
    assert float(ours) == pytest.approx(float(reference), rel=1e-6)
    weighted = losses.focal_loss(gamma=0.0, class_weights=[1, 1, 1])(Y_TRUE, Y_PRED)
    assert float(weighted) == pytest.approx(float(reference), rel=1e-6)


def test_hand_computed_focal_value():
    gamma, weights = 2.0, [0.5, 2.0, 1.0]
    p_true = np.array([0.7, 0.25, 0.8])
    expected = np.mean(
        np.array(weights) * (1 - p_true) ** gamma * -np.log(p_true)
    )  # = mean(0.5*0.09*0.35667, 2*0.5625*1.38629, 1*0.04*0.22314)
    assert expected == pytest.approx((0.016050 + 1.559581 + 0.008926) / 3, rel=1e-4)
    value = losses.focal_loss(gamma=gamma, class_weights=weights)(Y_TRUE, Y_PRED)
    assert float(value) == pytest.approx(expected, rel=1e-6)


def test_keras_focal_needs_alpha_one_to_match():
    ours = float(losses.focal_loss(gamma=5.0)(Y_TRUE, Y_PRED))
    keras_alpha_one = keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=5.0)
    assert float(keras_alpha_one(Y_TRUE, Y_PRED)) == pytest.approx(ours, rel=1e-5)
    keras_default = keras.losses.CategoricalFocalCrossentropy(gamma=5.0)  # alpha = 0.25
    assert float(keras_default(Y_TRUE, Y_PRED)) == pytest.approx(0.25 * ours, rel=1e-5)


def test_focal_loss_is_safe_and_float32_under_bfloat16():
    y_pred = tf.constant([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=tf.bfloat16)
    y_true = tf.constant([[0, 1, 0], [0, 1, 0]], dtype=tf.bfloat16)
    value = losses.focal_loss(gamma=2.0)(y_true, y_pred)
    assert value.dtype == tf.float32 and np.isfinite(float(value))
    # Certain wrong prediction: -log(eps) clipped, not inf.
    assert float(value) == pytest.approx(-np.log(1e-7) / 2, rel=1e-3)


def test_focal_loss_gradient_is_finite_at_extremes():
    y_pred = tf.Variable([[1.0, 0.0], [0.0, 1.0]])
    with tf.GradientTape() as tape:
        value = losses.focal_loss(gamma=5.0)(tf.constant([[1.0, 0.0], [1.0, 0.0]]), y_pred)
    assert np.isfinite(tape.gradient(value, y_pred).numpy()).all()


def test_beta_zero_gives_uniform_weights():
    weights = losses.class_balanced_weights([10, 100, 1000], beta=0.0)
    np.testing.assert_allclose(weights, [1, 1, 1])


def test_beta_to_one_approaches_normalised_inverse_frequency():
    counts = np.array([10, 100, 1000])
    inverse = (1 / counts) / (1 / counts).sum() * 3
    np.testing.assert_allclose(
        losses.class_balanced_weights(counts, beta=1 - 1e-9), inverse, rtol=1e-5
    )
    np.testing.assert_allclose(losses.class_balanced_weights(counts, beta=1.0), inverse)


def test_weights_sum_to_number_of_classes_and_match_eq2():
    counts, beta = [134415, 74874, 25459, 14090, 6378, 3803, 24882, 3750], 0.99998
    weights = losses.class_balanced_weights(counts, beta=beta)
    assert weights.sum() == pytest.approx(len(counts))
    raw = losses.class_balanced_weights(counts, beta=beta, normalize=False)
    by_hand = [(1 - beta) / (1 - beta**n) for n in counts]
    np.testing.assert_allclose(raw, by_hand, rtol=1e-9)
    assert raw.max() < 1e-3  # why eq. 2 is normalised: literal weights are tiny
    assert np.all(np.diff(weights[[0, 1, 2, 3, 4, 7]]) > 0)  # rarer class, larger weight


def test_class_balanced_weights_errors():
    with pytest.raises(ValueError, match="at least one"):
        losses.class_balanced_weights([5, 0], beta=0.9)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        losses.class_balanced_weights([5, 2], beta=1.5)


def test_beta_for_dataset():
    assert losses.AFFECTNET_EFFECTIVE_SCALE == pytest.approx(2.6883, rel=1e-3)
    assert losses.beta_for_dataset(134415) == pytest.approx(0.99998, abs=1e-12)
    beta = losses.beta_for_dataset(2000)
    assert 2000 * (1 - beta) == pytest.approx(losses.AFFECTNET_EFFECTIVE_SCALE)
    assert losses.beta_for_dataset(2) == 0.0
    # Twin-sized classes: the scaled beta saturates the largest class like AffectNet's.
    counts = [2000, 200]
    scaled = losses.class_balanced_weights(counts, beta=losses.beta_for_dataset(2000))
    paper = losses.class_balanced_weights(counts, beta=losses.PAPER_BETA)
    assert scaled[1] / scaled[0] < paper[1] / paper[0]
    assert paper[1] / paper[0] == pytest.approx(10, rel=0.02)  # ~ inverse frequency
