"""Weitz et al. (2018): pain vs. happiness vs. disgust, explained with four LRP variants.

Weitz, Hassan, Schmid and Garbas fine-tuned VGG-Face on BioVid frames of pain (heat
stimulation, intensities 3 and 4), happiness and disgust, evaluated it with 5-fold
cross-validation (best fold: accuracy 0.67, Table 2; 28 % of happy images called pain,
Figure 1) and compared the heatmaps of LRP-Z, LRP-Epsilon, LRP-PresetAFlat and
LRP-PresetBFlat by eye (Figure 3). This module reproduces the study on the synthetic FACS
world and scores the rules against the ground-truth AU regions, which the paper could not.

Stages (each cached in the artifact store, so a killed run resumes):

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
  as Weitz's Figure 3 does. The region scores explain the *true* class of every test image
  of the best fold (at most ``lrp_max_images`` per class), and ask what share of its
  positive relevance falls in the ground-truth regions of the AUs that define that class
  (:data:`CLASS_AUS`), against the share a uniform map would put there (the regions' area
  fraction).
- **"Average/Total"** of Table 2 is the support-weighted average (scikit-learn's old
  ``avg / total`` row, which the paper's numbers match), so its recall equals accuracy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgetting_aus import cache, claims, datasets, facs, pipeline
from forgetting_aus.config import Config
from forgetting_aus.datasets.common import AU_COLUMNS, FACE_BOX_COLUMNS, LANDMARK_COLUMNS

__all__ = [
    "CLASSES",
    "CLASS_NAMES",
    "CLASS_AUS",
    "RULES",
    "FACE_PARTS",
    "PAPER_TABLE2",
    "PAPER_BEST_FOLD_ACCURACY",
    "PAPER_HAPPY_AS_PAIN",
    "ThreeClassData",
    "select_images",
    "assign_folds",
    "inner_validation",
    "three_class_data",
    "fold_model",
    "cross_validate",
    "fold_scores",
    "best_fold",
    "class_table",
    "table2_beside_paper",
    "best_fold_confusion",
    "RuleMaps",
    "rule_maps",
    "rule_heatmaps",
    "class_region_masks",
    "face_part_masks",
    "cluster_bootstrap_mean",
    "rule_region_scores",
    "summarize_region_scores",
    "face_part_scores",
    "rule_runtimes",
    "shared_class_aus",
    "weitz_claims",
]

#: The three classes, in the row order of Weitz's Table 2 (label = index).
CLASSES: tuple[str, ...] = ("pain", "disgust", "happy")
#: Their names as Table 2 prints them.
CLASS_NAMES: tuple[str, ...] = ("Pain", "Disgust", "Happiness")
#: The AUs that define each class in this world: the PSPI AUs for pain, the prototypes
#: (paper's Figure 6, after Langner et al.) for happy and disgust.
CLASS_AUS: dict[str, tuple[int, ...]] = {
    "pain": tuple(facs.PSPI_AUS),
    "disgust": tuple(facs.EMOTION_PROTOTYPES["disgust"]),
    "happy": tuple(facs.EMOTION_PROTOTYPES["happy"]),
}
#: Weitz's four LRP variants (keys of :data:`forgetting_aus.explain.lrp.LRP_METHODS`).
RULES: tuple[str, ...] = ("LRP-Z", "LRP-Epsilon", "LRP-PresetAFlat", "LRP-PresetBFlat")
#: "The eyes, the nose and the mouth" as unions of named regions of
#: :func:`forgetting_aus.explain.regions.au_region_masks` (the nose: the band along the
#: bridge down to the tip, landmarks 27-30).
FACE_PARTS: dict[str, tuple[str, ...]] = {"eyes": ("eyes",), "nose": ("nose_bridge",), "mouth": ("mouth",)}

#: Weitz et al. 2018, Table 2 (best fold), typed from the paper.
PAPER_TABLE2: pd.DataFrame = pd.DataFrame(
    {"Precision": [0.62, 0.70, 0.67, 0.67], "Recall": [0.69, 0.73, 0.57, 0.66],
     "F1-score": [0.66, 0.71, 0.62, 0.66], "#Images": [4692, 4815, 4815, 14322]},
    index=pd.Index([*CLASS_NAMES, "Average/Total"], name="class"),
)
#: Weitz et al. 2018, §5: best fold's test accuracy.
PAPER_BEST_FOLD_ACCURACY: float = 0.67
#: Weitz et al. 2018, §5: share of happy test images classified as pain (best fold).
PAPER_HAPPY_AS_PAIN: float = 0.28

_SOURCE_COLUMNS = ("path", "subject", *FACE_BOX_COLUMNS, *LANDMARK_COLUMNS, *AU_COLUMNS)
_CODE = ("forgetting_aus.studies.weitz", "forgetting_aus.datasets", "forgetting_aus.geometry")
_TRAIN_CODE = ("forgetting_aus.models", "forgetting_aus.losses", "forgetting_aus.training")
_LRP_CODE = ("forgetting_aus.explain",)


# --- data ----------------------------------------------------------------------------

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
        ``emotion``, ``subject`` from the twin's sidecar).
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
                         "the twin's au_intensities.csv sidecar or another source of subject ids")
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

    def summary(self) -> pd.DataFrame:
        """Images, subjects and emotion-model-seen images per class, and images per fold."""
        frame = pd.DataFrame({"class": np.asarray(CLASS_NAMES)[self.split.labels], "subject": self.split.groups,
                              "seen": self.seen_by_emotion_model, "fold": self.folds})
        table = frame.groupby("class", sort=False).agg(images=("subject", "size"), subjects=("subject", "nunique"),
                                                       seen_by_emotion_model=("seen", "sum"))
        per_fold = frame.pivot_table(index="class", columns="fold", values="subject", aggfunc="size", fill_value=0)
        per_fold.columns = [f"fold {f}" for f in per_fold.columns]
        return table.join(per_fold).loc[list(CLASS_NAMES)]


def _data_folder(cfg: Config) -> Path:
    # Resolve each twin once, so the key names exactly the twin that is read.
    unbc_root, unbc_id = pipeline.dataset_root(cfg, "unbc")
    affectnet_root, affectnet_id = pipeline.dataset_root(cfg, "affectnet")
    params = {"unbc": unbc_id, "affectnet": affectnet_id,
              **cfg.subset(["image_size", "weitz_pspi_min", "weitz_images_per_class", "weitz_folds", "seed",
                            "affectnet_val_fraction"])}

    def make(folder: Path) -> dict[str, Any]:
        affectnet = datasets.affectnet_splits(datasets.read_affectnet(affectnet_root),
                                              val_fraction=cfg.affectnet_val_fraction, seed=cfg.seed)
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

    return pipeline.store(cfg).get_or_make("weitz_data", params, make, code=_CODE)


def three_class_data(cfg: Config) -> ThreeClassData:
    """The balanced pain / disgust / happy data with its folds (cached stage ``weitz_data``)."""
    folder = _data_folder(cfg)
    arrays = cache.read_npz(folder / "data.npz")
    split = pipeline.Split(images=arrays["images"], labels=arrays["labels"], landmarks=arrays["landmarks"],
                           groups=arrays["groups"], aus=arrays["aus"])
    return ThreeClassData(split=split, folds=arrays["folds"], pspi=arrays["pspi"],
                          seen_by_emotion_model=arrays["seen"], key=folder.name)


# --- cross-validation ---------------------------------------------------------------

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
    code = _TRAIN_CODE + _CODE

    def make(folder: Path) -> dict[str, Any]:
        from sklearn.metrics import accuracy_score, f1_score

        from forgetting_aus import losses, models, training

        split, folds = data.split, data.folds
        train_rows = np.flatnonzero(folds != fold)
        test_rows = np.flatnonzero(folds == fold)
        val_mask = inner_validation(split.labels[train_rows], split.groups[train_rows], seed=cfg.seed + fold)
        fit_rows, val_rows = train_rows[~val_mask], train_rows[val_mask]
        model = models.with_new_head(source.load(), len(CLASSES), head_units=cfg.head_units, dropout=cfg.dropout,
                                     seed=cfg.seed + 300 + fold)
        models.freeze_blocks(model, 0)  # fine-tune every layer
        history = training.fit_classifier(
            model, (split.images[fit_rows], split.labels[fit_rows]), (split.images[val_rows], split.labels[val_rows]),
            loss=losses.focal_loss(gamma=0.0), epochs=cfg.weitz_epochs, batch_size=cfg.pain_batch_size,
            learning_rate=cfg.learning_rate, momentum=cfg.momentum, augment="flip", select_by="macro_recall",
            seed=cfg.seed + fold, mixed_precision=cfg.mixed_precision, progress=False,
            checkpoint_dir=cfg.run_dir() / "checkpoints" / f"weitz_fold_{fold}" / cache.artifact_key(params, code))
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

    return pipeline.Trained(pipeline.store(cfg).get_or_make("weitz_fold", params, make, code=code))


def cross_validate(cfg: Config) -> list[pipeline.Trained]:
    """Every fold's model (:func:`fold_model`), trained only where not cached yet."""
    data = three_class_data(cfg)
    return [fold_model(cfg, fold, data=data) for fold in range(cfg.weitz_folds)]


