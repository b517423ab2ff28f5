"""The paper's data augmentation as stateless TensorFlow ops (§3.2).

Horizontal flip for emotions; rotation ±25°, height/width shift ±10 %, shear ±10 % and zoom
±10 % plus horizontal flip for pain (Keras ``ImageDataGenerator`` options), as one combined
affine map applied with ``ImageProjectiveTransformV3`` and keyed on ``(seed, epoch, batch)``
so that a resumed run sees the same augmentations. :mod:`forgetting_aus.training` applies it
inside the training step; the design notes are in that module's docstring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf

__all__ = ["AUGMENTATIONS", "AffineRanges", "PAIN_AUGMENTATION", "augment_images"]


@dataclass(frozen=True)
class AffineRanges:
    """Ranges of the random geometric augmentation (ImageDataGenerator semantics).

    Attributes
    ----------
    rotation_deg : float
        Rotation uniform in [-r, r] degrees.
    height_shift, width_shift : float
        Shift uniform in [-s, s] times the image height/width.
    shear : float
        Shear factor uniform in [-s, s] (see the module docstring for this reading).
    zoom : float
        Zoom factors along x and y drawn independently, uniform in [1 - z, 1 + z].
    horizontal_flip : bool
        Mirror left-right with probability 0.5.
    """

    rotation_deg: float = 0.0
    height_shift: float = 0.0
    width_shift: float = 0.0
    shear: float = 0.0
    zoom: float = 0.0
    horizontal_flip: bool = False

    @property
    def is_affine(self) -> bool:
        return any((self.rotation_deg, self.height_shift, self.width_shift, self.shear, self.zoom))


#: The paper's pain augmentation (§3.2).
PAIN_AUGMENTATION = AffineRanges(
    rotation_deg=25.0, height_shift=0.1, width_shift=0.1, shear=0.1, zoom=0.1, horizontal_flip=True
)


#: Named augmentations: none, flip (emotions), pain.
AUGMENTATIONS: dict[str, AffineRanges] = {
    "none": AffineRanges(),
    "flip": AffineRanges(horizontal_flip=True),
    "pain": PAIN_AUGMENTATION,
}


def _resolve_augment(augment: str | AffineRanges) -> AffineRanges:
    if isinstance(augment, AffineRanges):
        return augment
    if augment not in AUGMENTATIONS:
        raise ValueError(
            f"Unknown augment {augment!r}; expected one of {sorted(AUGMENTATIONS)} "
            "or an AffineRanges."
        )
    return AUGMENTATIONS[augment]


def _affine_transforms(shape: tf.Tensor, ranges: AffineRanges, seed: tf.Tensor) -> tf.Tensor:
    """Per-image output→input affine maps, shape (batch, 8), for ImageProjectiveTransformV3."""
    batch, height, width = shape[0], tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, num=6)

    def uniform(index: int, low: float, high: float) -> tf.Tensor:
        return tf.random.stateless_uniform([batch], seeds[index], low, high, dtype=tf.float32)

    theta = uniform(0, -1.0, 1.0) * (ranges.rotation_deg * math.pi / 180.0)
    shift_y = uniform(1, -1.0, 1.0) * ranges.height_shift * height
    shift_x = uniform(2, -1.0, 1.0) * ranges.width_shift * width
    shear = uniform(3, -1.0, 1.0) * ranges.shear
    zoom_x = 1.0 + uniform(4, -1.0, 1.0) * ranges.zoom
    zoom_y = 1.0 + uniform(5, -1.0, 1.0) * ranges.zoom
    cos, sin = tf.cos(theta), tf.sin(theta)
    # A = rotation @ shear @ zoom maps output to input offsets from the centre (x = column).
    a00 = cos * zoom_x
    a01 = (cos * shear - sin) * zoom_y
    a10 = sin * zoom_x
    a11 = (sin * shear + cos) * zoom_y
    center_x, center_y = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    a02 = center_x + shift_x - (a00 * center_x + a01 * center_y)
    a12 = center_y + shift_y - (a10 * center_x + a11 * center_y)
    zeros = tf.zeros_like(a00)
    return tf.stack([a00, a01, a02, a10, a11, a12, zeros, zeros], axis=1)


def augment_images(images: tf.Tensor, *, augment: str | AffineRanges, seed: tf.Tensor) -> tf.Tensor:
    """Randomly augment a batch of images with stateless (reproducible) randomness.

    Parameters
    ----------
    images : Tensor, shape (batch, H, W, C)
        Any real dtype; the output has the same dtype (uint8 is transformed in float32
        and rounded back).
    augment : "none", "flip", "pain" or AffineRanges
    seed : int Tensor, shape (2,)
        Stateless seed; the same seed gives the same augmentation.

    Returns
    -------
    Tensor of the same shape and dtype. With all ranges 0 and no flip it is ``images``.
    """
    ranges = _resolve_augment(augment)
    images = tf.convert_to_tensor(images)
    if not ranges.is_affine and not ranges.horizontal_flip:
        return images
    dtype = images.dtype
    outputs = tf.cast(images, tf.float32)
    seed = tf.cast(seed, tf.int64)
    affine_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    if ranges.is_affine:
        shape = tf.shape(outputs)
        outputs = tf.raw_ops.ImageProjectiveTransformV3(
            images=outputs,
            transforms=_affine_transforms(shape, ranges, affine_seed),
            output_shape=shape[1:3],
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="NEAREST",
        )
    if ranges.horizontal_flip:
        flip = tf.random.stateless_uniform([tf.shape(outputs)[0]], flip_seed) < 0.5
        outputs = tf.where(flip[:, None, None, None], tf.reverse(outputs, axis=[2]), outputs)
    if dtype.is_integer:
        outputs = tf.cast(tf.clip_by_value(tf.round(outputs), dtype.min, dtype.max), dtype)
    else:
        outputs = tf.cast(outputs, dtype)
    return outputs
