"""Fitting the emotion and pain models: augmentation, selection, checkpoints, head-only fits.

The paper (§3.2) trains with SGD (lr 0.01), focal loss and augmentation: horizontal flip for
emotions; rotation ±25°, height/width shift ±10 %, shear ±10 %, zoom ±10 % and horizontal
flip for pain (Keras ``ImageDataGenerator`` options). §4.1 re-trains emotion heads on the
frozen convolution blocks of each pain model.

Design choices
--------------
- **Augmentation and preprocessing run inside the training step**, in a training-only
  wrapper (:class:`_AugmentingTrainer`) around the model, never in the model itself, so saved
  models are plain VGG16 graphs. The wrapper is fed uint8 arrays through Keras' own
  in-memory adapter (the epoch's order is drawn in numpy), which measured as fast as a
  bare ``model.fit`` on preprocessed arrays; the earlier ``tf.data`` pipeline with a
  per-batch ``numpy_function`` gather ran at about 0.6-0.75x of it on 2 cores. Arrays larger
  than ``IN_MEMORY_LIMIT_BYTES`` (the ``paper`` profile) are streamed batch by batch instead.
  :func:`make_dataset` keeps the same augmentation for prediction and feature extraction.
  Augmentation is written with stateless random ops keyed on
  ``(seed, epoch, batch)`` rather than Keras' random preprocessing layers: their stateful
  generators are not part of a checkpoint, so a resumed run would see different
  augmentations, and Keras 2.14 has no shear layer anyway. The geometric transform is one
  combined affine map (rotation · shear · zoom, plus shift, about the image centre) applied
  with ``ImageProjectiveTransformV3`` — the op behind Keras' own RandomRotation/Zoom —
  with bilinear interpolation and ``nearest`` fill, as ``ImageDataGenerator`` does.
- **Reading of "shear ±10 %"**: ``ImageDataGenerator``'s ``shear_range`` is an angle in
  degrees, which would make 0.1 a negligible 0.1°. The paper states shear in per cent like
  the shifts and the zoom, so it is read as a shear *factor* uniform in [-0.1, 0.1]
  (``x' = x + s·y``, at most atan(0.1) ≈ 5.7°).
- **Model selection** on the validation split by macro recall (mean of per-class recalls;
  never plain accuracy, which the imbalanced emotion data would inflate; ties go to the
  lower validation loss) or by validation loss. The best epoch's weights are restored at the end.
- **Checkpoints** (``checkpoint_dir``): after every epoch a TensorFlow checkpoint of the
  training model's weights and of the optimizer (iterations, momentum), the best weights so far (``best.weights.npz``) and
  ``state.json`` (completed epochs, history, best epoch and score, run settings). The
  JSON is replaced atomically last and names the checkpoint it belongs to, so a run killed
  at any moment resumes from its last completed epoch. Data order, augmentation and
  dropout masks depend only on ``(seed, epoch)``, so the resumed run equals an uninterrupted one (given
  ``tf.config.experimental.enable_op_determinism()``).
- **Mixed precision**: ``mixed_precision=True`` trains a ``mixed_bfloat16`` copy (the loss
  is computed in float32; bfloat16 needs no loss scaling) and writes the best weights back
  into the float32 model it was given, which is what LRP needs.
- **Frozen networks**: FreezeB5 pain training uses geometric augmentation, so its frozen
  blocks run live in :func:`fit_classifier` (the simplest honest choice: features of
  augmented images cannot be cached). The §4.1 re-training uses flip only, so
  :func:`fit_head` trains on cached features of both orientations, exactly.
- ``fit_classifier`` trains a copy of ``model`` and writes the selected weights back into
  ``model``; trainable flags (:func:`forgetting_aus.models.freeze_blocks`) are honoured.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow import keras

from forgetting_aus import cache
from forgetting_aus import models as vgg
from forgetting_aus.augmentation import (  # noqa: F401  (re-exported: training.augment_images etc.)
    AUGMENTATIONS,
    PAIN_AUGMENTATION,
    AffineRanges,
    _resolve_augment,
    augment_images,
)

__all__ = [
    "AUGMENTATIONS",
    "AffineRanges",
    "PAIN_AUGMENTATION",
    "augment_images",
    "make_dataset",
    "macro_recall",
    "fit_classifier",
    "extract_features",
    "fit_head",
    "assemble",
]


# --------------------------------------------------------------------------- augmentation


# --------------------------------------------------------------------------- pipeline


def _epoch_order(n: int, *, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


def _batch_seeds(n: int, *, seed: int, epoch: int, batch_size: int) -> np.ndarray:
    """Per-sample copy of its batch's stateless seed ``(seed, epoch*1_000_003 + batch)``."""
    seeds = np.empty((n, 2), np.int64)
    seeds[:, 0] = int(seed)
    seeds[:, 1] = int(epoch) * 1_000_003 + np.arange(n) // int(batch_size)
    return seeds