def _confusion_counts(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
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
        counts = _confusion_counts(pred["y_true"], pred["y_pred"])
        n_happy = max(int(counts[happy].sum()), 1)
        rows.append({"fold": fold, "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"],
                     "n_test": scores["n_test"], "happy_as_pain": counts[happy, pain] / n_happy,
                     "happy_as_disgust": counts[happy, disgust] / n_happy, "best_epoch": scores["best_epoch"]})
    return pd.DataFrame(rows).set_index("fold")


def best_fold(scores: pd.DataFrame) -> int:
    """The fold with the highest test accuracy (Weitz: "the best performing fold"); ties → lowest."""
    return int(scores["accuracy"].to_numpy().argmax())


def class_table(y_true: np.ndarray, y_pred: np.ndarray) -> pd.DataFrame:
    """Class-wise precision, recall, F1 and #images in the layout of Weitz's Table 2.

    Parameters
    ----------
    y_true, y_pred : int arrays of shape (n,)
        Indices into :data:`CLASSES`.

    Returns
    -------
    DataFrame indexed by class (Pain, Disgust, Happiness, Average/Total)
        ``Precision``, ``Recall``, ``F1-score`` in [0, 1] and ``#Images`` (support). The
        last row is the support-weighted average (total for #Images).
    """
    from sklearn.metrics import precision_recall_fscore_support

    labels = list(range(len(CLASSES)))
    p, r, f, n = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    wp, wr, wf, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="weighted",
                                                    zero_division=0)
    return pd.DataFrame({"Precision": [*p, wp], "Recall": [*r, wr], "F1-score": [*f, wf],
                         "#Images": [*n.astype(int), int(n.sum())]},
                        index=pd.Index([*CLASS_NAMES, "Average/Total"], name="class"))


