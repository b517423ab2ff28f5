"""Grad-CAM (Selvaraju et al. 2020) in eager mode, for the transfer-vs-scratch extension.

Arabian et al. (2022, §2.2) average the Grad-CAM maps of each class and compare models
with DICE and IoU (see :mod:`forgetting_aus.explain.overlap`). Unlike LRP, Grad-CAM only
needs gradients, so it runs in the book's ordinary eager process.
"""

from __future__ import annotations

import numpy as np

__all__ = ["grad_cam", "class_average_maps"]


def _logits_tensor(model):
    """Symbolic pre-softmax output of ``model`` (separate softmax layer, fused, or none)."""
    import tensorflow as tf

    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", str(activation))
    if name != "softmax":
        return model.output
    if isinstance(last, tf.keras.layers.Activation):
        return last.input
    if isinstance(last, tf.keras.layers.Dense):
        # Fused softmax: recompute the layer's affine part on its input.
        logits = tf.matmul(last.input, last.kernel)
        return logits + last.bias if last.use_bias else logits
    raise ValueError(
        f"cannot find the pre-softmax scores: the last layer {last.name!r} "
        f"({type(last).__name__}) applies softmax itself; end the model in a Dense layer "
        "followed by an Activation('softmax') layer"
    )


def _tail_after(model, layer):
    """The layers from ``layer``'s output to the pre-softmax scores, if they form a chain.

    Returns None when they do not (branches, or a softmax fused into the last Dense
    layer); :func:`grad_cam` then records the whole forward pass instead.
    """
    import tensorflow as tf

    layers = [candidate for candidate in model.layers if not isinstance(candidate, tf.keras.layers.InputLayer)]
    if layer not in layers:
        return None
    tail = layers[layers.index(layer) + 1:]
    last = layers[-1]
    if getattr(getattr(last, "activation", None), "__name__", None) == "softmax":
        if not isinstance(last, tf.keras.layers.Activation):
            return None
        tail = tail[:-1]
    previous = layer
    for candidate in tail:
        if len(candidate.inbound_nodes) != 1 or candidate.input is not previous.output:
            return None
        previous = candidate
    return tail


def grad_cam(model, images: np.ndarray, target_classes, *, layer_name: str = "block5_conv3",
             batch_size: int = 32, return_scores: bool = False):
    """Grad-CAM maps of the pre-softmax score of each image's target class.

    ``cam = ReLU(sum_k alpha_k A^k)`` with ``alpha_k`` the spatial mean of
    ``d y^c / d A^k``, ``A`` the activations of ``layer_name`` and ``y^c`` the
    pre-softmax score of class ``c``; the map is bilinearly upsampled to the input size
    and divided by its maximum.

    Parameters
    ----------
    model : keras.Model
        Eager (ordinary) Keras model containing a layer called ``layer_name``.
    images : ndarray of shape (n, H, W, C)
        Preprocessed inputs.
    target_classes : int or array-like of shape (n,)
        Class explained per image.
    layer_name : str, keyword-only
        Convolutional layer whose activations are weighted (VGG16: ``"block5_conv3"``).
    batch_size : int, keyword-only
    return_scores : bool, keyword-only
        Also return the pre-softmax scores of every class, computed on the way (so a
        caller that needs the model's predictions does not run it a second time).

    Returns
    -------
    maps : ndarray of shape (n, H, W), float32
        Values in [0, 1]; a map with no positive evidence stays all zeros.
    scores : ndarray of shape (n, classes), float32
        Only with ``return_scores``.

    Notes
    -----
    When the layers after ``layer_name`` form a chain (VGG16's pooling and dense head),
    the layers up to it run outside the gradient tape and only the chain is recorded:
    the same values, without back-propagating through every convolution's kernel (which
    an eager tape would do, doubling the cost of a full-width VGG16).
    """
    import tensorflow as tf

    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (n, H, W, C), got {images.shape}")
    n, height, width = images.shape[:3]
    targets = np.asarray(target_classes)
    if targets.ndim == 0:
        targets = np.full(n, int(targets))
    if targets.shape != (n,):
        raise ValueError(f"expected {n} target classes, got shape {targets.shape}")
    try:
        layer = model.get_layer(layer_name)
    except ValueError:
        names = [layer.name for layer in model.layers if len(layer.output_shape) == 4]
        raise ValueError(
            f"the model has no layer {layer_name!r}; layers with spatial outputs: {names}"
        ) from None
    probe = tf.keras.Model(model.inputs, [layer.output, _logits_tensor(model)])
    n_classes = int(probe.outputs[1].shape[-1])
    if n and (targets.min() < 0 or targets.max() >= n_classes):
        raise ValueError(f"target classes must lie in 0..{n_classes - 1}, got {targets.min()}..{targets.max()}")
    tail = _tail_after(model, layer)
    prefix = tf.keras.Model(model.inputs, layer.output) if tail is not None else None

    out = np.empty((n, height, width), dtype=np.float32)
    scores = np.empty((n, n_classes), dtype=np.float32)
    for start in range(0, n, batch_size):
        batch = tf.constant(images[start:start + batch_size])
        idx = tf.constant(targets[start:start + batch_size].astype(np.int32))
        if tail is None:
            with tf.GradientTape() as tape:
                activations, logits = probe(batch, training=False)
                score = tf.reduce_sum(tf.gather(logits, idx, axis=1, batch_dims=1))
        else:
            activations = prefix(batch, training=False)
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(activations)
                logits = activations
                for tail_layer in tail:
                    logits = tail_layer(logits, training=False)
                # Each image's own target score; summing is safe because images are independent.
                score = tf.reduce_sum(tf.gather(logits, idx, axis=1, batch_dims=1))
        grads = tape.gradient(score, activations)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1, keepdims=True))
        cam = tf.image.resize(cam, (height, width), method="bilinear")[..., 0].numpy()
        peak = cam.max(axis=(1, 2), keepdims=True)
        out[start:start + batch_size] = np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0)
        scores[start:start + batch_size] = logits.numpy()
    return (out, scores) if return_scores else out


def class_average_maps(maps: np.ndarray, labels, num_classes: int) -> np.ndarray:
    """Mean map of each class (Arabian et al. average Grad-CAM maps per class).

    Parameters
    ----------
    maps : ndarray of shape (n, H, W)
    labels : array-like of shape (n,)
        Integer class of each map, in ``0..num_classes-1``.
    num_classes : int

    Returns
    -------
    ndarray of shape (num_classes, H, W), float32
        A class without maps is all NaN.
    """
    maps = np.asarray(maps, dtype=np.float32)
    labels = np.asarray(labels)
    if maps.ndim != 3 or labels.shape != (maps.shape[0],):
        raise ValueError(
            f"expected maps (n, H, W) and labels (n,), got {maps.shape} and {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got {labels.min()}..{labels.max()}")
    out = np.full((num_classes, *maps.shape[1:]), np.nan, dtype=np.float32)
    for c in range(num_classes):
        members = labels == c
        if members.any():
            out[c] = maps[members].mean(axis=0)
    return out
