"""Arabian et al. 2022: transfer learning vs. training from scratch, with attention and Grad-CAM.

The paper trains VGG16, VGG16 + SE and VGG16 + CBAM (attention after conv blocks 2, 3
and 4) on OULU-CASIA with 10-fold cross-validation, once from ImageNet weights
("transfer") and once from Glorot initialisation ("scratch"), tests every fold's model
on FACES and JAFFE, and compares class-averaged Grad-CAM maps with DICE and IoU.

This module runs that protocol on the synthetic face world:

- :func:`six_emotion_sets`: three differently distributed six-emotion sets standing in
  for OULU-CASIA (training, k-fold CV), FACES (no surprise class) and JAFFE (grayscale,
  low variance), written once per profile by ``synth.write_six_emotion_set`` and cached.
- :func:`subject_folds` / :func:`fold_split`: subject-grouped folds; inside each
  training part a few subjects are held out to select the epoch, so the reported
  validation-fold accuracy is never the one the epoch was chosen on.
- :func:`initial_model`: the two initialisations. "transfer" copies the conv-block
  weights of the source model where layer names match (the emotion model of
  ``pipeline.emotion_model`` here, ImageNet when ``cfg.imagenet_weights``); attention
  layers and the head start fresh, from the same seed as the "scratch" twin, so the two
  schemes differ only in the convolutions' starting point.
- :func:`run_study`: every (model, scheme, fold), each a cached artifact (a killed run
  resumes): fold accuracies, predictions, class-averaged Grad-CAM maps.
- :func:`table2`, :func:`gradcam_overlap`, :func:`overlap_summary`, :func:`study_claims`:
  the paper's Table 2, Figures 1 and 2, and its claims.

The "regions of importance" the paper compares with are not defined there; here they are
explicit: for each class, the share of its images in which a pixel lies in the
landmark-derived region of one of the class's prototype action units
(``facs.EMOTION_PROTOTYPES``, ``explain.regions.au_masks``), thresholded at
``reference_level``. The Grad-CAM class average is thresholded to the same area (its
top pixels), so DICE and IoU measure placement, not blob size; a random mask of that
area scores DICE = area share on average (reported as chance).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .. import cache, claims, facs, pipeline
from ..config import Config

__all__ = [
    "SIX_EMOTIONS", "MODELS", "SCHEMES", "DATASETS", "PAPER_TABLE2", "CHAPTER",
    "StudyResults", "six_emotion_sets", "subject_folds", "fold_split", "transfer_source",
    "copy_conv_weights", "initial_model", "run_study", "reference_masks",
    "class_overlap", "gradcam_overlap", "overlap_summary", "mean_class_maps", "set_sizes", "table2_numbers", "table2",
    "paper_table2", "table2_comparison", "scheme_difference", "study_claims", "headline_numbers",
]

#: The six classes of the study, in the paper's order; model outputs and labels index it.
SIX_EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "sad", "surprise")

#: Model name → attention module inserted after conv blocks 2, 3 and 4 (None: plain VGG16).
MODELS: dict[str, str | None] = {"SE": "se", "CBAM": "cbam", "Base": None}

#: Training schemes, in the paper's column order.
SCHEMES: tuple[str, ...] = ("transfer", "scratch")
SCHEME_LABELS: dict[str, str] = {"transfer": "Transfer Learning", "scratch": "Train from Scratch"}

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
#: Chapter stem under which the claims are recorded.
CHAPTER = "10_transfer_vs_scratch"

#: The paper's Table 2 (accuracy in %, mean ± SD over 10 folds): dataset → scheme → model.
PAPER_TABLE2: dict[str, dict[str, dict[str, tuple[float, float]]]] = {
    "OULU-CASIA": {"transfer": {"SE": (99.11, 0.42), "CBAM": (99.27, 0.16), "Base": (99.49, 0.17)},
                   "scratch": {"SE": (98.39, 0.27), "CBAM": (98.60, 0.34), "Base": (98.96, 0.24)}},
    "FACES": {"transfer": {"SE": (42.84, 6.40), "CBAM": (47.82, 7.98), "Base": (43.93, 5.47)},
              "scratch": {"SE": (52.43, 3.87), "CBAM": (50.24, 6.74), "Base": (54.75, 4.43)}},
    "JAFFE": {"transfer": {"SE": (26.33, 5.59), "CBAM": (30.06, 6.23), "Base": (32.94, 4.82)},
              "scratch": {"SE": (30.44, 1.41), "CBAM": (33.56, 4.26), "Base": (29.72, 6.84)}},
}

#: Knobs every fold artifact depends on.
_FOLD_KNOBS = ("image_size", "width", "head_units", "dropout", "seed", "arabian_folds",
               "arabian_epochs", "arabian_batch_size", "arabian_learning_rate")
#: Library code the fold artifacts depend on (this module's own stage functions are hashed
#: by source, so editing a table or a claim does not retrain anything).
_TRAIN_CODE = ("forgetting_aus.models", "forgetting_aus.training", "forgetting_aus.attention",
               "forgetting_aus.explain.gradcam")
_DATA_CODE = (*pipeline.TWIN_CODE, "forgetting_aus.datasets")


def _source_hash(*functions) -> str:
    """SHA-256 of the source of the given functions: a stage's own code, for its key."""
    digest = hashlib.sha256()
    for function in functions:
        digest.update(inspect.getsource(function).encode())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- data