def _one_hot(y: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[np.asarray(y, dtype=np.int64)]


def _raw_batches(x_uint8, labels: np.ndarray, order: np.ndarray, seeds: np.ndarray, batch_size: int):
    """``((uint8 images, seeds), labels)`` batches in ``order``, gathered lazily by numpy.

    ``seeds`` is aligned with ``order`` (position ``i`` belongs to image ``order[i]``), as
    :func:`_batch_seeds` returns it; ``labels`` is indexed by image.
    """
    image_shape = tuple(x_uint8.shape[1:])

    def gather(index):
        positions = slice(int(index) * batch_size, (int(index) + 1) * batch_size)
        rows = order[positions]
        return np.asarray(x_uint8[rows]), seeds[positions], labels[rows]

    def load(index):
        images, batch_seeds, batch_labels = tf.numpy_function(
            gather, [index], (x_uint8.dtype, tf.int64, tf.float32)
        )
        images.set_shape((None, *image_shape))
        batch_seeds.set_shape((None, 2))
        batch_labels.set_shape((None, labels.shape[1]))
        return (images, batch_seeds), batch_labels

    n_batches = (len(order) + batch_size - 1) // batch_size
    return tf.data.Dataset.range(n_batches).map(load)


def make_dataset(
    x_uint8: np.ndarray,
    y: np.ndarray | None,
    *,
    num_classes: int | None = None,
    batch_size: int,
    augment: str | AffineRanges = "none",
    seed: int = 0,
    epoch: int = 0,
    shuffle: bool = True,
) -> tf.data.Dataset:
    """One epoch of preprocessed (and augmented) batches from uint8 arrays.

    The order and the augmentation depend only on ``(seed, epoch)``.

    Parameters
    ----------
    x_uint8 : ndarray of uint8, shape (n, H, W, 3)
        Images (a ``np.memmap`` works: batches are gathered lazily).
    y : ndarray of int, shape (n,), or None
        Class indices; one-hot encoded with ``num_classes`` columns. None yields images only.

    Returns
    -------
    tf.data.Dataset of ``(float32 (b, H, W, 3), float32 (b, num_classes))`` or images.
    """
    n = len(x_uint8)
    if y is not None:
        y = np.asarray(y)
        if len(y) != n:
            raise ValueError(f"x has {n} images but y has {len(y)} labels.")
        if num_classes is None:
            raise ValueError("num_classes is required when labels are given.")
    order = _epoch_order(n, seed=seed, epoch=epoch, shuffle=shuffle)
    seeds = _batch_seeds(n, seed=seed, epoch=epoch, batch_size=batch_size)
    # Without labels a (n, 1) zero column rides along and is dropped below.
    targets = np.zeros((n, 1), np.float32) if y is None else _one_hot(y, num_classes)
    ranges = _resolve_augment(augment)

    def transform(inputs, labels):
        images, batch_seeds = inputs
        images = vgg.preprocess_tensor(augment_images(images, augment=ranges, seed=batch_seeds[0]))
        return images if y is None else (images, labels)

    dataset = _raw_batches(x_uint8, targets, order, seeds, batch_size)
    dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


IN_MEMORY_LIMIT_BYTES = 4 * 1024**3
"""Training arrays up to this size are fed to Keras in memory; larger ones are streamed."""


class _AugmentingTrainer(keras.Model):
    """Training-only wrapper: augments and preprocesses uint8 batches inside the train step.

    Inputs are ``((images uint8 (b, H, W, 3), seeds int64 (b, 2)), labels one-hot)``; the
    first row of ``seeds`` keys the batch's stateless augmentation, exactly as in
    :func:`make_dataset`. The wrapped ``model`` holds all weights; only it is ever saved.
    """

    def __init__(self, model: keras.Model, ranges: AffineRanges):
        super().__init__()
        self.model_to_train = model
        self.ranges = ranges

    def call(self, inputs, training=False):
        return self.model_to_train(vgg.preprocess_tensor(inputs), training=training)

    def train_step(self, data):
        (images, seeds), targets = data
        images = augment_images(images, augment=self.ranges, seed=seeds[0])
        images = vgg.preprocess_tensor(images)
        with tf.GradientTape() as tape:
            predictions = self.model_to_train(images, training=True)
            loss = self.compute_loss(y=targets, y_pred=tf.cast(predictions, tf.float32))
        variables = self.model_to_train.trainable_variables
        self.optimizer.minimize(loss, variables, tape=tape)
        return {"loss": loss}


def macro_recall(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over the classes present in ``y_true`` of the per-class recall."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    classes = np.unique(y_true)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in classes]))


# --------------------------------------------------------------------------- checkpoints


def _write_weights(path: Path, arrays: list[np.ndarray]) -> None:
    """Weights in order as ``arr_0, arr_1, ...`` of an ``.npz``, atomically (:func:`cache.write_npz`)."""
    cache.write_npz(path, **{f"arr_{i}": array for i, array in enumerate(arrays)})


def _read_weights(path: Path) -> list[np.ndarray]:
    """The weights :func:`_write_weights` wrote, in order."""
    data = cache.read_npz(path)
    return [data[f"arr_{i}"] for i in range(len(data))]


class _Checkpointer:
    """Per-epoch training state in a directory (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike, settings: dict, model, optimizer):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
        self.optimizer = optimizer
        self.model = model

    @property
    def state_path(self) -> Path:
        return self.directory / "state.json"

    def load(self) -> dict | None:
        """Restore model and optimizer from the last completed epoch; None if fresh."""
        if not self.state_path.is_file():
            return None
        state = cache.read_json(self.state_path)
        if state["settings"] != self.settings:
            raise ValueError(
                f"checkpoint_dir {self.directory} holds a run with different settings:\n"
                f"  found    {state['settings']}\n  expected {self.settings}\n"
                "Use a fresh checkpoint_dir for a new run, or delete this one."
            )
        self.optimizer.build(self.model.trainable_variables)
        prefix = str(self.directory / state["checkpoint"])
        self.checkpoint.read(prefix).assert_existing_objects_matched()
        state["best_weights"] = _read_weights(self.directory / "best.weights.npz")
        return state

    def save(self, *, epochs_done: int, history: dict, best: dict, best_weights, improved):
        name = f"epoch-{epochs_done:04d}"
        self.checkpoint.write(str(self.directory / name))
        if improved or not (self.directory / "best.weights.npz").is_file():
            _write_weights(self.directory / "best.weights.npz", best_weights)
        state = {
            "settings": self.settings,
            "epochs_done": epochs_done,
            "checkpoint": name,
            "history": history,
            "best": best,
        }
        cache.write_json(self.state_path, state)
        for stale in self.directory.glob("epoch-*"):
            if not stale.name.startswith(name):
                stale.unlink() if stale.is_file() else shutil.rmtree(stale)


# --------------------------------------------------------------------------- fitting


def _loss_settings(loss) -> Any:
    get_config = getattr(loss, "get_config", None)
    if get_config is None:
        return getattr(loss, "__name__", type(loss).__name__)
    config = dict(get_config())
    config.pop("reduction", None)
    return json.loads(json.dumps(config, default=str))


def _is_better(recall: float, val_loss: float, best: dict, select_by: str) -> bool:
    """Higher macro recall (ties: lower validation loss), or lower validation loss."""
    if best["epoch"] is None:
        return True
    if select_by == "val_loss":
        return val_loss < best["val_loss"]
    return recall > best["recall"] or (recall == best["recall"] and val_loss < best["val_loss"])


def _trains_in_place(model: keras.Model, policy: str) -> bool:
    """Whether ``model`` can be trained as it is: every layer under ``policy`` (the softmax
    excepted, float32 by design) and every dropout layer drawing from its own generator,
    which :func:`_reseed_dropout` resets each epoch (so the seed it was built with is moot).
    """
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if layer.name != "softmax" and getattr(layer.dtype_policy, "name", None) != policy:
            return False
        wrapper = getattr(layer, "_random_generator", None)
        if wrapper is not None and getattr(wrapper, "_rng_type", None) != "stateful":
            return False
    return True


def _reseed_dropout(model: keras.Model, *, seed: int, epoch: int) -> None:
    """Reset every dropout generator to a state that depends only on ``(seed, epoch)``.

    Like the data order and the augmentation, the dropout masks of an epoch are then a
    function of ``(seed, epoch)``, so a resumed run replays them exactly. Keras 2.14 keeps
    the generator (``force_generator=True``, see :mod:`forgetting_aus.models`) in the
    private ``_random_generator``; it is not part of the model's checkpoint.
    """
    for index, layer in enumerate(model.layers):
        wrapper = getattr(layer, "_random_generator", None)
        if wrapper is None:
            continue
        wrapper._maybe_init()
        generator = getattr(wrapper, "_generator", None)
        if generator is None:
            raise RuntimeError(
                f"Layer {layer.name!r} draws dropout masks without a tf.random.Generator, "
                "so training could not be resumed exactly; build models with "
                "forgetting_aus.models (Dropout(force_generator=True))."
            )
        generator.reset_from_seed(int(seed) * 1_000_003 + int(epoch) * 1_009 + index)


def _fit_loop(
    train_model: keras.Model,
    *,
    run_epoch: Callable[[int], float],
    predict_val: Callable[[], np.ndarray],
    y_val: np.ndarray,
    num_classes: int,
    loss,
    epochs: int,
    learning_rate: float,
    momentum: float,
    select_by: str,
    checkpoint_dir,
    settings: dict,
    batch_size: int,
    progress: bool,
    description: str,
    seed: int,
    fit_model: keras.Model | None = None,
) -> dict:
    """Epoch loop shared by :func:`fit_classifier` and :func:`fit_head`.

    ``fit_model`` is what ``run_epoch`` calls ``fit`` on, if not ``train_model`` itself (the
    augmenting wrapper of :func:`fit_classifier`); weights are always ``train_model``'s.
    """
    if select_by not in ("macro_recall", "val_loss"):
        raise ValueError(f"select_by must be 'macro_recall' or 'val_loss', got {select_by!r}.")
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)
    (fit_model or train_model).compile(optimizer=optimizer, loss=loss)
    history: dict[str, list] = {"loss": [], "val_loss": [], "val_macro_recall": [], "seconds": []}
    best: dict[str, Any] = {"epoch": None, "score": None, "recall": None, "val_loss": None}
    # None: the model's current weights are the best ones. A snapshot (a full copy, ~0.5 GB
    # at full width) is taken only when a later epoch could still overwrite them.
    best_weights = None
    start = 0
    checkpointer = None
    if checkpoint_dir is not None:
        checkpointer = _Checkpointer(checkpoint_dir, settings, train_model, optimizer)
        state = checkpointer.load()
        if state is not None:
            start, history, best = state["epochs_done"], state["history"], state["best"]
            best_weights = state["best_weights"]
    y_val_onehot = tf.one_hot(np.asarray(y_val), num_classes, dtype=tf.float32)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, initial=start, desc=description, unit="epoch")
    for epoch in range(start, epochs):
        began = time.perf_counter()
        _reseed_dropout(train_model, seed=seed, epoch=epoch)
        train_loss = float(run_epoch(epoch))
        probs = np.asarray(predict_val(), dtype=np.float32)
        val_loss = float(loss(y_val_onehot, probs))
        recall = macro_recall(y_val, probs.argmax(axis=1))
        history["loss"].append(train_loss)
        history["val_loss"].append(val_loss)
        history["val_macro_recall"].append(recall)
        history["seconds"].append(time.perf_counter() - began)
        improved = _is_better(recall, val_loss, best, select_by)
        last_epoch = epoch == epochs - 1
        if improved:
            score = recall if select_by == "macro_recall" else val_loss
            best = {"epoch": epoch, "score": score, "recall": recall, "val_loss": val_loss}
            best_weights = None if last_epoch else train_model.get_weights()
        # After the last epoch the caller stores the model itself; a checkpoint would only
        # be deleted (a run killed before the store replays that one epoch, identically).
        if checkpointer is not None and not last_epoch:
            checkpointer.save(
                epochs_done=epoch + 1,
                history=history,
                best=best,
                best_weights=best_weights,
                improved=improved,
            )
        if bar is not None:
            bar.set_postfix(
                loss=f"{history['loss'][-1]:.4f}",
                val_loss=f"{val_loss:.4f}",
                val_recall=f"{recall:.3f}",
                best=best["epoch"] + 1,
            )
            bar.update(1)
    if bar is not None:
        bar.close()
    if best_weights is not None:
        train_model.set_weights(best_weights)
    return {
        **history,
        "best_epoch": best["epoch"],
        "best_score": best["score"],
        "select_by": select_by,
        "epochs": epochs,
    }


def fit_classifier(
    model: keras.Model,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    *,
    loss,
    epochs: int,
    batch_size: int,
    learning_rate: float = 0.01,
    momentum: float = 0.0,
    augment: str | AffineRanges = "none",
    select_by: str = "macro_recall",
    checkpoint_dir: str | os.PathLike | None = None,
    seed: int,
    mixed_precision: bool = False,
    progress: bool = True,
) -> dict:
    """Train ``model`` with SGD on uint8 images, select the best epoch on validation.

    Parameters
    ----------
    model : keras.Model
        A VGG16 from :mod:`forgetting_aus.models` (trainable flags are honoured). Updated
        in place with the selected epoch's weights; its dtype policy is unchanged.
    train, val : (x, y)
        ``x`` uint8 of shape (n, H, W, 3) (RGB, 0..255), ``y`` int class indices (n,).
    loss : callable
        ``loss(y_true_onehot, y_pred_probs) -> scalar``, e.g. :func:`losses.focal_loss`.
    epochs, batch_size : int
    learning_rate, momentum : float
        SGD settings (the paper: lr 0.01; momentum unspecified, default 0).
    augment : "none", "flip", "pain" or AffineRanges
        Applied in the input pipeline before :func:`models.preprocess`.
    select_by : "macro_recall" or "val_loss"
        Validation criterion of the model selection.
    checkpoint_dir : path or None
        Per-epoch checkpoints; an existing directory of the same run is resumed.
    seed : int
        Data order, augmentation and dropout masks.
    mixed_precision : bool
        Train a ``mixed_bfloat16`` copy (loss in float32); weights come back float32.
    progress : bool
        A progress bar with one update per epoch.

    Returns
    -------
    dict
        ``loss``, ``val_loss``, ``val_macro_recall``, ``seconds`` (lists, one per epoch),
        ``best_epoch`` (0-based), ``best_score``, ``select_by``, ``epochs``, ``model``
        (``model`` itself, or its float32 copy if it was built under another policy).
    """
    x_train, y_train = train
    x_val, y_val = val
    num_classes = int(model.output_shape[-1])
    for name, labels in (("train", y_train), ("val", y_val)):
        labels = np.asarray(labels)
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(
                f"{name} labels must be class indices in 0..{num_classes - 1} for this "
                f"model's {num_classes} outputs; found range {labels.min()}..{labels.max()}."
            )
    if np.asarray(x_train).dtype != np.uint8:
        raise ValueError(
            f"fit_classifier expects uint8 images (preprocessing happens in the pipeline); "
            f"got {np.asarray(x_train).dtype}."
        )
    policy = "mixed_bfloat16" if mixed_precision else "float32"
    # A copy costs seconds at full width (weights copied, ~0.5 GB); the model itself is
    # trained when it already has the policy and resumable dropout generators.
    in_place = _trains_in_place(model, policy)
    train_model = model if in_place else vgg.to_policy(model, policy, dropout_seed=seed)
    ranges = _resolve_augment(augment)
    settings = {
        "kind": "fit_classifier",
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "momentum": momentum,
        "augment": asdict(ranges),
        "select_by": select_by,
        "seed": seed,
        "mixed_precision": mixed_precision,
        "n_train": len(x_train),
        "n_val": len(x_val),
        "loss": _loss_settings(loss),
    }
    val_inputs = make_dataset(x_val, None, batch_size=batch_size, shuffle=False)

    trainer = _AugmentingTrainer(train_model, ranges)
    y_onehot = _one_hot(y_train, num_classes)
    in_memory = np.asarray(x_train[:1]).nbytes * len(x_train) <= IN_MEMORY_LIMIT_BYTES

    def run_epoch(epoch: int) -> float:
        order = _epoch_order(len(x_train), seed=seed, epoch=epoch, shuffle=True)
        seeds = _batch_seeds(len(order), seed=seed, epoch=epoch, batch_size=batch_size)
        if in_memory:
            inputs = (np.asarray(x_train[order]), seeds)
            fitted = trainer.fit(
                inputs, y_onehot[order], batch_size=batch_size, shuffle=False,
                epochs=epoch + 1, initial_epoch=epoch, verbose=0,
            )
        else:
            dataset = _raw_batches(x_train, y_onehot, order, seeds, batch_size).prefetch(2)
            fitted = trainer.fit(dataset, epochs=epoch + 1, initial_epoch=epoch, verbose=0)
        return fitted.history["loss"][-1]

    result = _fit_loop(
        train_model,
        run_epoch=run_epoch,
        predict_val=lambda: train_model.predict(val_inputs, verbose=0),
        y_val=np.asarray(y_val),
        num_classes=num_classes,
        loss=loss,
        epochs=epochs,
        learning_rate=learning_rate,
        momentum=momentum,
        select_by=select_by,
        checkpoint_dir=checkpoint_dir,
        settings=settings,
        batch_size=batch_size,
        progress=progress,
        description="fit",
        seed=seed,
        fit_model=trainer,
    )
    if not in_place:
        model.set_weights(train_model.get_weights())
    policy_name = getattr(model.dtype_policy, "name", "float32")
    result["model"] = model if policy_name == "float32" else vgg.to_float32(model)
    return result


# --------------------------------------------------------------------------- head only


def extract_features(
    base: keras.Model, x_uint8: np.ndarray, *, batch_size: int = 64, flip: bool = False
) -> np.ndarray:
    """``block5_pool`` features of uint8 images (optionally mirrored left-right).

    Parameters
    ----------
    base : keras.Model
        A VGG16 or its :func:`models.conv_base`.
    x_uint8 : ndarray of uint8, shape (n, H, W, 3)
    flip : bool
        Mirror every image first (the cached "flipped" orientation).

    Returns
    -------
    ndarray of float32, shape (n, h, w, c) — (n, 7, 7, 512) for the 224 px full VGG16.
    """
    if "predictions" in [layer.name for layer in base.layers]:
        base = vgg.conv_base(base)
    augment = AffineRanges()
    dataset = make_dataset(x_uint8, None, batch_size=batch_size, augment=augment, shuffle=False)
    if flip:
        dataset = dataset.map(lambda images: tf.reverse(images, axis=[2]))
    return np.asarray(base.predict(dataset, verbose=0), dtype=np.float32)


#: Bytes of training features a head epoch gathers at once (rounded down to whole
#: batches, at least one): the features stay on disk, memory-mapped, and memory does not
#: grow with the dataset. At the paper's scale 64 MiB are ~670 rows of 25 088 float32
#: values, ten batches per compiled call, whose overhead is small beside their arithmetic;
#: the default profile's whole training set fits in one chunk.
HEAD_CHUNK_BYTES = 64 << 20


class _HeadEpochs:
    """Runs one training epoch of a head on cached features, a chunk of whole batches per tf.function call.

    The head is tiny, so Keras' per-step and per-``fit`` overheads would dominate an epoch;
    one compiled loop over a chunk's batches removes them (same SGD updates as ``fit``:
    one ``apply_gradients`` per batch of the batch-mean loss). Each sample uses its plain
    or its mirrored features with probability 0.5, drawn from ``(seed, epoch)``. Chunks
    of whole batches, with the loss total carried from one to the next in float32, give
    the same updates and the same epoch loss, bit for bit, as one call over the epoch;
    :data:`HEAD_CHUNK_BYTES` only bounds memory.
    """

    def __init__(self, head, loss, features, flipped, y, *, num_classes, batch_size, seed):
        self.head, self.loss = head, loss
        self.features, self.flipped = features, flipped
        self.y = np.asarray(y)
        self.num_classes, self.batch_size, self.seed = num_classes, int(batch_size), seed
        row_bytes = max(1, int(np.prod(features.shape[1:])) * 4)  # gathered as float32
        self.chunk_rows = max(1, HEAD_CHUNK_BYTES // row_bytes // self.batch_size) * self.batch_size
        self._train = tf.function(self._train_chunk)

    def epoch_chunks(self, epoch: int):
        """The epoch's inputs in training order, float32 (m, h, w, c), and int labels, chunk by chunk."""
        n = len(self.features)
        use_flipped = np.random.default_rng([int(self.seed), int(epoch), 1]).random(n) < 0.5
        order = _epoch_order(n, seed=self.seed, epoch=epoch, shuffle=True)
        for start in range(0, n, self.chunk_rows):
            rows = order[start:start + self.chunk_rows]
            chunk = np.empty((len(rows), *self.features.shape[1:]), dtype=np.float32)
            flipped = use_flipped[rows]
            # Each row read once, from the orientation it uses, in file order (memory-mapped
            # features are read from disk sequentially, not in the epoch's random order).
            for source, wanted in ((self.features, ~flipped), (self.flipped, flipped)):
                positions = np.flatnonzero(wanted)
                positions = positions[np.argsort(rows[positions])]
                chunk[positions] = source[rows[positions]]
            yield chunk, self.y[rows].astype(np.int32)

    def _train_chunk(self, inputs, labels, total):
        n_batches = (tf.shape(inputs)[0] + self.batch_size - 1) // self.batch_size
        for index in tf.range(n_batches):
            start = index * self.batch_size
            batch = inputs[start : start + self.batch_size]
            targets = tf.one_hot(labels[start : start + self.batch_size], self.num_classes)
            with tf.GradientTape() as tape:
                value = self.loss(targets, self.head(batch, training=True))
            variables = self.head.trainable_variables
            gradients = tape.gradient(value, variables)
            self.head.optimizer.apply_gradients(zip(gradients, variables, strict=True))
            total += value * tf.cast(tf.shape(batch)[0], tf.float32)
        return total

    def __call__(self, epoch: int) -> float:
        total = tf.constant(0.0)
        for inputs, labels in self.epoch_chunks(epoch):
            total = self._train(tf.constant(inputs), tf.constant(labels), total)
        return float(total / tf.cast(len(self.features), tf.float32))


def predict_batches(model: keras.Model, inputs: np.ndarray, *, batch_size: int) -> np.ndarray:
    """``model(inputs, training=False)`` batch by batch, as ``model.predict`` computes it.

    Reads ``inputs`` one batch at a time (``model.predict`` turns a whole array into one
    tensor first, which for memory-mapped features means reading them all into memory).

    Parameters
    ----------
    inputs : ndarray of shape (n, ...)
        Any array-like that slices into float32 batches (a memory map included).

    Returns
    -------
    ndarray of shape (n, outputs), float32
    """
    return _batched_predictor(model, inputs, batch_size)()


def _batched_predictor(model: keras.Model, inputs: np.ndarray, batch_size: int):
    """``() -> model(inputs)`` in batches through one cached tf.function (low overhead)."""
    forward = tf.function(lambda batch: model(batch, training=False))

    def predict() -> np.ndarray:
        parts = [
            forward(tf.constant(np.asarray(inputs[start : start + batch_size], dtype=np.float32))).numpy()
            for start in range(0, len(inputs), batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, model.output_shape[-1]), dtype=np.float32)

    return predict


def fit_head(
    features: np.ndarray,
    features_flipped: np.ndarray,
    y: np.ndarray,
    val_features: np.ndarray,
    y_val: np.ndarray,
    *,
    num_classes: int,
    loss,
    epochs: int,
    batch_size: int,
    learning_rate: float = 0.01,
    momentum: float = 0.0,
    head_units: int | None = None,
    dropout: float = 0.5,
    seed: int,
    select_by: str = "macro_recall",
    kernel_initializer: str = "he_normal",
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> keras.Model:
    """Train a fresh head on cached frozen features with exact flip augmentation.

    Equivalent to :func:`fit_classifier` on a VGG16 with all five blocks frozen and
    ``augment="flip"`` (§4.1 re-training), at a fraction of the cost: every epoch uses, for
    each sample, its features or those of its mirror image with probability 0.5.

    Parameters
    ----------
    features, features_flipped : ndarray of float32, shape (n, h, w, c)
        :func:`extract_features` of the training images, plain and ``flip=True``.
    y : ndarray of int, shape (n,)
    val_features : ndarray of float32, shape (m, h, w, c)
        Features of the (unflipped) validation images.
    y_val : ndarray of int, shape (m,)
    head_units, dropout, kernel_initializer, seed
        As in :func:`models.build_vgg16`'s head; ``head_units=None`` is
        ``default_head_units(c / 512)``, the default of a VGG16 of that width.

    Returns
    -------
    keras.Model
        The head (input: features; output: softmax), float32, best epoch's weights, with
        ``head.fit_history`` (the same dict as :func:`fit_classifier` returns). Combine with
        :func:`assemble`.
    """
    features = np.asarray(features)
    features_flipped = np.asarray(features_flipped)
    if features.shape != features_flipped.shape:
        raise ValueError(
            f"features {features.shape} and features_flipped {features_flipped.shape} must "
            "have the same shape (one row per training image, both orientations)."
        )
    y = np.asarray(y)
    if head_units is None:
        # As build_vgg16's default: block5 has 512 * width channels.
        head_units = vgg.default_head_units(features.shape[-1] / vgg.VGG16_BLOCKS[-1][1])
    head = vgg.build_head(
        features.shape[1:],
        num_classes,
        head_units=head_units,
        dropout=dropout,
        kernel_initializer=kernel_initializer,
        seed=seed,
    )
    settings = {
        "kind": "fit_head",
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "momentum": momentum,
        "select_by": select_by,
        "seed": seed,
        "n_train": len(features),
        "n_val": len(val_features),
        "loss": _loss_settings(loss),
        "head_units": head_units,
        "dropout": dropout,
    }
    history = _fit_loop(
        head,
        run_epoch=_HeadEpochs(
            head,
            loss,
            features,
            features_flipped,
            y,
            num_classes=num_classes,
            batch_size=batch_size,
            seed=seed,
        ),
        predict_val=_batched_predictor(head, val_features, batch_size),
        y_val=np.asarray(y_val),
        num_classes=num_classes,
        loss=loss,
        epochs=epochs,
        learning_rate=learning_rate,
        momentum=momentum,
        select_by=select_by,
        checkpoint_dir=checkpoint_dir,
        settings=settings,
        batch_size=batch_size,
        progress=progress,
        description="fit_head",
        seed=seed,
    )
    head.fit_history = history
    return head


def assemble(base: keras.Model, head: keras.Model) -> keras.Model:
    """Full flat VGG16 (conv blocks of ``base`` + ``head``) for saving and LRP."""
    return vgg.assemble(base, head)
