"""VGG16 by blocks, its heads, freezing, and safe saving for the transfer study.

The paper (§3.2) uses VGG16's five convolution blocks for the emotion and the pain models
and does not specify the output layers. They are pinned here:

``Flatten("flatten") → Dense(head_units, ReLU, "fc1") → Dropout("dropout")
→ Dense(num_classes, linear, "predictions") → Activation(softmax, "softmax")``

The softmax is a separate layer so that explanation code (LRP explains the pre-softmax
score) can cut it off with :func:`without_softmax`.

Design choices (why, in one place)
----------------------------------
- **Layer names** are exactly those of :func:`keras.applications.VGG16`
  (``block1_conv1`` … ``block5_conv3``, ``block1_pool`` … ``block5_pool``), so that the
  ImageNet weights map by name and readers recognise the layers.
- **Width**: the channel counts 64, 128, 256, 512, 512 are multiplied by ``width`` (at
  least 1 channel), e.g. ``width=0.125`` → 8, 16, 32, 64, 64, for the 2-core CPU profiles.
- **Head size**: ``head_units`` defaults to ``round(4096 * width)``, at least 32 — the
  4096 of VGG16's ``fc1`` scaled like the convolutions, with a floor so that narrow
  networks keep a usable bottleneck.
- **Initialisation**: ``he_normal`` for convolutions and ``fc1`` when training from
  scratch. VGG16 has no batch normalisation, and with Glorot initialisation its 13 ReLU
  convolutions shrink the signal layer by layer, so plain SGD often never leaves the
  uniform prediction; He et al. (2015) derived ``he_normal`` for exactly this case.
  ``kernel_initializer="glorot_uniform"`` reproduces Arabian et al.'s "scratch" setting.
- **Preprocessing** (:func:`preprocess`, the only input transformation, done outside the
  model): VGG's ImageNet mean subtraction in RGB order, divided by 255, so inputs lie in
  about [-0.5, 0.5]. This small range trains from scratch with SGD at lr 0.01, and it is
  an exact linear re-parametrisation of Keras' "caffe" preprocessing (BGR, mean
  subtracted, 0..255): :func:`build_vgg16` with ``weights="imagenet"`` folds the factor
  255 and the BGR order into ``block1_conv1``'s kernel, which reproduces the ImageNet
  network's activations exactly (zero padding maps to zero padding). LRP bounds for the
  input layer are :data:`INPUT_LOW` and :data:`INPUT_HIGH`.
- **Saved models** (:func:`save_model`) are flat functional graphs of InputLayer, Conv2D,
  MaxPooling2D, (attention,) Flatten, Dense, Dropout and Activation layers, in float32, in
  the ``.keras`` format, written atomically; no augmentation or preprocessing layers.
- **Mixed precision**: ``dtype_policy="mixed_bfloat16"`` builds the same graph with
  bfloat16 compute (variables stay float32, the softmax runs in float32);
  :func:`to_float32` rebuilds a float32 copy for LRP, which needs float32 models.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow import keras

from forgetting_aus.attention import ATTENTION_LAYERS, make_attention

__all__ = [
    "VGG16_BLOCKS",
    "IMAGENET_MEAN_RGB",
    "INPUT_LOW",
    "INPUT_HIGH",
    "IMAGENET_WEIGHTS_FILE",
    "build_vgg16",
    "default_head_units",
    "preprocess",
    "block_layers",
    "freeze_blocks",
    "reinitialise_block",
    "conv_base",
    "build_head",
    "with_new_head",
    "assemble",
    "without_softmax",
    "to_float32",
    "to_policy",
    "save_model",
    "load_model",
    "imagenet_weights_path",
    "write_random_imagenet_layout",
]

#: Convolutions per block and full-width channels of VGG16 (Simonyan and Zisserman 2015).
VGG16_BLOCKS: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))

#: Per-channel ImageNet means (R, G, B) on the 0..255 scale, as in Keras' "caffe" mode.
IMAGENET_MEAN_RGB: np.ndarray = np.array([123.68, 116.779, 103.939], dtype=np.float32)

#: Smallest and largest value :func:`preprocess` can produce, per channel (for LRP bounds).
INPUT_LOW: np.ndarray = (0.0 - IMAGENET_MEAN_RGB) / 255.0
INPUT_HIGH: np.ndarray = (255.0 - IMAGENET_MEAN_RGB) / 255.0

#: File name of the Keras ImageNet VGG16 convolution weights in the Keras cache.
IMAGENET_WEIGHTS_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
#: MD5 of that file as Keras publishes it (the ``file_hash`` that
#: ``keras.applications.vgg16.VGG16`` passes to ``get_file``; a test reads Keras' source
#: to check this copy), so the preflight can refuse any other file under that name.
IMAGENET_WEIGHTS_MD5 = "6d6bbae143d832006294945121d1f1fc"

#: Blocks after which Arabian et al. insert the attention module.
ATTENTION_AFTER_BLOCKS: tuple[int, ...] = (2, 3, 4)

_BLOCK_NAME = re.compile(r"^block(\d)_")


# --------------------------------------------------------------------------- preprocessing


def preprocess(images_uint8: np.ndarray) -> np.ndarray:
    """Map uint8 RGB images to the network's float32 input.

    ``(x - IMAGENET_MEAN_RGB) / 255`` per channel; see the module docstring for why.

    Parameters
    ----------
    images_uint8 : ndarray of uint8, shape (..., H, W, 3)
        RGB images on the 0..255 scale (float input on that scale is accepted too).

    Returns
    -------
    ndarray of float32, same shape, values in [INPUT_LOW, INPUT_HIGH] per channel.
    """
    images = np.asarray(images_uint8)
    if images.shape[-1:] != (3,):
        raise ValueError(
            f"preprocess expects RGB images with 3 channels last, got shape {images.shape}."
        )
    return (images.astype(np.float32) - IMAGENET_MEAN_RGB) / np.float32(255.0)


def preprocess_tensor(images: tf.Tensor) -> tf.Tensor:
    """TensorFlow twin of :func:`preprocess` for ``tf.data`` pipelines (float32 out)."""
    images = tf.cast(images, tf.float32)
    return (images - tf.constant(IMAGENET_MEAN_RGB)) / 255.0


# --------------------------------------------------------------------------- construction


def default_head_units(width: float) -> int:
    """``round(4096 * width)``, at least 32: VGG16's fc1 scaled like the convolutions."""
    return max(32, int(round(4096 * float(width))))


