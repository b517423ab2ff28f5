"""The action-unit concept probe (paper §4.3, §5): labels, features, one probe, repeated CV, tests.

A concept (an action unit) is "embedded" in a model if a linear classifier on the model's
``block5_pool`` activations detects it (Kim et al. 2018). To compare two models, the paper
trains a linear SVM on each model's features of the CK+ peak frames with 2-fold
cross-validation, repeats this 500 times, and runs a paired t-test over the 500
per-repetition mean F1 scores. This module is that probe, in pipeline order:

1. **Labels** (:func:`au_labels`): an AU is present where its intensity is > 0 (CK+ codes
   the AUs present at the peak); images whose AU is unknown (NaN) are left out of that
   AU's probe, and AUs with fewer than :data:`MIN_IMAGES_PER_CLASS` present or absent
   images are not probed.
2. **Image variants and features** (:func:`variant_images`, :func:`block5_features`,
   :func:`cached_features`): ``block5_pool`` of a model on ``models.preprocess`` of the
   images, cached per (model artifact key, images, variant). The variant
   ``"mouth_masked"`` (used for :data:`MASKED_AUS`) paints the face below the mouth cut in
   the face's mean colour (``explain.regions.mouth_crop(mode="mask")``): the paper crops
   "the bottom of the images such that they do not contain the mouth" for AU5. Masking,
   not crop-and-stretch, because stretching the upper face back to the input height makes
   every eye look taller — exactly the cue of AU5 (upper lid raise) — and moves the eyes
   away from where the frozen filters saw them.
3. **The probe** (:func:`make_probe` defines it; :func:`fold_predict` fits and predicts
   one fold, through :func:`standardised_fold` and :func:`svm_predict`; :func:`probe_predict`
   is the same on two arrays; :func:`f1_positive` scores it). This is the only fitting and
   scoring path.
4. **Fold scores** (:func:`fold_scores`): every model is probed once per (AU, fold scheme,
   repetition, fold), on the folds :func:`cv_splits` gives for ``random_state = seed +
   repetition``, so all models share their folds and any two can be paired afterwards
   (:func:`paired_frame`). Probing each model once instead of once per pair saves the
   reference's refits in a sweep (6 instead of 10 fits per AU, repetition and fold).
5. **Tests** (:func:`compare_probes`, :func:`comparison_table`): the paper's paired t-test
   next to the corrected repeated-CV t-test, Dietterich's 5x2cv test and a corrected
   confidence interval (see :data:`forgetting_aus.stats.NAIVE_TEST_CAVEAT`); a table of
   many comparisons is Holm-corrected over its AUs x models family, per fold scheme.

Design choices
--------------
- **Classifier**: a linear SVM, ``SVC(kernel="linear", C=1.0, class_weight="balanced")``,
  after standardisation with the training fold's mean and SD, so that no statistic of the
  test fold leaks into the probe. libsvm solves the linear SVM exactly and
  deterministically (no ``random_state``, no convergence warnings, unpenalised
  intercept); with ``d >> n`` (VGG16 block5 has 7x7x512 = 25088 features for a few hundred
  CK+ images) its cost is about that of ``LinearSVC``. ``C = 1`` is fixed in advance
  (sklearn's default), not tuned, so that no selection happens on the test folds.
- **Class weights**: ``"balanced"`` (inversely proportional to the class frequencies of
  the training fold). Many action units are rare among CK+ peak frames (AU14 among them)
  and the score is the F1 of the present class; unweighted, the SVM can trade the rare
  class away. The paper does not say.
- **Speed** (the "gram" engine, :data:`ENGINES`): each fold is fitted on its standardised
  float64 kernel by sklearn's libsvm, as :mod:`forgetting_aus.probe_engine` describes;
  the tests check its predictions against the :func:`make_probe` Pipeline's (engine
  ``"pipeline"``) at 256 and 25 088 features. No kernel is shared between AUs: the folds
  are stratified by each AU's labels, so two AUs share a training fold only if they share
  their labels.
- **Randomness**: the SVM is convex, so the only randomness is the fold assignment; the
  paper's "random seeds for weight initialisation" have no counterpart here. Repetition
  ``r`` uses ``random_state = seed + r`` for its split, and every model gets the SAME folds
  in each repetition (the paired design).
- **Folds** (:data:`FOLD_SCHEMES`): ``"stratified"`` is the paper's protocol
  (``StratifiedKFold``, shuffled); ``"grouped"`` is ``StratifiedGroupKFold`` by subject,
  because images of one subject in both folds let the probe recognise identity instead
  of the action unit.

Sign convention: differences are ``f1_a - f1_b``. The chapters pass the compared model as
a and the reference (FreezeB5) as b, so a negative difference and a negative t mean the
compared model lost the concept, matching the paper's reported t-statistics.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from forgetting_aus import cache, facs, pipeline
from forgetting_aus.pipeline import REFERENCE_K
from forgetting_aus.probe_engine import (
    DEFAULT_C,
    keep_freed_memory,
    one_blas_thread,
    standardised_fold,
    svm_predict,
)
from forgetting_aus.stats import (
    NAIVE_TEST_CAVEAT,
    TestResult,
    dietterich_5x2cv_t_test,
    holm,
    mean_difference_ci,
    paired_t_test_over_repeats,
)

__all__ = [
    "au_labels",
    "block5_features",
    "cached_features",
    "chance_f1",
    "compare_probes",
    "comparison_table",
    "cv_splits",
    "f1_positive",
    "features_params",
    "fold_predict",
    "fold_scores",
    "make_probe",
    "paired_frame",
    "probe_predict",
    "probe_speed",
    "variant_for",
    "variant_images",
]

#: The layer whose activations are probed.
PROBE_LAYER = "block5_pool"
#: The model every other is compared with (b in the differences a - b).
REFERENCE = pipeline.model_name(REFERENCE_K)

#: Class weights of the linear SVM (see the module docstring).
DEFAULT_CLASS_WEIGHT = "balanced"
#: How a fold is fitted: "gram" (precomputed kernels, the chapters' engine) or "pipeline"
#: (:func:`make_probe` as is, the reference the tests and the bench compare with).
ENGINES: tuple[str, ...] = ("gram", "pipeline")

#: An AU is probed only with at least this many present and absent images.
MIN_IMAGES_PER_CLASS = 4
#: Image variants: the images as they are, and with the face below the mouth cut masked.
VARIANTS: tuple[str, ...] = ("full", "mouth_masked")
#: AUs probed on mouth-masked images everywhere (the sweep too), as the paper probes AU5.
MASKED_AUS: tuple[int, ...] = (5,)
#: How :func:`forgetting_aus.explain.regions.mouth_crop` removes the mouth.
CROP_MODE = "mask"

#: "stratified" = the paper's shuffled StratifiedKFold; "grouped" = by subject.
FOLD_SCHEMES: tuple[str, ...] = ("stratified", "grouped")
#: Folds per repetition (the paper: 2-fold CV).
N_SPLITS = 2
#: Repetitions per joblib task of :func:`fold_scores`.
REPEATS_PER_TASK = 25

#: The prefixes of the tests in :func:`compare_probes`' output, in display order.
TEST_KEYS: tuple[str, ...] = ("paired_t", "corrected_t", "dietterich_5x2cv")


# --------------------------------------------------------------------------- 1. labels
def au_labels(aus: np.ndarray, *, min_per_class: int = MIN_IMAGES_PER_CLASS
              ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Presence labels of every probe-able action unit.

    Parameters
    ----------
    aus : ndarray of shape (n, 18)
        AU presence in ``facs.AU_CODES`` order, 1 / 0 / NaN = not coded (``Split.present``,
        which counts CK+'s AUs listed with intensity 0 as present); intensities work too
        (present where > 0), but would miss those.
    min_per_class : int, keyword-only
        Fewest present and fewest absent images an AU needs to be probed.

    Returns
    -------
    dict of AU code -> (rows, y)
        ``rows``: int indices (n_au,) of the images where the AU is known; ``y``: int
        (n_au,) 1 where it is present (> 0). AUs below ``min_per_class`` are left out.
    """
    a = np.asarray(aus, dtype=float)
    if a.ndim != 2 or a.shape[1] != len(facs.AU_CODES):
        raise ValueError(f"expected AU intensities of shape (n, {len(facs.AU_CODES)}), got {a.shape}")
    out = {}
    for j, code in enumerate(facs.AU_CODES):
        rows = np.flatnonzero(~np.isnan(a[:, j]))
        y = (a[rows, j] > 0).astype(int)
        if min(int(y.sum()), int(len(y) - y.sum())) >= min_per_class:
            out[code] = (rows, y)
    return out


