"""Channel and spatial attention modules as serialisable Keras layers.

Arabian et al. (2022, §2.1) insert an attention module after the second, third and fourth
convolution blocks of VGG16 and compare two kinds:

- :class:`SqueezeExcitation` (Hu et al. 2018): global average pool → Dense(C/r, ReLU) →
  Dense(C, sigmoid) → rescale every channel of the input.
- :class:`CBAM` (Woo et al. 2018): channel attention (average- and max-pooled descriptors
  through one shared two-layer MLP, summed, sigmoid) followed by spatial attention (a 7x7
  convolution over the channel-wise mean and max maps, sigmoid).

Both are single layers that own their weights (created with ``add_weight``) rather than
sub-models, so a VGG16 with attention stays a flat functional graph, saves to ``.keras``
and reloads with :func:`keras.models.load_model` without custom objects: the classes are
registered with :func:`keras.utils.register_keras_serializable` under the package
``forgetting_aus``.

Inputs and outputs are ``(batch, height, width, channels)`` tensors of the same shape.
"""

from __future__ import annotations

import tensorflow as tf
from tensorflow import keras

__all__ = ["SqueezeExcitation", "CBAM", "make_attention", "ATTENTION_LAYERS"]

_PACKAGE = "forgetting_aus"


def _hidden_units(channels: int, reduction: int) -> int:
    # Hu et al. use C/r hidden units; at the CPU profile's small widths C/r can drop
    # below one, so at least one unit is kept.
    return max(1, int(channels) // int(reduction))


@keras.utils.register_keras_serializable(package=_PACKAGE)
class SqueezeExcitation(keras.layers.Layer):
    """Squeeze-and-Excitation channel rescaling (Hu et al. 2018).

    ``y = x * sigmoid(W2 relu(W1 mean_hw(x) + b1) + b2)`` broadcast over height and width.

    Parameters
    ----------
    reduction : int, default 16
        Reduction ratio ``r`` of the bottleneck; hidden units ``max(1, C // r)``.
    kernel_initializer : str or Initializer, default "glorot_uniform"
        Initialiser of both dense kernels (the hidden bias starts at zero).
    seed : int or None
        Seed of the kernel initialiser, for reproducible construction.
    gate_bias : float, default 0.0
        Initial bias of the gate logits: 0 is Hu et al.'s start (gates near one half);
        a positive value starts the gates open (3: ~0.95), so that a freshly initialised
        network is not scaled down at every attention module (see the note above
        :data:`ATTENTION_LAYERS`).
    """

    def __init__(
        self,
        reduction: int = 16,
        *,
        kernel_initializer="glorot_uniform",
        seed: int | None = None,
        gate_bias: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(reduction) < 1:
            raise ValueError(f"reduction must be a positive integer, got {reduction!r}.")
        self.reduction = int(reduction)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.seed = seed
        self.gate_bias = float(gate_bias)

    def _initializer(self, offset: int):
        config = keras.initializers.serialize(self.kernel_initializer)
        if self.seed is not None:
            config = dict(config)
            config["config"] = dict(config.get("config", {}), seed=int(self.seed) + offset)
        return keras.initializers.deserialize(config)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        hidden = _hidden_units(channels, self.reduction)
        self.squeeze_kernel = self.add_weight(
            name="squeeze_kernel", shape=(channels, hidden), initializer=self._initializer(0)
        )
        self.squeeze_bias = self.add_weight(
            name="squeeze_bias", shape=(hidden,), initializer="zeros"
        )
        self.excite_kernel = self.add_weight(
            name="excite_kernel", shape=(hidden, channels), initializer=self._initializer(1)
        )
        self.excite_bias = self.add_weight(
            name="excite_bias", shape=(channels,), initializer=keras.initializers.Constant(self.gate_bias)
        )
        super().build(input_shape)

    def channel_weights(self, inputs):
        """Per-channel gates in (0, 1), shape ``(batch, 1, 1, channels)``."""
        squeezed = tf.reduce_mean(inputs, axis=(1, 2))
        hidden = tf.nn.relu(tf.matmul(squeezed, self.squeeze_kernel) + self.squeeze_bias)
        gates = tf.sigmoid(tf.matmul(hidden, self.excite_kernel) + self.excite_bias)
        return gates[:, tf.newaxis, tf.newaxis, :]

    def call(self, inputs):
        return inputs * self.channel_weights(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            reduction=self.reduction,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            seed=self.seed,
            gate_bias=self.gate_bias,
        )
        return config


@keras.utils.register_keras_serializable(package=_PACKAGE)
class CBAM(keras.layers.Layer):
    """Convolutional Block Attention Module (Woo et al. 2018), channel then spatial.

    Channel attention: ``Mc = sigmoid(MLP(avgpool(x)) + MLP(maxpool(x)))`` with one shared
    MLP ``C → C/r (ReLU) → C``; ``x' = x * Mc``. Spatial attention:
    ``Ms = sigmoid(conv7x7([mean_c(x'), max_c(x')]))``; output ``x' * Ms``.

    Parameters
    ----------
    reduction : int, default 16
        Reduction ratio of the shared MLP; hidden units ``max(1, C // r)``.
    kernel_size : int, default 7
        Side of the spatial-attention convolution (Woo et al. found 7 best).
    channel, spatial : bool, default True
        Switch either sub-module off (ablations); both on is CBAM.
    kernel_initializer : str or Initializer, default "glorot_uniform"
    seed : int or None
    gate_bias : float, default 0.0
        Initial logit of both gates, as in :class:`SqueezeExcitation` (the channel
        logit sums two MLP outputs, so each output bias starts at half of it).
    """

    def __init__(
        self,
        reduction: int = 16,
        *,
        kernel_size: int = 7,
        channel: bool = True,
        spatial: bool = True,
        kernel_initializer="glorot_uniform",
        seed: int | None = None,
        gate_bias: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(reduction) < 1:
            raise ValueError(f"reduction must be a positive integer, got {reduction!r}.")
        if not (channel or spatial):
            raise ValueError("CBAM needs channel=True, spatial=True or both; got neither.")
        self.reduction = int(reduction)
        self.kernel_size = int(kernel_size)
        self.channel = bool(channel)
        self.spatial = bool(spatial)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.seed = seed
        self.gate_bias = float(gate_bias)

    _initializer = SqueezeExcitation._initializer

    def build(self, input_shape):
        channels = int(input_shape[-1])
        hidden = _hidden_units(channels, self.reduction)
        if self.channel:
            self.mlp_kernel_1 = self.add_weight(
                name="mlp_kernel_1", shape=(channels, hidden), initializer=self._initializer(0)
            )
            self.mlp_bias_1 = self.add_weight(
                name="mlp_bias_1", shape=(hidden,), initializer="zeros"
            )
            self.mlp_kernel_2 = self.add_weight(
                name="mlp_kernel_2", shape=(hidden, channels), initializer=self._initializer(1)
            )
            self.mlp_bias_2 = self.add_weight(
                name="mlp_bias_2", shape=(channels,), initializer=keras.initializers.Constant(self.gate_bias / 2)
            )
        if self.spatial:
            self.spatial_kernel = self.add_weight(
                name="spatial_kernel",
                shape=(self.kernel_size, self.kernel_size, 2, 1),
                initializer=self._initializer(2),
            )
            self.spatial_bias = self.add_weight(
                name="spatial_bias", shape=(1,), initializer=keras.initializers.Constant(self.gate_bias)
            )
        super().build(input_shape)

    def _mlp(self, descriptor):
        hidden = tf.nn.relu(tf.matmul(descriptor, self.mlp_kernel_1) + self.mlp_bias_1)
        return tf.matmul(hidden, self.mlp_kernel_2) + self.mlp_bias_2

    def channel_attention(self, inputs):
        """Channel gates in (0, 1), shape ``(batch, 1, 1, channels)``."""
        logits = self._mlp(tf.reduce_mean(inputs, axis=(1, 2))) + self._mlp(
            tf.reduce_max(inputs, axis=(1, 2))
        )
        return tf.sigmoid(logits)[:, tf.newaxis, tf.newaxis, :]

    def spatial_attention(self, inputs):
        """Spatial gates in (0, 1), shape ``(batch, height, width, 1)``."""
        pooled = tf.concat(
            [
                tf.reduce_mean(inputs, axis=-1, keepdims=True),
                tf.reduce_max(inputs, axis=-1, keepdims=True),
            ],
            axis=-1,
        )
        logits = tf.nn.conv2d(pooled, self.spatial_kernel, strides=1, padding="SAME")
        return tf.sigmoid(logits + self.spatial_bias)

    def call(self, inputs):
        outputs = inputs
        if self.channel:
            outputs = outputs * self.channel_attention(outputs)
        if self.spatial:
            outputs = outputs * self.spatial_attention(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            reduction=self.reduction,
            kernel_size=self.kernel_size,
            channel=self.channel,
            spatial=self.spatial,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            seed=self.seed,
            gate_bias=self.gate_bias,
        )
        return config


# Why a gate bias: with gates at sigmoid(0) = 1/2, every attention module halves (SE) or
# quarters (CBAM, two gates) a fresh network's signal; after the three modules of
# Arabian et al.'s networks a plain VGG16 without normalisation starts 8 (SE) or 64 (CBAM)
# times quieter and, trained from scratch on a few hundred images, stays at chance
# (measured: README, chapter 10). Gates that start open pass the signal as the plain
# network does, and training can still close them.

#: Name → layer class, also the ``custom_objects`` handed to ``load_model``.
ATTENTION_LAYERS: dict[str, type[keras.layers.Layer]] = {
    "se": SqueezeExcitation,
    "cbam": CBAM,
}


def make_attention(
    kind: str,
    *,
    name: str,
    reduction: int = 16,
    kernel_initializer="glorot_uniform",
    seed: int | None = None,
    gate_bias: float = 0.0,
    dtype=None,
) -> keras.layers.Layer:
    """Create an attention layer by its short name, ``"se"`` or ``"cbam"``."""
    key = str(kind).lower()
    if key not in ATTENTION_LAYERS:
        raise ValueError(
            f"Unknown attention {kind!r}; expected one of {sorted(ATTENTION_LAYERS)} or None."
        )
    return ATTENTION_LAYERS[key](
        reduction, kernel_initializer=kernel_initializer, seed=seed, gate_bias=gate_bias, name=name, dtype=dtype
    )