def _channels(full: int, width: float) -> int:
    return max(1, int(round(full * float(width))))


def _seeded_initializer(name, seed: int | None):
    """A fresh initializer object with its own seed (no global RNG state involved)."""
    if isinstance(name, keras.initializers.Initializer):
        config = keras.initializers.serialize(name)
    else:
        config = keras.initializers.serialize(keras.initializers.get(name))
    config = dict(config)
    inner = dict(config.get("config", {}))
    if seed is not None and "seed" in _initializer_args(config):
        inner["seed"] = int(seed)
    config["config"] = inner
    return keras.initializers.deserialize(config)


def _initializer_args(config: dict) -> set[str]:
    cls = keras.initializers.get(config["class_name"]).__class__
    return set(inspect.signature(cls.__init__).parameters)


def _head_layers(
    num_classes: int,
    *,
    head_units: int,
    dropout: float,
    kernel_initializer,
    seed: int,
    dtype=None,
) -> list[keras.layers.Layer]:
    """The pinned output layers, freshly initialised from ``seed``."""
    return [
        keras.layers.Flatten(name="flatten", dtype=dtype),
        keras.layers.Dense(
            int(head_units),
            activation="relu",
            kernel_initializer=_seeded_initializer(kernel_initializer, seed + 1001),
            name="fc1",
            dtype=dtype,
        ),
        # force_generator: the dropout masks come from a tf.random.Generator whose state
        # is a tracked variable, so training checkpoints capture it (exact resume).
        keras.layers.Dropout(
            float(dropout), seed=seed + 1002, force_generator=True, name="dropout", dtype=dtype
        ),
        keras.layers.Dense(
            int(num_classes),
            activation=None,
            kernel_initializer=_seeded_initializer("glorot_uniform", seed + 1003),
            name="predictions",
            dtype=dtype,
        ),
        # The softmax runs in float32 even under mixed precision (Keras' advice).
        keras.layers.Activation("softmax", name="softmax", dtype="float32"),
    ]


