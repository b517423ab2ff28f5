"""Where the conv nets train: one device, or ``tf.distribute.MirroredStrategy`` over several GPUs.

The ``distribute`` knob picks the strategy that :func:`forgetting_aus.pipeline.stored_model`
enters around every training run (the model, its optimiser and Keras' ``fit`` then run
under it, the Keras way: variables created in ``strategy.scope()`` are mirrored):

- ``"auto"`` (every profile): ``MirroredStrategy`` over the visible GPUs when there are
  two or more, else TensorFlow's default strategy (one device: the GPU, else the CPU);
- ``"none"``: always the default strategy;
- ``"mirrored"``: always ``MirroredStrategy`` (over the GPUs, or the CPU when there are none).

**Batch and learning rate.** The batch-size knobs are the *global* batch: with N replicas
each one computes 1/N of every batch, and the gradients are summed over the replicas of the
loss Keras divides by N (``SUM_OVER_BATCH_SIZE``), i.e. the global batch's mean gradient.
The updates are therefore those of one device with the same batch, up to the order of
floating-point sums, so the learning rate is *not* scaled: the paper's settings hold
unchanged on any number of GPUs (a test trains on two logical CPU devices and on one and
compares the losses). More GPUs make each step faster, not larger. Two things differ from
one device: augmentation draws one seed per replica's share of a batch, and dropout masks
come from each replica's own stream, so runs on different numbers of GPUs are statistically,
not bitwise, alike. The re-trained heads of chapter 04 train on one device (a head is a few
matrix products per batch; splitting it would cost more in synchronisation than it saves).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import tensorflow as tf

#: Values of the ``distribute`` knob.
MODES: tuple[str, ...] = ("auto", "none", "mirrored")


def strategy_for(mode: str, *, devices: Sequence[str] | None = None) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy a training run uses under the ``distribute`` knob.

    Parameters
    ----------
    mode : {"auto", "none", "mirrored"}
    devices : sequence of str, optional, keyword-only
        Devices of a ``MirroredStrategy`` (default: every visible GPU, else the CPU);
        the tests pass two logical CPU devices.

    Returns
    -------
    tf.distribute.Strategy
        ``tf.distribute.get_strategy()`` (the default, one device) or a ``MirroredStrategy``.
    """
    if mode not in MODES:
        raise ValueError(f"distribute must be one of {MODES}, got {mode!r}")
    gpus = tf.config.list_logical_devices("GPU")
    if mode == "none" or (mode == "auto" and len(gpus) < 2 and devices is None):
        return tf.distribute.get_strategy()
    return tf.distribute.MirroredStrategy(devices=list(devices) if devices is not None else None)


@contextlib.contextmanager
def entered(strategy: tf.distribute.Strategy) -> Iterator[tf.distribute.Strategy]:
    """Run the block in ``strategy``'s scope (a ``MirroredStrategy``'s); yields it.

    TensorFlow's default strategy (one device) is not entered, so models train exactly
    as without this.
    """
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        with strategy.scope():
            yield strategy
    else:
        yield strategy


def replica_scope(mode: str, *, devices: Sequence[str] | None = None):
    """:func:`entered` with :func:`strategy_for`'s strategy for the ``distribute`` knob ``mode``."""
    return entered(strategy_for(mode, devices=devices))


def describe(strategy: tf.distribute.Strategy) -> str:
    """``"MirroredStrategy over 2 replicas (GPU:0, GPU:1)"`` or ``"one device"``, for the chapter logs."""
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        names = ", ".join(device.split("device:")[-1] for device in strategy.extended.worker_devices)
        return f"MirroredStrategy over {strategy.num_replicas_in_sync} replicas ({names})"
    return "one device"