# --------------------------------------------------------------------------- 2. image variants and features
def variant_for(au: int) -> str:
    """Image variant the AU is probed on: ``"mouth_masked"`` for :data:`MASKED_AUS`, else ``"full"``."""
    return "mouth_masked" if au in MASKED_AUS else "full"


def variant_images(images: np.ndarray, landmarks: np.ndarray, variant: str) -> np.ndarray:
    """Network input of one image variant: ``models.preprocess`` of the (masked) images.

    Parameters
    ----------
    images : ndarray of shape (n, S, S, 3), uint8
    landmarks : ndarray of shape (n, 68, 2)
        In the images' pixel frame.
    variant : {"full", "mouth_masked"}

    Returns
    -------
    ndarray of shape (n, S, S, 3), float32
    """
    from forgetting_aus import models
    from forgetting_aus.explain import regions

    if variant == "full":
        return models.preprocess(images)
    if variant == "mouth_masked":
        return models.preprocess(regions.mouth_crop(images, landmarks, mode=CROP_MODE))
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


def block5_features(model_or_path: Any, images_float: np.ndarray, *,
                    layer: str = PROBE_LAYER, batch_size: int = 64) -> np.ndarray:
    """Flattened activations of one layer (by default the last conv block's pooling).

    Parameters
    ----------
    model_or_path : keras.Model or str or Path
        A model, or the path of a ``.keras`` file (loaded with ``compile=False``).
    images_float : ndarray of shape (n, height, width, channels)
        Images already preprocessed as the model expects (float).
    layer : str, keyword-only
        Layer name; searched in the model, then in its nested sub-models (e.g. a VGG16
        base wrapped by a head).
    batch_size : int, keyword-only

    Returns
    -------
    ndarray of shape (n, d), float32
        ``d`` = product of the layer's output shape without the batch axis.
    """
    import tensorflow as tf  # lazy: the rest of this module must not need TensorFlow

    keras = tf.keras
    if isinstance(model_or_path, str | Path):
        path = Path(model_or_path)
        if not path.exists():
            raise FileNotFoundError(f"no saved model at {path}; train and save the model first (a .keras file)")
        # Lazy, as TensorFlow: the project's loader, the same model as Keras' and faster.
        from forgetting_aus import models

        model = models.load_model(path)
    else:
        model = model_or_path
    images = np.asarray(images_float, dtype=np.float32)
    expected = tuple(model.input_shape[1:])
    if images.ndim != len(expected) + 1 or any(
            e is not None and e != s for e, s in zip(expected, images.shape[1:], strict=True)):
        raise ValueError(f"block5_features: the model expects images of shape (n, "
                         f"{', '.join(map(str, expected))}), got {images.shape}; resize "
                         "and preprocess the images as for training")
    extractor = keras.Model(model.inputs, _find_layer_output(model, layer))
    out = extractor.predict(images, batch_size=batch_size, verbose=0)
    return np.asarray(out, dtype=np.float32).reshape(len(images), -1)


