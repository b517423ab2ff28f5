"""Action-unit concept probes on the last convolution block (paper §4.3).

A concept (an action unit) is "embedded" in a model if a linear classifier on the model's
``block5_pool`` activations detects it (Kim et al. 2018). To compare two models, the paper
trains a linear SVM on each model's features with 2-fold cross-validation, repeats this
500 times, and runs a paired t-test over the 500 per-repetition mean F1 scores.

Design choices
--------------
- **Classifier**: ``SVC(kernel="linear", C=1.0, class_weight="balanced")`` after a
  ``StandardScaler``, both in one Pipeline so the scaler is fitted on each training fold
  only. libsvm solves the linear SVM exactly and deterministically (no ``random_state``,
  no convergence warnings, unpenalised intercept); with ``d >> n`` (VGG16 block5 has
  7x7x512 = 25088 features for a few hundred CK+ images) its cost is about that of
  ``LinearSVC``. ``C = 1`` is fixed in advance (sklearn's default), not tuned, so that
  no selection happens on the test folds.
- **Class weights**: ``"balanced"`` (weights inversely proportional to class frequencies
  in the training fold). Many action units are rare among CK+ peak frames (AU14 among
  them) and the score is the F1 of the positive class; unweighted, the SVM can trade the
  rare class away. The paper does not say; pass ``class_weight=None`` for sklearn's
  default.
- **Randomness**: the SVM is convex, so the only randomness is the fold assignment; the
  paper's "random seeds for weight initialisation" have no counterpart here. Repetition
  ``r`` uses ``random_state = seed + r`` for its split, and both models get the SAME
  folds in each repetition (the paired design).
- **Folds**: ``"stratified"`` is the paper's protocol (``StratifiedKFold``, shuffled);
  ``"grouped"`` is ``StratifiedGroupKFold`` by subject, because images of one subject in
  both folds let the probe recognise identity instead of the action unit.
- **Tests**: :func:`compare_probes` runs the paper's paired t-test next to the corrected
  repeated-CV t-test, Dietterich's 5x2cv test and a corrected confidence interval; see
  :data:`forgetting_aus.stats.NAIVE_TEST_CAVEAT`.

Sign convention: differences are ``f1_a - f1_b``. :func:`probe_sweep` passes the compared
model as a and the reference (FreezeB5) as b, so a negative difference and a negative t
mean the compared model lost the concept, matching the paper's reported t-statistics.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from forgetting_aus.stats import (
    NAIVE_TEST_CAVEAT,
    TestResult,
    corrected_repeated_cv_t_test,
    dietterich_5x2cv_t_test,
    holm,
    mean_difference_ci,
    paired_t_test_over_repeats,
)

__all__ = [
    "NAIVE_TEST_CAVEAT",
    "TestResult",
    "block5_features",
    "compare_probes",
    "cv_splits",
    "corrected_repeated_cv_t_test",
    "dietterich_5x2cv_t_test",
    "holm",
    "make_probe",
    "mean_difference_ci",
    "paired_t_test_over_repeats",
    "probe_concept",
    "probe_speed",
    "probe_sweep",
]

#: Fixed in advance, never tuned (see the module docstring).
DEFAULT_C = 1.0
DEFAULT_CLASS_WEIGHT = "balanced"

#: The prefixes of the tests in :func:`compare_probes`' output, in display order.
TEST_KEYS: tuple[str, ...] = ("paired_t", "corrected_t", "dietterich_5x2cv")


# --------------------------------------------------------------------------- features
def block5_features(model_or_path: Any, images_float: np.ndarray, *,
                    layer: str = "block5_pool", batch_size: int = 64) -> np.ndarray:
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
            raise FileNotFoundError(f"no saved model at {path}; train and save the model "
                                    "first (a .keras file)")
        model = keras.models.load_model(path, compile=False)
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


# --------------------------------------------------------------------------- probes
def make_probe(*, C: float = DEFAULT_C,
               class_weight: str | dict | None = DEFAULT_CLASS_WEIGHT) -> Pipeline:
    """The concept probe: standardisation then a linear SVM, as one Pipeline.

    Fitting the Pipeline fits the scaler on the training fold only, so no statistic of
    the test fold leaks into the probe.
    """
    return Pipeline([("scale", StandardScaler()),
                     ("svm", SVC(kernel="linear", C=C, class_weight=class_weight))])


def _check_probe_inputs(features_a, features_b, y, groups, folds, n_splits):
    xa = np.asarray(features_a)
    xb = np.asarray(features_b)
    if xa.ndim != 2 or xb.ndim != 2:
        raise ValueError(f"features must be 2-d (n_images, n_features), got {xa.shape} "
                         f"and {xb.shape}; flatten the activations (block5_features does)")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(xa) or len(y) != len(xb):
        raise ValueError(f"expected one label per image for both feature sets: y has shape "
                         f"{y.shape}, features {xa.shape} and {xb.shape}")
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"y must be binary 0/1 (1 = action unit present), found values "
                         f"{sorted(values)[:10]}")
    y = y.astype(int)
    n_pos = int(y.sum())
    if min(n_pos, len(y) - n_pos) < n_splits:
        raise ValueError(f"need at least {n_splits} positive and {n_splits} negative images "
                         f"for {n_splits}-fold CV, got {n_pos} positive of {len(y)}")
    if folds not in ("stratified", "grouped"):
        raise ValueError(f"folds must be 'stratified' (the paper) or 'grouped' (by "
                         f"subject), got {folds!r}")
    if folds == "grouped":
        if groups is None:
            raise ValueError("folds='grouped' needs groups= (the subject id of every image)")
        groups = np.asarray(groups)
        if groups.shape != y.shape:
            raise ValueError(f"groups must have one id per image, shape {y.shape}, got "
                             f"{groups.shape}")
        if len(np.unique(groups)) < n_splits:
            raise ValueError(f"folds='grouped' needs at least {n_splits} subjects, got "
                             f"{len(np.unique(groups))}")
    return xa, xb, y, groups


def cv_splits(y: np.ndarray, *, groups: np.ndarray | None = None, folds: str = "stratified",
              n_splits: int = 2, random_state: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, test) index pairs of one repetition, as :func:`probe_concept` uses them.

    Parameters
    ----------
    y : array-like of shape (n,)
        Binary labels (the folds are stratified by them).
    groups : array-like of shape (n,), optional, keyword-only
        Subject ids, required for ``folds="grouped"``.
    folds : {"stratified", "grouped"}, keyword-only
        Shuffled ``StratifiedKFold`` or ``StratifiedGroupKFold``.
    random_state : int, keyword-only
        ``seed + repeat`` in :func:`probe_concept`.
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
    raise ValueError(f"folds must be 'stratified' (the paper) or 'grouped' (by subject), "
                     f"got {folds!r}")


def _one_repetition(xa, xb, y, groups, *, rep: int, seed: int, folds: str, n_splits: int,
                    C: float, class_weight) -> list[dict]:
    """All folds of repetition ``rep``: the same split for both feature sets."""
    rows = []
    for fold, (train, test) in enumerate(
            cv_splits(y, groups=groups, folds=folds, n_splits=n_splits,
                      random_state=seed + rep)):
        scores = []
        for x in (xa, xb):
            probe = make_probe(C=C, class_weight=class_weight).fit(x[train], y[train])
            scores.append(f1_score(y[test], probe.predict(x[test]), pos_label=1,
                                   zero_division=0))
        rows.append({"repeat": rep, "fold": fold, "f1_a": scores[0], "f1_b": scores[1],
                     "n_train": len(train), "n_test": len(test),
                     "n_pos_test": int(y[test].sum())})
    return rows


def probe_concept(features_a: np.ndarray, features_b: np.ndarray, y: np.ndarray, *,
                  groups: np.ndarray | None = None, n_repeats: int,
                  folds: str = "stratified", n_splits: int = 2, C: float = DEFAULT_C,
                  class_weight: str | dict | None = DEFAULT_CLASS_WEIGHT, seed: int,
                  n_jobs: int = 1) -> pd.DataFrame:
    """Repeated k-fold CV of the concept probe on two models' features, paired by fold.

    Parameters
    ----------
    features_a, features_b : ndarray of shape (n, d_a) and (n, d_b)
        Features of the same images from model a and model b (e.g. block5_pool).
    y : array-like of shape (n,)
        1 where the action unit is present, 0 where absent.
    groups : array-like of shape (n,), optional, keyword-only
        Subject ids; required for ``folds="grouped"``.
    n_repeats : int, keyword-only
        Repetitions of the k-fold CV (the paper: 500).
    folds : {"stratified", "grouped"}, keyword-only
        ``StratifiedKFold`` (the paper) or ``StratifiedGroupKFold`` by subject.
    n_splits : int, keyword-only
        Folds per repetition (the paper: 2).
    C, class_weight : keyword-only
        Of the linear SVM (see the module docstring).
    seed : int, keyword-only
        Repetition ``r`` splits with ``random_state = seed + r``.
    n_jobs : int, keyword-only
        joblib workers over repetitions; the result does not depend on it.

    Returns
    -------
    DataFrame with n_repeats * n_splits rows
        ``repeat``, ``fold``, ``f1_a``, ``f1_b`` (F1 of the positive class in [0, 1]),
        ``n_train``, ``n_test``, ``n_pos_test``.
    """
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be >= 1, got {n_repeats}")
    if n_splits < 2:
        raise ValueError(f"n_splits must be >= 2, got {n_splits}")
    xa, xb, y, groups = _check_probe_inputs(features_a, features_b, y, groups, folds,
                                            n_splits)
    per_rep = Parallel(n_jobs=n_jobs)(
        delayed(_one_repetition)(xa, xb, y, groups, rep=rep, seed=seed, folds=folds,
                                 n_splits=n_splits, C=C, class_weight=class_weight)
        for rep in range(n_repeats))
    return pd.DataFrame([row for rows in per_rep for row in rows])


# --------------------------------------------------------------------------- tests
def _diff_matrix(probe_df: pd.DataFrame) -> np.ndarray:
    required = {"repeat", "fold", "f1_a", "f1_b", "n_train", "n_test"}
    missing = required - set(probe_df.columns)
    if missing:
        raise ValueError(f"compare_probes: probe_df lacks columns {sorted(missing)}; pass "
                         "the output of probe_concept")
    wide = probe_df.assign(diff=probe_df["f1_a"] - probe_df["f1_b"]).pivot(
        index="repeat", columns="fold", values="diff")
    if wide.isna().any().any():
        raise ValueError("compare_probes: every repetition must have the same folds")
    return wide.sort_index().to_numpy()


def compare_probes(probe_df: pd.DataFrame, *, level: float = 0.95) -> dict[str, Any]:
    """All the tests of model a vs model b on one :func:`probe_concept` result.

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
        "paired_t": paired_t_test_over_repeats(per_rep["f1_a"], per_rep["f1_b"],
                                               level=level)
        if len(per_rep) >= 2 else None,
        "corrected_t": mean_difference_ci(diffs, n_train=n_train, n_test=n_test,
                                          level=level),
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