def _conv_layers(
    *,
    width: float,
    attention: str | None,
    attention_reduction: int,
    kernel_initializer,
    seed: int,
    attention_gate_bias: float = 0.0,
    dtype=None,
) -> list[keras.layers.Layer]:
    layers: list[keras.layers.Layer] = []
    for block, (n_convs, full_channels) in enumerate(VGG16_BLOCKS, start=1):
        filters = _channels(full_channels, width)
        for conv in range(1, n_convs + 1):
            layers.append(
                keras.layers.Conv2D(
                    filters,
                    (3, 3),
                    padding="same",
                    activation="relu",
                    kernel_initializer=_seeded_initializer(
                        kernel_initializer, seed + 10 * block + conv
                    ),
                    name=f"block{block}_conv{conv}",
                    dtype=dtype,
                )
            )
        layers.append(
            keras.layers.MaxPooling2D(
                (2, 2), strides=(2, 2), name=f"block{block}_pool", dtype=dtype
            )
        )
        if attention is not None and block in ATTENTION_AFTER_BLOCKS:
            layers.append(
                make_attention(
                    attention,
                    name=f"block{block}_{attention.lower()}",
                    reduction=attention_reduction,
                    kernel_initializer="glorot_uniform",
                    seed=seed + 100 * block,
                    gate_bias=attention_gate_bias,
                    dtype=dtype,
                )
            )
    return layers


def _chain(input_shape: Sequence[int], layers: Sequence[keras.layers.Layer], name: str):
    """A flat functional model applying ``layers`` one after the other."""
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    outputs = inputs
    for layer in layers:
        outputs = layer(outputs)
    return keras.Model(inputs, outputs, name=name)


def build_vgg16(
    num_classes: int,
    *,
    input_size: int = 224,
    width: float = 1.0,
    head_units: int | None = None,
    dropout: float = 0.5,
    weights: str | os.PathLike | None = None,
    attention: str | None = None,
    attention_reduction: int = 16,
    kernel_initializer: str = "he_normal",
    attention_gate_bias: float = 0.0,
    dtype_policy: str = "float32",
    seed: int,
) -> keras.Model:
    """VGG16 by blocks with the pinned classification head.

    Parameters
    ----------
    num_classes : int
        Output classes (8 emotions, 2 pain classes).
    input_size : int, default 224
        Side of the square RGB input, pixels; a multiple of 32 keeps every pool exact.
    width : float, default 1.0
        Channel multiplier of the convolution blocks.
    head_units : int or None
        Units of ``fc1``; None → :func:`default_head_units` (``round(4096*width)``, ≥ 32).
    dropout : float, default 0.5
        Dropout rate between ``fc1`` and ``predictions``.
    weights : None, "imagenet" or path
        None: random initialisation. "imagenet": the Keras ImageNet VGG16 convolution
        weights from the local Keras cache (never downloaded; needs ``width=1``); a path
        to that ``.h5`` file works too. The head is always freshly initialised.
    attention : None, "se" or "cbam"
        Attention module inserted after conv blocks 2, 3 and 4 (Arabian et al. §2.1),
        named ``block{i}_{attention}``.
    attention_reduction : int, default 16
        Reduction ratio of the attention MLPs.
    kernel_initializer : str, default "he_normal"
        Initialiser of the convolutions and ``fc1``; "glorot_uniform" for Arabian et al.
    attention_gate_bias : float, default 0.0
        Initial logit of the attention gates (:mod:`forgetting_aus.attention`): 0 is the
        modules' own start (gates near one half), 3 starts them open.
    dtype_policy : str, default "float32"
        Keras dtype policy of every layer, e.g. "mixed_bfloat16" for fast CPU training.
    seed : int
        Seeds every initialiser and the dropout generator.

    Returns
    -------
    keras.Model
        Input ``(batch, input_size, input_size, 3)`` float32 (see :func:`preprocess`),
        output ``(batch, num_classes)`` softmax probabilities.
    """
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}.")
    if input_size < 32:
        raise ValueError(f"input_size must be at least 32 (five 2x2 pools), got {input_size}.")
    if head_units is None:
        head_units = default_head_units(width)
    dtype = None if dtype_policy is None else keras.mixed_precision.Policy(dtype_policy)
    layers = _conv_layers(
        width=width,
        attention=attention,
        attention_reduction=attention_reduction,
        kernel_initializer=kernel_initializer,
        seed=seed,
        attention_gate_bias=attention_gate_bias,
        dtype=dtype,
    )
    layers += _head_layers(
        num_classes,
        head_units=head_units,
        dropout=dropout,
        kernel_initializer=kernel_initializer,
        seed=seed,
        dtype=dtype,
    )
    model = _chain((input_size, input_size, 3), layers, name="vgg16")
    if weights is not None:
        if float(width) != 1.0:
            raise ValueError(
                f"ImageNet weights exist only for the full-width VGG16; got width={width}. "
                "Use width=1.0 with weights='imagenet', or weights=None for narrow networks."
            )
        path = imagenet_weights_path() if str(weights) == "imagenet" else Path(weights)
        _load_imagenet_conv_weights(model, path)
    return model