def _find_layer_output(model: Any, layer: str) -> Any:
    """Symbolic output of ``layer`` on ``model``'s graph, looking inside nested sub-models.

    A nested sub-model (e.g. a VGG16 base inside a model with a new head) is truncated at
    ``layer`` and re-applied to the tensor that feeds it in ``model``'s graph, so that any
    layer before it (preprocessing, rescaling) is kept.
    """
    import tensorflow as tf

    names = [lyr.name for lyr in model.layers]
    if layer in names:
        return model.get_layer(layer).output
    for sub in model.layers:
        if not hasattr(sub, "layers") or layer not in [lyr.name for lyr in sub.layers]:
            continue
        truncated = tf.keras.Model(sub.inputs, sub.get_layer(layer).output)
        # A sub-model shared by several models has one inbound node per call; the one on
        # `model`'s graph is the one from which `model`'s inputs are reachable.
        for node_index in reversed(range(len(sub._inbound_nodes))):
            output = truncated(sub.get_input_at(node_index))
            try:
                tf.keras.Model(model.inputs, output)
            except ValueError:  # graph disconnected: a call in another model
                continue
            return output
    raise ValueError(f"layer {layer!r} not found in model {model.name!r} or its sub-models "
                     f"(layers: {names}); pass layer= one of them")


def features_params(*, model_key: str, images: np.ndarray, landmarks: np.ndarray, variant: str,
                    layer: str = PROBE_LAYER) -> dict[str, Any]:
    """What a feature artifact depends on (its cache parameters).

    The model enters through its artifact key (which hashes the model's knobs, data and
    code), the images and landmarks through their content hash.
    """
    return {"model": model_key, "images": np.asarray(images), "landmarks": np.asarray(landmarks),
            "variant": variant, "crop_mode": CROP_MODE if variant == "mouth_masked" else None,
            "layer": layer}