def table2_beside_paper(table: pd.DataFrame) -> pd.DataFrame:
    """This run's :func:`class_table` beside :data:`PAPER_TABLE2` (column groups)."""
    return pd.concat({"Weitz et al. 2018": PAPER_TABLE2, "this run": table}, axis=1)


def best_fold_confusion(trained: pipeline.Trained) -> pd.DataFrame:
    """Confusion counts of a fold's test predictions (rows true, columns predicted)."""
    pred = trained.predictions()
    return pd.DataFrame(_confusion_counts(pred["y_true"], pred["y_pred"]),
                        index=pd.Index(CLASS_NAMES, name="true"), columns=pd.Index(CLASS_NAMES, name="predicted"))


# --- LRP: heatmaps, region scores, runtimes ------------------------------------------

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

    folder = pipeline.store(cfg).get_or_make("weitz_lrp", params, make, code=_LRP_CODE + _CODE)
    arrays = cache.read_npz(folder / "maps.npz")
    timing = cache.read_json(folder / "seconds.json")
    return RuleMaps(fold=int(timing["fold"]), figure_index=arrays["figure_index"],
                    figure_targets=arrays["figure_targets"],
                    figure_maps={rule: arrays[f"figure_{rule}"] for rule in RULES},
                    score_index=arrays["score_index"], score_maps={rule: arrays[f"score_{rule}"] for rule in RULES},
                    seconds={rule: float(timing["seconds"][rule]) for rule in RULES})