def set_kwargs(cfg: Config) -> dict[str, dict[str, Any]]:
    """Arguments of ``synth.write_six_emotion_set`` for each stand-in (what its files depend on)."""
    subjects = {"oulu": cfg.arabian_oulu_subjects, "faces": cfg.arabian_faces_subjects,
                "jaffe": cfg.arabian_jaffe_subjects}
    return {key: {"n_subjects": int(subjects[key]), "images_per_subject_per_class": cfg.arabian_images_per_subject_class,
                  "image_size": cfg.twin_image_size, "seed": cfg.seed + offset, "style": style}
            for key, (_, style, offset, _) in DATASETS.items()}


def _make_sets(folder: Path, *, cfg: Config) -> dict[str, Any]:
    from .. import datasets, synth
    from ..datasets.affectnet import CSV_COLUMNS

    sizes = {}
    for key, kwargs in set_kwargs(cfg).items():
        root = folder / "data" / key
        synth.write_six_emotion_set(root, **kwargs)
        # The writer emits training.csv only; the AffectNet reader also wants the
        # (here empty) validation.csv.
        if not (root / "validation.csv").exists():
            (root / "validation.csv").write_text(",".join(CSV_COLUMNS) + "\n")
        index = datasets.read_affectnet(root)
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


def _sets_folder(cfg: Config) -> Path:
    params = {"sets": set_kwargs(cfg), "image_size": cfg.image_size, "stage_code": _source_hash(_make_sets, set_kwargs)}
    return pipeline.store(cfg).get_or_make("arabian_sets", params, lambda out: _make_sets(out, cfg=cfg), code=_DATA_CODE)


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
    folder = _sets_folder(cfg)
    return {key: pipeline.load_split(folder, key) for key in DATASETS}


def set_sizes(cfg: Config) -> pd.DataFrame:
    """Images per class and subjects of each stand-in (the layout of the paper's Table 1)."""
    folder = _sets_folder(cfg)
    sizes = cache.read_json(folder / cache.MANIFEST)["info"]["sizes"]
    rows = {}
    for key, info in sizes.items():
        column = dict(zip(SIX_EMOTIONS, info["per_class"], strict=True))
        column["Total"] = info["images"]
        column["Subjects"] = info["subjects"]
        rows[DATASETS[key][0]] = column
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- folds

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


# --------------------------------------------------------------------------- models

