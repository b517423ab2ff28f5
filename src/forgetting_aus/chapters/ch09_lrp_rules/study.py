"""Chapter 09, the study: the three-class data, subject-grouped folds, fine-tuning, LRP maps.

Only the cached stages live here, so that editing a table, a claim or a score elsewhere in
the chapter does not retrain a fold (``cache.CODE`` keys the stages by this module):

``weitz_data`` (:func:`three_class_data`) → ``weitz_fold`` (:func:`fold_model`, one per
fold; :func:`cross_validate` runs them all) → ``weitz_lrp`` (:func:`rule_maps`: the best
fold's test images under every rule, and the rules' runtimes).

Design choices (why, in one place)
----------------------------------
- **Data.** Pain: UNBC-twin frames with PSPI >= ``weitz_pspi_min`` ("high PSPI", the
  analogue of BioVid's pain intensities 3 and 4). Happy and disgust: AffectNet-twin faces.
  ``weitz_images_per_class`` of each, drawn with the seed. Among the AffectNet faces, those
  the emotion model never trained on (its test split, then its validation split) are
  drawn first; the rest come from its training split, and how many did is reported
  (``seen_by_emotion_model``), since the network that is fine-tuned has seen their labels.
- **Framing.** Both datasets are cropped the same way (the box derived from the 68
  landmarks), so that the crop itself does not tell pain (UNBC) from emotions (AffectNet).
  The two twins still differ in how they were recorded (identities, nuisances); Weitz et al.
  took all three classes from one recording setup (BioVid), which this world cannot.
- **Folds.** ``StratifiedGroupKFold`` with subjects as groups: all images of a person lie
  in one fold, as Weitz's subject-wise folds (consecutive video frames are near-duplicates).
- **Model.** :func:`forgetting_aus.models.with_new_head` on the emotion model (3 outputs),
  every layer trainable, SGD with the book's learning rate and momentum, flip augmentation,
  cross-entropy (focal loss with gamma 0; the classes are balanced). The epoch is selected
  on an inner, subject-grouped validation slice of the training folds (never on the test
  fold; the paper does not say how it selected).
- **Explanations.** The figure explains the *predicted* class of the shown pain images,
  as Weitz's Figure 3 does. The scored maps explain the *true* class of every test image
  of the best fold (at most ``lrp_max_images`` per class); :mod:`.analysis` scores them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgetting_aus import cache, config, datasets, pipeline
from forgetting_aus.config import Config
from forgetting_aus.datasets.common import AU_COLUMNS, FACE_BOX_COLUMNS, LANDMARK_COLUMNS

#: The three classes, in the row order of Weitz's Table 2 (label = index).
CLASSES: tuple[str, ...] = ("pain", "disgust", "happy")


#: Their names as Table 2 prints them.
CLASS_NAMES: tuple[str, ...] = ("Pain", "Disgust", "Happiness")


#: Weitz's four LRP variants (keys of :data:`forgetting_aus.explain.lrp.LRP_METHODS`).
RULES: tuple[str, ...] = ("LRP-Z", "LRP-Epsilon", "LRP-PresetAFlat", "LRP-PresetBFlat")


_SOURCE_COLUMNS = ("path", "subject", *FACE_BOX_COLUMNS, *LANDMARK_COLUMNS, *AU_COLUMNS)


def select_images(unbc: pd.DataFrame, affectnet: pd.DataFrame, *, pspi_min: float,
                  per_class: int, seed: int) -> pd.DataFrame:
    """Draw the balanced three-class data set from the two twins' indexes.

    Parameters
    ----------
    unbc : DataFrame
        From :func:`forgetting_aus.datasets.read_unbc` (``pspi``, ``subject``, landmarks).
    affectnet : DataFrame
        From :func:`forgetting_aus.datasets.read_affectnet` then
        :func:`~forgetting_aus.datasets.affectnet_splits` (``split`` in train/val/test,
        ``emotion``, ``subject`` from the twin's ground truth, ``truth=``).
    pspi_min : float, keyword-only
        Pain frames need ``pspi >= pspi_min``.
    per_class : int, keyword-only
        Images of each class.
    seed : int, keyword-only
        Seed of the draws (same inputs and seed, same selection).

    Returns
    -------
    DataFrame of ``3 * per_class`` rows, ordered by class then draw
        Columns ``path``, ``subject`` (prefixed ``unbc:`` / ``affectnet:`` so the two
        identity pools cannot collide), face box, landmark and AU columns, ``label`` (int,
        index into :data:`CLASSES`), ``class``, ``source`` (``unbc`` / ``affectnet``),
        ``pspi`` (float, NaN for AffectNet), ``seen_by_emotion_model`` (bool: the image
        is in the emotion model's training split).

    Raises
    ------
    ValueError
        If a class has fewer than ``per_class`` candidates (the message says how many and
        which knob to change), or AffectNet subjects are missing.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be a positive number of images, got {per_class}")
    rng_pain, rng_disgust, rng_happy = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    pain = unbc[unbc["pspi"] >= pspi_min]
    if len(pain) < per_class:
        raise ValueError(
            f"weitz_images_per_class={per_class} asks for {per_class} pain frames with PSPI >= {pspi_min:g}, "
            f"but the UNBC data have {len(pain)} (of {len(unbc)} frames); lower weitz_images_per_class or "
            "weitz_pspi_min, or give the UNBC twin more subjects/sequences")
    pain = pain.iloc[np.sort(rng_pain.choice(len(pain), size=per_class, replace=False))]
    parts = [_tidy(pain, label=0, source="unbc", pspi=pain["pspi"].to_numpy(dtype=float),
                   seen=np.zeros(per_class, dtype=bool))]
    if affectnet["subject"].isna().any():
        raise ValueError("the AffectNet index has no subject ids (real AffectNet); subject-grouped folds need "
                         "the twin's ground truth: read it with read_affectnet(root, truth=synth.truth_root(root))")
    for label, rng in ((1, rng_disgust), (2, rng_happy)):
        name = CLASSES[label]
        pool = affectnet[affectnet["emotion"] == name]
        if len(pool) < per_class:
            raise ValueError(
                f"weitz_images_per_class={per_class} asks for {per_class} {name} faces, but the AffectNet data "
                f"have {len(pool)}; lower weitz_images_per_class or enlarge the twin (affectnet_n_train, "
                "affectnet_test_per_class)")
        # Images the emotion model never trained on first: test, then val, then train.
        tier = pool["split"].map({"test": 0, "val": 1, "train": 2}).to_numpy()
        order = np.lexsort((rng.permutation(len(pool)), tier))[:per_class]
        chosen = pool.iloc[np.sort(order)]
        parts.append(_tidy(chosen, label=label, source="affectnet", pspi=np.full(per_class, np.nan),
                           seen=(chosen["split"] == "train").to_numpy()))
    return pd.concat(parts, ignore_index=True)


def _tidy(rows: pd.DataFrame, *, label: int, source: str, pspi: np.ndarray, seen: np.ndarray) -> pd.DataFrame:
    out = rows.loc[:, list(_SOURCE_COLUMNS)].reset_index(drop=True).copy()
    out["subject"] = source + ":" + out["subject"].astype(str)
    out["label"] = label
    out["class"] = CLASSES[label]
    out["source"] = source
    out["pspi"] = pspi
    out["seen_by_emotion_model"] = seen
    return out


def assign_folds(labels: np.ndarray, groups: np.ndarray, *, n_folds: int, seed: int) -> np.ndarray:
    """Fold of every image: stratified by class, subjects kept within one fold.

    Parameters
    ----------
    labels : int array of shape (n,)
    groups : array of shape (n,)
        Subject ids.
    n_folds : int, keyword-only
    seed : int, keyword-only
        ``random_state`` of the shuffled ``StratifiedGroupKFold``.

    Returns
    -------
    int64 array of shape (n,), values in ``0..n_folds-1``
    """
    from sklearn.model_selection import StratifiedGroupKFold

    groups = np.asarray(groups).astype(str)
    n_groups = len(np.unique(groups))
    if n_folds < 2 or n_groups < n_folds:
        raise ValueError(f"weitz_folds={n_folds}: need 2 <= folds <= subjects, and the data have {n_groups} "
                         "subjects; lower weitz_folds or draw images from more subjects")
    folds = np.full(len(groups), -1, dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (_, test) in enumerate(splitter.split(np.zeros(len(groups)), np.asarray(labels), groups)):
        folds[test] = fold
    return folds


def inner_validation(labels: np.ndarray, groups: np.ndarray, *, seed: int, n_splits: int = 8) -> np.ndarray:
    """Boolean mask of a subject-grouped validation slice (about ``1/n_splits``) for model selection.

    One split of a shuffled ``StratifiedGroupKFold`` with ``min(n_splits, subjects,
    smallest class)`` splits, so no subject is in both the inner training and the
    validation part.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    groups, labels = np.asarray(groups).astype(str), np.asarray(labels)
    # scikit-learn needs at least n_splits subjects and n_splits images of every class.
    n_splits = min(n_splits, len(np.unique(groups)), int(np.bincount(labels).min()))
    if n_splits < 2:
        raise ValueError("the training folds hold a single subject or a single image of some class; "
                         "an inner validation split needs two of each")
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    _, val = next(splitter.split(np.zeros(len(groups)), labels, groups))
    mask = np.zeros(len(groups), dtype=bool)
    mask[val] = True
    return mask


@dataclasses.dataclass(frozen=True)
class ThreeClassData:
    """The three-class data set at the model's input size.

    Attributes
    ----------
    split : pipeline.Split
        ``images`` uint8 (n, S, S, 3), ``labels`` int64 (n,) into :data:`CLASSES`,
        ``landmarks`` float32 (n, 68, 2) in crop pixels, ``groups`` str (n,) subject ids,
        ``aus`` float32 (n, 18) AU intensities (``facs.AU_CODES`` order).
    folds : int64 (n,)
        Cross-validation fold of every image.
    pspi : float32 (n,)
        PSPI of the pain frames, NaN for the AffectNet faces.
    seen_by_emotion_model : bool (n,)
        The image is in the emotion model's training split.
    key : str
        Artifact key (enters the fold models' keys).
    """

    split: pipeline.Split
    folds: np.ndarray
    pspi: np.ndarray
    seen_by_emotion_model: np.ndarray
    key: str


def _data_folder(cfg: Config) -> Path:
    # Resolve each twin once, so the key names exactly the twin that is read.
    unbc_root, unbc_id = pipeline.dataset_root(cfg, "unbc")
    affectnet_root, affectnet_id = pipeline.dataset_root(cfg, "affectnet")
    # The subject-grouped folds need the AffectNet twin's subject ids: this study runs on the synthetic world.
    affectnet_truth = pipeline.twin_truth(cfg, "affectnet")
    params = {"unbc": unbc_id, "affectnet": affectnet_id,
              **cfg.subset(["image_size", "weitz_pspi_min", "weitz_images_per_class", "weitz_folds", "seed",
                            "affectnet_val_fraction", "affectnet_val_rows"])}

    def make(folder: Path) -> dict[str, Any]:
        affectnet = datasets.affectnet_splits(datasets.read_affectnet(affectnet_root, truth=affectnet_truth),
                                              val_fraction=cfg.affectnet_val_fraction, seed=cfg.seed,
                                              val_rows=cfg.affectnet_val_rows)
        index = select_images(datasets.read_unbc(unbc_root), affectnet, pspi_min=cfg.weitz_pspi_min,
                              per_class=cfg.weitz_images_per_class, seed=cfg.seed)
        images, landmarks = datasets.load_faces(index, size=cfg.image_size, crop="landmarks")
        folds = assign_folds(index["label"].to_numpy(), index["subject"].to_numpy(), n_folds=cfg.weitz_folds,
                             seed=cfg.seed)
        cache.write_npz(folder / "data.npz", images=images, labels=index["label"].to_numpy(dtype=np.int64),
                        landmarks=landmarks.astype(np.float32), groups=index["subject"].to_numpy(dtype=str),
                        aus=index.loc[:, list(AU_COLUMNS)].to_numpy(dtype=np.float32), folds=folds,
                        pspi=index["pspi"].to_numpy(dtype=np.float32),
                        seen=index["seen_by_emotion_model"].to_numpy(dtype=bool))
        return {"n": len(index), "subjects": int(index["subject"].nunique())}

    return pipeline.store(cfg).get_or_make("weitz_data", params, make)


def three_class_data(cfg: Config) -> ThreeClassData:
    """The balanced pain / disgust / happy data with its folds (cached stage ``weitz_data``)."""
    folder = _data_folder(cfg)
    arrays = cache.read_npz(folder / "data.npz")
    split = pipeline.Split(images=arrays["images"], labels=arrays["labels"], landmarks=arrays["landmarks"],
                           groups=arrays["groups"], aus=arrays["aus"])
    return ThreeClassData(split=split, folds=arrays["folds"], pspi=arrays["pspi"],
                          seen_by_emotion_model=arrays["seen"], key=folder.name)


def _fold_params(cfg: Config, data_key: str, source_key: str, fold: int) -> dict[str, Any]:
    return {"data": data_key, "emotion_model": source_key, "fold": fold,
            **cfg.subset(["image_size", "width", "head_units", "dropout", "learning_rate", "momentum",
                          "mixed_precision", "seed", "weitz_epochs", "pain_batch_size"])}


def fold_model(cfg: Config, fold: int, *, data: ThreeClassData | None = None) -> pipeline.Trained:
    """The model fine-tuned on every fold but ``fold`` (cached stage ``weitz_fold``).

    Parameters
    ----------
    cfg : Config
    fold : int
        Test fold, ``0..weitz_folds-1``.
    data : ThreeClassData, optional, keyword-only
        The output of :func:`three_class_data` (loaded when not given).

    Returns
    -------
    pipeline.Trained
        Folder with ``model.keras`` (float32), ``history.json``, ``predictions.npz``
        (``test_index`` int64 rows of the data set, ``y_true``, ``y_pred`` int64,
        ``probabilities`` float32 (n_test, 3)) and ``scores.json`` (accuracy, macro F1,
        sizes, selected epoch).
    """
    if not 0 <= fold < cfg.weitz_folds:
        raise ValueError(f"fold must lie in 0..{cfg.weitz_folds - 1} (weitz_folds={cfg.weitz_folds}), got {fold}")
    data = data if data is not None else three_class_data(cfg)
    source = pipeline.emotion_model(cfg)
    params = _fold_params(cfg, data.key, source.key, fold)

    def make(folder: Path) -> dict[str, Any]:
        from sklearn.metrics import accuracy_score, f1_score

        from forgetting_aus import losses, models, training

        split, folds = data.split, data.folds
        train_rows = np.flatnonzero(folds != fold)
        test_rows = np.flatnonzero(folds == fold)
        val_mask = inner_validation(split.labels[train_rows], split.groups[train_rows], seed=cfg.seed + fold)
        fit_rows, val_rows = train_rows[~val_mask], train_rows[val_mask]
        model = models.with_new_head(source.load_read_only(), len(CLASSES), head_units=cfg.head_units, dropout=cfg.dropout,
                                     seed=cfg.seed + 300 + fold)
        models.freeze_blocks(model, 0)  # fine-tune every layer
        history = training.fit_classifier(
            model, (split.images[fit_rows], split.labels[fit_rows]), (split.images[val_rows], split.labels[val_rows]),
            loss=losses.focal_loss(gamma=0.0), epochs=cfg.weitz_epochs, batch_size=cfg.pain_batch_size,
            learning_rate=cfg.learning_rate, momentum=cfg.momentum, augment="flip", select_by="macro_recall",
            seed=cfg.seed + fold, mixed_precision=cfg.mixed_precision, progress=False,
            checkpoint_dir=checkpoints)
        model = history.pop("model", model)
        models.save_model(model, folder / "model.keras")
        cache.write_json(folder / "history.json", history)
        probabilities = model.predict(models.preprocess(split.images[test_rows]), batch_size=256, verbose=0)
        y_true, y_pred = split.labels[test_rows], probabilities.argmax(axis=1).astype(np.int64)
        cache.write_npz(folder / "predictions.npz", test_index=test_rows.astype(np.int64), y_true=y_true,
                        y_pred=y_pred, probabilities=probabilities.astype(np.float32))
        scores = {"accuracy": float(accuracy_score(y_true, y_pred)),
                  "macro_f1": float(f1_score(y_true, y_pred, labels=list(range(len(CLASSES))), average="macro",
                                             zero_division=0)),
                  "n_train": int(len(fit_rows)), "n_val": int(len(val_rows)), "n_test": int(len(test_rows)),
                  "best_epoch": history.get("best_epoch"), "seconds": float(np.sum(history.get("seconds", [0.0])))}
        cache.write_json(folder / "scores.json", scores)
        return scores

    checkpoints = pipeline.checkpoint_folder(cfg, f"weitz_fold_{fold}", params)
    return pipeline.Trained(pipeline.stored_model(cfg, "weitz_fold", params, make, checkpoints=checkpoints))


def trained_folds(cfg: Config) -> range:
    """The folds this run trains and scores: the first ``weitz_trained_folds`` (default all).

    A smoke run trains one fold of a 2-fold split to exercise the path in half the time;
    the best fold is then unknown and the fold spread too, so the claims that rest on them
    are inconclusive (:func:`.tables.weitz_claims`).
    """
    return config.first_folds(cfg, folds="weitz_folds", trained="weitz_trained_folds")


def cross_validate(cfg: Config) -> list[pipeline.Trained]:
    """The model of every fold of :func:`trained_folds` (:func:`fold_model`), trained only where not cached yet."""
    data = three_class_data(cfg)
    return [fold_model(cfg, fold, data=data) for fold in trained_folds(cfg)]


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Confusion counts, int64 (3, 3): rows true class, columns predicted class (:data:`CLASSES` order)."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_pred, labels=list(range(len(CLASSES))))


def fold_scores(folds: Sequence[pipeline.Trained]) -> pd.DataFrame:
    """One row per fold: accuracy, macro F1, test size and the happy row's confusions.

    Returns
    -------
    DataFrame indexed by ``fold``
        ``accuracy``, ``macro_f1`` (in [0, 1]), ``n_test``, ``happy_as_pain`` and
        ``happy_as_disgust`` (shares of the fold's happy test images), ``best_epoch``
        (0-based epoch selected on the inner validation slice).
    """
    rows = []
    happy, pain, disgust = CLASSES.index("happy"), CLASSES.index("pain"), CLASSES.index("disgust")
    for fold, trained in enumerate(folds):
        scores = cache.read_json(trained.folder / "scores.json")
        pred = trained.predictions()
        counts = confusion_counts(pred["y_true"], pred["y_pred"])
        n_happy = max(int(counts[happy].sum()), 1)
        rows.append({"fold": fold, "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"],
                     "n_test": scores["n_test"], "happy_as_pain": counts[happy, pain] / n_happy,
                     "happy_as_disgust": counts[happy, disgust] / n_happy, "best_epoch": scores["best_epoch"]})
    return pd.DataFrame(rows).set_index("fold")


def best_fold(scores: pd.DataFrame) -> int:
    """The fold with the highest test accuracy (Weitz: "the best performing fold"); ties → lowest."""
    return int(scores["accuracy"].to_numpy().argmax())

@dataclasses.dataclass(frozen=True)
class RuleMaps:
    """LRP maps of the best fold's model under every rule of :data:`RULES`.

    Attributes
    ----------
    fold : int
        The best fold.
    figure_index : int64 (k,)
        Rows (of the data set) of the pain images shown in the figure.
    figure_targets : int64 (k,)
        Their predicted classes, which the figure's maps explain.
    figure_maps : dict rule -> float32 (k, S, S)
    score_index : int64 (m,)
        Rows of the scored test images (all classes).
    score_maps : dict rule -> float32 (m, S, S)
        Maps explaining each image's true class.
    seconds : dict rule -> float
        Analysis time of the scored maps (analyzer construction and a warm-up excluded).
    """

    fold: int
    figure_index: np.ndarray
    figure_targets: np.ndarray
    figure_maps: dict[str, np.ndarray]
    score_index: np.ndarray
    score_maps: dict[str, np.ndarray]
    seconds: dict[str, float]


def _choose_rows(candidates: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(candidates if len(candidates) <= k else rng.choice(candidates, size=k, replace=False))


def rule_maps(cfg: Config, *, folds: Sequence[pipeline.Trained] | None = None) -> RuleMaps:
    """Explain the best fold's test images under the four rules (cached stage ``weitz_lrp``).

    One LRP worker process computes every map (TensorFlow start-up and each analyzer's
    construction are paid once). The figure shows ``weitz_heatmap_images`` pain test images
    drawn with the seed; the scores use at most ``lrp_max_images`` test images per class.
    """
    from forgetting_aus.explain import lrp

    data = three_class_data(cfg)
    folds = list(folds) if folds is not None else cross_validate(cfg)
    fold = best_fold(fold_scores(folds))
    trained = folds[fold]
    params = {"fold_model": trained.key, "data": data.key, "rules": list(RULES),
              **cfg.subset(["weitz_heatmap_images", "lrp_max_images", "seed"])}

    def make(folder: Path) -> dict[str, Any]:
        from forgetting_aus import models

        pred = trained.predictions()
        test_index, y_pred = pred["test_index"], pred["y_pred"]
        rng = np.random.default_rng(cfg.seed)
        labels = data.split.labels[test_index]
        pain_positions = _choose_rows(np.flatnonzero(labels == 0), cfg.weitz_heatmap_images, rng)
        score_positions = np.sort(np.concatenate(
            [_choose_rows(np.flatnonzero(labels == c), cfg.lrp_max_images, rng) for c in range(len(CLASSES))]))
        figure_images = models.preprocess(data.split.images[test_index[pain_positions]])
        score_images = models.preprocess(data.split.images[test_index[score_positions]])
        jobs = [lrp.LRPJob(trained.model_path, score_images, labels[score_positions], rule) for rule in RULES]
        jobs += [lrp.LRPJob(trained.model_path, figure_images, y_pred[pain_positions], rule) for rule in RULES]
        specs, arrays = lrp._pack_jobs(jobs, batch_size=32)
        for spec in specs[:len(RULES)]:
            spec["warmup"] = True  # time analysis only, not the analyzer's graph construction
        outputs, meta = lrp._run_worker(specs, arrays, timeout=None)
        maps = {f"score_{rule}": outputs[f"maps_{i}"] for i, rule in enumerate(RULES)}
        maps |= {f"figure_{rule}": outputs[f"maps_{len(RULES) + i}"] for i, rule in enumerate(RULES)}
        cache.write_npz(folder / "maps.npz", figure_index=test_index[pain_positions],
                        figure_targets=y_pred[pain_positions].astype(np.int64),
                        score_index=test_index[score_positions], **maps)
        seconds = {rule: float(meta["seconds"][i]) for i, rule in enumerate(RULES)}
        cache.write_json(folder / "seconds.json", {"fold": fold, "seconds": seconds})
        return {"fold": fold, "n_scored": int(len(score_positions)), "seconds": seconds}

    folder = pipeline.store(cfg).get_or_make("weitz_lrp", params, make)
    arrays = cache.read_npz(folder / "maps.npz")
    timing = cache.read_json(folder / "seconds.json")
    return RuleMaps(fold=int(timing["fold"]), figure_index=arrays["figure_index"],
                    figure_targets=arrays["figure_targets"],
                    figure_maps={rule: arrays[f"figure_{rule}"] for rule in RULES},
                    score_index=arrays["score_index"], score_maps={rule: arrays[f"score_{rule}"] for rule in RULES},
                    seconds={rule: float(timing["seconds"][rule]) for rule in RULES})