# --------------------------------------------------------------------------- ImageNet


def _keras_home() -> Path:
    # Same rule as keras.utils.get_file: $KERAS_HOME, else ~/.keras.
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))


def imagenet_weights_path(*, must_exist: bool = True, keras_home: str | os.PathLike | None = None) -> Path:
    """Path of the ImageNet VGG16 (no top) weights in the local Keras cache.

    Parameters
    ----------
    must_exist : bool, keyword-only
        Raise when the file is absent (the preflight asks with False, to report it).
    keras_home : path-like, optional, keyword-only
        The Keras home holding ``models/`` (the ``keras_home`` knob); None: ``$KERAS_HOME``,
        else ``~/.keras``, as Keras itself looks.

    Raises
    ------
    FileNotFoundError
        When the file is absent, saying where to put it and how to get it. Nothing is
        ever downloaded.
    """
    home = _keras_home() if keras_home is None else Path(keras_home)
    path = home / "models" / IMAGENET_WEIGHTS_FILE
    if must_exist and not path.is_file():
        raise FileNotFoundError(
            f"ImageNet VGG16 weights not found: expected the file {IMAGENET_WEIGHTS_FILE} "
            f"at {path} (the Keras cache, $KERAS_HOME/models or ~/.keras/models). This "
            "project never downloads weights. On a machine with internet run\n"
            '    python -c "from tensorflow import keras; '
            'keras.applications.VGG16(include_top=False)"\n'
            f"which saves it to ~/.keras/models/{IMAGENET_WEIGHTS_FILE}, then copy that "
            f"file to {path.parent}/. Only the 'paper' profile uses ImageNet weights; "
            "the default and smoke profiles train from scratch and do not need the file."
        )
    return path


def write_random_imagenet_layout(path: str | os.PathLike, *, seed: int) -> Path:
    """A weights file in the exact layout of Keras' ImageNet VGG16 (no top), holding random values.

    Smoke tests of the paper's code path use it where the real file cannot be had (nothing
    is downloaded here): Keras' own ``VGG16(include_top=False, weights=None)`` with its
    initialisers seeded, saved by ``save_weights`` to HDF5, the format and layer names of
    the published file. Its MD5 is not the published one, so the paper profile's preflight
    refuses it. Written atomically.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    reference = keras.applications.VGG16(include_top=False, weights=None)
    partial = path.with_name(path.name + ".part.h5")
    reference.save_weights(str(partial))
    os.replace(partial, path)
    return path


def _load_imagenet_conv_weights(model: keras.Model, path: Path) -> None:
    """Copy Keras' ImageNet VGG16 convolutions into ``model``, folding its preprocessing.

    Keras' network expects BGR, mean-subtracted 0..255 inputs; ours get RGB inputs divided
    by 255 (:func:`preprocess`). Since x_caffe[..., j] = 255 * x_ours[..., 2 - j], the
    first kernel becomes ``255 * W[:, :, ::-1, :]`` and the network computes exactly the
    same activations.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ImageNet weights file {path} does not exist.")
    reference = keras.applications.VGG16(
        include_top=False, weights=None, input_shape=model.input_shape[1:]
    )
    reference.load_weights(str(path))
    for layer in reference.layers:
        if not layer.weights:
            continue
        kernel, bias = layer.get_weights()
        if layer.name == "block1_conv1":
            kernel = fold_caffe_preprocessing(kernel)
        model.get_layer(layer.name).set_weights([kernel, bias])


