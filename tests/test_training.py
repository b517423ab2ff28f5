"""Tests of forgetting_aus.training: augmentation, pipeline, resume, head-only fits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from tensorflow import keras

from forgetting_aus import losses, models, training

SIZE = 32


@pytest.fixture(autouse=True)
def _determinism():
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    yield


def _toy_problem(n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Dark noise; class 1 has a bright square in the upper-left quarter."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.integers(0, 60, (n, SIZE, SIZE, 3)).astype(np.uint8)
    x[y == 1, 4:14, 4:14] += 150
    return x, y


def _tiny_vgg(seed: int = 0) -> keras.Model:
    return models.build_vgg16(2, input_size=SIZE, width=0.0625, head_units=32, seed=seed)


# --------------------------------------------------------------------------- augmentation


@pytest.mark.parametrize("augment", ["none", "flip", "pain"])
def test_augmentations_keep_shape_and_dtype(augment):
    images = np.random.default_rng(0).integers(0, 256, (5, 20, 24, 3)).astype(np.uint8)
    for dtype in (tf.uint8, tf.float32):
        out = training.augment_images(tf.cast(images, dtype), augment=augment, seed=[1, 2])
        assert out.shape == images.shape and out.dtype == dtype


def test_zero_ranges_are_identity():
    images = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype(np.float32)
    zero = training.AffineRanges()
    out = training.augment_images(images, augment=zero, seed=[0, 0])
    np.testing.assert_array_equal(out.numpy(), images)
    # Forcing the affine path with ranges that are numerically zero also gives identity.
    tiny = training.AffineRanges(rotation_deg=1e-12, zoom=1e-12)
    out = training.augment_images(images, augment=tiny, seed=[0, 0])
    np.testing.assert_allclose(out.numpy(), images, atol=1e-3)


def test_flip_is_exact_mirror_or_identity():
    images = np.random.default_rng(0).integers(0, 256, (64, 8, 8, 3)).astype(np.uint8)
    out = training.augment_images(images, augment="flip", seed=[3, 4]).numpy()
    mirrored = np.array([np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images, strict=True)])
    unchanged = np.array([np.array_equal(o, i) for o, i in zip(out, images, strict=True)])
    assert np.all(mirrored | unchanged)
    assert 10 < mirrored.sum() < 54  # about half are flipped


def test_pain_augmentation_changes_images_reproducibly():
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype(np.uint8)
    first = training.augment_images(images, augment="pain", seed=[5, 6]).numpy()
    again = training.augment_images(images, augment="pain", seed=[5, 6]).numpy()
    other = training.augment_images(images, augment="pain", seed=[5, 7]).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, images) and not np.array_equal(first, other)


def test_pure_shift_moves_pixels():
    # A width shift of exactly +-25% moves content by 8 columns on a 32-wide image.
    image = np.zeros((1, 32, 32, 1), np.float32)
    image[0, 10:20, 10:20] = 1.0
    shift = training.AffineRanges(width_shift=0.25)
    out = training.augment_images(image, augment=shift, seed=[0, 1]).numpy()
    assert out.sum() == pytest.approx(image.sum(), rel=0.05)
    assert not np.array_equal(out, image)


def test_pipeline_is_deterministic_given_seed():
    x, y = _toy_problem(40)

    def batches(seed, epoch):
        ds = training.make_dataset(
            x, y, num_classes=2, batch_size=16, augment="pain", seed=seed, epoch=epoch
        )
        return [(a.numpy(), b.numpy()) for a, b in ds]

    first, again = batches(1, 0), batches(1, 0)
    assert len(first) == 3 and first[0][0].shape == (16, SIZE, SIZE, 3)
    assert first[0][0].dtype == np.float32 and first[0][1].shape == (16, 2)
    for (a, b), (c, d) in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    assert not np.array_equal(first[0][0], batches(1, 1)[0][0])
    assert not np.array_equal(first[0][0], batches(2, 0)[0][0])


def test_pipeline_without_augmentation_is_preprocess():
    x, y = _toy_problem(10)
    ds = training.make_dataset(x, y, num_classes=2, batch_size=10, shuffle=False)
    images, onehot = next(iter(ds))
    np.testing.assert_allclose(images.numpy(), models.preprocess(x), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(onehot.numpy().argmax(1), y)


def test_macro_recall_by_hand():
    y_true = np.array([0, 0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 0, 1, 1, 0, 0])
    assert training.macro_recall(y_true, y_pred) == pytest.approx((0.75 + 0.5 + 0.0) / 3)


# --------------------------------------------------------------------------- fitting


def _fit(model, x, y, **kwargs):
    options = dict(
        loss=losses.focal_loss(gamma=2.0),
        batch_size=16,
        learning_rate=0.01,
        momentum=0.9,
        augment="flip",
        seed=3,
        progress=False,
    )
    options.update(kwargs)
    return training.fit_classifier(model, (x[:48], y[:48]), (x[48:], y[48:]), **options)


def test_resume_equals_uninterrupted(tmp_path):
    x, y = _toy_problem(64)
    straight = _tiny_vgg()
    history = _fit(straight, x, y, epochs=4, checkpoint_dir=tmp_path / "straight")

    interrupted = _tiny_vgg()
    _fit(interrupted, x, y, epochs=3, checkpoint_dir=tmp_path / "resumed")
    state = json.loads((tmp_path / "resumed" / "state.json").read_text())
    # The last epoch is not checkpointed (its model is what the caller stores), so a run
    # killed before that store, or extended to more epochs, replays it.
    assert state["epochs_done"] == 2
    # A new process would start from a freshly built model: use a different init.
    resumed_model = _tiny_vgg(seed=99)
    resumed = _fit(resumed_model, x, y, epochs=4, checkpoint_dir=tmp_path / "resumed")

    assert resumed["loss"] == history["loss"]
    assert resumed["best_epoch"] == history["best_epoch"]
    for a, b in zip(straight.get_weights(), resumed_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # The last checkpoints agree too (after epoch 3 of 4), not only the selected weights.
    last = json.loads((tmp_path / "straight" / "state.json").read_text())
    assert last["epochs_done"] == 3
    assert last["history"]["val_loss"] == resumed["val_loss"][:3]


def test_trains_in_place_only_with_the_policy_and_resumable_dropout():
    model = _tiny_vgg()
    assert training._trains_in_place(model, "float32")
    assert not training._trains_in_place(model, "mixed_bfloat16")
    legacy = models.to_policy(model, "float32")
    dropout = next(layer for layer in legacy.layers if isinstance(layer, keras.layers.Dropout))
    dropout._random_generator._rng_type = "legacy_stateful"
    assert not training._trains_in_place(legacy, "float32")


def test_in_place_training_equals_training_a_copy(monkeypatch):
    """Training the model itself or a rebuilt copy (the path taken for other policies or
    dropout without a generator) gives the same weights, bit for bit."""
    x, y = _toy_problem(64)
    in_place = _tiny_vgg()
    _fit(in_place, x, y, epochs=2)
    monkeypatch.setattr(training, "_trains_in_place", lambda model, policy: False)
    copied = _tiny_vgg()
    _fit(copied, x, y, epochs=2)
    for a, b in zip(in_place.get_weights(), copied.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_files_are_written_with_the_stores_atomic_writers(tmp_path, monkeypatch):
    from forgetting_aus import cache

    written = []
    real_atomic = cache._atomic_write
    monkeypatch.setattr(cache, "_atomic_write", lambda path, write: (written.append(path.name), real_atomic(path, write)))
    weights = [np.arange(3, dtype=np.float32), np.ones((2, 2)), np.zeros(0)] + [np.full(1, i) for i in range(9)]
    training._write_weights(tmp_path / "best.weights.npz", weights)
    back = training._read_weights(tmp_path / "best.weights.npz")
    assert len(back) == len(weights)  # in order, also past arr_9
    for a, b in zip(weights, back, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    x, y = _toy_problem(64)
    _fit(_tiny_vgg(), x, y, epochs=2, checkpoint_dir=tmp_path / "run")
    assert {"best.weights.npz", "state.json"} <= set(written)
    assert not list((tmp_path / "run").glob(".*tmp*"))  # no temp file left behind


def test_streamed_training_equals_in_memory(monkeypatch):
    """Arrays over IN_MEMORY_LIMIT_BYTES are streamed; the batches and results are the same."""
    x, y = _toy_problem(64)
    in_memory = _tiny_vgg()
    expected = _fit(in_memory, x, y, epochs=2, augment="pain")
    monkeypatch.setattr(training, "IN_MEMORY_LIMIT_BYTES", 0)
    streamed = _tiny_vgg()
    result = _fit(streamed, x, y, epochs=2, augment="pain")
    np.testing.assert_allclose(result["loss"], expected["loss"], rtol=1e-6)
    for a, b in zip(in_memory.get_weights(), streamed.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_trainer_augments_like_make_dataset():
    """Batch b is augmented with _batch_seeds' seed of that batch, in order: the scheme
    the training step (``_AugmentingTrainer``) keys its augmentation on as well."""
    x, y = _toy_problem(20)
    seeds = training._batch_seeds(20, seed=5, epoch=2, batch_size=10)
    dataset = training.make_dataset(
        x, y, num_classes=2, batch_size=10, augment="pain", seed=5, epoch=2, shuffle=False
    )
    for batch_index, (images, _) in enumerate(dataset):
        rows = slice(batch_index * 10, (batch_index + 1) * 10)
        ours = training.augment_images(x[rows], augment="pain", seed=seeds[rows][0])
        np.testing.assert_allclose(models.preprocess_tensor(ours).numpy(), images.numpy())


def test_resume_refuses_other_settings(tmp_path):
    x, y = _toy_problem(64)
    _fit(_tiny_vgg(), x, y, epochs=2, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="different settings"):
        _fit(_tiny_vgg(), x, y, epochs=2, checkpoint_dir=tmp_path, learning_rate=0.1)


def test_fit_restores_best_epoch_and_learns():
    x, y = _toy_problem(64)
    model = _tiny_vgg()
    history = _fit(model, x, y, epochs=5, select_by="val_loss")
    best = history["best_epoch"]
    assert history["val_loss"][best] == min(history["val_loss"])
    probs = model.predict(models.preprocess(x[48:]), verbose=0)
    loss = float(losses.focal_loss(gamma=2.0)(tf.one_hot(y[48:], 2), probs))
    assert loss == pytest.approx(history["val_loss"][best], rel=1e-4, abs=1e-6)
    assert max(history["val_macro_recall"]) >= 0.9


def test_frozen_blocks_stay_unchanged():
    x, y = _toy_problem(64)
    model = models.freeze_blocks(_tiny_vgg(), 3)
    before = {layer.name: layer.get_weights() for layer in model.layers}
    _fit(model, x, y, epochs=1)
    for layer in model.layers:
        changed = any(
            not np.array_equal(a, b)
            for a, b in zip(before[layer.name], layer.get_weights(), strict=True)
        )
        if layer.name.startswith(("block1", "block2", "block3")):
            assert not changed, layer.name
        elif layer.weights:
            assert changed, layer.name


def test_bfloat16_training_follows_float32_within_two_percent_per_step():
    """mixed_bfloat16 (the mixed_precision knob) against float32: one full-batch step per epoch, eight steps."""
    x, y = _toy_problem(64)
    losses_by_policy = {}
    for mixed in (False, True):
        model = models.build_vgg16(2, input_size=SIZE, width=0.0625, head_units=32, dropout=0.0, seed=0)
        history = _fit(model, x, y, epochs=8, batch_size=48, augment="none", mixed_precision=mixed)
        losses_by_policy[mixed] = np.asarray(history["loss"])
    relative = np.abs(losses_by_policy[True] - losses_by_policy[False]) / losses_by_policy[False]
    assert relative.max() <= 0.02, relative


def test_mixed_precision_returns_float32_model():
    x, y = _toy_problem(64)
    model = _tiny_vgg()
    history = _fit(model, x, y, epochs=2, mixed_precision=True)
    assert history["model"] is model
    assert all(w.dtype == tf.float32 for w in model.weights)
    assert model.layers[1].compute_dtype == "float32"


def test_labels_out_of_range_are_rejected():
    x, y = _toy_problem(64)
    with pytest.raises(ValueError, match="class indices"):
        _fit(_tiny_vgg(), x, y + 5, epochs=1)


# --------------------------------------------------------------------------- head only


def test_extract_features_shapes_and_flip():
    x, _ = _toy_problem(6)
    model = _tiny_vgg()
    features = training.extract_features(model, x, batch_size=4)
    flipped = training.extract_features(model, x, batch_size=4, flip=True)
    assert features.shape == (6, 1, 1, 32) and features.dtype == np.float32
    expected = models.conv_base(model).predict(models.preprocess(x[:, :, ::-1]), verbose=0)
    np.testing.assert_allclose(flipped, expected, rtol=1e-5, atol=1e-6)


def test_head_on_features_matches_frozen_network():
    x, y = _toy_problem(64)
    base = _tiny_vgg(seed=5)
    features = training.extract_features(base, x[:48], batch_size=16)
    flipped = training.extract_features(base, x[:48], batch_size=16, flip=True)
    val = training.extract_features(base, x[48:], batch_size=16)
    head = training.fit_head(
        features,
        flipped,
        y[:48],
        val,
        y[48:],
        num_classes=2,
        loss=losses.focal_loss(gamma=2.0),
        epochs=8,
        batch_size=16,
        learning_rate=0.05,
        momentum=0.9,
        head_units=32,
        dropout=0.5,
        seed=1,
        progress=False,
    )
    full = training.assemble(base, head)
    frozen = models.freeze_blocks(models.with_new_head(base, 2, head_units=32, seed=1), 5)
    _fit(frozen, x, y, epochs=8, learning_rate=0.05)
    # Same kind of model: same layers, shapes and names.
    assert [(layer.name, layer.output_shape) for layer in full.layers] == [
        (layer.name, layer.output_shape) for layer in frozen.layers
    ]
    # Conv blocks are the base's; both learn the toy problem.
    np.testing.assert_array_equal(
        full.get_layer("block3_conv1").get_weights()[0],
        base.get_layer("block3_conv1").get_weights()[0],
    )
    x_val = models.preprocess(x[48:])
    for model in (full, frozen):
        pred = model.predict(x_val, verbose=0).argmax(1)
        assert training.macro_recall(y[48:], pred) >= 0.8
    assert max(head.fit_history["val_macro_recall"]) >= 0.8
    # The assembled model reproduces head(features) exactly.
    np.testing.assert_allclose(
        full.predict(x_val, verbose=0), head.predict(val, verbose=0), rtol=1e-5, atol=1e-6
    )


def _fit_toy_head(features, flipped, y, val, y_val):
    return training.fit_head(features, flipped, y, val, y_val, num_classes=2, loss=losses.focal_loss(gamma=2.0),
                             epochs=3, batch_size=8, learning_rate=0.05, momentum=0.9, head_units=16, dropout=0.5,
                             seed=3, progress=False)


def test_head_trained_from_memory_mapped_chunks_equals_head_trained_in_memory(tmp_path, monkeypatch):
    """Features on disk, read a few batches at a time, train the same head bit for bit."""
    rng = np.random.default_rng(0)
    features, flipped = rng.normal(size=(2, 45, 1, 1, 32)).astype(np.float32)
    val = rng.normal(size=(20, 1, 1, 32)).astype(np.float32)
    y, y_val = rng.integers(0, 2, 45), rng.integers(0, 2, 20)
    in_memory = _fit_toy_head(features, flipped, y, val, y_val)
    for name, array in (("train", features), ("flipped", flipped), ("val", val)):
        np.save(tmp_path / f"{name}.npy", array)
    mapped = {name: np.load(tmp_path / f"{name}.npy", mmap_mode="r") for name in ("train", "flipped", "val")}
    # two batches of 8 per chunk: the 45 rows arrive in three chunks, the last one short
    monkeypatch.setattr(training, "HEAD_CHUNK_BYTES", 2 * 8 * 32 * 4)
    streamed = _fit_toy_head(mapped["train"], mapped["flipped"], y, mapped["val"], y_val)
    for a, b in zip(in_memory.get_weights(), streamed.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert in_memory.fit_history["loss"] == streamed.fit_history["loss"]
    assert in_memory.fit_history["val_macro_recall"] == streamed.fit_history["val_macro_recall"]
    np.testing.assert_array_equal(training.predict_batches(streamed, mapped["val"], batch_size=8),
                                  streamed.predict(val, batch_size=8, verbose=0))
