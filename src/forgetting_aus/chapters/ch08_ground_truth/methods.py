"""Chapter 08, part 4: the paper's methods scored against the truth.

One concern: what the method says and how well it matches. The compared classifier
pairs (:func:`comparisons`), chapter 05's LRP region ranking on them
(:func:`lrp_rankings`, stage ``gt_lrp``), chapter 06's probe comparison of the controls
(:func:`probe_tables`, stage ``gt_probe_scores``), and precision@k of each method's
ranking against the counterfactual truth with a permutation p-value
(:func:`precision_table`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgetting_aus import cache, concepts, facs, parallel, pipeline
from forgetting_aus.chapters import ch05_visual_analysis as ch05
from forgetting_aus.chapters.ch08_ground_truth.controls import (
    NULL,
    SHAM,
    X_FREE,
    control_model,
    null_model,
    null_retrained,
)
from forgetting_aus.chapters.ch08_ground_truth.pairs import au_label
from forgetting_aus.chapters.ch08_ground_truth.truth import COMPARED_KS, TOP_K, truth_ranking
from forgetting_aus.config import Config
from forgetting_aus.pipeline import REFERENCE_K
from forgetting_aus.stats import ALPHA

#: Random pairings drawn for the permutation p-value of the rank agreement (:func:`rank_agreement`).
N_PERMUTATIONS = 10_000


# =========================================================================== 5a. LRP
@dataclasses.dataclass(frozen=True)
class Comparison:
    """Two emotion classifiers compared by the method: ``reference`` vs ``other``."""

    name: str
    reference: str
    other: str


def comparisons(*, controls: bool = True) -> list[Comparison]:
    """The compared model pairs: the paper's (FreezeB5 vs FreezeB0) and the controls.

    The positive control compares the X-free fine-tune with its sham (the reference), the
    null control the second-seed FreezeB0 with the first.
    """
    out = [Comparison(pipeline.model_name(0), pipeline.model_name(REFERENCE_K), pipeline.model_name(0))]
    if controls:
        out += [Comparison(X_FREE, SHAM, X_FREE), Comparison(NULL, pipeline.model_name(0), NULL)]
    return out


def emotion_classifiers(cfg: Config, *, controls: bool = True) -> dict[str, pipeline.Trained]:
    """Every emotion classifier an LRP comparison needs, by name."""
    out = {pipeline.model_name(REFERENCE_K): pipeline.retrained_model(cfg, REFERENCE_K, 0),
           pipeline.model_name(0): pipeline.retrained_model(cfg, 0, 0)}
    if controls:
        out |= {X_FREE: control_model(cfg, X_FREE), SHAM: control_model(cfg, SHAM), NULL: null_retrained(cfg)}
    return out


def matched_selection(labels: np.ndarray, y_reference: np.ndarray, y_other: np.ndarray, *, max_images: int,
                      seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Target rows (reference right, other wrong; any class) and a class-matched baseline.

    Chapter 05's selection pooled over the emotions: targets are capped at ``max_images``
    (random subsample); the baseline takes, per class, as many both-right images as that
    class has targets (fewer where fewer exist), so the two sets share their class mix and
    a region score cannot differ between them only because the emotions differ.

    Returns
    -------
    target, baseline : sorted int64 arrays of test rows
    """
    labels, y_reference, y_other = (np.asarray(a) for a in (labels, y_reference, y_other))
    rng = np.random.default_rng(seed)
    right = y_reference == labels
    target = np.flatnonzero(right & (y_other != labels))
    if len(target) > max_images:
        target = rng.choice(target, size=max_images, replace=False)
    baseline = []
    for c in np.unique(labels[target]):
        pool = np.flatnonzero(right & (y_other == labels) & (labels == c))
        count = min(len(pool), int((labels[target] == c).sum()))
        baseline.append(rng.choice(pool, size=count, replace=False))
    baseline = np.concatenate(baseline) if baseline else np.zeros(0, dtype=np.int64)
    return np.sort(target).astype(np.int64), np.sort(baseline).astype(np.int64)