def fold_caffe_preprocessing(kernel: np.ndarray) -> np.ndarray:
    """First-conv kernel for our inputs from one trained on Keras "caffe" inputs.

    Parameters
    ----------
    kernel : ndarray, shape (3, 3, 3, filters)
        ``block1_conv1`` kernel expecting BGR, mean-subtracted, 0..255 inputs.

    Returns
    -------
    ndarray, same shape: ``255 * kernel[:, :, ::-1, :]``.
    """
    return np.asarray(kernel)[:, :, ::-1, :] * np.float32(255.0)


# --------------------------------------------------------------------------- blocks


def _block_of(layer: keras.layers.Layer) -> int | None:
    match = _BLOCK_NAME.match(layer.name)
    return int(match.group(1)) if match else None


def block_layers(model: keras.Model, block: int) -> list[keras.layers.Layer]:
    """Layers of conv block ``block`` (1..5): convolutions, pool and its attention layer."""
    if block not in range(1, 6):
        raise ValueError(f"VGG16 has blocks 1..5, got block={block}.")
    return [layer for layer in model.layers if _block_of(layer) == block]


def freeze_blocks(model: keras.Model, n_frozen: int) -> keras.Model:
    """Freeze conv blocks 1..n_frozen; later blocks and the head become trainable.

    ``n_frozen=0`` trains everything (the paper's FreezeB0), ``n_frozen=5`` only the
    output layers (FreezeB5). Changes ``model`` in place (re-compile before fitting) and
    returns it.
    """
    if n_frozen not in range(0, 6):
        raise ValueError(f"n_frozen must be in 0..5, got {n_frozen}.")
    for layer in model.layers:
        block = _block_of(layer)
        layer.trainable = not (block is not None and block <= n_frozen)
    return model


def reinitialise_block(model: keras.Model, block: int, *, seed: int) -> keras.Model:
    """Draw fresh weights for the convolutions of conv block ``block`` (in place).

    Every kernel gets a new draw from its layer's own initializer (same class and
    settings, seeded from ``seed`` and the layer's position in the block) and every bias is
    zeroed, as :func:`build_vgg16` initialises them; the other blocks and the head keep
    their weights. Used by the ground-truth chapter's positive control, so that block 5 is
    learned again from its fine-tuning data alone.

    Returns
    -------
    keras.Model
        ``model`` itself.
    """
    convs = [layer for layer in block_layers(model, block) if isinstance(layer, keras.layers.Conv2D)]
    for position, layer in enumerate(convs):
        config = keras.initializers.serialize(layer.kernel_initializer)
        config = {**config, "config": {**config.get("config", {}), "seed": int(seed) * 16 + position}}
        initializer = keras.initializers.deserialize(config)
        layer.kernel.assign(initializer(layer.kernel.shape, dtype=layer.kernel.dtype))
        if layer.bias is not None:
            layer.bias.assign(tf.zeros_like(layer.bias))
    return model


def conv_base(model: keras.Model) -> keras.Model:
    """The convolution blocks up to ``block5_pool`` as a model sharing ``model``'s weights."""
    return keras.Model(model.inputs, model.get_layer("block5_pool").output, name="vgg16_base")


def _clone_layer(
    layer: keras.layers.Layer,
    *,
    dtype_policy: str | None = None,
    dropout_seed: int | None = None,
):
    config = layer.get_config()
    if dtype_policy is not None and layer.name != "softmax":
        config["dtype"] = keras.mixed_precision.Policy(dtype_policy)
    if isinstance(layer, keras.layers.Dropout):
        # get_config drops force_generator; keep checkpointable dropout masks.
        config["force_generator"] = True
        if dropout_seed is not None:
            config["seed"] = int(dropout_seed)
    clone = layer.__class__.from_config(config)
    clone.trainable = layer.trainable
    return clone