def rule_heatmaps(cfg: Config, *, maps: RuleMaps | None = None) -> dict[str, Any]:
    """What Weitz's Figure 3 shows: pain images, their labels and the four rules' maps.

    Returns
    -------
    dict
        ``images`` uint8 (k, S, S, 3), ``true`` and ``predicted`` (lists of class names),
        ``maps`` (dict rule -> float32 (k, S, S), explaining the predicted class), ``pspi``
        float32 (k,).
    """
    maps = maps if maps is not None else rule_maps(cfg)
    data = three_class_data(cfg)
    rows = maps.figure_index
    return {"images": data.split.images[rows], "true": [CLASS_NAMES[i] for i in data.split.labels[rows]],
            "predicted": [CLASS_NAMES[i] for i in maps.figure_targets], "maps": maps.figure_maps,
            "pspi": data.pspi[rows]}


def class_region_masks(landmarks: np.ndarray, labels: np.ndarray, *, size: int) -> np.ndarray:
    """Ground-truth mask of every image: the union of the regions of its class's AUs.

    Parameters
    ----------
    landmarks : float array of shape (n, 68, 2)
        ``(x, y)`` in the maps' pixel frame.
    labels : int array of shape (n,)
        Indices into :data:`CLASSES`; the AUs are :data:`CLASS_AUS`.
    size : int, keyword-only
        Side of the square maps in pixels.

    Returns
    -------
    bool array of shape (n, size, size)
    """
    from forgetting_aus.explain import regions

    labels = np.asarray(labels)
    out = np.zeros((len(labels), size, size), dtype=bool)
    for label, name in enumerate(CLASSES):
        rows = np.flatnonzero(labels == label)
        if len(rows):
            for mask in regions.au_masks(np.asarray(landmarks)[rows], size, aus=CLASS_AUS[name]).values():
                out[rows] |= mask
    return out


def face_part_masks(landmarks: np.ndarray, *, size: int) -> np.ndarray:
    """Union of the eyes, nose and mouth regions (:data:`FACE_PARTS`), bool (n, size, size)."""
    from forgetting_aus.explain import regions

    named = regions.au_region_masks(landmarks, size)
    out = np.zeros_like(named["eyes"])
    for names in FACE_PARTS.values():
        for name in names:
            out |= named[name]
    return out


