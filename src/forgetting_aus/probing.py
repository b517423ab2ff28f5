"""Chapter-level concept probing (paper §4.3, §5) and the discussion's readings (§6).

Chapter 06 asks whether the pain models still *embed* action units: a linear probe
(:func:`forgetting_aus.concepts.make_probe`) on each model's ``block5_pool`` features of
the CK+ peak frames detects an AU, and FreezeB*k*'s probe is compared with FreezeB5's
over repeated 2-fold cross-validation. Chapter 07 reads the results against the emotion
prototypes (Figure 6) and weighs pain recall against surprise and contempt recall
(Figure 7). This module holds their loops, caching, rules and claims; the notebooks call
it.

Design
------
- **Features** (:func:`probe_features`): ``block5_pool`` of FreezeB*k* on
  ``models.preprocess`` of the CK+ peak frames, cached per (model artifact key, images,
  variant). The variant ``"mouth_masked"`` replaces the face below the mouth cut by the
  face's mean colour (:func:`forgetting_aus.explain.regions.mouth_crop` with
  ``mode="mask"``): the paper crops "the bottom of the images such that they do not
  contain the mouth" for AU5. Masking, not crop-and-stretch, because stretching the
  upper face back to the input height makes every eye look taller — exactly the cue of
  AU5 (upper lid raise) — and moves the eyes away from where the frozen filters saw them.
- **Fold scores** (:func:`fold_scores`): each model is probed ONCE per (AU, repetition,
  fold) on the folds :func:`forgetting_aus.concepts.cv_splits` gives for
  ``random_state = seed + repetition``, i.e. exactly the folds of
  :func:`forgetting_aus.concepts.probe_concept`, so all models share folds and any pair
  of them can be compared afterwards (:func:`paired_frame`). Probing each model once
  instead of once per pair saves the reference's refits in the sweep (6 instead of 10
  fits per AU, repetition and fold).
- **Tests**: :func:`forgetting_aus.concepts.compare_probes` on the pairs; the sweep
  Holm-corrects each test over its AUs x models family, per fold scheme, like
  :func:`forgetting_aus.concepts.probe_sweep`.
- **Presence of an AU**: intensity > 0 (CK+ codes the AUs present at the peak); images
  whose AU is unknown (NaN) are left out of that AU's probe. AUs with fewer than
  :data:`MIN_IMAGES_PER_CLASS` present or absent images are not probed.

Sign convention: differences are ``model - FreezeB5``; negative means the model's
features detect the AU worse than the emotion features (the paper's "forgot").
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone

from . import analysis, cache, concepts, facs, paper_values, pipeline
from .claims import Claim
from .config import Config
from .stats import holm

PAPER = "Prajod 2022"
PROBE_LAYER = "block5_pool"
REFERENCE_K = 5
REFERENCE = pipeline.model_name(REFERENCE_K)
COMPARED_K = 0
#: The paper's two tests (§5): AU -> image variant.
PAPER_TESTS: dict[int, str] = {14: "full", 5: "mouth_masked"}
#: AUs probed on mouth-masked images everywhere (the sweep too), as the paper probes AU5.
MASKED_AUS: tuple[int, ...] = (5,)
VARIANTS: tuple[str, ...] = ("full", "mouth_masked")
CROP_MODE = "mask"
#: "stratified" = the paper's shuffled StratifiedKFold; "grouped" = by subject.
FOLD_SCHEMES: tuple[str, ...] = ("stratified", "grouped")
N_SPLITS = 2
ALPHA = 0.05
#: An AU is probed only with at least this many present and absent images.
MIN_IMAGES_PER_CLASS = 4
#: Repetitions per joblib task.
REPEATS_PER_TASK = 25
#: Crop validation: the crop "removes" an AU when the cropped probe has lost at least this
#: share of the uncropped probe's margin over chance F1.
REMOVED_SHARE = 0.5
TRADEOFF_EMOTIONS: tuple[str, ...] = ("surprise", "contempt")


def _source_hash(*functions: Any) -> str:
    """SHA-256 of some functions' source: a cache key that ignores edits elsewhere."""
    digest = hashlib.sha256()
    for function in functions:
        digest.update(inspect.getsource(function).encode())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- labels