def lrp_rankings(cfg: Config, *, controls: bool = True, explain=None) -> dict[str, pd.DataFrame]:
    """Chapter 05's AU region ranking for every comparison (LRP maps cached, stage ``gt_lrp``).

    Returns
    -------
    dict comparison name -> :func:`forgetting_aus.chapters.ch05_visual_analysis.au_ranking`
    table (indexed by AU name, sorted by ``difference``; ``rank``, ``difference``,
    ``p_holm``, ``n_target``...).
    """
    from forgetting_aus.explain import lrp

    test = pipeline.emotion_data(cfg)["test"]
    classifiers = emotion_classifiers(cfg, controls=controls)
    chosen = {}
    for c in comparisons(controls=controls):
        chosen[c.name] = matched_selection(test.labels, classifiers[c.reference].predictions()["y_pred"],
                                           classifiers[c.other].predictions()["y_pred"],
                                           max_images=cfg.lrp_max_images, seed=cfg.seed)
    rows: dict[str, list[np.ndarray]] = {}
    for c in comparisons(controls=controls):
        for model in (c.reference, c.other):
            rows.setdefault(model, []).extend(chosen[c.name])
    rows = {m: np.unique(np.concatenate(r)).astype(np.int64) for m, r in rows.items()}
    rows = {m: r for m, r in rows.items() if len(r)}
    params = {"models": {m: classifiers[m].key for m in rows}, "rows": rows, "method": ch05.METHOD}

    def make(folder: Path) -> dict[str, Any]:
        maps = lrp.explain_rows({m: classifiers[m].model_path for m in rows}, test.images, test.labels, rows,
                                method=ch05.METHOD, explain=explain)
        # Model names are free text: the arrays are stored by position, the names beside them.
        cache.write_npz(folder / "maps.npz", **{f"maps_{i}": maps[m] for i, m in enumerate(rows)})
        cache.write_json(folder / "names.json", list(rows))
        return {"n_maps": int(sum(len(r) for r in rows.values()))}

    folder = pipeline.store(cfg).get_or_make("gt_lrp", params, make)
    names = cache.read_json(folder / "names.json")
    arrays = cache.read_npz(folder / "maps.npz")
    maps = {m: arrays[f"maps_{i}"] for i, m in enumerate(names)}

    def of(model: str, wanted: np.ndarray) -> np.ndarray:
        if len(wanted) == 0:
            return np.zeros((0, cfg.image_size, cfg.image_size), dtype=np.float32)
        return maps[model][np.searchsorted(rows[model], wanted)]

    out = {}
    for c in comparisons(controls=controls):
        target, baseline = chosen[c.name]
        if len(target) == 0:
            baseline = target
        d_target = lrp.difference_map(of(c.reference, target), of(c.other, target))
        d_baseline = lrp.difference_map(of(c.reference, baseline), of(c.other, baseline))
        out[c.name] = ch05.au_ranking(d_target, test.landmarks[target], d_baseline, test.landmarks[baseline])
    return out


def lrp_flags(table: pd.DataFrame, *, alpha: float = ALPHA) -> list[int]:
    """AUs the LRP ranking flags: positive extra difference and Holm-adjusted p < alpha."""
    hit = table[(table["difference"] > 0) & (table["p_holm"] < alpha)]
    return [int(a) for a in hit["au"]]


def lrp_order(table: pd.DataFrame) -> list[int]:
    """AU codes in the ranking's order (largest extra difference first), unranked left out."""
    return [int(a) for a in table.dropna(subset=["difference"]).sort_values("difference", ascending=False)["au"]]


# =========================================================================== 5b. probes
#: Integer codes standing in for the control models in :func:`concepts.fold_scores`.
_PROBE_CODES = {X_FREE: 100, SHAM: 101, NULL: 102}


