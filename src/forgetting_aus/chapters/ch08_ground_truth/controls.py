"""Chapter 08, part 3: the control models -- positive (X-free vs. sham) and null (second seed).

One concern: models whose forgetting is known. :func:`control_data` renders emotion
faces without AU X and with it (the sham), :func:`control_model` fine-tunes the emotion
model, block 5 drawn afresh, on either; :func:`null_model` is a second FreezeB0 that
differs from the first only in its seed and :func:`null_retrained` its re-trained
emotion head; :func:`control_check` verifies the data. Each model is cached like the
pipeline's (:func:`forgetting_aus.pipeline.save_trained`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from forgetting_aus import cache, facs, pipeline
from forgetting_aus.chapters.ch08_ground_truth.pairs import (
    PAIR_ID_RANGE,
    crop_with_boxes,
    emotions_using,
)
from forgetting_aus.config import Config

#: Seed offset of the control data and fine-tunes, so their draws never coincide with others'.
CONTROL_SEED_OFFSET = 8_108


#: Conv block drawn afresh before the positive control's fine-tunes.
CONTROL_REINIT_BLOCK = 5


#: Seed offset of the second FreezeB0 (its head, data order, augmentation and dropout).
NULL_SEED_OFFSET = 1


#: Names of the control models in every table.
X_FREE, SHAM, NULL = "X-free", "sham", "FreezeB0 (seed 2)"


def control_images_count(cfg: Config) -> int:
    """Images of a control fine-tune: as many as the pain training selection (train + val)."""
    return int(cfg.unbc_n_pain + cfg.unbc_n_no_pain)


def render_control_data(n: int, *, control_au: int, render_size: int, image_size: int, seed: int
                        ) -> dict[str, np.ndarray]:
    """Emotion faces, balanced over the 8 classes, rendered twice: without AU X and with it.

    The same identities, nuisance, sensor noise and AU draws in both versions (the
    sampler draws in fixed shapes, so ``exclude_aus`` changes AU X's column only).

    Returns
    -------
    dict
        ``labels`` int64 (n,), ``x_free`` and ``sham`` uint8 (n, S, S, 3), ``aus_x_free``
        and ``aus_sham`` float64 (n, 18).
    """
    from forgetting_aus import geometry, synth

    rng = np.random.default_rng([int(seed), CONTROL_SEED_OFFSET])
    labels = rng.permutation(np.arange(n) % len(facs.EMOTIONS)).astype(np.int64)
    lo, hi = synth.ID_RANGES[PAIR_ID_RANGE]
    # Identities from the top of the range: never those of the counterfactual pairs.
    ids = hi - rng.choice((hi - lo) // 2, size=n, replace=False)
    identities = synth.identities_from_ids(ids, seed=seed)
    aus_seed = int(rng.integers(0, 2**31 - 1))
    aus_sham, unilateral = synth.sample_emotion_aus(labels, np.random.default_rng(aus_seed))
    aus_free, _ = synth.sample_emotion_aus(labels, np.random.default_rng(aus_seed), exclude_aus=(control_au,))
    nuisance = synth.sample_nuisance(n, rng)
    noise_seed = int(rng.integers(0, 2**31 - 1))
    out: dict[str, np.ndarray] = {"labels": labels, "aus_x_free": aus_free, "aus_sham": aus_sham}
    for name, aus in (("x_free", aus_free), ("sham", aus_sham)):
        images, landmarks = synth.render_faces(identities, aus, nuisance, unilateral=unilateral, size=render_size,
                                               seed=noise_seed)
        out[name], _ = crop_with_boxes(images, landmarks, geometry.face_box_from_landmarks(landmarks),
                                       size=image_size)
    return out


def control_data(cfg: Config) -> dict[str, np.ndarray]:
    """:func:`render_control_data` for this run (cached, stage ``gt_control_data``)."""
    params = {**cfg.subset(["gt_control_au", "twin_image_size", "image_size", "seed", "unbc_n_pain",
                            "unbc_n_no_pain"])}

    def make(folder: Path) -> dict[str, Any]:
        data = render_control_data(control_images_count(cfg), control_au=cfg.gt_control_au,
                                   render_size=cfg.twin_image_size, image_size=cfg.image_size, seed=cfg.seed)
        cache.write_npz(folder / "data.npz", **data)
        return {"n": len(data["labels"])}

    folder = pipeline.store(cfg).get_or_make("gt_control_data", params, make)
    return cache.read_npz(folder / "data.npz")


def control_model(cfg: Config, variant: str) -> pipeline.Trained:
    """The positive control (``X_FREE``) or its sham (``SHAM``): block 5 learned again.

    A copy of the emotion model whose conv block :data:`CONTROL_REINIT_BLOCK` gets fresh
    weights (:func:`models.reinitialise_block`, the same draw for both variants), every
    layer trainable (as FreezeB0), fine-tuned on :func:`control_data` (the X-free or the
    sham images; the last ``unbc_n_val`` of them validate), ``gt_finetune_epochs`` epochs,
    ``pain_batch_size``, the emotion loss (focal, ``emotion_gamma``; the classes are
    balanced, so unweighted) and the emotion augmentation (flip). The two variants differ
    in AU X alone, so X-free against sham is the contrast in which X must be lost: block 5
    of the X-free model never saw it. (Fine-tuning the emotion model without re-drawing a
    block kept X: absence alone gives the network no reason to drop a feature.) Cached
    (stage ``gt_control_model``).
    """
    if variant not in (X_FREE, SHAM):
        raise ValueError(f"variant must be {X_FREE!r} or {SHAM!r}, got {variant!r}")
    source = pipeline.emotion_model(cfg)
    data_folder_params = cfg.subset(["gt_control_au", "twin_image_size", "image_size", "unbc_n_pain",
                                     "unbc_n_no_pain"])
    params = {"emotion_model": source.key, "variant": variant, "data": data_folder_params,
              "reinitialised_block": CONTROL_REINIT_BLOCK,
              **cfg.subset(["gt_finetune_epochs", "pain_batch_size", "emotion_gamma", "unbc_n_val", "learning_rate",
                            "momentum", "seed", "mixed_precision"])}

    def make(folder: Path) -> dict[str, Any]:
        from forgetting_aus import losses, models, training

        data = control_data(cfg)
        images = data["x_free" if variant == X_FREE else "sham"]
        labels = data["labels"]
        n_val = cfg.unbc_n_val
        model = models.load_model(source.model_path)
        models.reinitialise_block(model, CONTROL_REINIT_BLOCK, seed=cfg.seed + CONTROL_SEED_OFFSET)
        models.freeze_blocks(model, 0)
        history = training.fit_classifier(
            model, (images[:-n_val], labels[:-n_val]), (images[-n_val:], labels[-n_val:]),
            loss=losses.focal_loss(gamma=cfg.emotion_gamma), epochs=cfg.gt_finetune_epochs, batch_size=cfg.pain_batch_size,
            learning_rate=cfg.learning_rate, momentum=cfg.momentum, augment="flip", select_by="macro_recall",
            seed=cfg.seed + CONTROL_SEED_OFFSET, mixed_precision=cfg.mixed_precision, progress=False)
        model = history.pop("model", model)
        return pipeline.save_trained(folder, model, history, pipeline.emotion_data(cfg)["test"])

    return pipeline.Trained(pipeline.stored_model(cfg, "gt_control_model", params, make))


def null_model(cfg: Config) -> pipeline.Trained:
    """FreezeB0 trained exactly as :func:`pipeline.pain_model` (k = 0) with another seed.

    Only the seeds of the new head's initialisation and of the data order, augmentation
    and dropout change (``+ NULL_SEED_OFFSET``). Cached (stage ``gt_null_model``).
    """
    first = pipeline.pain_model(cfg, 0)
    source = pipeline.emotion_model(cfg)
    params = {"pain_model": first.key, "emotion_model": source.key, "seed_offset": NULL_SEED_OFFSET,
              **cfg.subset(["pain_epochs", "pain_batch_size", "pain_gamma", "head_units", "dropout", "learning_rate",
                            "momentum", "seed", "mixed_precision"])}

    def make(folder: Path) -> dict[str, Any]:
        from forgetting_aus import losses, models, training

        data = pipeline.pain_data(cfg)
        seed = cfg.seed + NULL_SEED_OFFSET
        model = models.with_new_head(source.load_read_only(), len(pipeline.PAIN_CLASSES), head_units=cfg.head_units,
                                     dropout=cfg.dropout, seed=seed + 100)
        models.freeze_blocks(model, 0)
        history = training.fit_classifier(
            model, (data["train"].images, data["train"].labels), (data["val"].images, data["val"].labels),
            loss=losses.focal_loss(gamma=cfg.pain_gamma), epochs=cfg.pain_epochs, batch_size=cfg.pain_batch_size,
            learning_rate=cfg.learning_rate, momentum=cfg.momentum, augment="pain", select_by="macro_recall",
            seed=seed, mixed_precision=cfg.mixed_precision, progress=False)
        model = history.pop("model", model)
        return pipeline.save_trained(folder, model, history, data["test"])

    return pipeline.Trained(pipeline.stored_model(cfg, "gt_null_model", params, make))


def null_retrained(cfg: Config) -> pipeline.Trained:
    """The second-seed FreezeB0's conv blocks with an emotion head re-trained as in §4.1.

    The same recipe as :func:`pipeline.retrained_model` (repetition 0): frozen features of
    both orientations, :func:`training.fit_head`, the emotion loss. As in chapter 04 the
    features go to ``.npy`` files (``feature_dtype``) batch by batch and the head reads
    them memory-mapped, a chunk at a time: at the paper's scale they are ~27 GB in
    float16, far more than memory. Only this head reads them, so they are deleted once it
    is trained. Cached (stage ``gt_null_retrained``).
    """
    source = null_model(cfg)
    params = {"pain_model": source.key, "data": pipeline.emotion_model(cfg).key, "dtype": cfg.feature_dtype,
              **cfg.subset(["head_units", "dropout", "learning_rate", "momentum", "seed", "retrain_epochs",
                            "retrain_batch_size", "emotion_gamma", "cb_beta", "cb_effective_scale"])}

    def make(folder: Path) -> dict[str, Any]:
        from forgetting_aus import models, training

        data = pipeline.emotion_data(cfg)
        base = models.conv_base(source.load_read_only())
        head = streamed_null_head(cfg, base, data, scratch=folder / "features")
        return pipeline.save_trained(folder, training.assemble(base, head), {}, data["test"])

    return pipeline.Trained(pipeline.store(cfg).get_or_make("gt_null_retrained", params, make))


def streamed_null_head(cfg: Config, base, data: dict[str, Any], *, scratch: Path):
    """The null model's emotion head, trained on its frozen features streamed from ``scratch``.

    Parameters
    ----------
    base : keras.Model
        The second-seed FreezeB0's :func:`models.conv_base`.
    data : dict
        :func:`pipeline.emotion_data` (``train`` and ``val`` splits; images may be memory-mapped).
    scratch : Path, keyword-only
        A new folder for the features (``train``, ``train_flipped``, ``val`` as ``.npy``);
        deleted before returning.

    Returns
    -------
    keras.Model
        The head, as :func:`training.fit_head` returns it.
    """
    from forgetting_aus import shared_blocks, training

    scratch.mkdir()
    features = {split: shared_blocks.shared_block_features(
        {NULL: base}, data["train" if split == "train_flipped" else split].images, reference=NULL,
        flip=split == "train_flipped", out={NULL: scratch / f"{split}.npy"}, dtype=cfg.feature_dtype,
        progress=f"{NULL} features, {split}")[NULL] for split in ("train", "train_flipped", "val")}
    loss, _ = pipeline.emotion_loss(cfg, data["train"].labels)
    head = training.fit_head(features["train"], features["train_flipped"], data["train"].labels,
                             features["val"], data["val"].labels,
                             num_classes=len(facs.EMOTIONS), loss=loss, epochs=cfg.retrain_epochs,
                             batch_size=cfg.retrain_batch_size, learning_rate=cfg.learning_rate,
                             momentum=cfg.momentum, head_units=cfg.head_units, dropout=cfg.dropout,
                             seed=cfg.seed + NULL_SEED_OFFSET + 1000, select_by="macro_recall", progress=False)
    del features  # the memory maps, before their files go
    shutil.rmtree(scratch)
    return head


def control_models(cfg: Config) -> dict[str, pipeline.Trained]:
    """The three control models by name: :data:`X_FREE`, :data:`SHAM` and :data:`NULL`."""
    return {X_FREE: control_model(cfg, X_FREE), SHAM: control_model(cfg, SHAM), NULL: null_model(cfg)}


def control_check(cfg: Config) -> dict[str, Any]:
    """Does the control data really lack AU X, and the sham data show it?

    Returns
    -------
    dict
        ``au``, ``n``, ``x_free_max`` (largest AU X intensity in the X-free data: 0),
        ``sham_share`` (share of sham faces with AU X > 0), ``identical_elsewhere`` (the
        two versions' AUs agree on every other AU), ``x_users`` (emotions using X).
    """
    data = control_data(cfg)
    j = facs.au_index(cfg.gt_control_au)
    others = [i for i in range(len(facs.AU_CODES)) if i != j]
    return {"au": cfg.gt_control_au, "n": len(data["labels"]),
            "x_free_max": float(data["aus_x_free"][:, j].max()),
            "sham_share": float((data["aus_sham"][:, j] > 0).mean()),
            "identical_elsewhere": bool(np.array_equal(data["aus_x_free"][:, others], data["aus_sham"][:, others])),
            "x_users": emotions_using(cfg.gt_control_au)}
