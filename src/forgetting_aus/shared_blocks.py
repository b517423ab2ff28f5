"""Features of networks that share their first conv blocks, each shared block run once.

FreezeB<k> is the emotion model with conv blocks 1..k frozen during pain training, so
its first k blocks hold the emotion model's weights bit for bit (FreezeB5's conv part is
the emotion model's entirely). Chapter 04 needs the ``block5_pool`` features of all six
FreezeB<k> on the same emotion images. Run one by one, blocks 1..k are recomputed for
every k; run together, each batch goes once through the reference network's blocks and
every other network continues from the output of the last block it shares with it. At
224 px that is ~62 instead of ~92 GMAC per image for the six networks (blocks 1-5 of
VGG16 cost ~1.9, 2.8, 4.6, 4.6 and 1.4 GMAC). Which blocks are shared is read from the
weights, never assumed, so a network that shares nothing is simply run in full.

Written by hand: Keras has no notion of common sub-networks across models. The layers
are the networks' own, called on intermediate tensors in graph mode (``predict_on_batch``),
the same operations as :func:`forgetting_aus.training.extract_features` (tested equal).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow import keras

from forgetting_aus import models

__all__ = ["conv_segments", "leading_shared_blocks", "shared_block_features"]


def conv_segments(model: keras.Model) -> list[list[keras.layers.Layer]]:
    """The layers from the input to ``block5_pool``, cut after each ``block<j>_pool``.

    Returns
    -------
    list of lists of Layer
        Segment ``j - 1`` ends with ``block<j>_pool`` (five for VGG16); a layer inserted
        between blocks (an attention module) belongs to the segment it precedes.
    """
    layers = [layer for layer in models.conv_base(model).layers if not isinstance(layer, keras.layers.InputLayer)]
    segments: list[list[keras.layers.Layer]] = [[]]
    for layer in layers:
        segments[-1].append(layer)
        if layer.name.startswith("block") and layer.name.endswith("_pool"):
            segments.append([])
    return segments[:-1]


def leading_shared_blocks(model: keras.Model, reference: keras.Model) -> int:
    """How many leading conv blocks of ``model`` equal ``reference``'s (names, shapes, weights)."""
    shared = 0
    for ours, theirs in zip(conv_segments(model), conv_segments(reference), strict=False):
        if [layer.name for layer in ours] != [layer.name for layer in theirs]:
            break
        same = all(
            len(a.weights) == len(b.weights)
            and all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights(), strict=True))
            for a, b in zip(ours, theirs, strict=True))
        if not same:
            break
        shared += 1
    return shared


def _continuation(model: keras.Model, first_segment: int, input_shape) -> keras.Model:
    """``model``'s conv layers from segment ``first_segment`` on, as a model of that segment's input."""
    inputs = keras.Input(shape=tuple(input_shape))
    x = inputs
    for segment in conv_segments(model)[first_segment:]:
        for layer in segment:
            x = layer(x)
    return keras.Model(inputs, x, name=f"{model.name}_from_block{first_segment + 1}")