def probe_tables(cfg: Config) -> dict[str, pd.DataFrame]:
    """Chapter 06's probe comparison for the controls (stratified folds, cached).

    The X-free fine-tune against its sham, and the second-seed FreezeB0 against the first.
    ``control_probe_repeats`` repetitions; AU5 on mouth-masked images, as in chapter 06.

    Returns
    -------
    dict
        ``"controls"``: :func:`concepts.comparison_table` of X-free vs sham;
        ``"null"``: of the second-seed FreezeB0 vs FreezeB0. Holm over each table's AUs.
    """

    data = pipeline.ckplus_data(cfg)
    labels = concepts.au_labels(data.present)
    variants = sorted({concepts.variant_for(a) for a in labels})
    trained = {0: pipeline.pain_model(cfg, 0), _PROBE_CODES[X_FREE]: control_model(cfg, X_FREE),
               _PROBE_CODES[SHAM]: control_model(cfg, SHAM),
               _PROBE_CODES[NULL]: null_model(cfg)}
    features, keys = {}, {}
    for code, t in trained.items():
        for v in variants:
            features[(code, v)], keys[f"{code}-{v}"] = concepts.cached_features(
                pipeline.store(cfg), model_path=t.model_path, model_key=t.key, images=data.images,
                landmarks=data.landmarks, variant=v)
    params = {"features": keys, "labels": np.asarray(data.present), "n_repeats": cfg.control_probe_repeats,
              "C": cfg.probe_C, "seed": cfg.seed}

    def make(folder: Path) -> dict[str, Any]:
        with parallel.backend(cfg) as workers:
            scores = concepts.fold_scores(features, labels, models=list(trained), groups=data.groups,
                                         folds=["stratified"], n_repeats=cfg.control_probe_repeats, C=cfg.probe_C,
                                         seed=cfg.seed, n_jobs=workers, progress="control probes: fits")
        scores.to_csv(folder / "scores.csv", index=False)
        return {"rows": len(scores)}

    folder = pipeline.store(cfg).get_or_make("gt_probe_scores", params, make)
    scores = pd.read_csv(folder / "scores.csv")
    rename = {pipeline.model_name(code): name for name, code in _PROBE_CODES.items()}
    scores["model"] = scores["model"].replace(rename)
    return {"controls": concepts.comparison_table(scores, models=[X_FREE], reference=SHAM),
            "null": concepts.comparison_table(scores, models=[NULL], reference=pipeline.model_name(0))}