def au_labels(aus: np.ndarray, *, min_per_class: int = MIN_IMAGES_PER_CLASS
              ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Presence labels of every probe-able action unit.

    Parameters
    ----------
    aus : ndarray of shape (n, 18)
        Intensities in ``facs.AU_CODES`` order (NaN = not coded).
    min_per_class : int, keyword-only
        Fewest present and fewest absent images an AU needs to be probed.

    Returns
    -------
    dict of AU code -> (rows, y)
        ``rows``: int indices (n_au,) of the images where the AU is known; ``y``: int
        (n_au,) 1 where its intensity is > 0. AUs below ``min_per_class`` are left out.
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


def variant_for(au: int) -> str:
    """Image variant the AU is probed on: ``"mouth_masked"`` for :data:`MASKED_AUS`."""
    return "mouth_masked" if au in MASKED_AUS else "full"


# --------------------------------------------------------------------------- features
def variant_images(images: np.ndarray, landmarks: np.ndarray, variant: str) -> np.ndarray:
    """Network input of one image variant: ``models.preprocess`` of the (masked) images.

    Parameters
    ----------
    images : uint8 (n, S, S, 3)
    landmarks : (n, 68, 2) in the images' pixel frame
    variant : {"full", "mouth_masked"}

    Returns
    -------
    float32 (n, S, S, 3)
    """
    from . import models
    from .explain import regions

    if variant == "full":
        return models.preprocess(images)
    if variant == "mouth_masked":
        return models.preprocess(regions.mouth_crop(images, landmarks, mode=CROP_MODE))
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


def features_params(*, model_key: str, images: np.ndarray, landmarks: np.ndarray, variant: str,
                    layer: str = PROBE_LAYER) -> dict[str, Any]:
    """What a feature artifact depends on (its cache parameters).

    The model enters through its artifact key (which hashes the model's knobs, data and
    code), the images and landmarks through their content hash.
    """
    return {"model": model_key, "images": np.asarray(images), "landmarks": np.asarray(landmarks),
            "variant": variant, "crop_mode": CROP_MODE if variant == "mouth_masked" else None,
            "layer": layer, "code": _source_hash(variant_images)}


_FEATURE_CODE = ("forgetting_aus.concepts", "forgetting_aus.models", "forgetting_aus.explain.regions")


def cached_features(store: cache.Store, *, model_path: str | Path, model_key: str, images: np.ndarray,
                    landmarks: np.ndarray, variant: str = "full", layer: str = PROBE_LAYER) -> tuple[np.ndarray, str]:
    """Features of one model on one image variant, through the artifact store.

    Parameters
    ----------
    store : cache.Store
    model_path : path of the ``.keras`` model
    model_key : str
        The model's artifact key (a changed model must bring a changed key).
    images : uint8 (n, S, S, 3)
    landmarks : (n, 68, 2)
    variant : {"full", "mouth_masked"}, keyword-only
    layer : str, keyword-only

    Returns
    -------
    features : float32 (n, d)
    key : str
        The feature artifact's key (enters the probe results' keys).
    """
    params = features_params(model_key=model_key, images=images, landmarks=landmarks, variant=variant, layer=layer)

    def make(folder: Path) -> dict[str, Any]:
        x = concepts.block5_features(model_path, variant_images(images, landmarks, variant), layer=layer)
        cache.write_npz(folder / "features.npz", features=x)
        return {"shape": list(x.shape)}

    folder = store.get_or_make("probe_features", params, make, code=_FEATURE_CODE)
    return cache.read_npz(folder / "features.npz")["features"], folder.name


def probe_features(cfg: Config, k: int, *, variant: str = "full") -> tuple[np.ndarray, str]:
    """``block5_pool`` features of FreezeB<k> on the CK+ peak frames (cached), and their key."""
    data = pipeline.ckplus_data(cfg)
    trained = pipeline.pain_model(cfg, k)
    return cached_features(pipeline.store(cfg), model_path=trained.model_path, model_key=trained.key,
                           images=data.images, landmarks=data.landmarks, variant=variant)


# --------------------------------------------------------------------------- fold scores
def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``StandardScaler`` fitted on ``train`` (population SD, constant features scaled by 1)."""
    mean = train.mean(axis=0)
    scale = train.std(axis=0)
    scale[scale < 10 * np.finfo(np.float64).eps] = 1.0
    return (train - mean) / scale, (test - mean) / scale


def probe_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *, C: float) -> np.ndarray:
    """Fit :func:`concepts.make_probe` on one training fold and predict the test fold.

    The same model as the Pipeline — the scaler fitted on the training fold, then the
    Pipeline's own linear SVM — with the scaling and the linear decision done in numpy:
    sklearn's per-call validation costs more than the SVM itself at this size (measured
    about 4x per fold). The tests check that the predictions equal the Pipeline's.

    Returns
    -------
    int (n_test,) predicted labels
    """
    x_train = np.asarray(x_train, dtype=np.float64)
    x_test = np.asarray(x_test, dtype=np.float64)
    if len(np.unique(y_train)) < 2:
        # A grouped fold can hold every positive image in its test half: the probe can only
        # answer the one class it saw, which is what it is scored on.
        return np.full(len(x_test), np.asarray(y_train)[0])
    train, test = _standardise(x_train, x_test)
    svm = clone(concepts.make_probe(C=C).named_steps["svm"]).fit(train, y_train)
    # coef_ is dual_coef_ @ support_vectors_ (sklearn's own formula, without its checks).
    weights = (svm.dual_coef_ @ svm.support_vectors_).ravel()
    decision = test @ weights + svm.intercept_[0]
    return svm.classes_[(decision > 0).astype(int)]


def f1_positive(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """F1 of the positive class (1); 0 when there is no positive in truth or prediction.

    Equals ``sklearn.metrics.f1_score(y_true, y_pred, pos_label=1, zero_division=0)``.
    """
    y_true = np.asarray(y_true) == 1
    y_pred = np.asarray(y_pred) == 1
    tp = int(np.sum(y_true & y_pred))
    denominator = int(y_true.sum() + y_pred.sum())
    return 2 * tp / denominator if denominator else 0.0


def _repeat_scores(xs: Mapping[int, np.ndarray], y: np.ndarray, groups: np.ndarray | None, *, folds: str,
                   repeats: Iterable[int], C: float, seed: int) -> list[dict[str, Any]]:
    """Probe F1 of several models' features on the folds of some repetitions.

    Each repetition's folds are drawn once, by :func:`concepts.cv_splits` with
    ``random_state = seed + repetition`` (the folds of :func:`concepts.probe_concept`), and
    every model is probed on them: the pairing of the comparisons.

    Parameters
    ----------
    xs : mapping k -> float (n, d)
        Features of FreezeB<k> of the same n images.
    y : int (n,); groups : (n,) or None
    repeats : iterable of int, keyword-only
        Repetition indices.

    Returns
    -------
    list of dict
        ``k``, ``repeat``, ``fold``, ``f1``, ``n_train``, ``n_test``, ``n_pos_test``.
    """
    rows = []
    for rep in repeats:
        splits = concepts.cv_splits(y, groups=groups, folds=folds, n_splits=N_SPLITS, random_state=seed + rep)
        for fold, (train, test) in enumerate(splits):
            for k, x in xs.items():
                prediction = probe_predict(x[train], y[train], x[test], C=C)
                rows.append({"k": k, "repeat": rep, "fold": fold, "f1": f1_positive(y[test], prediction),
                             "n_train": len(train), "n_test": len(test), "n_pos_test": int(y[test].sum())})
    return rows


def _task_scores(xs: Mapping[int, np.ndarray], y: np.ndarray, groups: np.ndarray, *, meta: dict[str, Any],
                 folds: str, repeats: Iterable[int], C: float, seed: int) -> list[dict[str, Any]]:
    """One joblib task: :func:`_repeat_scores` tagged with ``meta`` and the model names."""
    return [{**meta, "model": pipeline.model_name(row["k"]), **row}
            for row in _repeat_scores(xs, y, groups, folds=folds, repeats=repeats, C=C, seed=seed)]


def fold_scores(features: Mapping[tuple[int, str], np.ndarray], labels: Mapping[int, tuple[np.ndarray, np.ndarray]],
                *, models: Iterable[int], groups: np.ndarray, folds: Sequence[str], n_repeats: int, C: float,
                seed: int, variants: Mapping[int, str] | None = None, n_jobs: int = 1) -> pd.DataFrame:
    """Probe F1 of every model x AU x fold scheme x repetition x fold.

    Parameters
    ----------
    features : mapping (k, variant) -> float (n, d)
        Features of FreezeB<k> on all n images of one variant.
    labels : mapping AU code -> (rows, y)
        As :func:`au_labels`.
    models : iterable of int, keyword-only
        Frozen-block counts k to probe.
    groups : array (n,), keyword-only
        Subject id of every image (for the grouped folds).
    folds : sequence of {"stratified", "grouped"}, keyword-only
    n_repeats, C, seed : keyword-only
        As :func:`forgetting_aus.concepts.probe_concept` (repetition r splits with seed + r).
    variants : mapping AU code -> variant, optional, keyword-only
        Image variant of each AU; by default :func:`variant_for`.
    n_jobs : int, keyword-only
        joblib workers over (AU, model, fold scheme); the result does not depend on it.

    Returns
    -------
    DataFrame, one row per (au, model, folds, repeat, fold)
        ``au`` (int code), ``variant``, ``folds``, ``k``, ``model``, ``repeat``, ``fold``,
        ``f1`` (positive class, in [0, 1]), ``n_train``, ``n_test``, ``n_pos_test``.
    """
    models = list(models)
    groups = np.asarray(groups)
    variant = {au: (variants or {}).get(au, variant_for(au)) for au in labels}
    for au in labels:
        for k in models:
            if (k, variant[au]) not in features:
                raise ValueError(f"fold_scores: no features for FreezeB{k} on the {variant[au]!r} images "
                                 f"(needed by AU{au}); have {sorted(features)}")
    # Tasks of at most REPEATS_PER_TASK repetitions keep both workers busy on the long
    # paper tests as on the wide sweep; the result does not depend on the chunking.
    chunks = [range(start, min(start + REPEATS_PER_TASK, n_repeats)) for start in range(0, n_repeats, REPEATS_PER_TASK)]
    per_task = Parallel(n_jobs=n_jobs)(
        delayed(_task_scores)({k: np.asarray(features[(k, variant[au])])[labels[au][0]] for k in models},
                              labels[au][1], groups[labels[au][0]], folds=scheme, repeats=chunk, C=C, seed=seed,
                              meta={"au": int(au), "variant": variant[au], "folds": scheme})
        for au in labels for scheme in folds for chunk in chunks)
    columns = ["au", "variant", "folds", "k", "model", "repeat", "fold", "f1", "n_train", "n_test", "n_pos_test"]
    frame = pd.DataFrame([row for rows in per_task for row in rows], columns=columns)
    return frame.sort_values(["au", "folds", "k", "repeat", "fold"], kind="stable", ignore_index=True)


def paired_frame(scores: pd.DataFrame, *, au: int, model_a: str, model_b: str, folds: str) -> pd.DataFrame:
    """Two models' fold scores side by side, in :func:`concepts.probe_concept`'s layout.

    Returns
    -------
    DataFrame with columns ``repeat``, ``fold``, ``f1_a``, ``f1_b``, ``n_train``, ``n_test``,
    ``n_pos_test`` (a = ``model_a``), ready for :func:`concepts.compare_probes`.
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