def cached_features(store: cache.Store, *, model_path: str | Path, model_key: str, images: np.ndarray,
                    landmarks: np.ndarray, variant: str = "full", layer: str = PROBE_LAYER) -> tuple[np.ndarray, str]:
    """Features of one model on one image variant, through the artifact store (stage ``probe_features``).

    Parameters
    ----------
    store : cache.Store
    model_path : str or Path, keyword-only
        The ``.keras`` model.
    model_key : str, keyword-only
        The model's artifact key (a changed model must bring a changed key).
    images : ndarray of shape (n, S, S, 3), uint8, keyword-only
    landmarks : ndarray of shape (n, 68, 2), keyword-only
    variant : {"full", "mouth_masked"}, keyword-only
    layer : str, keyword-only

    Returns
    -------
    features : ndarray of shape (n, d), float32
    key : str
        The feature artifact's key (enters the probe results' keys).
    """
    params = features_params(model_key=model_key, images=images, landmarks=landmarks, variant=variant, layer=layer)

    def make(folder: Path) -> dict[str, Any]:
        return _write_features(folder, block5_features(model_path, variant_images(images, landmarks, variant),
                                                       layer=layer))

    folder = store.get_or_make("probe_features", params, make)
    return cache.read_npz(folder / "features.npz")["features"], folder.name


def cached_family_features(store: cache.Store, family: Mapping[Any, tuple[str | Path, str]], *, reference: Any,
                           images: np.ndarray, landmarks: np.ndarray,
                           variants: Sequence[str] = VARIANTS) -> dict[tuple[Any, str], tuple[np.ndarray, str]]:
    """:func:`cached_features` of models sharing their first conv blocks, the missing ones made together.

    Each model's artifact is the one :func:`cached_features` makes (same key, same
    values, tested); the missing ones are computed in one pass per variant in which the
    blocks a model shares with ``reference`` run once (:mod:`forgetting_aus.shared_blocks`),
    and each model is loaded once for all variants.

    Parameters
    ----------
    store : cache.Store
    family : mapping of name -> (model path, model key)
    reference : name in ``family``, keyword-only
        The model the others may share leading blocks with (chapter 06: FreezeB5).
    images, landmarks, variants : keyword-only
        As :func:`cached_features`, for every variant of ``variants``.

    Returns
    -------
    dict of (name, variant) -> (features (n, d) float32, artifact key)
    """
    params = {(name, variant): features_params(model_key=key, images=images, landmarks=landmarks, variant=variant)
              for name, (_, key) in family.items() for variant in variants}
    missing = [pair for pair, p in params.items() if not store.has("probe_features", store.key("probe_features", p))]
    if missing:
        from forgetting_aus import models, shared_blocks

        names = sorted({name for name, _ in missing} | {reference}, key=list(family).index)
        networks = {name: models.load_model(family[name][0]) for name in names}
        for variant in [v for v in variants if any(pair[1] == v for pair in missing)]:
            computed = shared_blocks.shared_block_features(networks, variant_images(images, landmarks, variant),
                                                           reference=reference)
            for name in networks:
                if (name, variant) in missing:
                    x = computed[name].reshape(len(images), -1)
                    store.get_or_make("probe_features", params[(name, variant)],
                                      lambda folder, x=x: _write_features(folder, x))
    return {(name, variant): cached_features(store, model_path=family[name][0], model_key=family[name][1],
                                             images=images, landmarks=landmarks, variant=variant)
            for name, variant in params}


def _write_features(folder: Path, x: np.ndarray) -> dict[str, Any]:
    cache.write_npz(folder / "features.npz", features=x)
    return {"shape": list(x.shape)}


# --------------------------------------------------------------------------- 3. the probe: one fit, one score
def make_probe(*, C: float = DEFAULT_C, class_weight: str | dict | None = DEFAULT_CLASS_WEIGHT) -> Pipeline:
    """The concept probe as an sklearn Pipeline: standardisation, then a linear SVM.

    The definition of the probe; :func:`probe_predict` fits exactly this model. Fitting
    the Pipeline fits the scaler on the training fold only, so no statistic of the test
    fold leaks into the probe.
    """
    return Pipeline([("scale", StandardScaler()),
                     ("svm", SVC(kernel="linear", C=C, class_weight=class_weight))])


def fold_predict(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, *, C: float = DEFAULT_C,
                 engine: str = "gram") -> np.ndarray:
    """Fit the probe on the rows ``train`` of ``x`` and predict the rows ``test``.

    Parameters
    ----------
    x : ndarray of shape (n, d)
    y : ndarray of shape (n,)
        0/1 labels.
    train, test : ndarray of int
        Row indices of the two folds.
    C : float, keyword-only
    engine : {"gram", "pipeline"}, keyword-only
        ``"gram"``: :func:`standardised_fold` then :func:`svm_predict` (what the chapters use);
        ``"pipeline"``: :func:`make_probe` fitted on the float64 features, the reference
        the tests and the bench compare it with (same predictions, many times slower).

    Returns
    -------
    ndarray of shape (len(test),), int
    """
    x = np.asarray(x)
    return _predict(x, np.asarray(y)[train], train, x[test], C=C, engine=engine)


