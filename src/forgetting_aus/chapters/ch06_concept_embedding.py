"""Chapter 06 (§4.3, §5): the AU14 and AU5 probe tests, the mouth-mask validation and the sweep over AUs.

The probe machinery (labels, image variants, features, the probe, fold scores, the tests)
lives in :mod:`forgetting_aus.concepts`; this module holds the chapter's stages (which AUs
and models are probed, cached), its rules (which AUs were forgotten, does the mouth mask
remove AU26), its claims and the numbers its prose quotes.

Sign convention: differences are ``model - FreezeB5``; negative means the model's
features detect the AU worse than the emotion features (the paper's "forgot").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgetting_aus import concepts, facs, paper_values, parallel, pipeline, stats
from forgetting_aus.claims import Claim
from forgetting_aus.concepts import (
    FOLD_SCHEMES,
    MIN_IMAGES_PER_CLASS,
    REFERENCE,
    VARIANTS,
    au_labels,
    cached_family_features,
    chance_f1,
    comparison_table,
    fold_scores,
    paired_frame,
    variant_for,
)
from forgetting_aus.config import Config
from forgetting_aus.paper_values import PAPER
from forgetting_aus.pipeline import REFERENCE_K
from forgetting_aus.stats import ALPHA

#: The model compared with the reference in the paper's two tests.
COMPARED_K = 0


#: The paper's two tests (§5): AU -> image variant.
PAPER_TESTS: dict[int, str] = {14: "full", 5: "mouth_masked"}


#: Crop validation: the crop "removes" an AU when the cropped probe has lost at least this
#: share of the uncropped probe's margin over chance F1.
REMOVED_SHARE = 0.5


def probe_features(cfg: Config, k: int, *, variant: str = "full") -> tuple[np.ndarray, str]:
    """``block5_pool`` features of FreezeB<k> on the CK+ peak frames (cached), and their key.

    The six models' features are made together the first time any is asked for: they
    share their first k conv blocks with FreezeB5 (:func:`concepts.cached_family_features`).
    """
    data = pipeline.ckplus_data(cfg)
    family = {level: (trained.model_path, trained.key) for level, trained in pipeline.pain_models(cfg).items()}
    features = cached_family_features(pipeline.store(cfg), family, reference=max(family), images=data.images,
                                      landmarks=data.landmarks)
    return features[(k, variant)]


def _cached_scores(cfg: Config, stage: str, *, aus: Iterable[int], ks: Iterable[int], n_repeats: int,
                   variants: Mapping[int, str] | None = None, folds: Sequence[str] = FOLD_SCHEMES) -> pd.DataFrame:
    """:func:`fold_scores` of some AUs x models on the CK+ peak frames, through the artifact store.

    The key holds the feature artifacts' keys, the labels, the knobs and the scoring code
    (only the functions used, so editing a claim's text does not rerun the probes).
    """
    data = pipeline.ckplus_data(cfg)
    ks = sorted(set(ks))
    labels = au_labels(data.present)
    aus = [int(au) for au in aus if au in labels]
    variant = {au: (variants or {}).get(au, variant_for(au)) for au in aus}
    keyed = {(k, v): probe_features(cfg, k, variant=v) for k in ks for v in sorted(set(variant.values()))}
    params = {"features": {f"{k}-{v}": key for (k, v), (_, key) in keyed.items()},
              "aus": {str(au): v for au, v in variant.items()}, "labels": np.asarray(data.present),
              "groups": np.asarray(data.groups), "folds": list(folds), "n_repeats": n_repeats, "C": cfg.probe_C,
              "seed": cfg.seed, "min_per_class": MIN_IMAGES_PER_CLASS}

    def make(folder: Path) -> dict[str, Any]:
        with parallel.backend(cfg) as workers:
            frame = fold_scores({kv: x for kv, (x, _) in keyed.items()}, {au: labels[au] for au in aus}, models=ks,
                                groups=data.groups, folds=folds, n_repeats=n_repeats, C=cfg.probe_C, seed=cfg.seed,
                                variants=variant, n_jobs=workers, progress=f"{stage}: probe fits")
        frame.to_csv(folder / "scores.csv", index=False)
        return {"rows": len(frame)}

    folder = pipeline.store(cfg).get_or_make(stage, params, make)
    return pd.read_csv(folder / "scores.csv")


# --------------------------------------------------------------------------- chapter 06
def paper_test_scores(cfg: Config) -> pd.DataFrame:
    """Fold scores of the paper's two tests (AU14 full, AU5 mouth-masked; FreezeB0 and FreezeB5).

    ``cfg.probe_repeats`` repetitions (the paper: 500), both fold schemes; cached. When
    the sweep runs at least as many repetitions (the default and paper profiles: 500
    each), these are rows of the sweep — the same AUs, variants, models, seeds and so the
    same folds — and are taken from it rather than probed a second time.
    """
    if cfg.probe_sweep_repeats >= cfg.probe_repeats:
        return paper_rows(sweep_scores(cfg), n_repeats=cfg.probe_repeats)
    return _cached_scores(cfg, "probe_paper_tests", aus=PAPER_TESTS, ks=(COMPARED_K, REFERENCE_K),
                          n_repeats=cfg.probe_repeats)


def paper_rows(scores: pd.DataFrame, *, n_repeats: int) -> pd.DataFrame:
    """The paper's two tests' rows of sweep scores: AUs of :data:`PAPER_TESTS` on their
    variants, FreezeB0 and FreezeB5, the first ``n_repeats`` repetitions."""
    models = [pipeline.model_name(k) for k in (COMPARED_K, REFERENCE_K)]
    keep = (scores["au"].isin(list(PAPER_TESTS)) & scores["model"].isin(models) & (scores["repeat"] < n_repeats)
            & (scores["variant"] == scores["au"].map(PAPER_TESTS)))
    rows = scores[keep].reset_index(drop=True)
    if rows["au"].nunique() != len(PAPER_TESTS) or rows["repeat"].nunique() != n_repeats:
        raise ValueError(f"paper_rows: the scores lack the paper's tests (AUs {list(PAPER_TESTS)} on their variants, "
                         f"{models}, {n_repeats} repetitions)")
    return rows


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


def _crop_row(name: str, pair: pd.DataFrame, prevalence: float) -> dict[str, Any]:
    """One row of :func:`crop_validation` from the paired scores (a = uncropped, b = cropped)."""
    summary = concepts.compare_probes(pair)
    effect = crop_effect(summary["mean_f1_a"], summary["mean_f1_b"], prevalence)
    return {"au": name, "prevalence": prevalence, "f1_full": summary["mean_f1_a"], "f1_cropped": summary["mean_f1_b"],
            **effect, "corrected_p": summary["corrected_t_p"]}


def crop_validation(scores: pd.DataFrame, prevalence: Mapping[int, float], *, aus: Sequence[int],
                    ks: Sequence[int]) -> pd.DataFrame:
    """Each AU's probe on the uncropped vs the mouth-masked images, paired by fold, per model.

    Parameters
    ----------
    scores : DataFrame
        :func:`concepts.fold_scores` output holding, for every AU of ``aus`` and model of
        ``ks``, stratified-fold scores on both :data:`concepts.VARIANTS` (same seed and
        repetitions, hence the same folds).
    prevalence : mapping AU code -> float
        Share of the AU's images where it is present (for the chance F1).
    aus, ks : sequence of int, keyword-only
        AU codes and frozen-block counts, in the output's order (models outer).

    Returns
    -------
    DataFrame, one row per (model, AU)
        ``model``, ``au`` (``"AU26"``...), ``prevalence``, ``f1_full``, ``f1_cropped``,
        ``chance_f1``, ``removed_share``, ``removed`` (see :func:`crop_effect`),
        ``corrected_p`` (uncropped vs cropped, corrected repeated-CV t-test).
    """
    rows = []
    for k in ks:
        for au in aus:
            part = scores[(scores["au"] == au) & (scores["k"] == k) & (scores["folds"] == "stratified")]
            full, cropped = (part[part["variant"] == v].set_index(["repeat", "fold"]) for v in VARIANTS)
            if len(full) != len(cropped) or full.empty:
                raise ValueError(f"crop_validation: AU{au}, FreezeB{k}: expected the same folds for both "
                                 f"variants, got {len(full)} and {len(cropped)} rows")
            pair = pd.DataFrame({"f1_a": full["f1"], "f1_b": cropped["f1"], "n_train": full["n_train"],
                                 "n_test": full["n_test"]}).reset_index()
            rows.append({"model": pipeline.model_name(k), **_crop_row(f"AU{au}", pair, prevalence[au])})
    return pd.DataFrame(rows)


def mouth_crop_validation(cfg: Config, *, aus: Sequence[int] = (26, 5), ks: Sequence[int] = (REFERENCE_K, COMPARED_K),
                          sweep_fold_scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """AU26 (jaw drop) and AU5 probes on uncropped vs mouth-masked images, per model.

    Stratified folds (the paper's), ``cfg.probe_sweep_repeats`` repetitions. The variant
    each AU has in the sweep (AU26 uncropped, AU5 masked) is read from the sweep's scores;
    only the other variant is probed here (cached, stage ``probe_crop_validation``).

    Returns
    -------
    DataFrame, one row per (model, AU)
        :func:`crop_validation`'s columns.
    """
    labels = au_labels(pipeline.ckplus_data(cfg).present)
    missing = [au for au in aus if au not in labels]
    if missing:
        raise ValueError(f"mouth_crop_validation: AU{missing} have fewer than {MIN_IMAGES_PER_CLASS} present or "
                         "absent CK+ images; the crop cannot be validated on them")
    in_sweep = sweep_scores(cfg) if sweep_fold_scores is None else sweep_fold_scores
    other = {au: "full" if variant_for(au) == "mouth_masked" else "mouth_masked" for au in aus}
    extra = _cached_scores(cfg, "probe_crop_validation", aus=aus, ks=ks, n_repeats=cfg.probe_sweep_repeats,
                           variants=other, folds=("stratified",))
    prevalence = {au: float(labels[au][1].mean()) for au in aus}
    return crop_validation(pd.concat([in_sweep, extra], ignore_index=True), prevalence, aus=aus, ks=ks)


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


def above_chance(scores: pd.DataFrame, *, au: int, model: str, folds: str = "stratified",
                 level: float = 0.95) -> dict[str, float]:
    """A model's probe F1 for one AU against chance, with the corrected repeated-CV interval.

    Chance is the F1 of always answering "present", ``2p / (1 + p)``, ``p`` the AU's
    prevalence (read from the scores: each repetition's test folds hold every image once).
    The interval is Bouckaert & Frank's corrected one of the mean fold F1, so that the 500
    overlapping repetitions do not pass for 1 000 independent folds.

    Parameters
    ----------
    scores : DataFrame
        :func:`concepts.fold_scores` output holding ``au`` x ``model`` x ``folds``.

    Returns
    -------
    dict
        ``mean_f1``, ``chance_f1``, ``low``, ``high`` (the interval of the mean F1) and
        ``n_repeats``.
    """
    part = scores[(scores["au"] == au) & (scores["model"] == model) & (scores["folds"] == folds)]
    if part.empty:
        raise ValueError(f"above_chance: no {folds} scores of AU{au} for {model}")
    first = part[part["repeat"] == part["repeat"].min()]
    chance = float(chance_f1(first["n_pos_test"].sum() / first["n_test"].sum()))
    margins = part.pivot(index="repeat", columns="fold", values="f1").to_numpy() - chance
    result = stats.corrected_repeated_cv_t_test(margins, n_train=part["n_train"].mean(),
                                                n_test=part["n_test"].mean(), level=level)
    return {"mean_f1": chance + result.estimate, "chance_f1": chance, "low": chance + result.ci_low,
            "high": chance + result.ci_high, "n_repeats": int(part["repeat"].nunique())}


def both_use_verdict(rows: Sequence[Mapping[str, float]]) -> str:
    """``holds`` if every model's interval lies above chance, ``fails`` if one lies wholly
    below it, ``inconclusive`` otherwise (:func:`above_chance` rows)."""
    if all(r["low"] > r["chance_f1"] for r in rows):
        return "holds"
    return "fails" if any(r["high"] < r["chance_f1"] for r in rows) else "inconclusive"


def crop_keeps_verdict(validation: pd.DataFrame, *, au: str = "AU5") -> str:
    """Kim et al.'s "cropped pictures do not hinder concept detection", for ``au`` and every model:
    ``holds`` if the crop removes less than :data:`REMOVED_SHARE` of the probe's margin over
    chance in every model, ``fails`` if it removes more in one, ``inconclusive`` when an
    uncropped probe is at chance (no margin to keep)."""
    part = validation[validation["au"] == au]
    if part.empty or not np.isfinite(part["removed_share"]).all():
        return "inconclusive"
    return "fails" if part["removed"].any() else "holds"


# --------------------------------------------------------------------------- chapter 06 claims
def _share(value: float) -> str:
    return f"{100 * value:.0f} %" if np.isfinite(value) else "n/a (uncropped probe not above chance)"


def _test_verdict(p: float, difference: float, *, expected_negative: bool = True) -> str:
    if not np.isfinite(p) or p >= ALPHA:
        return "inconclusive"
    return "holds" if (difference < 0) == expected_negative else "fails"


def probe_claims(tests: pd.DataFrame, validation: pd.DataFrame, table: pd.DataFrame, *,
                 scores: pd.DataFrame) -> list[Claim]:
    """§5's probe claims: per AU the paper's test and the corrected test (paper's folds),
    the grouped folds in the evidence; both models' AU14 probes against chance (``scores``:
    :func:`paper_test_scores`); and the mouth crop's validation."""
    claims = []
    for au in PAPER_TESTS:
        rows = tests[tests["au"] == au].set_index("folds")
        r, g = rows.loc["stratified"], rows.loc["grouped"]
        paper = paper_values.PROBES[au]
        what = "AU14" if au == 14 else "AU5 (mouth cropped)"
        paper_text = (f"F1 B0 {paper['mean_f1_FreezeB0']:.2f} % vs. B5 {paper['mean_f1_FreezeB5']:.2f} %, "
                      f"t = {paper['t']}, {stats.p_equation(paper['p'])}")
        naive = _test_verdict(r["paired_t_p"], r["mean_difference"])
        corrected = _test_verdict(r["corrected_t_p"], r["mean_difference"])
        corrected_grouped = _test_verdict(g["corrected_t_p"], g["mean_difference"])
        base = (f"F1 B0 {100 * r['mean_f1_a']:.2f} % vs. B5 {100 * r['mean_f1_b']:.2f} % "
                f"({int(r['n_repeats'])} repetitions)")
        claims.append(Claim(
            f"P-AU{au}-paired-t", PAPER, "§5, §4.3",
            f"FreezeB5 features detect {what} better than FreezeB0's (paired t-test significant, FreezeB5 higher)",
            paper_text, f"{base}; paired t = {r['paired_t_statistic']:.2f}, {stats.p_equation(r['paired_t_p'])}", naive,
            "the paper's test: paired t-test over the per-repetition mean F1 of stratified 2-fold CV; holds if "
            "p < 0.05 with B0 < B5, fails if significant the other way, inconclusive otherwise"))
        note = (" The paper's naive test says holds, the corrected test does not: the significance comes from "
                "treating correlated repetitions as independent." if naive == "holds" and corrected != "holds" else "")
        claims.append(Claim(
            f"P-AU{au}-corrected-t", PAPER, "§5, §4.3",
            f"FreezeB5 features detect {what} better than FreezeB0's, under the corrected repeated-CV t-test",
            paper_text,
            f"{base}; corrected t = {r['corrected_t_statistic']:.2f}, {stats.p_equation(r['corrected_t_p'])}, "
            f"B0 - B5 = {100 * r['mean_difference']:+.2f} [{100 * r['corrected_t_ci_low']:+.2f}, "
            f"{100 * r['corrected_t_ci_high']:+.2f}] F1 points; subject-grouped folds: corrected "
            f"{stats.p_equation(g['corrected_t_p'])} ({corrected_grouped})",
            corrected,
            "Bouckaert & Frank's corrected repeated k-fold t-test on the stratified folds (the honest version of "
            "the paper's test); holds if p < 0.05 with B0 < B5, fails if significant the other way, inconclusive "
            "otherwise." + note))
    uses = {model: above_chance(scores, au=14, model=model) for model in (pipeline.model_name(COMPARED_K), REFERENCE)}
    claims.append(Claim(
        "P-AU14-both-models-use", PAPER, "§5",
        "Both FreezeB5 and FreezeB0 use AU14 to an extent (their AU14 probes detect it above chance)",
        f"asserted; mean F1 B0 {paper_values.PROBES[14]['mean_f1_FreezeB0']:.2f} %, "
        f"B5 {paper_values.PROBES[14]['mean_f1_FreezeB5']:.2f} %",
        "; ".join(f"{model} F1 {100 * r['mean_f1']:.1f} % [{100 * r['low']:.1f}, {100 * r['high']:.1f}]"
                  for model, r in uses.items()) + f" vs. chance {100 * uses[REFERENCE]['chance_f1']:.1f} %",
        both_use_verdict(list(uses.values())),
        "chance: the F1 of always answering 'present', 2p/(1+p); 95 % corrected repeated-CV intervals of the mean "
        "fold F1 (stratified folds); holds if both lie above chance, fails if one lies below"))
    au5 = validation[validation["au"] == "AU5"].set_index("model")
    claims.append(Claim(
        "P-crop-does-not-hinder", PAPER, "§5 (citing Kim et al. 2018)",
        "Taking cropped pictures of a concept does not hinder its detection (AU5 with the mouth cropped)",
        "asserted, not measured",
        "; ".join(f"{model}: AU5 F1 {r['f1_full']:.2f} -> {r['f1_cropped']:.2f} cropped ({_share(r['removed_share'])} "
                  "of the margin over chance removed)" for model, r in au5.iterrows()),
        crop_keeps_verdict(validation),
        f"holds if the crop removes less than {REMOVED_SHARE:.0%} of AU5's margin over chance F1 in both models, "
        "fails if it removes more in one"))
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


# --------------------------------------------------------------------------- chapter 06 numbers and tables
def au_list(aus: Iterable[int]) -> str:
    """AU codes as prose: ``"AU5, AU14"``, or ``"none"`` for no AU."""
    return ", ".join(f"AU{a}" for a in aus) or "none"


def au_counts(labels: Mapping[int, tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """Present and coded images per probe-able AU (rows ``present``, ``of images``; columns ``AU<code>``).

    Parameters
    ----------
    labels : mapping AU code -> (rows, y)
        :func:`concepts.au_labels` output.
    """
    return pd.DataFrame({"present": {f"AU{a}": int(y.sum()) for a, (_, y) in labels.items()},
                         "of images": {f"AU{a}": len(y) for a, (_, y) in labels.items()}}).T


def probe_data_numbers(cfg: Config) -> dict[str, int]:
    """The probe data in numbers: ``n_images`` (CK+ peak frames), ``n_subjects``, ``n_dims``
    (``block5_pool`` values per image), ``n_aus`` (probe-able AUs) and ``n_present_uncoded``
    (AU entries listed with intensity 0, which every label counts as present)."""
    data = pipeline.ckplus_data(cfg)
    features, _ = probe_features(cfg, REFERENCE_K)
    return {"n_images": len(data), "n_subjects": len(set(data.groups)), "n_dims": int(features.shape[1]),
            "n_aus": len(au_labels(data.present)),
            # CK+ lists some present AUs with intensity 0 (not coded): counted as present
            "n_present_uncoded": int(np.sum((data.present == 1) & (data.aus == 0)))}


def repetition_differences(scores: pd.DataFrame, tests: pd.DataFrame) -> dict[str, np.ndarray]:
    """:func:`per_repeat_differences` of every row of :func:`paper_tests`, keyed ``"AU14 stratified"`` etc.

    In the order of ``tests`` (what :func:`plots.ch06_concept_embedding.repetition_differences_figure`
    expects).
    """
    return {f"AU{au} {folds}": per_repeat_differences(scores, au=au, folds=folds)
            for au, folds in zip(tests["au"], tests["folds"], strict=True)}


def paper_test_numbers(tests: pd.DataFrame, *, n_repeats: int) -> dict[str, float | int]:
    """The numbers the prose quotes on the paper's two tests, this run's beside the paper's.

    Parameters
    ----------
    tests : DataFrame
        :func:`paper_tests` output.
    n_repeats : int, keyword-only
        Repetitions of the tests (``cfg.probe_repeats``).

    Returns
    -------
    dict
        Per AU of :data:`PAPER_TESTS`, on the stratified folds: ``au<code>_f1_b0``,
        ``au<code>_f1_b5`` (mean F1, %), ``au<code>_t`` and ``au<code>_p`` (the paper's
        test), ``au<code>_p_corrected``; ``au<code>_p_grouped`` (corrected, grouped folds);
        every p as :func:`forgetting_aus.stats.p_equation` writes it ('p = 0.001');
        the paper's ``au<code>_paper_f1_b0``, ``au<code>_paper_f1_b5``, ``au<code>_paper_t``,
        ``au<code>_paper_p`` (from :data:`paper_values.PROBES`); and ``n_repeats``.
    """
    rows = tests.set_index(["au", "folds"])
    out: dict[str, float | int] = {}
    for au in PAPER_TESTS:
        r = rows.loc[(au, "stratified")]
        paper = paper_values.PROBES[au]
        out |= {f"au{au}_f1_b0": 100 * r["mean_f1_a"], f"au{au}_f1_b5": 100 * r["mean_f1_b"],
                f"au{au}_t": r["paired_t_statistic"], f"au{au}_p": stats.p_equation(r["paired_t_p"]),
                f"au{au}_p_corrected": stats.p_equation(r["corrected_t_p"]),
                f"au{au}_p_grouped": stats.p_equation(rows.loc[(au, "grouped"), "corrected_t_p"]),
                f"au{au}_paper_f1_b0": paper["mean_f1_FreezeB0"], f"au{au}_paper_f1_b5": paper["mean_f1_FreezeB5"],
                f"au{au}_paper_t": paper["t"], f"au{au}_paper_p": stats.p_equation(paper["p"])}
    out["n_repeats"] = int(n_repeats)
    return out


def corrected_test_power(scores: pd.DataFrame, *, alpha: float = ALPHA) -> dict[str, float | int]:
    """What the corrected test can detect on the paper's two tests (stratified folds), at this run's variance.

    The corrected repeated-CV t-test (:func:`forgetting_aus.stats.corrected_repeated_cv_t_test`)
    calls a mean difference significant when ``|mean| >= t_crit * sqrt((1/J + n_test/n_train)
    * var)``, ``J`` fold differences of variance ``var``: the half-width of its ``1 - alpha``
    interval, taken here from the test itself (:func:`concepts.compare_probes`).

    Parameters
    ----------
    scores : DataFrame
        :func:`paper_test_scores` output.
    alpha : float, keyword-only

    Returns
    -------
    dict
        ``n_folds``, ``n_fold_scores`` (J), ``test_train_ratio`` (n_test / n_train), ``variance_inflation``
        (``(1/J + n_test/n_train) / (1/J)``: how much wider the corrected variance of the
        mean is than the naive one over all fold differences); per AU of
        :data:`PAPER_TESTS`, ``au<code>_min_difference`` (the smallest mean F1 difference the
        test calls significant, F1 points) and ``au<code>_difference`` (this run's, F1 points).
    """
    out: dict[str, float | int] = {}
    for au in PAPER_TESTS:
        pair = paired_frame(scores, au=au, model_a=pipeline.model_name(COMPARED_K), model_b=REFERENCE,
                            folds="stratified")
        summary = concepts.compare_probes(pair, level=1 - alpha)
        j = summary["n_repeats"] * summary["n_folds"]
        ratio = summary["n_test"] / summary["n_train"]
        out |= {"n_folds": int(summary["n_folds"]), "n_fold_scores": int(j), "test_train_ratio": ratio,
                "variance_inflation": (1 / j + ratio) * j,
                # the half-width of the corrected 1 - alpha interval: |mean| at which p = alpha
                f"au{au}_min_difference": 100 * (summary["corrected_t_ci_high"] - summary["corrected_t_ci_low"]) / 2,
                f"au{au}_difference": 100 * summary["mean_difference"]}
    return out


def crop_numbers(validation: pd.DataFrame) -> dict[str, float | str]:
    """The numbers the prose quotes on the mouth mask: the reference's AU26 and AU5 probes.

    Returns
    -------
    dict
        ``val_<AU>_f1_full``, ``val_<AU>_f1_cropped``, ``val_<AU>_chance_f1`` for AU26 and
        AU5 (FreezeB5), and ``crop_verdict`` (:func:`crop_verdict`).
    """
    ref = validation[validation["model"] == REFERENCE].set_index("au")
    out: dict[str, float | str] = {f"val_{au}_{column}": float(ref.loc[au, column])
                                   for au in ("AU26", "AU5") for column in ("f1_full", "f1_cropped", "chance_f1")}
    out["crop_verdict"] = crop_verdict(validation)
    return out


def sweep_numbers(table: pd.DataFrame, *, n_repeats: int) -> dict[str, str | int]:
    """The sweep's forgotten AUs as prose, under the chapter's rule and two variations.

    Returns
    -------
    dict
        ``forgotten`` (corrected test, stratified folds: the rule), ``forgotten_grouped``
        (subject-grouped folds), ``forgotten_naive`` (the paper's paired t-test), each as
        :func:`au_list`; ``n_sweep_repeats``.
    """
    return {"forgotten": au_list(forgotten_aus(table)),
            "forgotten_grouped": au_list(forgotten_aus(table, folds="grouped")),
            "forgotten_naive": au_list(forgotten_aus(table, test="paired_t")),
            "n_sweep_repeats": int(n_repeats)}
