"""Chapter 10, the study: six-emotion sets, subject folds, the two initialisations, every (model, scheme, fold) run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgetting_aus import cache, config, facs, pipeline
from forgetting_aus.config import Config

#: The six classes of the study, in the paper's order; model outputs and labels index it.
SIX_EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "sad", "surprise")


#: Model name → attention module inserted after conv blocks 2, 3 and 4 (None: plain VGG16).
MODELS: dict[str, str | None] = {"SE": "se", "CBAM": "cbam", "Base": None}


#: Training schemes, in the paper's column order.
SCHEMES: tuple[str, ...] = ("transfer", "scratch")


#: Stand-in key → (display name, synth style, seed offset, classes kept).
DATASETS: dict[str, tuple[str, str, int, tuple[str, ...]]] = {
    "oulu": ("OULU-CASIA", "oulu", 101, SIX_EMOTIONS),
    # The real FACES has no surprise class (paper Table 1): dropped after rendering.
    "faces": ("FACES", "faces", 102, SIX_EMOTIONS[:-1]),
    "jaffe": ("JAFFE", "jaffe", 103, SIX_EMOTIONS),
}


#: SGD momentum of the paper (§2.1); not a profile knob because the paper fixes it.
MOMENTUM = 0.9


#: Share of a fold's training subjects held out to select the epoch (at least one subject).
SELECTION_FRACTION = 0.1


#: Layer explained by Grad-CAM: VGG16's last convolution (the paper's "last conv layer").
GRADCAM_LAYER = "block5_conv3"


#: Knobs every fold artifact depends on.
_FOLD_KNOBS = ("image_size", "width", "head_units", "dropout", "seed", "arabian_folds",
               "arabian_epochs", "arabian_batch_size", "arabian_learning_rate", "arabian_scratch_initializer",
               "arabian_gate_bias")


def set_kwargs(cfg: Config) -> dict[str, dict[str, Any]]:
    """Arguments of ``synth.write_six_emotion_set`` for each stand-in (what its files depend on)."""
    from forgetting_aus import synth

    subjects = {"oulu": cfg.arabian_oulu_subjects, "faces": cfg.arabian_faces_subjects,
                "jaffe": cfg.arabian_jaffe_subjects}
    return {key: {"n_subjects": int(subjects[key]), "images_per_subject_per_class": cfg.arabian_images_per_subject_class,
                  "image_size": cfg.twin_image_size, "seed": cfg.seed + offset, "style": style,
                  "posed_intensity": synth.POSED_INTENSITY[style]}
            for key, (_, style, offset, _) in DATASETS.items()}


def _make_sets(folder: Path, *, cfg: Config) -> dict[str, Any]:
    from forgetting_aus import datasets, synth
    from forgetting_aus.datasets.affectnet import CSV_COLUMNS

    sizes = {}
    for key, kwargs in set_kwargs(cfg).items():
        root = folder / "data" / key
        synth.write_six_emotion_set(root, **kwargs)
        # The writer emits training.csv only; the AffectNet reader also wants the
        # (here empty) validation.csv.
        if not (root / "validation.csv").exists():
            (root / "validation.csv").write_text(",".join(CSV_COLUMNS) + "\n")
        # These stand-ins are this world's: their subject ids (for the subject folds) come from its truth.
        index = datasets.read_affectnet(root, truth=synth.truth_root(root))
        names = [facs.EMOTIONS[code] for code in index["label"]]
        keep = np.isin(names, DATASETS[key][3])
        index = index[keep].reset_index(drop=True)
        split = pipeline.split_from_index(index, size=cfg.image_size, crop="box")
        six = np.array([SIX_EMOTIONS.index(facs.EMOTIONS[code]) for code in split.labels], dtype=np.int64)
        split = dataclasses.replace(split, labels=six)
        pipeline.save_split(folder, key, split)
        sizes[key] = {"images": len(split), "subjects": int(len(np.unique(split.groups))),
                      "per_class": np.bincount(six, minlength=len(SIX_EMOTIONS)).tolist()}
    return {"sizes": sizes}


def sets_folder(cfg: Config) -> Path:
    """Folder of the cached stage ``arabian_sets`` (made on first use); its manifest holds the sizes."""
    params = {"sets": set_kwargs(cfg), "image_size": cfg.image_size}
    return pipeline.store(cfg).get_or_make("arabian_sets", params, lambda out: _make_sets(out, cfg=cfg))


def six_emotion_sets(cfg: Config) -> dict[str, pipeline.Split]:
    """The three six-emotion stand-ins at the model input size, generated once per profile.

    Parameters
    ----------
    cfg : Config
        Uses ``arabian_oulu_subjects``, ``arabian_faces_subjects``, ``arabian_jaffe_subjects``,
        ``arabian_images_per_subject_class``, ``twin_image_size``, ``image_size``, ``seed``.

    Returns
    -------
    dict of str to pipeline.Split
        Keys ``"oulu"``, ``"faces"``, ``"jaffe"`` (see :data:`DATASETS`). ``labels`` are
        indices into :data:`SIX_EMOTIONS` (int64); ``images`` uint8 (n, S, S, 3) with
        ``S = cfg.image_size``; ``landmarks`` float32 (n, 68, 2) in crop pixels;
        ``groups`` subject ids. FACES has no surprise images. Identity pools are
        disjoint (``synth.ID_RANGES``) and each set has its own nuisance style.
    """
    folder = sets_folder(cfg)
    return {key: pipeline.load_split(folder, key) for key in DATASETS}


def subject_folds(groups: np.ndarray, *, n_folds: int, seed: int) -> np.ndarray:
    """Fold of every sample, whole subjects per fold (subject-grouped k-fold).

    Subjects are shuffled with ``seed`` and dealt round-robin, so fold sizes differ by at
    most one subject.

    Parameters
    ----------
    groups : array-like of str, shape (n,)
        Subject id of every sample.
    n_folds : int, keyword-only
        Number of folds, 2 ≤ n_folds ≤ number of subjects.
    seed : int, keyword-only

    Returns
    -------
    ndarray of int64, shape (n,)
        Fold index 0..n_folds-1 of every sample.
    """
    groups = np.asarray(groups).astype(str)
    subjects = np.unique(groups)
    if not 2 <= n_folds <= len(subjects):
        raise ValueError(f"n_folds must lie in 2..{len(subjects)} (the number of subjects) for subject-grouped "
                         f"folds, got {n_folds}; lower arabian_folds or raise arabian_oulu_subjects")
    order = np.random.default_rng([seed, 7]).permutation(len(subjects))
    fold_of_subject = np.empty(len(subjects), dtype=np.int64)
    fold_of_subject[order] = np.arange(len(subjects)) % n_folds
    return fold_of_subject[np.searchsorted(subjects, groups)]


def fold_split(groups: np.ndarray, fold: int, *, n_folds: int, seed: int,
               selection_fraction: float = SELECTION_FRACTION) -> dict[str, np.ndarray]:
    """Sample indices of one cross-validation fold: training, epoch selection, validation.

    Parameters
    ----------
    groups : array-like of str, shape (n,)
    fold : int
        The validation fold, 0..n_folds-1.
    n_folds, seed : int, keyword-only
        As in :func:`subject_folds`.
    selection_fraction : float, keyword-only
        Share of the training subjects (at least one) held out to select the epoch.

    Returns
    -------
    dict of str to ndarray of int64
        ``train``, ``selection`` and ``validation`` (the fold the accuracy is reported
        on); disjoint in subjects, together every sample.
    """
    groups = np.asarray(groups).astype(str)
    folds = subject_folds(groups, n_folds=n_folds, seed=seed)
    if fold not in range(n_folds):
        raise ValueError(f"fold must lie in 0..{n_folds - 1}, got {fold}")
    train_subjects = np.unique(groups[folds != fold])
    if len(train_subjects) < 2:
        raise ValueError(f"fold {fold} leaves {len(train_subjects)} training subject(s); at least 2 are needed "
                         "(one to train on, one to select the epoch): raise arabian_oulu_subjects")
    n_select = int(np.clip(round(selection_fraction * len(train_subjects)), 1, len(train_subjects) - 1))
    chosen = np.random.default_rng([seed, 11, fold]).choice(train_subjects, size=n_select, replace=False)
    selection = np.isin(groups, chosen)
    return {"train": np.flatnonzero((folds != fold) & ~selection),
            "selection": np.flatnonzero(selection),
            "validation": np.flatnonzero(folds == fold)}


def transfer_source(cfg: Config):
    """Where "transfer" models start: ``"imagenet"`` or the trained emotion model.

    Returns
    -------
    (source, source_id)
        ``source`` is ``"imagenet"`` when ``cfg.imagenet_weights`` (the paper's setting,
        the ``paper`` profile) else the float32 ``keras.Model`` of
        ``pipeline.emotion_model(cfg)``; ``source_id`` identifies it in artifact keys.
    """
    if cfg.imagenet_weights:  # a smoke run's random stand-in must not share the real weights' cache keys
        return "imagenet", "imagenet (random smoke weights)" if cfg.smoke_weights else "imagenet"
    trained = pipeline.emotion_model(cfg)
    return trained.load(), f"emotion_model:{trained.key}"


def copy_conv_weights(target, source) -> list[str]:
    """Copy the convolution weights of ``source`` into ``target`` where layer names match.

    Only VGG16 convolutions (``block<i>_conv<j>``) are copied; attention layers, pools and
    the head of ``target`` keep their initialisation.

    Parameters
    ----------
    target, source : keras.Model
        VGG16s built by :mod:`forgetting_aus.models` (any head, with or without attention).

    Returns
    -------
    list of str
        Names of the copied layers.

    Raises
    ------
    ValueError
        When a matching layer has other weight shapes (another width or input), or when
        no layer matches.
    """
    import re

    source_layers = {layer.name: layer for layer in source.layers}
    copied = []
    for layer in target.layers:
        if not re.fullmatch(r"block\d_conv\d", layer.name) or layer.name not in source_layers:
            continue
        weights = source_layers[layer.name].get_weights()
        shapes = [w.shape for w in layer.get_weights()]
        if [w.shape for w in weights] != shapes:
            raise ValueError(f"layer {layer.name}: the source has weights of shapes {[w.shape for w in weights]}, "
                             f"the target {shapes}; build both with the same width (cfg.width)")
        layer.set_weights(weights)
        copied.append(layer.name)
    if not copied:
        raise ValueError("no convolution layer of the source matches the target by name "
                         "(expected VGG16 names block<i>_conv<j> from forgetting_aus.models)")
    return copied


def initial_model(cfg: Config, *, attention: str | None, scheme: str, seed: int, source=None):
    """A six-class VGG16 (+ attention) before training, as the paper initialises it.

    Parameters
    ----------
    cfg : Config
        Uses ``image_size``, ``width``, ``head_units``, ``dropout``.
    attention : None, "se" or "cbam", keyword-only
    scheme : "transfer" or "scratch", keyword-only
        "scratch": every layer Glorot-uniform (the paper's "Glorot" start). "transfer":
        the same network, then the conv-block weights of ``source`` copied in where names
        match (:func:`copy_conv_weights`), or ImageNet's when ``source == "imagenet"``.
    seed : int, keyword-only
        Seeds every initialiser; schemes built with the same seed share the attention
        and head initialisation.
    source : keras.Model, "imagenet" or None, keyword-only
        Transfer source; None → :func:`transfer_source` (ignored for "scratch").

    Returns
    -------
    keras.Model
        Float32, input (batch, S, S, 3) preprocessed (``models.preprocess``), output
        (batch, 6) softmax over :data:`SIX_EMOTIONS`.
    """
    from forgetting_aus import models

    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if scheme == "transfer" and source is None:
        source, _ = transfer_source(cfg)
    imagenet = scheme == "transfer" and isinstance(source, str) and source == "imagenet"
    model = models.build_vgg16(len(SIX_EMOTIONS), input_size=cfg.image_size, width=cfg.width,
                               head_units=cfg.head_units, dropout=cfg.dropout, attention=attention,
                               kernel_initializer=cfg.arabian_scratch_initializer,
                               attention_gate_bias=cfg.arabian_gate_bias,
                               weights=pipeline.imagenet_weights_file(cfg) if imagenet else None,
                               seed=seed)
    if scheme == "transfer" and not imagenet:
        copy_conv_weights(model, source)
    return model


def _weights_digest(model) -> str:
    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()[:16]


def _fold_seed(cfg: Config, fold: int) -> int:
    # The same seed for both schemes and all models of a fold: identical data order,
    # dropout masks and fresh-layer initialisation, so differences come from the start.
    return cfg.seed + 1000 + fold


def _train_fold(folder: Path, *, cfg: Config, model_name: str, scheme: str, fold: int, source,
                checkpoint_dir: Path) -> dict[str, Any]:
    import tensorflow as tf

    from forgetting_aus import models, training
    from forgetting_aus.explain import gradcam

    sets = six_emotion_sets(cfg)
    oulu = sets["oulu"]
    parts = fold_split(oulu.groups, fold, n_folds=cfg.arabian_folds, seed=cfg.seed)
    seed = _fold_seed(cfg, fold)
    model = initial_model(cfg, attention=MODELS[model_name], scheme=scheme, seed=seed, source=source)
    history = training.fit_classifier(
        model, (oulu.images[parts["train"]], oulu.labels[parts["train"]]),
        (oulu.images[parts["selection"]], oulu.labels[parts["selection"]]),
        loss=tf.keras.losses.CategoricalCrossentropy(), epochs=cfg.arabian_epochs,
        batch_size=cfg.arabian_batch_size, learning_rate=cfg.arabian_learning_rate, momentum=MOMENTUM,
        augment="none", select_by="macro_recall", seed=seed, checkpoint_dir=checkpoint_dir,
        # float32: on CPUs without bfloat16 units mixed precision was slower here (measured),
        # and the paper profile trains in float32 anyway.
        mixed_precision=False, progress=False)
    model = history.pop("model", model)
    evaluated = {"oulu": _subset(oulu, parts["validation"]), "faces": sets["faces"], "jaffe": sets["jaffe"]}
    scores, predictions, cams = {}, {}, {}
    for key, split in evaluated.items():
        # Grad-CAM runs the model forward anyway: its pre-softmax scores give the predictions.
        maps, logits = gradcam.grad_cam(model, models.preprocess(split.images), split.labels,
                                        layer_name=GRADCAM_LAYER, batch_size=64, return_scores=True)
        predicted = logits.argmax(axis=1)
        scores[key] = float(np.mean(predicted == split.labels) * 100.0)
        predictions[f"{key}_pred"] = predicted.astype(np.int64)
        cams[key] = gradcam.class_average_maps(maps, split.labels, len(SIX_EMOTIONS))
    # The model itself is not kept: nothing reads it back (scores, predictions and Grad-CAM
    # averages are all made here), and at full width the paper's 60 runs would take ~28 GB.
    cache.write_json(folder / "history.json", history)
    cache.write_json(folder / "scores.json", scores)
    cache.write_npz(folder / "predictions.npz", oulu_index=parts["validation"], **predictions)
    cache.write_npz(folder / "cams.npz", **cams)
    return {"scores": scores, "best_epoch": history["best_epoch"], "seconds": float(np.sum(history["seconds"]))}


@contextlib.contextmanager
def _quiet_tensorflow():
    """Silence TF's logger while many small models are trained one after the other.

    Each fit traces fresh tf.functions, which TF reports as "retracing" warnings; they are
    expected here and would drown the chapter's output. The level is restored afterwards.
    """
    import tensorflow as tf

    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


def _subset(split: pipeline.Split, index: np.ndarray) -> pipeline.Split:
    return pipeline.Split(**{f.name: getattr(split, f.name)[index] for f in dataclasses.fields(pipeline.Split)})


def _fold_params(cfg: Config, *, model_name: str, scheme: str, fold: int, source_id: str | None) -> dict[str, Any]:
    return {"sets": sets_folder(cfg).name, "model": model_name, "scheme": scheme, "fold": fold,
            "source": source_id if scheme == "transfer" else None, **cfg.subset(list(_FOLD_KNOBS))}


def _fold_job(cfg: Config, model_name: str, scheme: str, fold: int) -> str:
    """One (model, scheme, fold) trained in a worker process, from the same seeds as in the parent."""
    config.seed_everything(cfg.seed, deterministic=cfg.deterministic_ops)
    source, source_id = transfer_source(cfg) if scheme == "transfer" else (None, None)
    with _quiet_tensorflow():
        return fold_artifact(cfg, model_name=model_name, scheme=scheme, fold=fold, source=source,
                             source_id=source_id).name


def train_missing_folds(cfg: Config, runs: Sequence[tuple[str, str, int]], *, source_id: str | None,
                        n_jobs: int) -> int:
    """Train the runs not yet stored, ``n_jobs`` at a time, each in its own process.

    A VGG16 at the default profile's size trains in many small steps, bound by per-step
    overhead more than by arithmetic, so two processes train more runs per minute than one
    process with two threads. Each run depends only on its seeds and the stored data, so the
    stored results do not depend on ``n_jobs`` (tested).

    Parameters
    ----------
    runs : sequence of (model name, scheme, fold)
    source_id : str or None, keyword-only
        Of the transfer source (:func:`transfer_source`), for the cache keys.
    n_jobs : int, keyword-only
        Worker processes (``training_workers``); 1 trains nothing here (the caller does).

    Returns
    -------
    int
        Number of runs trained.
    """
    missing = [(m, s, f) for m, s, f in runs if not pipeline.stored_model_is_cached(
        cfg, "arabian_fold", _fold_params(cfg, model_name=m, scheme=s, fold=f, source_id=source_id))]
    if n_jobs <= 1 or len(missing) <= 1:
        return 0
    from joblib import Parallel, delayed

    # Training stays on this machine, whatever parallel_backend says.
    Parallel(n_jobs=n_jobs, backend="loky")(delayed(_fold_job)(cfg, m, s, f) for m, s, f in missing)
    return len(missing)


def fold_artifact(cfg: Config, *, model_name: str, scheme: str, fold: int, source=None,
                  source_id: str | None = None) -> Path:
    """Train and evaluate one (model, scheme, fold); cached, resumable. Returns its folder.

    The folder holds ``history.json``, ``scores.json`` (accuracy in %
    on the OULU validation fold, FACES and JAFFE), ``predictions.npz`` and ``cams.npz``
    (class-averaged Grad-CAM maps, (6, S, S) float32 per dataset, NaN for absent classes).
    """
    if model_name not in MODELS:
        raise ValueError(f"model_name must be one of {list(MODELS)}, got {model_name!r}")
    if scheme == "transfer" and source is None:
        source, source_id = transfer_source(cfg)
    if scheme == "transfer" and source_id is None:
        source_id = "imagenet" if isinstance(source, str) else f"weights:{_weights_digest(source)}"
    params = _fold_params(cfg, model_name=model_name, scheme=scheme, fold=fold, source_id=source_id)
    checkpoints = pipeline.checkpoint_folder(cfg, "arabian_fold", params)

    def make(folder: Path) -> dict[str, Any]:
        return _train_fold(folder, cfg=cfg, model_name=model_name, scheme=scheme, fold=fold, source=source,
                           checkpoint_dir=checkpoints)

    return pipeline.stored_model(cfg, "arabian_fold", params, make, checkpoints=checkpoints)


@dataclasses.dataclass(frozen=True)
class StudyResults:
    """Everything the chapter reports, computed by :func:`run_study`.

    Attributes
    ----------
    accuracies : DataFrame
        One row per (model, scheme, fold, dataset): ``accuracy`` in % (share of correct
        predictions, the paper's "TP" rate); ``dataset`` is the display name.
    training : DataFrame
        One row per (model, scheme, fold): ``best_epoch`` (0-based), ``seconds`` of
        training, ``folder`` (the artifact).
    cams : dict
        ``(model, scheme, fold, dataset) -> (6, S, S)`` float32 class-averaged Grad-CAM
        maps in [0, 1] (NaN for a class the dataset lacks).
    references : dict
        ``(fold, dataset) -> (6, S, S)`` float32: share of the class's images whose
        prototype-AU regions cover each pixel (:func:`reference_masks`). FACES and JAFFE
        are the same for every fold.
    """

    accuracies: pd.DataFrame
    training: pd.DataFrame
    cams: dict[tuple[str, str, int, str], np.ndarray]
    references: dict[tuple[int, str], np.ndarray]


def trained_folds(cfg: Config) -> range:
    """The folds this run trains and scores: the first ``arabian_trained_folds`` (default all).

    A smoke run trains one fold of a 2-fold split to exercise the path in half the time;
    with one fold the spread over folds is unknown, so every interval is infinite and every
    verdict inconclusive.
    """
    return config.first_folds(cfg, folds="arabian_folds", trained="arabian_trained_folds")


def run_study(cfg: Config, *, models: Sequence[str] = tuple(MODELS), schemes: Sequence[str] = SCHEMES,
              source=None, source_id: str | None = None) -> StudyResults:
    """Every (model, scheme, fold) of the study, trained or read from the cache.

    Parameters
    ----------
    cfg : Config
        Uses the ``arabian_*`` knobs plus the model knobs (``image_size``, ``width``,
        ``head_units``, ``dropout``, ``seed``); training runs in float32.
    models : sequence of str, keyword-only
        Subset of :data:`MODELS` (default all three).
    schemes : sequence of str, keyword-only
        Subset of :data:`SCHEMES`.
    source : keras.Model or "imagenet", keyword-only, optional
        Transfer source; None → :func:`transfer_source` (the cached emotion model, or
        ImageNet in the ``paper`` profile).
    source_id : str, keyword-only, optional
        Identity of ``source`` in artifact keys (default: a digest of its weights).

    Returns
    -------
    StudyResults
        Also writes ``<run_dir>/arabian/accuracies.csv`` and ``training.csv``.
    """
    own_source = source is None
    if "transfer" in schemes and source is None:
        source, source_id = transfer_source(cfg)
    sets = six_emotion_sets(cfg)
    if own_source:  # workers rebuild the source themselves; a source passed in stays in this process
        runs = [(m, s, f) for f in trained_folds(cfg) for m in models for s in schemes]
        train_missing_folds(cfg, runs, source_id=source_id, n_jobs=cfg.training_workers)
    rows, training_rows, cams = [], [], {}
    for fold in trained_folds(cfg):
        for model_name in models:
            for scheme in schemes:
                with _quiet_tensorflow():
                    folder = fold_artifact(cfg, model_name=model_name, scheme=scheme, fold=fold, source=source,
                                           source_id=source_id)
                scores = cache.read_json(folder / "scores.json")
                info = cache.read_json(folder / cache.MANIFEST)["info"]
                fold_cams = cache.read_npz(folder / "cams.npz")
                for key, accuracy in scores.items():
                    name = DATASETS[key][0]
                    rows.append({"model": model_name, "scheme": scheme, "fold": fold, "dataset": name,
                                 "accuracy": accuracy})
                    cams[(model_name, scheme, fold, name)] = fold_cams[key]
                training_rows.append({"model": model_name, "scheme": scheme, "fold": fold,
                                      "best_epoch": info["best_epoch"], "seconds": info["seconds"],
                                      "folder": str(folder)})
    references = {}
    for fold in trained_folds(cfg):
        parts = fold_split(sets["oulu"].groups, fold, n_folds=cfg.arabian_folds, seed=cfg.seed)
        references[(fold, DATASETS["oulu"][0])] = reference_masks(_subset(sets["oulu"], parts["validation"]))
    for key in ("faces", "jaffe"):
        shared = reference_masks(sets[key])
        for fold in trained_folds(cfg):
            references[(fold, DATASETS[key][0])] = shared
    results = StudyResults(accuracies=pd.DataFrame(rows), training=pd.DataFrame(training_rows), cams=cams,
                           references=references)
    out = cfg.run_dir() / "arabian"
    cache.write_csv(out / "accuracies.csv", results.accuracies)
    cache.write_csv(out / "training.csv", results.training)
    return results


def reference_masks(split: pipeline.Split, *, batch_size: int = 256) -> np.ndarray:
    """Per class, the share of its images whose prototype-AU regions cover each pixel.

    For image ``i`` of class ``c`` the region of importance is the union of
    ``explain.regions.au_masks`` over ``facs.EMOTION_PROTOTYPES[c]`` on its landmarks;
    these boolean masks are averaged over the class's images.

    Parameters
    ----------
    split : pipeline.Split
        ``labels`` index :data:`SIX_EMOTIONS`; ``landmarks`` (n, 68, 2) in pixels of the
        (n, S, S, 3) ``images``.
    batch_size : int, keyword-only
        Images masked at once (memory ~ batch_size * S² bytes per region).

    Returns
    -------
    ndarray of float32, shape (6, S, S)
        Values in [0, 1]; NaN for a class without images.
    """
    from forgetting_aus.explain import regions

    size = split.images.shape[1]
    out = np.full((len(SIX_EMOTIONS), size, size), np.nan, dtype=np.float32)
    for c, emotion in enumerate(SIX_EMOTIONS):
        members = np.flatnonzero(split.labels == c)
        if not members.size:
            continue
        total = np.zeros((size, size), dtype=np.float64)
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            masks = regions.au_masks(split.landmarks[chunk], size, aus=facs.EMOTION_PROTOTYPES[emotion])
            union = np.logical_or.reduce(list(masks.values()))
            total += union.sum(axis=0)
        out[c] = total / len(members)
    return out