def probe_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *, C: float = DEFAULT_C,
                  engine: str = "gram") -> np.ndarray:
    """Fit the probe (:func:`make_probe`) on one training fold and predict the test fold.

    :func:`fold_predict` with the folds given as arrays.

    Parameters
    ----------
    x_train : ndarray of shape (n_train, d)
    y_train : ndarray of shape (n_train,)
        0/1 labels.
    x_test : ndarray of shape (n_test, d)
    C : float, keyword-only
    engine : {"gram", "pipeline"}, keyword-only

    Returns
    -------
    ndarray of shape (n_test,), int
        Predicted labels.
    """
    return _predict(np.asarray(x_train), np.asarray(y_train), None, np.asarray(x_test), C=C, engine=engine)


def _predict(x: np.ndarray, y_train: np.ndarray, train: np.ndarray | None, x_test: np.ndarray, *, C: float,
             engine: str) -> np.ndarray:
    """The probe fitted on the rows ``train`` of ``x`` (every row if None; labels ``y_train``), its predictions on
    ``x_test``."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    keep_freed_memory()
    if y_train.min() == y_train.max():
        # A grouped fold can hold every present image in its test half: the probe can only
        # answer the one class it saw, which is what it is scored on.
        return np.full(len(x_test), y_train[0])
    if engine == "gram":
        # the training rows are gathered block by block inside standardised_fold, never whole
        return svm_predict(standardised_fold(x, train), y_train, x_test, C=C)
    x_train = x if train is None else x[train]
    return make_probe(C=C).fit(x_train.astype(np.float64), y_train).predict(x_test.astype(np.float64))


def f1_positive(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """F1 of the present class (1); 0 when there is no 1 in truth or prediction.

    Equals ``sklearn.metrics.f1_score(y_true, y_pred, pos_label=1, zero_division=0)``.
    """
    y_true = np.asarray(y_true) == 1
    y_pred = np.asarray(y_pred) == 1
    tp = int(np.sum(y_true & y_pred))
    denominator = int(y_true.sum() + y_pred.sum())
    return 2 * tp / denominator if denominator else 0.0


# --------------------------------------------------------------------------- 4. folds and fold scores
def cv_splits(y: np.ndarray, *, groups: np.ndarray | None = None, folds: str = "stratified",
              n_splits: int = N_SPLITS, random_state: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, test) index pairs of one repetition.

    Parameters
    ----------
    y : array-like of shape (n,)
        Binary labels (the folds are stratified by them).
    groups : array-like of shape (n,), optional, keyword-only
        Subject ids, required for ``folds="grouped"``.
    folds : {"stratified", "grouped"}, keyword-only
        Shuffled ``StratifiedKFold`` or ``StratifiedGroupKFold``.
    n_splits : int, keyword-only
    random_state : int, keyword-only
        ``seed + repetition`` in :func:`fold_scores`.
    """
    y = np.asarray(y)
    if folds == "stratified":
        cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
        return list(cv.split(np.zeros(len(y)), y))
    if folds == "grouped":
        if groups is None:
            raise ValueError("folds='grouped' needs groups= (the subject id of every image)")
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
        return list(cv.split(np.zeros(len(y)), y, np.asarray(groups)))
    raise ValueError(f"folds must be 'stratified' (the paper) or 'grouped' (by subject), got {folds!r}")


def _repeat_scores(xs: Mapping[int, np.ndarray], y: np.ndarray, groups: np.ndarray | None, *, folds: str,
                   repeats: Iterable[int], C: float, seed: int, engine: str = "gram") -> list[dict[str, Any]]:
    """Probe F1 of several models' features on the folds of some repetitions.

    Each repetition's folds are drawn once, by :func:`cv_splits` with ``random_state =
    seed + repetition``, and every model is probed on them: the pairing of the comparisons.

    Parameters
    ----------
    xs : mapping k -> ndarray of shape (n, d)
        Features of FreezeB<k> of the same n images.
    y : ndarray of shape (n,), int
    groups : ndarray of shape (n,) or None
    repeats : iterable of int, keyword-only
        Repetition indices.
    engine : {"gram", "pipeline"}, keyword-only
        Of :func:`fold_predict`.

    Returns
    -------
    list of dict
        ``k``, ``repeat``, ``fold``, ``f1``, ``n_train``, ``n_test``, ``n_pos_test``.
    """
    rows = []
    for rep in repeats:
        splits = cv_splits(y, groups=groups, folds=folds, n_splits=N_SPLITS, random_state=seed + rep)
        for fold, (train, test) in enumerate(splits):
            for k, x in xs.items():
                prediction = fold_predict(x, y, train, test, C=C, engine=engine)
                rows.append({"k": k, "repeat": rep, "fold": fold, "f1": f1_positive(y[test], prediction),
                             "n_train": len(train), "n_test": len(test), "n_pos_test": int(y[test].sum())})
    return rows