def cluster_bootstrap_mean(values: np.ndarray, groups: np.ndarray, *, n_boot: int, seed: int,
                           level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` and a percentile interval that resamples whole subjects.

    Images of one subject are not independent, so each replicate draws as many subjects as
    there are, with replacement, and averages all their images. NaN values are dropped.

    Returns
    -------
    (mean, low, high) : tuple of float
        NaN when no finite value is left; ``low == high == mean`` with a single subject.
    """
    values, groups = np.asarray(values, dtype=float), np.asarray(groups).astype(str)
    keep = np.isfinite(values)
    values, groups = values[keep], groups[keep]
    if len(values) == 0:
        return (np.nan, np.nan, np.nan)
    names, inverse = np.unique(groups, return_inverse=True)
    sums = np.bincount(inverse, weights=values)
    counts = np.bincount(inverse).astype(float)
    mean = float(values.mean())
    if len(names) < 2:
        return (mean, mean, mean)
    draws = np.random.default_rng(seed).integers(0, len(names), size=(n_boot, len(names)))
    replicate = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(replicate, [alpha, 1 - alpha])
    return (mean, float(low), float(high))


def rule_region_scores(cfg: Config, *, maps: RuleMaps | None = None) -> pd.DataFrame:
    """Per image and rule: share of positive relevance in the class's AU regions.

    Returns
    -------
    DataFrame, one row per (rule, scored image)
        ``rule``, ``image`` (row of the data set), ``class`` (Table 2 name), ``subject``,
        ``share`` (positive relevance inside / all positive relevance, NaN for a map
        without positive relevance), ``uniform_baseline`` (area fraction of the regions)
        and ``excess`` (share - baseline), from
        :func:`forgetting_aus.explain.regions.relevance_share_in_masks`.
    """
    from forgetting_aus.explain import regions

    maps = maps if maps is not None else rule_maps(cfg)
    data = three_class_data(cfg)
    rows = maps.score_index
    masks = class_region_masks(data.split.landmarks[rows], data.split.labels[rows], size=cfg.image_size)
    parts = []
    for rule in RULES:
        shares = regions.relevance_share_in_masks(maps.score_maps[rule], [masks]).reset_index(drop=True)
        shares.insert(0, "rule", rule)
        shares.insert(1, "image", rows)
        shares.insert(2, "class", np.asarray(CLASS_NAMES)[data.split.labels[rows]])
        shares.insert(3, "subject", data.split.groups[rows])
        parts.append(shares)
    return pd.concat(parts, ignore_index=True)


def summarize_region_scores(scores: pd.DataFrame, *, n_boot: int, seed: int) -> pd.DataFrame:
    """Mean share, baseline and excess per rule and class (and over all classes).

    Parameters
    ----------
    scores : DataFrame
        From :func:`rule_region_scores` (or :func:`face_part_scores`).
    n_boot, seed : int, keyword-only
        Subject-cluster bootstrap of the mean excess (:func:`cluster_bootstrap_mean`).

    Returns
    -------
    DataFrame indexed by (``rule``, ``class``; class "all" pools the classes)
        ``share``, ``uniform_baseline``, ``excess`` (means over images), ``excess_low``,
        ``excess_high`` (95 % interval), ``above_baseline`` (fraction of images whose share
        exceeds their baseline) and ``n`` (images with a finite share).
    """
    rows = []
    for rule in scores["rule"].unique():
        of_rule = scores[scores["rule"] == rule]
        for name in [*[c for c in CLASS_NAMES if c in set(of_rule["class"])], "all"]:
            part = of_rule if name == "all" else of_rule[of_rule["class"] == name]
            finite = part[np.isfinite(part["share"].to_numpy(dtype=float))]
            mean, low, high = cluster_bootstrap_mean(part["excess"].to_numpy(), part["subject"].to_numpy(),
                                                     n_boot=n_boot, seed=seed)
            rows.append({"rule": rule, "class": name, "share": finite["share"].mean(),
                         "uniform_baseline": finite["uniform_baseline"].mean(), "excess": mean,
                         "excess_low": low, "excess_high": high,
                         "above_baseline": float((finite["share"] > finite["uniform_baseline"]).mean())
                         if len(finite) else np.nan, "n": int(len(finite))})
    return pd.DataFrame(rows).set_index(["rule", "class"])


def face_part_scores(cfg: Config, *, rule: str = "LRP-PresetAFlat", maps: RuleMaps | None = None) -> pd.DataFrame:
    """Per scored image: share of ``rule``'s positive relevance in eyes + nose + mouth.

    Same columns as :func:`rule_region_scores`; the regions are :data:`FACE_PARTS`.
    """
    from forgetting_aus.explain import regions

    maps = maps if maps is not None else rule_maps(cfg)
    data = three_class_data(cfg)
    rows = maps.score_index
    masks = face_part_masks(data.split.landmarks[rows], size=cfg.image_size)
    shares = regions.relevance_share_in_masks(maps.score_maps[rule], [masks]).reset_index(drop=True)
    shares.insert(0, "rule", rule)
    shares.insert(1, "image", rows)
    shares.insert(2, "class", np.asarray(CLASS_NAMES)[data.split.labels[rows]])
    shares.insert(3, "subject", data.split.groups[rows])
    return shares


def rule_runtimes(maps: RuleMaps) -> pd.DataFrame:
    """Maps per second of every rule, measured in this run (one worker, analysis only)."""
    n = len(maps.score_index)
    return pd.DataFrame({"maps": [n] * len(RULES), "seconds": [maps.seconds[r] for r in RULES],
                         "maps_per_second": [n / max(maps.seconds[r], 1e-12) for r in RULES]},
                        index=pd.Index(list(RULES), name="rule"))


def shared_class_aus() -> dict[tuple[str, str], str]:
    """The AUs two classes share (from :data:`CLASS_AUS`), e.g. ``("pain", "happy") -> "AU6"``.

    Returns
    -------
    dict (class a, class b) -> str
        Shared AUs joined by " and " ("none" when they share none), for every ordered pair
        of distinct classes.
    """
    out = {}
    for a in CLASSES:
        for b in CLASSES:
            if a != b:
                shared = sorted(set(CLASS_AUS[a]) & set(CLASS_AUS[b]))
                out[(a, b)] = " and ".join(f"AU{code}" for code in shared) or "none"
    return out


# --- claims ---------------------------------------------------------------------------

def _t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    from scipy import stats

    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2 or np.allclose(values, values[0]):
        return (mean, mean, mean)
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return (mean, mean - half, mean + half)


def weitz_claims(scores: pd.DataFrame, best: int, face_parts: pd.DataFrame, *, n_boot: int,
                 seed: int) -> list[claims.Claim]:
    """Weitz et al.'s claims as predicates on this run's artifacts.

    Parameters
    ----------
    scores : DataFrame
        :func:`fold_scores`.
    best : int
        :func:`best_fold`.
    face_parts : DataFrame
        :func:`face_part_scores` (LRP-PresetAFlat).
    n_boot, seed : int, keyword-only
        Subject-cluster bootstrap of the face-part excess.

    Returns
    -------
    list of Claim
        ``W-happy-as-pain`` (happy→pain exceeds happy→disgust; t-interval of the per-fold
        difference), ``W-eyes-nose-mouth`` (PresetAFlat's positive relevance in eyes + nose
        + mouth exceeds their area fraction for happy and pain; bootstrap intervals of the
        excess) and ``W-best-fold-accuracy`` (holds when 0.67 lies within this run's range
        of fold accuracies).
    """
    diff = (scores["happy_as_pain"] - scores["happy_as_disgust"]).to_numpy()
    mean, low, high = _t_interval(diff)
    happy_claim = claims.Claim(
        claim_id="W-happy-as-pain", paper="Weitz 2018", section="§5, Figure 1; §6",
        statement="Happy faces are often misclassified as pain (more than as disgust)",
        paper_value=f"{PAPER_HAPPY_AS_PAIN:.0%} of happy images called pain (best fold)",
        this_run=(f"happy→pain {scores['happy_as_pain'].mean():.0%} vs happy→disgust "
                  f"{scores['happy_as_disgust'].mean():.0%} (mean of {len(scores)} folds); best fold "
                  f"{scores.loc[best, 'happy_as_pain']:.0%} vs {scores.loc[best, 'happy_as_disgust']:.0%}"),
        verdict=claims.verdict_from_interval(low, high),
        evidence=(f"per-fold difference happy→pain − happy→disgust: mean {mean:+.3f}, 95% t-interval "
                  f"[{low:+.3f}, {high:+.3f}] over {len(scores)} folds"))
    intervals = {}
    for name in ("Pain", "Happiness"):
        part = face_parts[face_parts["class"] == name]
        intervals[name] = cluster_bootstrap_mean(part["excess"].to_numpy(), part["subject"].to_numpy(),
                                                 n_boot=n_boot, seed=seed)
    lows = [v[1] for v in intervals.values()]
    highs = [v[2] for v in intervals.values()]
    verdict = ("holds" if min(lows) > 0 else "fails" if min(highs) < 0 else "inconclusive")
    if any(np.isnan(v[0]) for v in intervals.values()):
        verdict = "inconclusive"
    parts_claim = claims.Claim(
        claim_id="W-eyes-nose-mouth", paper="Weitz 2018", section="§5, Figure 3",
        statement="With LRP-PresetAFlat, mostly the eyes, the nose and the mouth contribute to both happiness and pain",
        paper_value="seen by eye on two pain images",
        this_run="; ".join(f"{name}: excess share {m:+.3f} [{lo:+.3f}, {hi:+.3f}]"
                           for name, (m, lo, hi) in intervals.items()),
        verdict=verdict,
        evidence=("share of positive PresetAFlat relevance in eyes + nose + mouth minus their area fraction, "
                  "best fold's test images explained for their true class; 95% subject-cluster bootstrap; "
                  "holds when both classes' intervals lie above 0"))
    accuracies = scores["accuracy"].to_numpy()
    inside = accuracies.min() <= PAPER_BEST_FOLD_ACCURACY <= accuracies.max()
    accuracy_claim = claims.Claim(
        claim_id="W-best-fold-accuracy", paper="Weitz 2018", section="§5, Table 2",
        statement="The best fold reaches an accuracy of 0.67 on pain vs happiness vs disgust",
        paper_value=f"{PAPER_BEST_FOLD_ACCURACY:.2f}",
        this_run=(f"best fold {scores.loc[best, 'accuracy']:.2f}; folds {accuracies.min():.2f}–"
                  f"{accuracies.max():.2f}"),
        verdict="holds" if inside else "fails",
        evidence=("holds when 0.67 lies within this run's range of fold accuracies; the synthetic world's "
                  "difficulty is a design choice, so a mismatch says nothing about BioVid"))
    return [happy_claim, parts_claim, accuracy_claim]