def comparison_table(scores: pd.DataFrame, *, models: Iterable[str], reference: str = REFERENCE,
                     level: float = 0.95) -> pd.DataFrame:
    """Every AU x model against the reference, per fold scheme, Holm over each scheme's family.

    Returns
    -------
    DataFrame, one row per (folds, au, model)
        ``folds``, ``au``, ``variant``, ``model``, ``reference``, ``n_pos`` (present images),
        the :func:`concepts.compare_probes` entries (a = model, b = reference) and
        ``<test>_p_holm`` for each test of ``concepts.TEST_KEYS``, Holm-corrected over the
        AUs x models of one fold scheme (as :func:`concepts.probe_sweep`).
    """
    rows = []
    for (scheme, au), part in scores.groupby(["folds", "au"], sort=False):
        first = part[(part["model"] == reference) & (part["repeat"] == 0)]
        for model in models:
            if model == reference:
                continue
            summary = concepts.compare_probes(paired_frame(scores, au=au, model_a=model, model_b=reference,
                                                           folds=scheme), level=level)
            summary.pop("naive_test_caveat")
            rows.append({"folds": scheme, "au": int(au), "variant": part["variant"].iloc[0], "model": model,
                         "reference": reference, "n_pos": int(first["n_pos_test"].sum()), **summary})
    table = pd.DataFrame(rows)
    for key in concepts.TEST_KEYS:
        table[f"{key}_p_holm"] = np.nan
        for index in table.groupby("folds").groups.values():
            table.loc[index, f"{key}_p_holm"] = holm(table.loc[index, f"{key}_p"].to_numpy())
    return table