def _task_scores(xs: Mapping[int, np.ndarray], y: np.ndarray, groups: np.ndarray, *, meta: dict[str, Any],
                 folds: str, repeats: Iterable[int], C: float, seed: int, engine: str) -> list[dict[str, Any]]:
    """One joblib task: :func:`_repeat_scores` tagged with ``meta`` and the model names."""
    with one_blas_thread():
        rows = _repeat_scores(xs, y, groups, folds=folds, repeats=repeats, C=C, seed=seed, engine=engine)
    return [{**meta, "model": pipeline.model_name(row["k"]), **row} for row in rows]


def fold_scores(features: Mapping[tuple[int, str], np.ndarray], labels: Mapping[int, tuple[np.ndarray, np.ndarray]],
                *, models: Iterable[int], groups: np.ndarray, folds: Sequence[str], n_repeats: int,
                C: float = DEFAULT_C, seed: int, variants: Mapping[int, str] | None = None,
                n_jobs: int = 1, engine: str = "gram", progress: str | None = None) -> pd.DataFrame:
    """Probe F1 of every model x AU x fold scheme x repetition x fold.

    Parameters
    ----------
    features : mapping (k, variant) -> ndarray of shape (n, d)
        Features of FreezeB<k> on all n images of one variant.
    labels : mapping AU code -> (rows, y)
        As :func:`au_labels`.
    models : iterable of int, keyword-only
        Frozen-block counts k to probe.
    groups : ndarray of shape (n,), keyword-only
        Subject id of every image (for the grouped folds).
    folds : sequence of {"stratified", "grouped"}, keyword-only
    n_repeats : int, keyword-only
        Repetitions of the 2-fold CV (the paper: 500).
    C : float, keyword-only
        Of the linear SVM, fixed in advance.
    seed : int, keyword-only
        Repetition r splits with ``random_state = seed + r``.
    variants : mapping AU code -> variant, optional, keyword-only
        Image variant of each AU; by default :func:`variant_for`.
    n_jobs : int, keyword-only
        joblib workers over (AU, fold scheme, block of repetitions); the result does not
        depend on it.
    engine : {"gram", "pipeline"}, keyword-only
        How each fold is fitted (:func:`fold_predict`); ``"pipeline"`` is the slow
        reference.
    progress : str, keyword-only, optional
        Show a progress bar (probe fits done, rate, time left) with this description.

    Returns
    -------
    DataFrame, one row per (au, model, folds, repeat, fold)
        ``au`` (int code), ``variant``, ``folds``, ``k``, ``model``, ``repeat``, ``fold``,
        ``f1`` (present class, in [0, 1]), ``n_train``, ``n_test``, ``n_pos_test``.
    """
    models = list(models)
    groups = np.asarray(groups)
    unknown = [f for f in folds if f not in FOLD_SCHEMES]
    if unknown:
        raise ValueError(f"fold_scores: folds must be among {FOLD_SCHEMES}, got {unknown}")
    if n_repeats < 1:
        raise ValueError(f"fold_scores: n_repeats must be >= 1, got {n_repeats}")
    if engine not in ENGINES:
        raise ValueError(f"fold_scores: engine must be one of {ENGINES}, got {engine!r}")
    variant = {au: (variants or {}).get(au, variant_for(au)) for au in labels}
    for au in labels:
        for k in models:
            if (k, variant[au]) not in features:
                raise ValueError(f"fold_scores: no features for FreezeB{k} on the {variant[au]!r} images "
                                 f"(needed by AU{au}); have {sorted(features)}")
    # Tasks of at most REPEATS_PER_TASK repetitions keep both workers busy on the long
    # paper tests as on the wide sweep; the result does not depend on the chunking.
    chunks = [range(start, min(start + REPEATS_PER_TASK, n_repeats)) for start in range(0, n_repeats, REPEATS_PER_TASK)]
    tasks = [(au, scheme, chunk) for au in labels for scheme in folds for chunk in chunks]
    # Results come back in task order as they finish, so the bar moves while the rest run.
    results = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_task_scores)({k: np.asarray(features[(k, variant[au])])[labels[au][0]] for k in models},
                              labels[au][1], groups[labels[au][0]], folds=scheme, repeats=chunk, C=C, seed=seed,
                              engine=engine, meta={"au": int(au), "variant": variant[au], "folds": scheme})
        for au, scheme, chunk in tasks)
    from tqdm.auto import tqdm

    per_task = []
    with tqdm(total=len(labels) * len(folds) * n_repeats * N_SPLITS * len(models), desc=progress, unit="fit",
              disable=progress is None) as bar:
        for rows in results:
            per_task.append(rows)
            bar.update(len(rows))
    columns = ["au", "variant", "folds", "k", "model", "repeat", "fold", "f1", "n_train", "n_test", "n_pos_test"]
    frame = pd.DataFrame([row for rows in per_task for row in rows], columns=columns)
    return frame.sort_values(["au", "folds", "k", "repeat", "fold"], kind="stable", ignore_index=True)