def transfer_source(cfg: Config):
    """Where "transfer" models start: ``"imagenet"`` or the trained emotion model.

    Returns
    -------
    (source, source_id)
        ``source`` is ``"imagenet"`` when ``cfg.imagenet_weights`` (the paper's setting,
        the ``paper`` profile) else the float32 ``keras.Model`` of
        ``pipeline.emotion_model(cfg)``; ``source_id`` identifies it in artifact keys.
    """
    if cfg.imagenet_weights:
        return "imagenet", "imagenet"
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
    from .. import models

    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if scheme == "transfer" and source is None:
        source, _ = transfer_source(cfg)
    imagenet = scheme == "transfer" and isinstance(source, str) and source == "imagenet"
    model = models.build_vgg16(len(SIX_EMOTIONS), input_size=cfg.image_size, width=cfg.width,
                               head_units=cfg.head_units, dropout=cfg.dropout, attention=attention,
                               kernel_initializer=cfg.arabian_scratch_initializer,
                               weights="imagenet" if imagenet else None,
                               seed=seed)
    if scheme == "transfer" and not imagenet:
        copy_conv_weights(model, source)
    return model


def _weights_digest(model) -> str:
    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- one fold

def _fold_seed(cfg: Config, fold: int) -> int:
    # The same seed for both schemes and all models of a fold: identical data order,
    # dropout masks and fresh-layer initialisation, so differences come from the start.
    return cfg.seed + 1000 + fold


def _train_fold(folder: Path, *, cfg: Config, model_name: str, scheme: str, fold: int, source,
                checkpoint_dir: Path) -> dict[str, Any]:
    import tensorflow as tf

    from .. import models, training
    from ..explain import gradcam

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
        inputs = models.preprocess(split.images)
        predicted = _probabilities(model, inputs).argmax(axis=1)
        scores[key] = float(np.mean(predicted == split.labels) * 100.0)
        predictions[f"{key}_pred"] = predicted.astype(np.int64)
        maps = gradcam.grad_cam(model, inputs, split.labels, layer_name=GRADCAM_LAYER, batch_size=64)
        cams[key] = gradcam.class_average_maps(maps, split.labels, len(SIX_EMOTIONS))
    models.save_model(model, folder / "model.keras")
    cache.write_json(folder / "history.json", history)
    cache.write_json(folder / "scores.json", scores)
    cache.write_npz(folder / "predictions.npz", oulu_index=parts["validation"], **predictions)
    cache.write_npz(folder / "cams.npz", **cams)
    return {"scores": scores, "best_epoch": history["best_epoch"], "seconds": float(np.sum(history["seconds"]))}