def _cached_scores(cfg: Config, stage: str, *, aus: Iterable[int], ks: Iterable[int], n_repeats: int,
                   variants: Mapping[int, str] | None = None, folds: Sequence[str] = FOLD_SCHEMES) -> pd.DataFrame:
    """:func:`fold_scores` of some AUs x models on the CK+ peak frames, through the artifact store.

    The key holds the feature artifacts' keys, the labels, the knobs and the scoring code
    (only the functions used, so editing a claim's text does not rerun the probes).
    """
    data = pipeline.ckplus_data(cfg)
    ks = sorted(set(ks))
    labels = au_labels(data.aus)
    aus = [int(au) for au in aus if au in labels]
    variant = {au: (variants or {}).get(au, variant_for(au)) for au in aus}
    keyed = {(k, v): probe_features(cfg, k, variant=v) for k in ks for v in sorted(set(variant.values()))}
    params = {"features": {f"{k}-{v}": key for (k, v), (_, key) in keyed.items()},
              "aus": {str(au): v for au, v in variant.items()}, "labels": np.asarray(data.aus),
              "groups": np.asarray(data.groups), "folds": list(folds), "n_repeats": n_repeats, "C": cfg.probe_C,
              "seed": cfg.seed, "min_per_class": MIN_IMAGES_PER_CLASS,
              "code": _source_hash(_standardise, probe_predict, f1_positive, _repeat_scores, _task_scores,
                                   fold_scores, variant_for)}

    def make(folder: Path) -> dict[str, Any]:
        frame = fold_scores({kv: x for kv, (x, _) in keyed.items()}, {au: labels[au] for au in aus}, models=ks,
                            groups=data.groups, folds=folds, n_repeats=n_repeats, C=cfg.probe_C, seed=cfg.seed,
                            variants=variant, n_jobs=cfg.n_jobs)
        frame.to_csv(folder / "scores.csv", index=False)
        return {"rows": len(frame)}

    folder = pipeline.store(cfg).get_or_make(stage, params, make, code=("forgetting_aus.concepts",))
    return pd.read_csv(folder / "scores.csv")


# --------------------------------------------------------------------------- chapter 06
def paper_test_scores(cfg: Config) -> pd.DataFrame:
    """Fold scores of the paper's two tests (AU14 full, AU5 mouth-masked; FreezeB0 and FreezeB5).

    ``cfg.probe_repeats`` repetitions (the paper: 500), both fold schemes; cached.
    """
    return _cached_scores(cfg, "probe_paper_tests", aus=PAPER_TESTS, ks=(COMPARED_K, REFERENCE_K),
                          n_repeats=cfg.probe_repeats)