def probe_rows(probes: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The rows of both :func:`probe_tables` tables (controls, then null) in one table."""
    return pd.concat([probes["controls"], probes["null"]])


def probe_flags(table: pd.DataFrame, model: str, *, holm: bool = True, alpha: float = ALPHA) -> list[int]:
    """AUs the probe test flags for ``model``: negative difference, corrected-test p < alpha.

    ``holm=True`` uses the Holm-adjusted p (chapter 06's rule), else the per-AU p.
    """
    column = "corrected_t_p_holm" if holm else "corrected_t_p"
    part = table[(table["model"] == model) & (table["folds"] == "stratified")]
    hit = part[(part["mean_difference"] < 0) & (part[column] < alpha)]
    return [int(a) for a in facs.AU_CODES if a in set(hit["au"].astype(int))]


def probe_order(table: pd.DataFrame, model: str) -> list[int]:
    """AU codes by probe F1 difference ``model - reference``, most negative first."""
    part = table[(table["model"] == model) & (table["folds"] == "stratified")]
    return [int(a) for a in part.sort_values("mean_difference", kind="stable")["au"]]


def evidence_for(model: str, truth: pd.DataFrame, lrp: Mapping[str, pd.DataFrame], probe_sweep: pd.DataFrame
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One model's ground truth, LRP ranking and probe sweep rows (stratified folds).

    Returns
    -------
    truth_rows, lrp_table, probe_rows : DataFrame
        The rows of ``truth`` and of ``probe_sweep`` (``folds == "stratified"``; all its
        models) for ``model``, and ``lrp[model]``: the inputs of the method-vs-truth figure.
    """
    return truth[truth["model"] == model], lrp[model], probe_sweep[probe_sweep["folds"] == "stratified"]


# =========================================================================== 5c. scoring
def set_precision(ranking: Sequence[int], forgotten: Sequence[int], k: int) -> dict[str, float]:
    """Share of the method's top ``k`` among the AUs truly forgotten, its chance and exact p.

    Parameters
    ----------
    ranking : sequence of AU codes, the method's order (most forgotten first)
    forgotten : sequence of AU codes
        The AUs the ground truth calls forgotten beyond seed noise (only those ranked count).
    k : int

    Returns
    -------
    dict
        ``precision`` (hits / k), ``chance`` (the forgotten AUs' share of the ranked AUs:
        a random order's expected precision) and ``p_precision``, the probability that a
        random order does at least as well: the hypergeometric tail, which is exactly the
        permutation distribution, so nothing is sampled.
    """
    from scipy.stats import hypergeom

    ranking = list(ranking)
    if len(set(ranking)) != len(ranking):
        raise ValueError(f"the ranking lists an AU twice: {ranking}")
    if not 1 <= k <= len(ranking):
        raise ValueError(f"k must lie in 1..{len(ranking)} (the ranked AUs), got {k}")
    marked = set(forgotten) & set(ranking)
    hits = len(set(ranking[:k]) & marked)
    return {"precision": hits / k, "chance": len(marked) / len(ranking),
            "p_precision": float(hypergeom.sf(hits - 1, len(ranking), len(marked), k))}


def _pearson_of_ranks(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman's rho of untied ranks (Pearson's r of the ranks), vectorised for scipy's permutation test."""
    x = x - x.mean(axis=axis, keepdims=True)
    y = y - y.mean(axis=axis, keepdims=True)
    return (x * y).sum(axis=axis) / np.sqrt((x * x).sum(axis=axis) * (y * y).sum(axis=axis))


def rank_agreement(ranking: Sequence[int], truth: Sequence[int], *, n_resamples: int = N_PERMUTATIONS,
                   seed: int) -> dict[str, float]:
    """Spearman's rho between a method's order of the AUs and the truth's, with a one-sided permutation p.

    Parameters
    ----------
    ranking, truth : sequence of AU codes, most forgotten first
        Only the AUs both rank are compared (:func:`common_order`).
    n_resamples : int, keyword-only
        Random pairings of ``scipy.stats.permutation_test`` (all of them when fewer exist).
    seed : int, keyword-only

    Returns
    -------
    dict
        ``spearman`` (1: the same order, 0: unrelated, -1: reversed) and ``p_spearman``
        (probability that a random order agrees at least as well); NaN for fewer than 3 AUs.
    """
    from scipy.stats import permutation_test

    r, t = common_order(ranking, truth)
    if len(r) < 3:
        return {"spearman": np.nan, "p_spearman": np.nan}
    method_ranks = np.arange(len(r), dtype=float)
    truth_ranks = np.array([t.index(a) for a in r], dtype=float)
    result = permutation_test((method_ranks, truth_ranks), _pearson_of_ranks, permutation_type="pairings",
                              vectorized=True, n_resamples=n_resamples, alternative="greater", random_state=seed)
    return {"spearman": float(result.statistic), "p_spearman": float(result.pvalue)}


def common_order(ranking: Sequence[int], truth: Sequence[int]) -> tuple[list[int], list[int]]:
    """Both orders restricted to the AUs both rank (the probe skips rare AUs, the logits AU43)."""
    shared = set(ranking) & set(truth)
    return [a for a in ranking if a in shared], [a for a in truth if a in shared]


def score_ranking(method: str, model: str, ranking: Sequence[int], truth: Sequence[int], *,
                  forgotten: Sequence[int], k: int = TOP_K, seed: int) -> dict[str, Any]:
    """One method's ranking against the truth: rank agreement over all AUs, precision@k against the forgotten set.

    Parameters
    ----------
    ranking, truth : sequence of AU codes, most forgotten first
    forgotten : sequence of AU codes, keyword-only
        The AUs forgotten beyond seed noise (:func:`truth.beyond_seed_noise`).

    Returns
    -------
    dict
        ``method``, ``model``, ``k``, ``n_aus`` (ranked by both), ``n_forgotten`` (of
        them), ``method_top``, ``true_top``, :func:`rank_agreement`'s and
        :func:`set_precision`'s values (NaN when the method ranked k AUs or fewer).
    """
    r, t = common_order(ranking, truth)
    row = {"method": method, "model": model, "k": k, "n_aus": len(r),
           "n_forgotten": len(set(forgotten) & set(r)),
           "method_top": ", ".join(map(au_label, r[:k])) or "nothing ranked",
           "true_top": ", ".join(map(au_label, (t if r else list(truth))[:k])),
           "spearman": np.nan, "p_spearman": np.nan, "precision": np.nan, "chance": np.nan, "p_precision": np.nan}
    if len(r) <= k:  # nothing to score: the method ranked too few AUs (e.g. no target image)
        return row
    return row | rank_agreement(r, t, seed=seed) | set_precision(r, forgotten, k)


def precision_table(truth: pd.DataFrame, *, lrp: Mapping[str, pd.DataFrame] | None, probe_sweep: pd.DataFrame | None,
                    k: int = TOP_K, seed: int) -> pd.DataFrame:
    """The LRP ranking (FreezeB0) and the probe sweep (every FreezeB<k>) scored against the truth (:func:`score_ranking`).

    Parameters
    ----------
    truth : DataFrame
        :func:`forgotten_by_k` output through :func:`truth.beyond_seed_noise` (the ground truth).
    lrp : mapping comparison name -> ranking table, or None
    probe_sweep : :func:`ch06.sweep` output, or None
    """
    if "forgotten_beyond_seed" not in truth:
        raise ValueError("precision_table needs the truth through truth.beyond_seed_noise (column "
                         "forgotten_beyond_seed): precision is counted against the AUs forgotten beyond seed noise")

    def scored(method: str, name: str, order: list[int]) -> dict[str, Any]:
        part = truth[truth["model"] == name]
        forgotten = [int(a) for a in part.loc[part["forgotten_beyond_seed"].astype(bool), "au"]]
        return score_ranking(method, name, order, truth_ranking(part), forgotten=forgotten, k=k, seed=seed)

    rows = []
    b0 = pipeline.model_name(0)
    if lrp is not None and b0 in lrp:
        rows.append(scored("LRP regions", b0, lrp_order(lrp[b0])))
    if probe_sweep is not None:
        for kk in COMPARED_KS:
            name = pipeline.model_name(kk)
            rows.append(scored("probe sweep", name, probe_order(probe_sweep, name)))
    return pd.DataFrame(rows)


#: :func:`precision_table`'s columns as the chapter shows them, named for the reader.
PRECISION_COLUMNS: dict[str, str] = {
    "method": "method", "model": "model", "n_aus": "AUs ranked", "n_forgotten": "of them forgotten",
    "method_top": "method's top k", "true_top": "truth's top k", "spearman": "Spearman rho",
    "p_spearman": "p (rho)", "precision": "precision@k", "chance": "chance precision", "p_precision": "p (precision)"}


def precision_display(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`precision_table` as the chapter shows it: :data:`PRECISION_COLUMNS`, with k in the two top-k names.

    Parameters
    ----------
    table : DataFrame
        :func:`precision_table` (one k for every row).

    Returns
    -------
    DataFrame
        The same rows; the columns of :data:`PRECISION_COLUMNS`, renamed.
    """
    k = int(table["k"].iloc[0]) if len(table) else TOP_K
    names = {key: name.replace("top k", f"top {k}").replace("@k", f"@{k}") for key, name in PRECISION_COLUMNS.items()}
    return table[list(PRECISION_COLUMNS)].rename(columns=names)