def paired_frame(scores: pd.DataFrame, *, au: int, model_a: str, model_b: str, folds: str) -> pd.DataFrame:
    """Two models' fold scores side by side, ready for :func:`compare_probes`.

    Parameters
    ----------
    scores : DataFrame
        :func:`fold_scores` output.
    au : int, keyword-only
    model_a, model_b : str, keyword-only
        Model names (``FreezeB<k>``); differences are ``a - b``.
    folds : {"stratified", "grouped"}, keyword-only

    Returns
    -------
    DataFrame, one row per (repeat, fold)
        ``repeat``, ``fold``, ``f1_a``, ``f1_b``, ``n_train``, ``n_test``, ``n_pos_test``.
    """
    part = scores[(scores["au"] == au) & (scores["folds"] == folds)]
    keys = ["repeat", "fold"]
    a = part[part["model"] == model_a].set_index(keys)
    b = part[part["model"] == model_b].set_index(keys)
    if a.empty or b.empty:
        raise ValueError(f"paired_frame: no scores for AU{au} with {folds!r} folds for "
                         f"{model_a if a.empty else model_b}; models present: {sorted(part['model'].unique())}")
    if not a.index.equals(b.index) or not (a["n_test"] == b["n_test"]).all():
        raise ValueError(f"paired_frame: {model_a} and {model_b} were not probed on the same folds")
    out = pd.DataFrame({"f1_a": a["f1"], "f1_b": b["f1"], "n_train": a["n_train"], "n_test": a["n_test"],
                        "n_pos_test": a["n_pos_test"]}).reset_index()
    return out[["repeat", "fold", "f1_a", "f1_b", "n_train", "n_test", "n_pos_test"]]


# --------------------------------------------------------------------------- 5. tests
def _diff_matrix(probe_df: pd.DataFrame) -> np.ndarray:
    """Differences ``f1_a - f1_b`` as an array of shape (n_repeats, n_folds)."""
    required = {"repeat", "fold", "f1_a", "f1_b", "n_train", "n_test"}
    missing = required - set(probe_df.columns)
    if missing:
        raise ValueError(f"compare_probes: the frame lacks columns {sorted(missing)}; pass the output of "
                         "paired_frame")
    wide = probe_df.assign(diff=probe_df["f1_a"] - probe_df["f1_b"]).pivot(index="repeat", columns="fold",
                                                                            values="diff")
    if wide.isna().any().any():
        raise ValueError("compare_probes: every repetition must have the same folds")
    return wide.sort_index().to_numpy()


def compare_probes(probe_df: pd.DataFrame, *, level: float = 0.95) -> dict[str, Any]:
    """All the tests of model a vs model b on their paired fold scores.

    Parameters
    ----------
    probe_df : DataFrame
        :func:`paired_frame` output: ``repeat``, ``fold``, ``f1_a``, ``f1_b``, ``n_train``,
        ``n_test``.
    level : float, keyword-only
        Confidence level of the intervals.

    Returns
    -------
    dict
        ``mean_f1_a``, ``mean_f1_b``, ``mean_difference`` (a - b), ``n_repeats``,
        ``n_folds``, ``n_train``, ``n_test``, and for each test key in
        :data:`TEST_KEYS` (``paired_t`` = the paper's test, ``corrected_t`` = Bouckaert &
        Frank, ``dietterich_5x2cv`` = Dietterich on the first 5 repetitions, ``nan`` unless
        2-fold with >= 5 repetitions) the entries ``<key>_statistic``, ``<key>_df``,
        ``<key>_p``, ``<key>_ci_low``, ``<key>_ci_high`` (the corrected ones are also the
        recommended mean difference interval), plus ``naive_test_caveat``.
    """
    diffs = _diff_matrix(probe_df)
    per_rep = probe_df.groupby("repeat")[["f1_a", "f1_b"]].mean().sort_index()
    n_train = float(probe_df["n_train"].mean())
    n_test = float(probe_df["n_test"].mean())
    results: dict[str, TestResult | None] = {
        "paired_t": paired_t_test_over_repeats(per_rep["f1_a"], per_rep["f1_b"], level=level)
        if len(per_rep) >= 2 else None,
        "corrected_t": mean_difference_ci(diffs, n_train=n_train, n_test=n_test, level=level),
        "dietterich_5x2cv": dietterich_5x2cv_t_test(diffs[:5], level=level)
        if diffs.shape[0] >= 5 and diffs.shape[1] == 2 else None,
    }
    out: dict[str, Any] = {
        "mean_f1_a": float(probe_df["f1_a"].mean()),
        "mean_f1_b": float(probe_df["f1_b"].mean()),
        "mean_difference": float(diffs.mean()),
        "n_repeats": int(diffs.shape[0]), "n_folds": int(diffs.shape[1]),
        "n_train": n_train, "n_test": n_test,
    }
    for key, res in results.items():
        out[f"{key}_statistic"] = np.nan if res is None else res.statistic
        out[f"{key}_df"] = np.nan if res is None else res.df
        out[f"{key}_p"] = np.nan if res is None else res.p_value
        out[f"{key}_ci_low"] = np.nan if res is None else res.ci_low
        out[f"{key}_ci_high"] = np.nan if res is None else res.ci_high
    out["naive_test_caveat"] = NAIVE_TEST_CAVEAT
    return out


