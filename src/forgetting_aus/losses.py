"""Focal loss (paper eq. 1) and class-balanced weights (paper eq. 2, Cui et al. 2019).

Eq. 1: ``FL = (1 - p_t)^gamma * CE`` with ``CE = -log p_t`` and ``p_t`` the predicted
probability of the true class (Lin et al. 2017, without their ``alpha``).

Eq. 2 weights each sample's focal loss by ``(1 - beta) / (1 - beta^n_c)`` of its true class
``c`` with ``n_c`` training samples of that class. Cui et al. normalise these weights to sum
to the number of classes; the paper writes eq. 2 without the normalisation, and taken
literally it gives weights near 1e-4 on AffectNet (beta = 0.99998), which at SGD lr 0.01
shrinks every update ten-thousand-fold and barely trains. :func:`class_balanced_weights`
therefore normalises by default, as Cui et al.'s code does.

Beta's meaning depends on the class sizes: ``1 - beta^n ≈ n (1 - beta)`` when
``n (1 - beta)`` is small, so beta = 0.99998 on classes of a few thousand images is plain
inverse-frequency weighting, while on AffectNet (134415 happy faces, ``n (1 - beta) ≈
2.69``) it saturates for the large classes. :func:`beta_for_dataset` picks the beta that
puts the largest class at the same point of the curve as AffectNet's, which the CPU
profiles use on the smaller twin datasets; the paper profile keeps 0.99998.

Note: Keras' ``CategoricalFocalCrossentropy`` defaults to ``alpha=0.25``, which scales the
loss and is *not* eq. 1; with ``alpha=1.0`` it equals :func:`focal_loss` unweighted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from tensorflow import keras

__all__ = [
    "FocalLoss",
    "focal_loss",
    "class_balanced_weights",
    "beta_for_dataset",
    "AFFECTNET_LARGEST_CLASS",
    "PAPER_BETA",
    "AFFECTNET_EFFECTIVE_SCALE",
]

#: Training images of AffectNet's largest class (happy) in the paper's selection.
AFFECTNET_LARGEST_CLASS = 134415
#: The paper's beta (§3.2).
PAPER_BETA = 0.99998
#: ``n_max * (1 - beta)`` on AffectNet with the paper's beta, ≈ 2.69.
AFFECTNET_EFFECTIVE_SCALE = AFFECTNET_LARGEST_CLASS * (1.0 - PAPER_BETA)

#: Probabilities are clipped to [EPSILON, 1 - EPSILON] before the logarithm.
EPSILON = 1e-7


@keras.utils.register_keras_serializable(package="forgetting_aus")
class FocalLoss(keras.losses.Loss):
    """Class-weighted focal loss on one-hot targets and softmax probabilities.

    Calling it returns the batch mean of ``w[t] * (1 - p_t)^gamma * (-log p_t)``.
    Computed in float32 whatever the input dtype (mixed-precision safe).

    Parameters
    ----------
    gamma : float
        Focusing parameter (the paper: 5 for emotions, 2 for pain).
    class_weights : sequence of float or None
        Weight of each true class, shape (num_classes,); None means all ones.
    """

    def __init__(
        self,
        gamma: float,
        class_weights: Sequence[float] | None = None,
        name: str = "focal_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}.")
        self.gamma = float(gamma)
        self.class_weights = (
            None if class_weights is None else [float(w) for w in np.ravel(class_weights)]
        )

    def call(self, y_true, y_pred):
        """Per-sample losses, shape (batch,), float32."""
        y_true = tf.cast(y_true, tf.float32)
        probs = tf.clip_by_value(tf.cast(y_pred, tf.float32), EPSILON, 1.0 - EPSILON)
        p_true = tf.reduce_sum(y_true * probs, axis=-1)
        cross_entropy = -tf.reduce_sum(y_true * tf.math.log(probs), axis=-1)
        # (1 - p_t)^gamma; gamma = 0 gives exactly 1 (tf.pow(0., 0.) == 1).
        losses = tf.pow(1.0 - p_true, self.gamma) * cross_entropy
        if self.class_weights is not None:
            weights = tf.constant(self.class_weights, dtype=tf.float32)
            losses = losses * tf.reduce_sum(y_true * weights, axis=-1)
        return losses

    def get_config(self):
        config = super().get_config()
        config.update(gamma=self.gamma, class_weights=self.class_weights)
        return config


def focal_loss(*, gamma: float, class_weights: Sequence[float] | None = None) -> FocalLoss:
    """Eq. 1 (weighted by eq. 2 when ``class_weights`` is given), averaged over the batch.

    Returns
    -------
    FocalLoss
        ``loss(y_true_onehot, y_pred_probs) -> scalar float32``; usable in ``model.compile``.
    """
    return FocalLoss(gamma, class_weights)


def class_balanced_weights(
    samples_per_class: Sequence[int], *, beta: float, normalize: bool = True
) -> np.ndarray:
    """Cui et al. (2019) class-balanced weights ``(1 - beta) / (1 - beta^n_c)``.

    Parameters
    ----------
    samples_per_class : sequence of int, shape (num_classes,)
        Training samples of each class; all must be positive.
    beta : float in [0, 1]
        0 gives uniform weights; beta → 1 gives inverse class frequency.
    normalize : bool, default True
        Rescale to sum to the number of classes (Cui et al.); False returns eq. 2 literally.

    Returns
    -------
    ndarray of float64, shape (num_classes,)
    """
    counts = np.asarray(samples_per_class, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f"samples_per_class must be a 1-d sequence, got shape {counts.shape}.")
    if np.any(counts <= 0):
        raise ValueError(
            f"Every class needs at least one training sample; got counts {counts.tolist()}. "
            "Drop empty classes or merge them before weighting."
        )
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must lie in [0, 1], got {beta}.")
    if beta == 1.0:
        weights = 1.0 / counts  # the limit of (1 - b) / (1 - b^n) as b → 1
    elif beta == 0.0:
        weights = np.ones_like(counts)
    else:
        # 1 - beta^n computed as -expm1(n log beta): no cancellation when beta ≈ 1.
        effective_number = -np.expm1(counts * np.log(beta))
        weights = (1.0 - beta) / effective_number
    if normalize:
        weights = weights / weights.sum() * counts.size
    return weights


def beta_for_dataset(n_max: int, *, effective_scale: float = AFFECTNET_EFFECTIVE_SCALE) -> float:
    """Beta with ``n_max * (1 - beta) == effective_scale`` (clipped at 0).

    With the default, the largest class of a dataset sits where AffectNet's happy class
    sits with the paper's beta = 0.99998 (``134415 * 2e-5 ≈ 2.69``). When ``n_max`` is at
    most ``effective_scale`` the formula would give beta <= 0; beta = 0 (uniform weights)
    is returned then.

    Parameters
    ----------
    n_max : int
        Training samples of the largest class.
    effective_scale : float
        Target value of ``n_max * (1 - beta)``.
    """
    if n_max <= 0:
        raise ValueError(f"n_max must be positive, got {n_max}.")
    if effective_scale <= 0:
        raise ValueError(f"effective_scale must be positive, got {effective_scale}.")
    return float(max(0.0, 1.0 - effective_scale / float(n_max)))