def probe_sweep(features: Mapping[str, Any], labels: Mapping[str, np.ndarray], *,
                reference: str, groups: np.ndarray | None = None, n_repeats: int,
                folds: str = "stratified", C: float = DEFAULT_C,
                class_weight: str | dict | None = DEFAULT_CLASS_WEIGHT, seed: int,
                n_jobs: int = 1, level: float = 0.95) -> pd.DataFrame:
    """Every action unit x every model against the reference, with Holm over the family.

    Parameters
    ----------
    features : mapping
        Either ``{model: (n, d) array}`` shared by all action units, or
        ``{au: {model: (n_au, d) array}}`` when an action unit has its own images (the
        paper probes AU5 on images cropped above the mouth).
    labels : mapping of au name -> array-like of shape (n,) or (n_au,)
        0/1 presence of the action unit (e.g. keys from ``facs.AU_NAMES``).
    reference : str, keyword-only
        The model every other is compared with, as model b (e.g. ``"FreezeB5"``).
    groups : array-like, optional, keyword-only
        Subject ids (needed for ``folds="grouped"``); with per-AU features, a mapping
        ``{au: array}``.
    n_repeats, folds, C, class_weight, seed, n_jobs : keyword-only
        As :func:`probe_concept`; the same seed for every comparison, so all models are
        probed on the same folds.

    Returns
    -------
    DataFrame, one row per (au, model)
        ``au``, ``model``, ``reference``, the :func:`compare_probes` entries (a = model,
        b = reference; ``naive_test_caveat`` dropped) and ``<test>_p_holm`` for each test,
        Holm-corrected over all rows of the sweep.
    """
    per_au = bool(features) and all(isinstance(v, Mapping) for v in features.values())
    rows = []
    for au, y in labels.items():
        if per_au:
            if au not in features:
                raise ValueError(f"probe_sweep: no features for {au!r}; per-AU features "
                                 f"are given for {list(features)}")
            feats = features[au]
        else:
            feats = features
        if reference not in feats:
            raise ValueError(f"reference {reference!r} is not among the models "
                             f"{list(feats)}; pass e.g. reference='FreezeB5'")
        g = groups[au] if isinstance(groups, Mapping) else groups
        for model in feats:
            if model == reference:
                continue
            df = probe_concept(feats[model], feats[reference], y, groups=g,
                               n_repeats=n_repeats, folds=folds, C=C,
                               class_weight=class_weight, seed=seed, n_jobs=n_jobs)
            summary = compare_probes(df, level=level)
            summary.pop("naive_test_caveat")
            rows.append({"au": au, "model": model, "reference": reference, **summary})
    if not rows:
        raise ValueError("probe_sweep: nothing to compare; need labels and at least one "
                         "model besides the reference")
    sweep = pd.DataFrame(rows)
    for key in TEST_KEYS:
        sweep[f"{key}_p_holm"] = holm(sweep[f"{key}_p"].to_numpy())
    return sweep


# --------------------------------------------------------------------------- bench
def probe_speed(n_samples: int, n_features: int, *, n_fits: int, n_jobs: int = 1,
                seed: int = 0) -> float:
    """Throughput of probe fits (scale + linear SVM + predict) on random data.

    Parameters
    ----------
    n_samples, n_features : int
        Size of the training set of one fit (e.g. 160 x 25088 for half of CK+ peaks).
    n_fits : int, keyword-only
        Number of fits, run through joblib with ``n_jobs`` workers.

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
        return float(make_probe().fit(x, y).predict(x).mean())

    start = time.perf_counter()
    Parallel(n_jobs=n_jobs)(delayed(fit_once)() for _ in range(n_fits))
    return n_fits / (time.perf_counter() - start)