def comparison_table(scores: pd.DataFrame, *, models: Iterable[str], reference: str = REFERENCE,
                     level: float = 0.95) -> pd.DataFrame:
    """Every AU x model against the reference, per fold scheme, Holm over each scheme's family.

    Parameters
    ----------
    scores : DataFrame
        :func:`fold_scores` output (model names may be renamed, e.g. for control models).
    models : iterable of str, keyword-only
        Models compared with ``reference`` (a reference among them is skipped).
    reference : str, keyword-only
    level : float, keyword-only

    Returns
    -------
    DataFrame, one row per (folds, au, model)
        ``folds``, ``au``, ``variant``, ``model``, ``reference``, ``n_pos`` (present images),
        the :func:`compare_probes` entries (a = model, b = reference) and
        ``<test>_p_holm`` for each test of :data:`TEST_KEYS`, Holm-corrected over the
        AUs x models of one fold scheme.
    """
    rows = []
    for (scheme, au), part in scores.groupby(["folds", "au"], sort=False):
        first = part[(part["model"] == reference) & (part["repeat"] == 0)]
        for model in models:
            if model == reference:
                continue
            summary = compare_probes(paired_frame(scores, au=au, model_a=model, model_b=reference, folds=scheme),
                                     level=level)
            summary.pop("naive_test_caveat")
            rows.append({"folds": scheme, "au": int(au), "variant": part["variant"].iloc[0], "model": model,
                         "reference": reference, "n_pos": int(first["n_pos_test"].sum()), **summary})
    table = pd.DataFrame(rows)
    for key in TEST_KEYS:
        table[f"{key}_p_holm"] = np.nan
        for index in table.groupby("folds").groups.values():
            table.loc[index, f"{key}_p_holm"] = holm(table.loc[index, f"{key}_p"].to_numpy())
    return table


def chance_f1(prevalence: float | np.ndarray) -> float | np.ndarray:
    """F1 of always answering "present": ``2p / (1 + p)``, the best F1 without looking at the image.

    Parameters
    ----------
    prevalence : float or ndarray
        Share ``p`` of images where the AU is present, in [0, 1].
    """
    p = np.asarray(prevalence, dtype=float)
    return 2 * p / (1 + p)


# --------------------------------------------------------------------------- bench
def probe_speed(n_samples: int, n_features: int, *, n_fits: int, n_jobs: int = 1, seed: int = 0,
                engine: str = "gram") -> float:
    """Throughput of probe fits (:func:`probe_predict`: scale, linear SVM, predict) on random data.

    Parameters
    ----------
    n_samples, n_features : int
        Size of the training set of one fit (e.g. 160 x 25088 for half of CK+ peaks).
    n_fits : int, keyword-only
        Number of fits, run through joblib with ``n_jobs`` workers.
    n_jobs : int, keyword-only
    seed : int, keyword-only
        Of the random data.
    engine : {"gram", "pipeline"}, keyword-only
        Of :func:`probe_predict`.

    Returns
    -------
    float
        Fits per second (wall clock), including joblib's overhead.
    """
    rng = np.random.default_rng(seed)
    # ReLU-like non-negative features with a weak planted signal, as block5 activations.
    x = np.maximum(rng.normal(size=(n_samples, n_features)), 0).astype(np.float32)
    y = (rng.random(n_samples) < 0.3).astype(int)
    y[:2] = [0, 1]
    x[y == 1, : max(1, n_features // 100)] += 0.5

    def fit_once() -> float:
        return float(probe_predict(x, y, x, engine=engine).mean())

    start = time.perf_counter()
    with one_blas_thread():
        Parallel(n_jobs=n_jobs)(delayed(fit_once)() for _ in range(n_fits))
    return n_fits / (time.perf_counter() - start)