def _probabilities(model, inputs: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Softmax outputs (n, classes) by direct calls (no per-model predict function to trace)."""
    return np.concatenate([model(inputs[start:start + batch_size], training=False).numpy()
                           for start in range(0, len(inputs), batch_size)])


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


def fold_artifact(cfg: Config, *, model_name: str, scheme: str, fold: int, source=None,
                  source_id: str | None = None) -> Path:
    """Train and evaluate one (model, scheme, fold); cached, resumable. Returns its folder.

    The folder holds ``model.keras``, ``history.json``, ``scores.json`` (accuracy in %
    on the OULU validation fold, FACES and JAFFE), ``predictions.npz`` and ``cams.npz``
    (class-averaged Grad-CAM maps, (6, S, S) float32 per dataset, NaN for absent classes).
    """
    if model_name not in MODELS:
        raise ValueError(f"model_name must be one of {list(MODELS)}, got {model_name!r}")
    if scheme == "transfer" and source is None:
        source, source_id = transfer_source(cfg)
    if scheme == "transfer" and source_id is None:
        source_id = "imagenet" if isinstance(source, str) else f"weights:{_weights_digest(source)}"
    params = {"sets": _sets_folder(cfg).name, "model": model_name, "scheme": scheme, "fold": fold,
              "source": source_id if scheme == "transfer" else None, **cfg.subset(list(_FOLD_KNOBS)),
              "stage_code": _source_hash(_train_fold, initial_model, copy_conv_weights, fold_split, subject_folds,
                                         _fold_seed)}
    checkpoints = cfg.run_dir() / "checkpoints" / "arabian_fold" / cache.artifact_key(params, _TRAIN_CODE)

    def make(folder: Path) -> dict[str, Any]:
        return _train_fold(folder, cfg=cfg, model_name=model_name, scheme=scheme, fold=fold, source=source,
                           checkpoint_dir=checkpoints)

    return pipeline.store(cfg).get_or_make("arabian_fold", params, make, code=_TRAIN_CODE)


# --------------------------------------------------------------------------- the study

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
    if "transfer" in schemes and source is None:
        source, source_id = transfer_source(cfg)
    sets = six_emotion_sets(cfg)
    rows, training_rows, cams = [], [], {}
    for fold in range(cfg.arabian_folds):
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
    for fold in range(cfg.arabian_folds):
        parts = fold_split(sets["oulu"].groups, fold, n_folds=cfg.arabian_folds, seed=cfg.seed)
        references[(fold, DATASETS["oulu"][0])] = reference_masks(_subset(sets["oulu"], parts["validation"]))
    for key in ("faces", "jaffe"):
        shared = reference_masks(sets[key])
        for fold in range(cfg.arabian_folds):
            references[(fold, DATASETS[key][0])] = shared
    results = StudyResults(accuracies=pd.DataFrame(rows), training=pd.DataFrame(training_rows), cams=cams,
                           references=references)
    out = cfg.run_dir() / "arabian"
    cache.write_csv(out / "accuracies.csv", results.accuracies)
    cache.write_csv(out / "training.csv", results.training)
    return results


# --------------------------------------------------------------------------- regions of importance

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
    from ..explain import regions

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


def class_overlap(cams: np.ndarray, references: np.ndarray, *, reference_level: float = 0.5) -> pd.DataFrame:
    """DICE and IoU between thresholded class-average maps and the regions of importance.

    The reference of class ``c`` is ``references[c] >= reference_level`` (pixels inside
    the prototype regions of at least that share of the class's images). The Grad-CAM
    class average is thresholded to the same area: its pixels at or above its own
    ``1 - area`` quantile (``explain.overlap.threshold_map``), keeping only positive
    evidence.

    Parameters
    ----------
    cams : ndarray, shape (k, S, S)
        Class-average Grad-CAM maps (NaN rows: class absent, skipped).
    references : ndarray, shape (k, S, S)
        From :func:`reference_masks`.
    reference_level : float in (0, 1], keyword-only

    Returns
    -------
    DataFrame
        One row per class present in both: ``class`` (name), ``dice``, ``iou``,
        ``area`` (reference area / image area), ``dice_chance`` (= area, the expected
        DICE of a random mask of that area) and ``iou_chance`` (area / (2 - area)).
    """
    from ..explain import overlap

    cams = np.asarray(cams, dtype=np.float64)
    references = np.asarray(references, dtype=np.float64)
    if cams.shape != references.shape or cams.ndim != 3:
        raise ValueError(f"cams and references must both be (classes, S, S); got {cams.shape} and {references.shape}")
    if not 0.0 < reference_level <= 1.0:
        raise ValueError(f"reference_level must lie in (0, 1], got {reference_level}")
    rows = []
    for c in range(len(cams)):
        if np.isnan(cams[c]).all() or np.isnan(references[c]).all():
            continue
        reference = references[c] >= reference_level
        area = float(reference.mean())
        if area == 0.0:
            continue
        salient = overlap.threshold_map(cams[c], quantile=1.0 - area) & (cams[c] > 0)
        rows.append({"class": SIX_EMOTIONS[c] if len(cams) == len(SIX_EMOTIONS) else str(c),
                     "dice": overlap.dice(salient, reference), "iou": overlap.iou(salient, reference),
                     "area": area, "dice_chance": area, "iou_chance": area / (2.0 - area)})
    return pd.DataFrame(rows, columns=["class", "dice", "iou", "area", "dice_chance", "iou_chance"])


def gradcam_overlap(results: StudyResults, *, reference_level: float = 0.5) -> pd.DataFrame:
    """:func:`class_overlap` for every (model, scheme, fold, dataset) of the study.

    Returns
    -------
    DataFrame
        Columns ``model``, ``scheme``, ``fold``, ``dataset`` and those of
        :func:`class_overlap`, one row per class.
    """
    parts = []
    for (model_name, scheme, fold, dataset), cams in results.cams.items():
        table = class_overlap(cams, results.references[(fold, dataset)], reference_level=reference_level)
        table.insert(0, "dataset", dataset)
        table.insert(0, "fold", fold)
        table.insert(0, "scheme", scheme)
        table.insert(0, "model", model_name)
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


def overlap_summary(overlaps: pd.DataFrame) -> pd.DataFrame:
    """Mean over classes per fold (the paper's "mean across all classes"), then mean and SD over folds.

    Returns
    -------
    DataFrame indexed by (dataset, model, scheme)
        ``dice_mean``, ``dice_sd``, ``iou_mean``, ``iou_sd``, ``dice_chance``,
        ``iou_chance``, ``n_folds``.
    """
    per_fold = overlaps.groupby(["dataset", "model", "scheme", "fold"], sort=False)[
        ["dice", "iou", "dice_chance", "iou_chance"]].mean()
    grouped = per_fold.groupby(level=["dataset", "model", "scheme"], sort=False)
    out = pd.DataFrame({"dice_mean": grouped["dice"].mean(), "dice_sd": grouped["dice"].std(ddof=1),
                        "iou_mean": grouped["iou"].mean(), "iou_sd": grouped["iou"].std(ddof=1),
                        "dice_chance": grouped["dice_chance"].mean(), "iou_chance": grouped["iou_chance"].mean(),
                        "n_folds": grouped["dice"].size()})
    return out


def mean_class_maps(results: StudyResults, *, dataset: str, emotion: str) -> tuple[dict[tuple[str, str], np.ndarray],
                                                                                   np.ndarray]:
    """One class's Grad-CAM class averages, averaged over folds, and its region of importance.

    Returns
    -------
    maps : dict
        ``(model, scheme) -> (S, S)`` float32.
    reference : ndarray of float32, shape (S, S)
        The fold-averaged :func:`reference_masks` of that class.
    """
    c = SIX_EMOTIONS.index(emotion)
    grouped: dict[tuple[str, str], list[np.ndarray]] = {}
    for (model_name, scheme, _, name), cams in results.cams.items():
        if name == dataset:
            grouped.setdefault((model_name, scheme), []).append(cams[c])
    if not grouped:
        raise ValueError(f"no maps for dataset {dataset!r}; datasets: {sorted({k[3] for k in results.cams})}")
    maps = {key: np.mean(values, axis=0).astype(np.float32) for key, values in grouped.items()}
    reference = np.mean([ref[c] for (_, name), ref in results.references.items() if name == dataset], axis=0)
    return maps, reference.astype(np.float32)


# --------------------------------------------------------------------------- Table 2

def _dataset_order() -> list[str]:
    return [name for name, *_ in DATASETS.values()]


def table2_numbers(results: StudyResults) -> pd.DataFrame:
    """Accuracy mean and SD (ddof 1) over folds, in %, per (dataset, scheme, model)."""
    grouped = results.accuracies.groupby(["dataset", "scheme", "model"])["accuracy"]
    out = pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(ddof=1), "n_folds": grouped.size()})
    order = pd.MultiIndex.from_product([_dataset_order(), SCHEMES, list(MODELS)], names=out.index.names)
    return out.reindex([i for i in order if i in out.index])


def _formatted(cells: dict[tuple[str, str, str], tuple[float, float]]) -> pd.DataFrame:
    columns = pd.MultiIndex.from_tuples([(SCHEME_LABELS[s], m) for s in SCHEMES for m in MODELS])
    rows = {}
    for dataset in _dataset_order():
        rows[dataset] = [f"{cells[(dataset, s, m)][0]:.2f} ± {cells[(dataset, s, m)][1]:.2f}"
                         if (dataset, s, m) in cells else "" for s in SCHEMES for m in MODELS]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns)


def table2(results: StudyResults) -> pd.DataFrame:
    """This run's Table 2: "mean ± SD" accuracy (%) over folds, the paper's layout.

    Rows: OULU-CASIA (validation folds), FACES, JAFFE; columns: (scheme, model).
    """
    numbers = table2_numbers(results)
    return _formatted({index: (row["mean"], row["sd"]) for index, row in numbers.iterrows()})


def paper_table2() -> pd.DataFrame:
    """The paper's Table 2 (typed from the paper, reference values only), same layout."""
    return _formatted({(d, s, m): value for d, by_scheme in PAPER_TABLE2.items()
                       for s, by_model in by_scheme.items() for m, value in by_model.items()})


def table2_comparison(results: StudyResults) -> pd.DataFrame:
    """The paper's and this run's Table 2 interleaved: rows (dataset, "paper" / "this run")."""
    paper, ours = paper_table2(), table2(results)
    frames = []
    for dataset in _dataset_order():
        frames.append(pd.DataFrame([paper.loc[dataset], ours.loc[dataset]],
                                   index=pd.MultiIndex.from_tuples([(dataset, "paper"), (dataset, "this run")])))
    return pd.concat(frames)


# --------------------------------------------------------------------------- claims

def scheme_difference(frame: pd.DataFrame, *, value: str, datasets: Sequence[str], better: str = "scratch",
                      confidence: float = 0.95) -> dict[str, Any]:
    """Paired per-fold difference ``better - other`` scheme, averaged over models and datasets.

    Both schemes of a fold share the data split and the seed, so the per-fold difference
    is paired; its spread over folds gives a t confidence interval.

    Parameters
    ----------
    frame : DataFrame
        Columns ``model``, ``scheme``, ``fold``, ``dataset`` and ``value`` (e.g. the
        accuracies of :class:`StudyResults`, or per-fold overlap means).
    value : str, keyword-only
    datasets : sequence of str, keyword-only
        Display names averaged over.
    better : "scratch" or "transfer", keyword-only
        The scheme the claim says is better.
    confidence : float, keyword-only

    Returns
    -------
    dict
        ``mean``, ``sd`` (over folds, ddof 1), ``low``, ``high`` (t interval),
        ``per_fold`` (list), ``n_folds``, and ``by_dataset`` (mean difference per dataset).
    """
    if better not in SCHEMES:
        raise ValueError(f"better must be one of {SCHEMES}, got {better!r}")
    other = [s for s in SCHEMES if s != better][0]
    data = frame[frame["dataset"].isin(list(datasets))]
    wide = data.pivot_table(index=["fold", "dataset", "model"], columns="scheme", values=value, aggfunc="mean")
    difference = (wide[better] - wide[other]).dropna()
    per_fold = difference.groupby(level="fold").mean()
    n = len(per_fold)
    mean = float(per_fold.mean())
    sd = float(per_fold.std(ddof=1)) if n > 1 else float("nan")
    if n > 1 and sd > 0:
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / np.sqrt(n))
    else:
        half = 0.0 if n > 1 else float("inf")
    by_dataset = difference.groupby(level="dataset").mean()
    return {"mean": mean, "sd": sd, "low": mean - half, "high": mean + half, "per_fold": per_fold.tolist(),
            "n_folds": n, "by_dataset": {k: float(v) for k, v in by_dataset.items()}}


def _paper_scheme_gap(dataset: str) -> float:
    """The paper's mean over models of scratch − transfer accuracy on one dataset (pp)."""
    table = PAPER_TABLE2[dataset]
    return float(np.mean([table["scratch"][m][0] - table["transfer"][m][0] for m in MODELS]))


def _interval_text(diff: dict[str, Any], unit: str) -> str:
    return (f"mean {diff['mean']:+.2f}{unit}, 95% CI [{diff['low']:+.2f}, {diff['high']:+.2f}] "
            f"over {diff['n_folds']} folds")


def study_claims(results: StudyResults, overlaps: pd.DataFrame) -> list[claims.Claim]:
    """Arabian et al.'s claims as predicates on this run, with verdicts from the fold spread.

    Each verdict comes from a 95% t interval of the paired per-fold difference between
    the schemes (:func:`scheme_difference`): holds when it excludes 0 on the claimed
    side, fails when it excludes 0 on the other, inconclusive otherwise.
    """
    unseen = [DATASETS["faces"][0], DATASETS["jaffe"][0]]
    oulu = DATASETS["oulu"][0]
    all_sets = _dataset_order()
    acc = results.accuracies

    generalise = scheme_difference(acc, value="accuracy", datasets=unseen, better="scratch")
    by = generalise["by_dataset"]
    claim_generalise = claims.Claim(
        claim_id="A22-scratch-generalises", paper="Arabian 2022", section="§3.2, Table 2",
        statement="Models trained from scratch generalise better to unseen datasets (FACES, JAFFE) than "
                  "transfer-learned ones.",
        paper_value=f"scratch − transfer: {_paper_scheme_gap('FACES'):+.2f} pp (FACES), "
                    f"{_paper_scheme_gap('JAFFE'):+.2f} pp (JAFFE), mean over the three models",
        this_run=f"scratch − transfer: {by.get('FACES', np.nan):+.2f} pp (FACES), {by.get('JAFFE', np.nan):+.2f} pp "
                 f"(JAFFE); {_interval_text(generalise, ' pp')}",
        verdict=claims.verdict_from_interval(generalise["low"], generalise["high"], threshold=0.0, greater=True),
        evidence="paired per-fold difference of accuracy, averaged over models and the two unseen sets; 95% t interval")

    per_fold = overlaps.groupby(["model", "scheme", "fold", "dataset"], as_index=False)[["dice", "iou"]].mean()
    dice = scheme_difference(per_fold, value="dice", datasets=all_sets, better="scratch")
    iou = scheme_difference(per_fold, value="iou", datasets=all_sets, better="scratch")
    verdicts = {claims.verdict_from_interval(d["low"], d["high"], threshold=0.0, greater=True) for d in (dice, iou)}
    claim_attend = claims.Claim(
        claim_id="A22-scratch-attends-regions", paper="Arabian 2022", section="§3.2, Figures 1 and 2",
        statement="Models trained from scratch adhere better to the regions of importance (higher DICE and IoU "
                  "of class-averaged Grad-CAM maps) than transfer-learned ones, on every dataset.",
        paper_value="scratch > transfer on all three datasets; DICE gaps above 15 % for some models, IoU gaps "
                    "above 10 % for most",
        this_run=f"scratch − transfer DICE {_interval_text(dice, '')}; IoU {_interval_text(iou, '')} "
                 f"(reference: prototype-AU regions)",
        verdict=verdicts.pop() if len(verdicts) == 1 else "inconclusive",
        evidence="paired per-fold difference of the class-mean DICE and IoU, averaged over models and datasets; "
                 "95% t intervals; holds/fails only when DICE and IoU agree")

    training_set = scheme_difference(acc, value="accuracy", datasets=[oulu], better="transfer")
    claim_oulu = claims.Claim(
        claim_id="A22-transfer-better-on-oulu", paper="Arabian 2022", section="§3.2, Table 2",
        statement="On the training set's validation folds (OULU-CASIA) transfer learning is slightly better "
                  "than training from scratch.",
        paper_value=f"transfer − scratch: {-_paper_scheme_gap('OULU-CASIA'):+.2f} pp",
        this_run=f"transfer − scratch: {_interval_text(training_set, ' pp')}",
        verdict=claims.verdict_from_interval(training_set["low"], training_set["high"], threshold=0.0, greater=True),
        evidence="paired per-fold difference of validation-fold accuracy, averaged over models; 95% t interval")

    drop = _cross_dataset_drop(acc)
    claim_drop = claims.Claim(
        claim_id="A22-cross-dataset-drop", paper="Arabian 2022", section="§3.2",
        statement="Accuracy on FACES and JAFFE is far below the OULU-CASIA validation accuracy: the models do not "
                  "generalise well to unseen data.",
        paper_value=f"OULU − mean(FACES, JAFFE): {_paper_drop():+.2f} pp (mean over models and schemes)",
        this_run=f"OULU − mean(FACES, JAFFE): {_interval_text(drop, ' pp')}",
        verdict=claims.verdict_from_interval(drop["low"], drop["high"], threshold=0.0, greater=True),
        evidence="per-fold difference averaged over models and schemes; 95% t interval")
    return [claim_generalise, claim_attend, claim_oulu, claim_drop]


def _cross_dataset_drop(acc: pd.DataFrame, confidence: float = 0.95) -> dict[str, Any]:
    wide = acc.pivot_table(index=["fold", "model", "scheme"], columns="dataset", values="accuracy")
    gap = wide["OULU-CASIA"] - wide[["FACES", "JAFFE"]].mean(axis=1)
    per_fold = gap.groupby(level="fold").mean()
    n, mean = len(per_fold), float(per_fold.mean())
    sd = float(per_fold.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / np.sqrt(n)) if sd > 0 else 0.0
    return {"mean": mean, "sd": sd, "low": mean - half, "high": mean + half, "n_folds": n}


def _paper_drop() -> float:
    values = []
    for s in SCHEMES:
        for m in MODELS:
            unseen = np.mean([PAPER_TABLE2[d][s][m][0] for d in ("FACES", "JAFFE")])
            values.append(PAPER_TABLE2["OULU-CASIA"][s][m][0] - unseen)
    return float(np.mean(values))


def headline_numbers(results: StudyResults, overlaps: pd.DataFrame, claim_list: Sequence[claims.Claim]
                     ) -> dict[str, float | str]:
    """The numbers the chapter's prose quotes, by name (accuracies in %, overlaps 0-1).

    Keys: ``acc_<scheme>_<dataset>`` (mean over models and folds; dataset keys ``oulu``,
    ``faces``, ``jaffe``), ``paper_acc_<scheme>_<dataset>``, ``dice_<scheme>``,
    ``iou_<scheme>`` (mean over models, folds and datasets), ``dice_chance``,
    ``chance_accuracy``, ``n_folds``, ``n_fits``, ``verdict_<claim id, - as _>``.
    """
    out: dict[str, float | str] = {}
    acc = results.accuracies
    for key, (name, *_rest) in DATASETS.items():
        for scheme in SCHEMES:
            out[f"acc_{scheme}_{key}"] = float(acc.query("dataset == @name and scheme == @scheme")["accuracy"].mean())
            out[f"paper_acc_{scheme}_{key}"] = float(np.mean([v[0] for v in PAPER_TABLE2[name][scheme].values()]))
    per_fold = overlaps.groupby(["model", "scheme", "fold", "dataset"], as_index=False)[
        ["dice", "iou", "dice_chance"]].mean()
    for scheme in SCHEMES:
        chosen = per_fold[per_fold["scheme"] == scheme]
        out[f"dice_{scheme}"] = float(chosen["dice"].mean())
        out[f"iou_{scheme}"] = float(chosen["iou"].mean())
    out["dice_chance"] = float(per_fold["dice_chance"].mean())
    out["chance_accuracy"] = 100.0 / len(SIX_EMOTIONS)
    out["n_folds"] = int(acc["fold"].nunique())
    out["n_fits"] = int(len(results.training))
    for claim in claim_list:
        out[f"verdict_{claim.claim_id.replace('-', '_')}"] = claim.verdict
    return out