def _conv_part(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers from the first convolution to ``block5_pool`` (inclusive)."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    names = [layer.name for layer in layers]
    if "block5_pool" not in names:
        raise ValueError(
            f"Expected a VGG16 built by forgetting_aus.models with a 'block5_pool' layer; "
            f"found layers {names}."
        )
    return layers[: names.index("block5_pool") + 1]


def _rebuild(
    model: keras.Model,
    layers: Sequence[keras.layers.Layer],
    *,
    dtype_policy=None,
    dropout_seed=None,
    name=None,
) -> keras.Model:
    """Flat copy of the chain ``layers`` of ``model`` with copied weights."""
    clones = [
        _clone_layer(layer, dtype_policy=dtype_policy, dropout_seed=dropout_seed)
        for layer in layers
    ]
    with _initial_values_skipped():  # every weight is overwritten just below
        copy = _chain(model.input_shape[1:], clones, name=name or model.name)
    for source, target in zip(layers, clones, strict=True):
        target.set_weights(source.get_weights())
    return copy


def build_head(
    feature_shape: Sequence[int],
    num_classes: int,
    *,
    head_units: int,
    dropout: float = 0.5,
    kernel_initializer: str = "he_normal",
    attention_gate_bias: float = 0.0,
    dtype_policy: str = "float32",
    seed: int,
) -> keras.Model:
    """The output layers alone, on ``block5_pool`` features of shape ``feature_shape``."""
    dtype = keras.mixed_precision.Policy(dtype_policy)
    layers = _head_layers(
        num_classes,
        head_units=head_units,
        dropout=dropout,
        kernel_initializer=kernel_initializer,
        seed=seed,
        dtype=dtype,
    )
    return _chain(tuple(feature_shape), layers, name="vgg16_head")


def with_new_head(
    model_or_base: keras.Model,
    num_classes: int,
    *,
    head_units: int | None = None,
    dropout: float = 0.5,
    kernel_initializer: str = "he_normal",
    seed: int,
) -> keras.Model:
    """Independent copy of the conv blocks (weights copied) with a fresh head.

    Used for every pain model (emotion blocks → pain head) and every re-training (pain
    blocks → emotion head). All layers of the copy are trainable; call
    :func:`freeze_blocks` on it. ``head_units=None`` keeps the source's ``fc1`` size when
    it has one, else :func:`default_head_units` of the source's width.
    """
    if head_units is None:
        head_units = _source_head_units(model_or_base)
    conv = _conv_part(model_or_base)
    clones = [_clone_layer(layer) for layer in conv]
    for clone in clones:
        clone.trainable = True
    head = _head_layers(
        num_classes,
        head_units=head_units,
        dropout=dropout,
        kernel_initializer=kernel_initializer,
        seed=seed,
    )
    model = _chain(model_or_base.input_shape[1:], clones + head, name="vgg16")
    for source, target in zip(conv, clones, strict=True):
        target.set_weights(source.get_weights())
    return model


def _source_head_units(model: keras.Model) -> int:
    names = [layer.name for layer in model.layers]
    if "fc1" in names:
        return int(model.get_layer("fc1").units)
    width = model.get_layer("block1_conv1").filters / VGG16_BLOCKS[0][1]
    return default_head_units(width)


def assemble(base: keras.Model, head: keras.Model) -> keras.Model:
    """Full flat model = copies of ``base``'s conv blocks followed by ``head``'s layers.

    ``base`` is a VGG16 or its :func:`conv_base`; ``head`` comes from :func:`build_head`
    (for instance trained by :func:`forgetting_aus.training.fit_head`).
    """
    conv = _conv_part(base)
    head_layers = [layer for layer in head.layers if not isinstance(layer, keras.layers.InputLayer)]
    if tuple(head.input_shape[1:]) != tuple(conv[-1].output_shape[1:]):
        raise ValueError(
            f"The head expects features of shape {head.input_shape[1:]} but the base's "
            f"block5_pool gives {conv[-1].output_shape[1:]}; build the head on "
            "extract_features(base, ...) of this base."
        )
    return _rebuild(base, conv + head_layers, name="vgg16")


def without_softmax(model: keras.Model) -> keras.Model:
    """The model up to ``predictions`` (pre-softmax scores), sharing weights."""
    return keras.Model(model.inputs, model.get_layer("predictions").output, name=model.name)


def to_policy(
    model: keras.Model, dtype_policy: str, *, dropout_seed: int | None = None
) -> keras.Model:
    """Same architecture rebuilt under ``dtype_policy``, weights copied (float32 variables).

    The softmax layer stays float32. Trainable flags are preserved. ``dropout_seed``
    re-seeds the dropout masks of the copy (training uses a copy per run).
    """
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    return _rebuild(model, layers, dtype_policy=dtype_policy, dropout_seed=dropout_seed)


def to_float32(model: keras.Model) -> keras.Model:
    """Float32 copy of a (possibly mixed_bfloat16) model, e.g. for LRP with iNNvestigate."""
    return to_policy(model, "float32")


# --------------------------------------------------------------------------- persistence


def save_model(model: keras.Model, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` (``.keras``) atomically: temp file, then ``os.replace``.

    A killed run therefore never leaves a half-written model under ``path``.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"save_model writes the .keras format; got path {path} (use .keras).")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".keras", dir=path.parent)
    os.close(handle)
    try:
        model.save(temp, overwrite=True)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    return path


@contextlib.contextmanager
def _initial_values_skipped():
    """While active, He/Glorot/LeCun initialisers return zeros instead of random draws.

    Loading a model builds every layer, which draws its initial weights, and then
    overwrites them with the stored ones. A full-width VGG16 head draws ~120 M values,
    a few seconds per load and ~10 loads per chapter; skipping the draw changes nothing
    that survives the load (the layers keep their initialiser objects and configs).
    """
    original = keras.initializers.VarianceScaling.__call__

    def zeros(self, shape, dtype=None, **kwargs):
        return tf.zeros(shape, dtype=dtype or keras.backend.floatx())

    keras.initializers.VarianceScaling.__call__ = zeros
    try:
        yield
    finally:
        keras.initializers.VarianceScaling.__call__ = original


@contextlib.contextmanager
def saved_parts(path: str | os.PathLike):
    """A saved model as two parts: its architecture (initial weights) and its weights file.

    Keras' public pieces: the architecture from the ``.keras`` archive's ``config.json``
    (``keras.saving.deserialize_keras_object``, uncompiled, initial draws skipped) and the
    archive's ``model.weights.h5`` copied to a temporary file that ``Model.load_weights``
    reads. Keras' own ``load_model`` reads that file inside the zip archive, where h5py's
    backward seeks make Python 3.11's zipfile re-read the entry from its start (seconds
    per full-width model; 3.12 seeks stored entries directly); the copy is one read.

    Yields
    ------
    (keras.Model, Path)
        The model before its weights are loaded, and the weights file (deleted on exit).
    """
    path = Path(path)
    if path.suffix != ".keras" or not path.is_file():
        raise FileNotFoundError(f"No saved model at {path}; expected a .keras file written by save_model.")
    custom = {cls.__name__: cls for cls in ATTENTION_LAYERS.values()}
    with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory(prefix="forgetting-aus-load-") as tmp:
        config = json.loads(archive.read("config.json"))
        config["compile_config"] = None
        with _initial_values_skipped():
            model = keras.saving.deserialize_keras_object(config, custom_objects=custom)
        weights = Path(tmp) / "model.weights.h5"
        with archive.open("model.weights.h5") as source, open(weights, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 24)
        yield model, weights


def load_model(path: str | os.PathLike) -> keras.Model:
    """Load a model saved by :func:`save_model` (attention layers included), uncompiled.

    The same model as ``keras.models.load_model(path, compile=False)`` (weights, config
    and trainable flags; tested), read by :func:`saved_parts`, 3-5x faster at full width.
    """
    with saved_parts(path) as (model, weights):
        model.load_weights(weights)
    return model