def paper_tests(cfg: Config, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """The paper's two tests, FreezeB0 vs FreezeB5, every test statistic, both fold schemes.

    Returns
    -------
    DataFrame, one row per (AU, folds)
        The :func:`comparison_table` columns (a = FreezeB0, b = FreezeB5; Holm over the two
        AUs of a scheme).
    """
    scores = paper_test_scores(cfg) if scores is None else scores
    table = comparison_table(scores, models=[pipeline.model_name(COMPARED_K)])
    order = {au: i for i, au in enumerate(PAPER_TESTS)}
    table = table.assign(_au=table["au"].map(order), _folds=table["folds"].map(FOLD_SCHEMES.index))
    return table.sort_values(["_au", "_folds"]).drop(columns=["_au", "_folds"]).reset_index(drop=True)


def paper_tests_display(tests: pd.DataFrame) -> pd.DataFrame:
    """The paper's tests as the paper reports them (mean F1 in %, t, p), this run beside the paper."""
    rows = []
    for _, r in tests.iterrows():
        paper = paper_values.PROBES[int(r["au"])]
        rows.append({
            "AU": f"AU{int(r['au'])}" + (" (mouth masked)" if r["variant"] == "mouth_masked" else ""),
            "folds": r["folds"],
            "F1 B0 %": round(100 * r["mean_f1_a"], 2), "F1 B5 %": round(100 * r["mean_f1_b"], 2),
            "paired t": round(r["paired_t_statistic"], 2), "paired p": f"{r['paired_t_p']:.3g}",
            "corrected t": round(r["corrected_t_statistic"], 2), "corrected p": f"{r['corrected_t_p']:.3g}",
            "5x2cv p": f"{r['dietterich_5x2cv_p']:.3g}",
            "B0 - B5 [95 % CI, corrected] (F1 points)":
                f"{100 * r['mean_difference']:+.2f} [{100 * r['corrected_t_ci_low']:+.2f}, "
                f"{100 * r['corrected_t_ci_high']:+.2f}]",
            "paper F1 B0 %": paper["mean_f1_FreezeB0"], "paper F1 B5 %": paper["mean_f1_FreezeB5"],
            "paper t": paper["t"], "paper p": f"{paper['p']:.3g}",
        })
    return pd.DataFrame(rows)


def per_repeat_differences(scores: pd.DataFrame, *, au: int, folds: str) -> np.ndarray:
    """Per-repetition mean F1 difference FreezeB0 - FreezeB5 (what the paper's t-test sees)."""
    pair = paired_frame(scores, au=au, model_a=pipeline.model_name(COMPARED_K), model_b=REFERENCE, folds=folds)
    return (pair["f1_a"] - pair["f1_b"]).groupby(pair["repeat"]).mean().to_numpy()


def sweep_scores(cfg: Config) -> pd.DataFrame:
    """Fold scores of every probe-able AU x FreezeB0..5, ``cfg.probe_sweep_repeats`` repetitions; cached."""
    return _cached_scores(cfg, "probe_sweep", aus=facs.AU_CODES, ks=pipeline.FREEZE_LEVELS,
                          n_repeats=cfg.probe_sweep_repeats)


def sweep(cfg: Config, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every AU x FreezeBk (k = 0..4) against FreezeB5: :func:`comparison_table` of the sweep."""
    scores = sweep_scores(cfg) if scores is None else scores
    models = [pipeline.model_name(k) for k in sorted(pipeline.FREEZE_LEVELS) if k != REFERENCE_K]
    return comparison_table(scores, models=models)


def sweep_display(table: pd.DataFrame, *, folds: str = "stratified") -> pd.DataFrame:
    """The sweep as a table: rows AUs, columns models; mean F1 difference (points) and marks.

    ``*`` = significant under the corrected test after Holm; ``(n)`` = under the naive
    (paper's) test after Holm only.
    """
    part = table[table["folds"] == folds]

    def cell(r: pd.Series) -> str:
        mark = "*" if r["corrected_t_p_holm"] < ALPHA else "(n)" if r["paired_t_p_holm"] < ALPHA else ""
        return f"{100 * r['mean_difference']:+.1f}{mark}"

    out = part.assign(cell=part.apply(cell, axis=1), AU=part["au"].map(lambda a: f"AU{a}")).pivot(
        index="AU", columns="model", values="cell")
    order = [f"AU{a}" for a in facs.AU_CODES if f"AU{a}" in out.index]
    columns = [pipeline.model_name(k) for k in sorted(pipeline.FREEZE_LEVELS, reverse=True) if k != REFERENCE_K]
    return out.reindex(index=order, columns=[c for c in columns if c in out.columns])


def forgotten_aus(table: pd.DataFrame, *, model: str = "FreezeB0", folds: str = "stratified",
                  test: str = "corrected_t", alpha: float = ALPHA) -> list[int]:
    """AUs a model "forgot": its probe difference to FreezeB5 is negative and significant.

    The rule: mean F1 difference ``model - FreezeB5 < 0`` and ``<test>_p_holm < alpha``
    (Holm over the sweep's AUs x models family of that fold scheme).

    Parameters
    ----------
    table : DataFrame
        :func:`sweep` output (columns ``folds``, ``au``, ``model``, ``mean_difference``,
        ``<test>_p_holm``).

    Returns
    -------
    list of int
        AU codes in ``facs.AU_CODES`` order.
    """
    column = f"{test}_p_holm"
    if column not in table.columns:
        raise ValueError(f"forgotten_aus: the table has no {column!r}; tests: {concepts.TEST_KEYS}")
    part = table[(table["model"] == model) & (table["folds"] == folds)]
    if part.empty:
        raise ValueError(f"forgotten_aus: no rows for {model} with {folds!r} folds; models: "
                         f"{sorted(table['model'].unique())}, folds: {sorted(table['folds'].unique())}")
    hit = part[(part["mean_difference"] < 0) & (part[column] < alpha)]
    return [code for code in facs.AU_CODES if code in set(hit["au"].astype(int))]


# --------------------------------------------------------------------------- crop validation
def chance_f1(prevalence: float | np.ndarray) -> float | np.ndarray:
    """F1 of always answering "present": ``2p / (1 + p)``, the best F1 without looking at the image."""
    p = np.asarray(prevalence, dtype=float)
    return 2 * p / (1 + p)


def crop_effect(f1_full: float, f1_cropped: float, prevalence: float) -> dict[str, float]:
    """How much of a probe's margin over chance the crop removes.

    Returns
    -------
    dict
        ``chance_f1``; ``removed_share = (f1_full - f1_cropped) / (f1_full - chance_f1)``
        (1 = down to chance, 0 = untouched; NaN when the uncropped probe is at chance);
        ``removed`` = ``removed_share >= REMOVED_SHARE``.
    """
    chance = float(chance_f1(prevalence))
    margin = f1_full - chance
    share = (f1_full - f1_cropped) / margin if margin > 0 else np.nan
    return {"chance_f1": chance, "removed_share": float(share), "removed": bool(share >= REMOVED_SHARE)}


def crop_validation(full: np.ndarray, cropped: np.ndarray, labels: Mapping[str, np.ndarray], *,
                    groups: np.ndarray | None = None, folds: str = "stratified", n_repeats: int, C: float,
                    seed: int, n_jobs: int = 1) -> pd.DataFrame:
    """Probe each AU on the same images uncropped and cropped, paired by fold.

    Parameters
    ----------
    full, cropped : float (n, d)
        One model's features of the uncropped and the cropped images.
    labels : mapping name -> int (n,)
        Presence of each AU (e.g. ``{"AU26": y26, "AU5": y5}``).
    groups, folds, n_repeats, C, seed, n_jobs : keyword-only
        As :func:`concepts.probe_concept`.

    Returns
    -------
    DataFrame, one row per AU
        ``au``, ``prevalence``, ``f1_full``, ``f1_cropped``, ``chance_f1``, ``removed_share``,
        ``removed`` (see :func:`crop_effect`), ``corrected_p`` (full vs cropped, corrected
        repeated-CV t-test).
    """
    rows = []
    for name, y in labels.items():
        y = np.asarray(y).astype(int)
        pair = concepts.probe_concept(full, cropped, y, groups=groups, n_repeats=n_repeats, folds=folds, C=C,
                                      seed=seed, n_jobs=n_jobs)
        rows.append(_crop_row(name, pair, float(y.mean())))
    return pd.DataFrame(rows)


def _crop_row(name: str, pair: pd.DataFrame, prevalence: float) -> dict[str, Any]:
    summary = concepts.compare_probes(pair)
    effect = crop_effect(summary["mean_f1_a"], summary["mean_f1_b"], prevalence)
    return {"au": name, "prevalence": prevalence, "f1_full": summary["mean_f1_a"], "f1_cropped": summary["mean_f1_b"],
            **effect, "corrected_p": summary["corrected_t_p"]}


def mouth_crop_validation(cfg: Config, *, aus: Sequence[int] = (26, 5), ks: Sequence[int] = (REFERENCE_K, COMPARED_K),
                          sweep_fold_scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """AU26 (jaw drop) and AU5 probes on uncropped vs mouth-masked images, per model.

    Stratified folds (the paper's), ``cfg.probe_sweep_repeats`` repetitions. The variant
    each AU has in the sweep (AU26 uncropped, AU5 masked) is read from the sweep's scores;
    only the other variant is probed here (cached).

    Returns
    -------
    DataFrame, one row per (model, AU)
        ``model``, then :func:`crop_validation`'s columns.
    """
    labels = au_labels(pipeline.ckplus_data(cfg).aus)
    missing = [au for au in aus if au not in labels]
    if missing:
        raise ValueError(f"mouth_crop_validation: AU{missing} have fewer than {MIN_IMAGES_PER_CLASS} present or "
                         "absent CK+ images; the crop cannot be validated on them")
    in_sweep = sweep_scores(cfg) if sweep_fold_scores is None else sweep_fold_scores
    other = {au: "full" if variant_for(au) == "mouth_masked" else "mouth_masked" for au in aus}
    extra = _cached_scores(cfg, "probe_crop_validation", aus=aus, ks=ks, n_repeats=cfg.probe_sweep_repeats,
                           variants=other, folds=("stratified",))
    scores = pd.concat([in_sweep, extra], ignore_index=True)
    rows = []
    for k in ks:
        for au in aus:
            part = scores[(scores["au"] == au) & (scores["k"] == k) & (scores["folds"] == "stratified")]
            full, cropped = (part[part["variant"] == v].set_index(["repeat", "fold"]) for v in VARIANTS)
            if len(full) != len(cropped) or full.empty:
                raise ValueError(f"mouth_crop_validation: AU{au}, FreezeB{k}: expected the same folds for both "
                                 f"variants, got {len(full)} and {len(cropped)} rows")
            pair = pd.DataFrame({"f1_a": full["f1"], "f1_b": cropped["f1"], "n_train": full["n_train"],
                                 "n_test": full["n_test"]}).reset_index()
            rows.append({"model": pipeline.model_name(k), **_crop_row(f"AU{au}", pair, float(labels[au][1].mean()))})
    return pd.DataFrame(rows)


def crop_verdict(validation: pd.DataFrame, *, model: str = REFERENCE, removed: str = "AU26", kept: str = "AU5") -> str:
    """``holds`` if the crop removes ``removed`` and keeps ``kept`` for ``model``; ``fails`` if
    it does not remove ``removed``; ``inconclusive`` if it removes both, or if the uncropped
    ``removed`` probe is not above chance (nothing to remove)."""
    part = validation[validation["model"] == model].set_index("au")
    if not np.isfinite(part.loc[removed, "removed_share"]):
        return "inconclusive"
    if not part.loc[removed, "removed"]:
        return "fails"
    return "inconclusive" if part.loc[kept, "removed"] else "holds"


# --------------------------------------------------------------------------- chapter 06 claims
def _share(value: float) -> str:
    return f"{100 * value:.0f} %" if np.isfinite(value) else "n/a (uncropped probe not above chance)"


def _test_verdict(p: float, difference: float, *, expected_negative: bool = True) -> str:
    if not np.isfinite(p) or p >= ALPHA:
        return "inconclusive"
    return "holds" if (difference < 0) == expected_negative else "fails"


def probe_claims(tests: pd.DataFrame, validation: pd.DataFrame, table: pd.DataFrame) -> list[Claim]:
    """§5's probe claims: per AU the paper's test and the corrected test (paper's folds),
    the grouped folds in the evidence, and the mouth crop's validation."""
    claims = []
    for au in PAPER_TESTS:
        rows = tests[tests["au"] == au].set_index("folds")
        r, g = rows.loc["stratified"], rows.loc["grouped"]
        paper = paper_values.PROBES[au]
        what = "AU14" if au == 14 else "AU5 (mouth cropped)"
        paper_text = (f"F1 B0 {paper['mean_f1_FreezeB0']:.2f} % vs. B5 {paper['mean_f1_FreezeB5']:.2f} %, "
                      f"t = {paper['t']}, p = {paper['p']:.3g}")
        naive = _test_verdict(r["paired_t_p"], r["mean_difference"])
        corrected = _test_verdict(r["corrected_t_p"], r["mean_difference"])
        corrected_grouped = _test_verdict(g["corrected_t_p"], g["mean_difference"])
        base = (f"F1 B0 {100 * r['mean_f1_a']:.2f} % vs. B5 {100 * r['mean_f1_b']:.2f} % "
                f"({int(r['n_repeats'])} repetitions)")
        claims.append(Claim(
            f"P-AU{au}-paired-t", PAPER, "§5, §4.3",
            f"FreezeB5 features detect {what} better than FreezeB0's (paired t-test significant, FreezeB5 higher)",
            paper_text, f"{base}; paired t = {r['paired_t_statistic']:.2f}, p = {r['paired_t_p']:.3g}", naive,
            "the paper's test: paired t-test over the per-repetition mean F1 of stratified 2-fold CV; holds if "
            "p < 0.05 with B0 < B5, fails if significant the other way, inconclusive otherwise"))
        note = (" The paper's naive test says holds, the corrected test does not: the significance comes from "
                "treating correlated repetitions as independent." if naive == "holds" and corrected != "holds" else "")
        claims.append(Claim(
            f"P-AU{au}-corrected-t", PAPER, "§5, §4.3",
            f"FreezeB5 features detect {what} better than FreezeB0's, under the corrected repeated-CV t-test",
            paper_text,
            f"{base}; corrected t = {r['corrected_t_statistic']:.2f}, p = {r['corrected_t_p']:.3g}, "
            f"B0 - B5 = {100 * r['mean_difference']:+.2f} [{100 * r['corrected_t_ci_low']:+.2f}, "
            f"{100 * r['corrected_t_ci_high']:+.2f}] F1 points; subject-grouped folds: corrected "
            f"p = {g['corrected_t_p']:.3g} ({corrected_grouped})",
            corrected,
            "Bouckaert & Frank's corrected repeated k-fold t-test on the stratified folds (the honest version of "
            "the paper's test); holds if p < 0.05 with B0 < B5, fails if significant the other way, inconclusive "
            "otherwise." + note))
    ref = validation[validation["model"] == REFERENCE].set_index("au")
    forgotten = forgotten_aus(table)
    claims.append(Claim(
        "P-AU5-crop-removes-AU26", PAPER, "§5",
        "Cropping the mouth makes the AU5 probe detect AU5 rather than AU26 (jaw drop)",
        "asserted, not measured",
        f"FreezeB5 probe F1, uncropped -> cropped: AU26 {ref.loc['AU26', 'f1_full']:.2f} -> "
        f"{ref.loc['AU26', 'f1_cropped']:.2f} (chance {ref.loc['AU26', 'chance_f1']:.2f}, "
        f"{_share(ref.loc['AU26', 'removed_share'])} of the margin over chance removed); AU5 "
        f"{ref.loc['AU5', 'f1_full']:.2f} -> {ref.loc['AU5', 'f1_cropped']:.2f} "
        f"(chance {ref.loc['AU5', 'chance_f1']:.2f}, {_share(ref.loc['AU5', 'removed_share'])} removed)",
        crop_verdict(validation),
        f"holds if the crop removes at least {REMOVED_SHARE:.0%} of AU26's margin over chance F1 (2p/(1+p)) and less "
        "of AU5's; fails if AU26 keeps more than half; inconclusive if both are removed or the uncropped AU26 probe "
        "is not above chance"))
    gained = [a for a in forgotten_aus(table.assign(mean_difference=-table["mean_difference"])) if a in (5, 14)]
    claims.append(Claim(
        "P-sweep-forgotten-AUs", PAPER, "§5, §6",
        "FreezeB0 forgot AU5 and AU14",
        "AU5, AU14",
        "forgotten by FreezeB0: " + (", ".join(f"AU{a}" for a in forgotten) or "none")
        + (f"; detected significantly better by FreezeB0: {', '.join(f'AU{a}' for a in gained)}" if gained else ""),
        "holds" if {5, 14} <= set(forgotten) else ("fails" if gained else "inconclusive"),
        "rule: AUs whose FreezeB0 - FreezeB5 probe difference is negative with corrected-test p < 0.05 after Holm "
        "over the AUs x models sweep (stratified folds); holds if AU5 and AU14 are both among them, fails if either "
        "is significantly better detected by FreezeB0, inconclusive otherwise"))
    return claims


# --------------------------------------------------------------------------- chapter 07
def tradeoff_data(cfg: Config, *, recalls: pd.DataFrame | None = None,
                  tables: Mapping[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Figure 7's numbers: pain recall (Table 1) and surprise / contempt recall (re-trained).

    Returns
    -------
    DataFrame indexed by model, FreezeB5..FreezeB0
        ``pain_recall``, ``pain_low``, ``pain_high`` (sequence-bootstrap 95 %), and for each
        of :data:`TRADEOFF_EMOTIONS` the mean and SD over re-training repetitions
        (``surprise``, ``surprise_sd``, ...), and ``emotion`` = their mean.
    """
    tables = analysis.table1(cfg) if tables is None else tables
    recalls = analysis.retrained_recalls(cfg) if recalls is None else recalls
    return tradeoff_frame(tables["with_ci"], recalls)


def tradeoff_frame(with_ci: pd.DataFrame, recalls: pd.DataFrame) -> pd.DataFrame:
    """:func:`tradeoff_data` from Table 1's ``with_ci`` and the re-trained recalls (pure)."""
    order = [pipeline.model_name(k) for k in sorted(pipeline.FREEZE_LEVELS, reverse=True)]
    out = pd.DataFrame(index=pd.Index(order, name="model"))
    for stat, column in (("estimate", "pain_recall"), ("low", "pain_low"), ("high", "pain_high")):
        out[column] = [float(with_ci.loc[(m, stat), ("Recall", "pain")]) for m in order]
    for emotion in TRADEOFF_EMOTIONS:
        part = recalls[recalls["emotion"] == emotion].groupby("model")["recall"]
        out[emotion] = part.mean().reindex(order)
        out[f"{emotion}_sd"] = part.std(ddof=1).reindex(order)
    out["emotion"] = out[list(TRADEOFF_EMOTIONS)].mean(axis=1)
    return out


def best_tradeoff(data: pd.DataFrame, *, n_best: int = 2, pain: str = "pain_recall", emotion: str = "emotion"
                  ) -> pd.DataFrame:
    """The trade-off rule: the models with the largest min of the two min-max-scaled recalls.

    Each criterion is scaled over the models to [0, 1] (worst model 0, best 1; a criterion
    on which all models tie scales to 1), a model's score is the smaller of its two scaled
    values, and the best trade-off models are those whose score reaches the ``n_best``-th
    highest score (ties included; the paper marks two models).

    Parameters
    ----------
    data : DataFrame indexed by model, with columns ``pain`` and ``emotion``

    Returns
    -------
    DataFrame
        ``data`` with ``scaled_pain``, ``scaled_emotion``, ``score``, ``best`` (bool).
    """
    if not 1 <= n_best <= len(data):
        raise ValueError(f"n_best must lie in 1..{len(data)} (the number of models), got {n_best}")
    out = data.copy()
    for column, name in ((pain, "scaled_pain"), (emotion, "scaled_emotion")):
        values = out[column].astype(float)
        if values.isna().any():
            raise ValueError(f"best_tradeoff: column {column!r} has missing values for "
                             f"{list(values[values.isna()].index)}")
        span = values.max() - values.min()
        out[name] = (values - values.min()) / span if span > 0 else 1.0
    out["score"] = out[["scaled_pain", "scaled_emotion"]].min(axis=1)
    threshold = np.sort(out["score"].to_numpy())[::-1][n_best - 1]
    out["best"] = out["score"] >= threshold - 1e-12
    return out


def tradeoff_stability(data: pd.DataFrame, recalls: pd.DataFrame, *, n_best: int = 2) -> pd.DataFrame:
    """The rule applied to each re-training repetition (pain recall fixed): which models win.

    Returns
    -------
    DataFrame, one row per repetition: ``repetition``, ``best`` (models, comma-joined).
    """
    rows = []
    for repetition, part in recalls[recalls["emotion"].isin(TRADEOFF_EMOTIONS)].groupby("repetition"):
        emotion = part.groupby("model")["recall"].mean().reindex(data.index)
        chosen = best_tradeoff(data.assign(emotion=emotion), n_best=n_best)
        rows.append({"repetition": int(repetition), "best": ", ".join(chosen.index[chosen["best"]])})
    return pd.DataFrame(rows)


def worst_for_emotions(recalls: pd.DataFrame, *, emotions: Sequence[str] = TRADEOFF_EMOTIONS, n: int = 2
                       ) -> dict[str, dict[str, Any]]:
    """Per emotion, the ``n`` models with the lowest mean recall, and how often per repetition.

    Returns
    -------
    dict emotion -> {"worst": list of models (lowest first), "means": Series, "share_b0_b1":
    share of repetitions whose ``n`` lowest are FreezeB0 and FreezeB1}
    """
    target = {pipeline.model_name(0), pipeline.model_name(1)}
    out = {}
    for emotion in emotions:
        part = recalls[recalls["emotion"] == emotion]
        means = part.groupby("model")["recall"].mean().sort_values(kind="stable")
        per_rep = [set(p.sort_values("recall", kind="stable")["model"].iloc[:n]) == target
                   for _, p in part.groupby("repetition")]
        out[emotion] = {"worst": list(means.index[:n]), "means": means, "share_b0_b1": float(np.mean(per_rep))}
    return out


def forgotten_prototype_check(forgotten: Iterable[int]) -> dict[str, Any]:
    """Which emotions' prototypes use the forgotten AUs, and whether any enters the PSPI.

    Returns
    -------
    dict
        ``users`` (AU -> emotions whose prototype uses it), ``pain_aus`` (forgotten AUs in
        ``facs.PSPI_AUS``), ``outside`` (forgotten AUs used by neither surprise nor
        contempt), ``verdict``: holds if the set is non-empty, every AU is used by surprise
        or contempt and none by pain; fails if some AU is a pain AU or used by neither;
        inconclusive if nothing was found forgotten.
    """
    forgotten = [int(a) for a in forgotten]
    users = {a: [e for e in facs.EMOTIONS if a in facs.EMOTION_PROTOTYPES[e]] for a in forgotten}
    pain_aus = [a for a in forgotten if a in facs.PSPI_AUS]
    outside = [a for a in forgotten if not set(users[a]) & set(TRADEOFF_EMOTIONS)]
    verdict = "inconclusive" if not forgotten else ("fails" if pain_aus or outside else "holds")
    return {"users": users, "pain_aus": pain_aus, "outside": outside, "verdict": verdict}


def discussion_claims(data: pd.DataFrame, chosen: pd.DataFrame, stability: pd.DataFrame, recalls: pd.DataFrame,
                      forgotten: Sequence[int]) -> list[Claim]:
    """§6's claims (the pain-recall claim is chapter 03's)."""
    worst = worst_for_emotions(recalls)
    statuses = []
    for info in worst.values():
        hit = set(info["worst"]) == {"FreezeB0", "FreezeB1"}
        none = not set(info["worst"]) & {"FreezeB0", "FreezeB1"}
        statuses.append("holds" if hit and info["share_b0_b1"] >= 0.8 else "fails" if none else "inconclusive")
    verdict_worst = "holds" if all(s == "holds" for s in statuses) else (
        "fails" if all(s == "fails" for s in statuses) else "inconclusive")
    best = list(chosen.index[chosen["best"]])
    paper_best = {"FreezeB3", "FreezeB2"}
    share = float(np.mean([set(b.split(", ")) == paper_best for b in stability["best"]])) if len(stability) else np.nan
    verdict_best = ("holds" if set(best) == paper_best and share >= 0.5 else
                    "fails" if not set(best) & paper_best else "inconclusive")
    check = forgotten_prototype_check(forgotten)
    return [
        Claim("D-B0-B1-worst-surprise-contempt", PAPER, "§6, Figure 7",
              "FreezeB1 and FreezeB0 yield the worst results for surprise and contempt", "shown in Figure 7",
              "; ".join(f"{e}: lowest {', '.join(i['worst'])} ({100 * i['share_b0_b1']:.0f} % of repetitions B0+B1)"
                        for e, i in worst.items()),
              verdict_worst,
              "per emotion: holds if the two lowest mean recalls are FreezeB0 and FreezeB1 and they are the two "
              "lowest in at least 80 % of the re-training repetitions; fails if neither is among the two lowest; "
              "overall holds (fails) if both emotions do"),
        Claim("D-best-tradeoff-B3-B2", PAPER, "§6, Figure 7",
              "The best trade-off models between pain and emotion recognition are FreezeB3 and FreezeB2",
              "FreezeB3, FreezeB2 (green ellipses)",
              f"rule picks {', '.join(best)}; FreezeB3+FreezeB2 in {100 * share:.0f} % of re-training repetitions",
              verdict_best,
              "rule: min-max scale pain recall and mean(surprise, contempt) recall over the six models, score = the "
              "smaller of the two, best = the two highest scores; holds if it picks FreezeB3 and FreezeB2 (and does "
              "so in at least half of the repetitions), fails if it picks neither"),
        Claim("D-forgotten-AUs-not-pain", PAPER, "§6, Figure 6",
              "The forgotten AUs are used by surprise and contempt but not by pain",
              "AU5 (surprise), AU14 (contempt); neither a pain AU",
              "forgotten here: " + (", ".join(f"AU{a} ({', '.join(check['users'][a]) or 'no prototype'})"
                                              for a in forgotten) or "none")
              + (f"; pain AUs among them: {check['pain_aus']}" if check["pain_aus"] else ""),
              check["verdict"],
              "on this run's forgotten set (chapter 06's rule) against the prototype table: holds if every forgotten "
              "AU is in the surprise or contempt prototype and none is a PSPI AU; inconclusive if none was forgotten"),
    ]
