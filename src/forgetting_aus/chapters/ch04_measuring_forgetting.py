"""Chapter 04 (§4.1, §5, Figure 4): re-trained heads, recall drops, McNemar, learnability floors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from forgetting_aus import claims as claims_module
from forgetting_aus import evaluation, facs, paper_values, pipeline, stats
from forgetting_aus.chapters.ch02_emotion_model import (
    HARD_ENOUGH_MARGIN,
    emotion_model_summary,
    selected_validation_recall,
)
from forgetting_aus.chapters.ch03_pain_transfer import table1
from forgetting_aus.claims import Claim, verdict_from_interval
from forgetting_aus.config import Config
from forgetting_aus.paper_values import PAPER
from forgetting_aus.pipeline import REFERENCE_K

#: The emotions §5 says pain training makes the network forget (McNemar, FreezeB5 vs. FreezeB0).
FORGOTTEN = ("surprise", "contempt")


def retrained_recalls(cfg: Config) -> pd.DataFrame:
    """Per-class test recall of every re-trained emotion model, one row per (model, repetition, emotion)."""
    test = pipeline.emotion_data(cfg)["test"]
    rows = []
    for (k, repetition), trained in pipeline.retrained_models(cfg).items():
        recall = evaluation.per_class_recall(test.labels, trained.predictions()["y_pred"], class_names=facs.EMOTIONS)
        rows += [{"model": pipeline.model_name(k), "frozen_blocks": k, "repetition": repetition, "emotion": emotion,
                  "recall": float(value)} for emotion, value in recall.items()]
    return pd.DataFrame(rows)


def recall_summary(recalls: pd.DataFrame) -> pd.DataFrame:
    """Mean and SD over repetitions: rows emotions, columns (statistic, model)."""
    table = recalls.groupby(["emotion", "model"])["recall"].agg(["mean", "std"]).unstack("model")
    order = [pipeline.model_name(k) for k in sorted(pipeline.FREEZE_LEVELS, reverse=True)]
    return table.reindex(index=list(facs.EMOTIONS)).reindex(columns=order, level=1)


def mcnemar_table(cfg: Config, *, repetition: int = 0) -> pd.DataFrame:
    """Per-class McNemar, FreezeB5 against each FreezeBk (re-trained heads of one repetition), Holm-corrected."""
    test = pipeline.emotion_data(cfg)["test"]
    models = pipeline.retrained_models(cfg)
    predictions = {pipeline.model_name(k): models[(k, repetition)].predictions()["y_pred"]
                   for k in sorted(pipeline.FREEZE_LEVELS, reverse=True)}
    return evaluation.mcnemar_family(test.labels, predictions, reference=pipeline.model_name(REFERENCE_K),
                                     class_names=facs.EMOTIONS)


def mcnemar_display(mcnemar: pd.DataFrame, *, model: str | None = None) -> pd.DataFrame:
    """:func:`mcnemar_table` with the columns the chapter shows, named for the reader.

    Parameters
    ----------
    mcnemar : DataFrame
        :func:`mcnemar_table`.
    model : str, keyword-only, optional
        Only the tests of FreezeB5 against this model (e.g. ``"FreezeB0"``, the paper's
        comparison); None: every test.

    Returns
    -------
    DataFrame indexed by ("vs. FreezeB5", class)
        ``n``, ``only B5 right``, ``only Bk right``, ``test``, ``p_value``, ``p_holm``
        (Holm over every test of the table, also when ``model`` selects some),
        ``recall B5``, ``recall Bk``.
    """
    if model is not None and model not in set(mcnemar["model_b"]):
        raise ValueError(f"mcnemar_display: no tests against {model!r}; models: {sorted(set(mcnemar['model_b']))}")
    chosen = mcnemar if model is None else mcnemar[mcnemar["model_b"] == model]
    columns = ["model_b", "class", "n", "a_only", "b_only", "test", "p_value", "p_holm", "recall_a", "recall_b"]
    return chosen[columns].rename(
        columns={"model_b": "vs. FreezeB5", "a_only": "only B5 right", "b_only": "only Bk right",
                 "recall_a": "recall B5", "recall_b": "recall Bk"}).set_index(["vs. FreezeB5", "class"])


def mcnemar_numbers(mcnemar: pd.DataFrame) -> dict[str, str]:
    """McNemar p values of FreezeB5 vs. FreezeB0 for :data:`FORGOTTEN`, beside the paper's, by glue name.

    Returns
    -------
    dict
        ``p_<emotion>``, ``p_holm_<emotion>`` (this run, raw and Holm-corrected) and
        ``paper_p_<emotion>`` for each emotion of :data:`FORGOTTEN`, as
        :func:`forgetting_aus.stats.p_equation` writes them ('p = 0.0068').
    """
    rows = mcnemar[(mcnemar["model_b"] == "FreezeB0") & mcnemar["class"].isin(list(FORGOTTEN))].set_index("class")
    out = {}
    for emotion in FORGOTTEN:
        out[f"p_{emotion}"] = stats.p_equation(rows.loc[emotion, "p_value"])
        out[f"p_holm_{emotion}"] = stats.p_equation(rows.loc[emotion, "p_holm"])
        out[f"paper_p_{emotion}"] = stats.p_equation(paper_values.MCNEMAR_P[emotion])
    return out


def recall_drop(recalls: pd.DataFrame, emotion: str, k: int) -> dict:
    """Recall of FreezeB5 minus FreezeBk for one emotion, paired over repetitions, with a t interval."""
    pivot = recalls[recalls["emotion"] == emotion].pivot(index="repetition", columns="frozen_blocks", values="recall")
    return _mean_with_t_interval((pivot[REFERENCE_K] - pivot[k]).to_numpy())


def recall_trend(recalls: pd.DataFrame, emotion: str) -> dict:
    """How one emotion's recall changes per frozen block: least-squares slope over k = 0..5.

    One slope per repetition (recall on the number of frozen blocks), then their mean
    with a 95 % t interval over repetitions. Positive: recall rises with the blocks kept
    from the emotion model, i.e. falls as more blocks are trained for pain (B5 -> B0).

    Returns
    -------
    dict
        ``mean``, ``low``, ``high`` (recall per block) and ``n`` (repetitions).
    """
    pivot = recalls[recalls["emotion"] == emotion].pivot(index="repetition", columns="frozen_blocks", values="recall")
    blocks = pivot.columns.to_numpy(float)
    centred = blocks - blocks.mean()
    slopes = (pivot.to_numpy() - pivot.to_numpy().mean(axis=1, keepdims=True)) @ centred / (centred @ centred)
    return _mean_with_t_interval(slopes)


def _mean_with_t_interval(values: np.ndarray) -> dict:
    mean = float(values.mean())
    if len(values) > 1 and values.std(ddof=1) > 0:
        half = float(scipy_stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    else:
        half = 0.0
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": len(values)}


def mainly_affected_verdict(drops: dict[str, dict], *, named: tuple[str, ...] = FORGOTTEN) -> str:
    """§6's "pain training mainly affects the recognition of surprise and contempt", as a rule that can fail.

    Parameters
    ----------
    drops : dict emotion -> dict
        :func:`recall_drop` of every emotion (B5 - B0: ``mean``, ``low``, ``high``).
    named : tuple of str, keyword-only
        The emotions the claim names.

    Returns
    -------
    str
        ``"holds"`` when each named emotion's interval lies above every other emotion's
        (their drops are the largest beyond the seed spread); ``"fails"`` when a named
        emotion's mean drop ranks in the lower half; ``"inconclusive"`` otherwise.
    """
    ranking = sorted(drops, key=lambda e: drops[e]["mean"], reverse=True)
    if any(ranking.index(e) >= len(ranking) / 2 for e in named):
        return "fails"
    others = [e for e in drops if e not in named]
    if min(drops[e]["low"] for e in named) > max(drops[e]["high"] for e in others):
        return "holds"
    return "inconclusive"


def forgetting_breadth(drops: dict[str, dict]) -> dict[str, object]:
    """Which emotions lose recall from FreezeB5 to FreezeB0 beyond the seed spread, and a word for it.

    Returns
    -------
    dict
        ``emotions`` (list, largest drop first, those whose 95 % interval lies above 0),
        ``count`` and ``pattern``: ``"broad"`` when at least half of the emotions lose
        recall, ``"narrow"`` when at most two do, ``"moderate"`` in between.
    """
    lost = sorted((e for e in drops if drops[e]["low"] > 0), key=lambda e: drops[e]["mean"], reverse=True)
    pattern = "broad" if len(lost) >= len(drops) / 2 else "narrow" if len(lost) <= 2 else "moderate"
    return {"emotions": lost, "count": len(lost), "pattern": pattern}


def breadth_numbers(recalls: pd.DataFrame) -> dict[str, str | int]:
    """:func:`forgetting_breadth` of the B5 - B0 drops, by glue name, for the chapter's prose.

    Returns
    -------
    dict
        ``forgetting_pattern`` (broad / moderate / narrow), ``n_forgotten`` and
        ``forgotten_list`` (the emotions, largest drop first; "none" when empty).
    """
    breadth = forgetting_breadth({e: recall_drop(recalls, e, 0) for e in facs.EMOTIONS})
    return {"forgetting_pattern": breadth["pattern"], "n_forgotten": breadth["count"],
            "forgotten_list": ", ".join(breadth["emotions"]) or "none"}


def head_floors(cfg: Config) -> pd.DataFrame:
    """Learnability floors of the re-trained emotion heads, one row per FreezeB<k>.

    Each model's measure is its repetitions' mean validation macro recall at the selected
    epoch; the floor is chance (one of eight) plus chapter 02's margin.
    """
    by_model: dict[str, list[float]] = {}
    for (k, _repetition), trained in sorted(pipeline.retrained_models(cfg).items(), reverse=True):
        by_model.setdefault(pipeline.model_name(k), []).append(selected_validation_recall(trained))
    return claims_module.learnability_floors({name: float(np.mean(v)) for name, v in by_model.items()},
                                             n_classes=len(facs.EMOTIONS), margin=HARD_ENOUGH_MARGIN)


def forgetting_claims(cfg: Config, recalls: pd.DataFrame, mcnemar: pd.DataFrame, *,
                      floors: pd.DataFrame | None = None) -> list[Claim]:
    """§5's forgetting claims as predicates on the re-trained models.

    A claim that compares a re-trained model below its learnability floor (``floors``,
    :func:`head_floors`) is inconclusive, with the reason.
    """
    claims = []
    for emotion in FORGOTTEN:
        drops = {k: recall_drop(recalls, emotion, k) for k in (0, 1)}
        low = min(d["low"] for d in drops.values())
        high = max(d["high"] for d in drops.values())
        verdict = "holds" if low > 0 else ("fails" if high < 0 else "inconclusive")
        claims.append(Claim(
            f"F4-{emotion}-lower-in-B0-B1", PAPER, "§5, Figure 4",
            f"{emotion.capitalize()} recall is notably lower for FreezeB1 and FreezeB0 than for FreezeB5",
            "shown in Figure 4 (no numbers in the text)",
            "; ".join(f"B5 - B{k} = {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]" for k, d in drops.items()),
            verdict, f"95 % t intervals over {drops[0]['n']} re-training repetitions; holds if both lie above 0"))
        trend = recall_trend(recalls, emotion)
        claims.append(Claim(
            f"F4-{emotion}-falls-over-blocks", PAPER, "§5, Figure 4",
            f"The recall of {emotion} reduces over the blocks (from FreezeB5 to FreezeB0)",
            "shown in Figure 4 (no numbers in the text)",
            f"slope {trend['mean']:+.3f} [{trend['low']:+.3f}, {trend['high']:+.3f}] recall per frozen block",
            verdict_from_interval(trend["low"], trend["high"]),
            f"least-squares slope of recall on the number of frozen blocks, per repetition; 95 % t interval over "
            f"{trend['n']} repetitions; holds if it lies above 0"))
        row = mcnemar[(mcnemar["model_b"] == "FreezeB0") & (mcnemar["class"] == emotion)].iloc[0]
        higher = row["recall_a"] > row["recall_b"]
        statement = (f"McNemar's test finds FreezeB5 and FreezeB0 differ significantly in {emotion} recall "
                     "(FreezeB5 higher)")
        measured = (f"{stats.p_equation(row['p_value'])} (Holm {stats.p_text(row['p_holm'])}, {row['test']}); "
                    f"recall B5 {row['recall_a']:.2f} vs. B0 {row['recall_b']:.2f}")
        # The paper's test as the paper ran it (one test, uncorrected), and the same test
        # corrected for the 40 this chapter runs: two claims, so a reader sees both.
        claims.append(Claim(
            f"M-{emotion}-B5-vs-B0-uncorrected", PAPER, "§5", statement + ", as the paper tested it",
            stats.p_equation(paper_values.MCNEMAR_P[emotion]), measured,
            "holds" if row["p_value"] < stats.ALPHA and higher else "fails",
            f"the paper's test: one McNemar test at {stats.ALPHA:g}, uncorrected; repetition 0"))
        claims.append(Claim(
            f"M-{emotion}-B5-vs-B0-holm", PAPER, "§5", statement + ", corrected for multiple tests",
            f"{stats.p_equation(paper_values.MCNEMAR_P[emotion])} (uncorrected)", measured,
            "holds" if row["p_holm"] < stats.ALPHA and higher else "fails",
            f"Holm-corrected over 8 classes x 5 comparisons at {stats.ALPHA:g}; repetition 0"))
    drops = {e: recall_drop(recalls, e, 0) for e in facs.EMOTIONS}
    top = sorted(drops, key=lambda e: drops[e]["mean"], reverse=True)
    breadth = forgetting_breadth(drops)
    claims.append(Claim(
        "F4-surprise-contempt-most-affected", PAPER, "§6",
        "Pain training mainly affects the recognition of surprise and contempt",
        "surprise and contempt",
        "largest mean drops B5 - B0: " + ", ".join(f"{e} ({drops[e]['mean']:+.3f})" for e in top[:3])
        + "; " + ", ".join(f"{e} ranks {top.index(e) + 1} of {len(top)}" for e in FORGOTTEN)
        + f"; {breadth['count']} of {len(top)} emotions lose recall beyond the seed spread",
        mainly_affected_verdict(drops),
        "holds if both 95 % t intervals of the drop lie above every other emotion's; fails if either ranks in the "
        "lower half by mean drop"))
    pairs = {"M-": ["FreezeB5", "FreezeB0"], "F4-surprise-contempt": ["FreezeB5", "FreezeB0"],
             "F4-surprise-lower": ["FreezeB5", "FreezeB1", "FreezeB0"],
             "F4-contempt-lower": ["FreezeB5", "FreezeB1", "FreezeB0"]}
    everyone = [pipeline.model_name(k) for k in pipeline.FREEZE_LEVELS]

    def compared(claim_id: str) -> list[str]:
        return next((names for prefix, names in pairs.items() if claim_id.startswith(prefix)), everyone)

    return [claims_module.floored(claim, floors, compared=compared(claim.claim_id)) for claim in claims]


def learnability_floors(cfg: Config, *, recalls: pd.DataFrame | None = None) -> pd.DataFrame:
    """The default run's floors: a missed floor is a regression of the world or the training.

    Returns a table (floor, required, measured, passed); :func:`check_floors` raises.
    """
    emotion = emotion_model_summary(cfg)["macro_recall"]
    best_pain_f1 = float(table1(cfg)["estimate"][("F1-score", "Avg.")].max())
    recalls = retrained_recalls(cfg) if recalls is None else recalls
    retrained_b5 = float(recalls[recalls["frozen_blocks"] == REFERENCE_K].groupby("repetition")["recall"].mean().mean())
    rows = [
        ("emotion model macro recall (balanced test set)", ">= 0.60", emotion, emotion >= 0.60),
        ("best pain model macro F1", ">= 0.70", best_pain_f1, best_pain_f1 >= 0.70),
        ("re-trained FreezeB5 macro recall minus emotion model's", ">= -0.03", retrained_b5 - emotion, retrained_b5 - emotion >= -0.03),
    ]
    return pd.DataFrame(rows, columns=["floor", "required", "measured", "passed"])


def check_floors(floors: pd.DataFrame, *, profile: str) -> None:
    """Fail loudly when the default profile misses a learnability floor (other profiles: report only)."""
    missed = floors[~floors["passed"]]
    if profile == "default" and len(missed):
        raise AssertionError("learnability floor(s) missed — a regression of the synthetic world or the training, "
                             "not something to tune around:\n" + missed.to_string(index=False))