def shared_block_features(
    networks: Mapping[Hashable, keras.Model],
    images: np.ndarray,
    *,
    reference: Hashable,
    flip: bool = False,
    batch_size: int = 64,
    out: Mapping[Hashable, str | Path] | None = None,
    dtype: str | np.dtype = "float32",
    progress: str | None = None,
) -> dict[Hashable, np.ndarray]:
    """``block5_pool`` features of several networks on the same images, shared blocks run once.

    Parameters
    ----------
    networks : mapping of key -> keras.Model
        VGG16s of :mod:`forgetting_aus.models` (or their :func:`models.conv_base`).
    images : ndarray of shape (n, H, W, 3)
        uint8 images, preprocessed here as :func:`training.extract_features` does, or
        float32 network inputs already preprocessed, as :func:`concepts.block5_features`
        takes them.
    reference : key of ``networks``, keyword-only
        The network every other one may share leading blocks with (chapter 04: FreezeB5,
        whose conv part is the emotion model's).
    flip : bool, keyword-only
        Mirror every image first, as :func:`training.extract_features` (uint8 images only).
    batch_size : int, keyword-only
    out : mapping of key -> path, keyword-only, optional
        Write each network's features to this ``.npy`` file batch by batch (memory-mapped,
        so the features of a large dataset never sit in memory) instead of returning
        in-memory arrays.
    dtype : {"float32", "float16"}, keyword-only
        Of the returned (or written) features; the networks compute in float32 and
        ``float16`` rounds their outputs to nearest, halving the disk and the reads.
    progress : str, keyword-only, optional
        Show a progress bar (images done, rate, time left) with this description.

    Returns
    -------
    dict of key -> ndarray of ``dtype``, shape (n, h, w, c)
        The same values as :func:`training.extract_features` of each network (memory-mapped
        arrays when ``out`` is given), rounded to ``dtype``.
    """
    from forgetting_aus import training

    images = np.asarray(images)
    if images.dtype not in (np.uint8, np.float32) or images.ndim != 4 or len(images) == 0:
        raise ValueError(f"shared_block_features needs at least one image, uint8 or float32 of shape "
                         f"(n, H, W, 3); got {images.dtype} of shape {images.shape}")
    if flip and images.dtype != np.uint8:
        raise ValueError("flip=True mirrors uint8 images before their preprocessing; got float32 inputs")
    if reference not in networks:
        raise ValueError(f"reference {reference!r} is not one of the networks {list(networks)}")
    if out is not None and set(out) != set(networks):
        raise ValueError(f"out must name one file per network {sorted(map(str, networks))}, got {sorted(map(str, out))}")
    reference_model = networks[reference]
    segments = conv_segments(reference_model)
    shared = {key: (len(segments) if key == reference else leading_shared_blocks(model, reference_model))
              for key, model in networks.items()}
    # The reference's outputs after each block some other network continues from.
    cut_points = sorted({depth for depth in shared.values() if 0 < depth < len(segments)})
    runner = keras.Model(reference_model.inputs,
                         [segments[depth - 1][-1].output for depth in cut_points] + [segments[-1][-1].output])
    continuations = {key: _continuation(model, shared[key],
                                        images.shape[1:] if shared[key] == 0
                                        else runner.outputs[cut_points.index(shared[key])].shape[1:])
                     for key, model in networks.items() if shared[key] < len(segments)}
    if images.dtype == np.uint8:
        dataset = training.make_dataset(images, None, batch_size=batch_size, augment=training.AffineRanges(),
                                        shuffle=False)
        if flip:
            dataset = dataset.map(lambda batch: tf.reverse(batch, axis=[2]))
    else:
        dataset = tf.data.Dataset.from_tensor_slices(images).batch(batch_size)
    n = len(images)
    results: dict[Hashable, np.ndarray] = {}
    start = 0
    from tqdm.auto import tqdm

    bar = tqdm(total=n, desc=progress, unit="image", disable=progress is None)
    for batch in dataset:
        outputs = runner.predict_on_batch(batch)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        # Activations after each block the networks need, by block count (0: the input).
        after = {0: batch, **dict(zip(cut_points, outputs[:-1], strict=True)), len(segments): outputs[-1]}
        features = {key: continuations[key].predict_on_batch(after[shared[key]]) if key in continuations
                    else after[shared[key]] for key in networks}
        for key, values in features.items():
            if key not in results:
                shape = (n, *values.shape[1:])
                results[key] = (np.lib.format.open_memmap(out[key], mode="w+", dtype=dtype, shape=shape)
                                if out is not None else np.empty(shape, dtype=dtype))
            results[key][start:start + len(values)] = values
        start += len(batch)
        bar.update(len(batch))
    bar.close()
    for array in results.values():
        if isinstance(array, np.memmap):
            array.flush()
    return results
