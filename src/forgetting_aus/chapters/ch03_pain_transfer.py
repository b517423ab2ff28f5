"""Chapter 03 (§3.2 step 2, Table 1): the FreezeB0..FreezeB5 pain models, Table 1 and its claims.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forgetting_aus import evaluation, paper_values, pipeline
from forgetting_aus.chapters.ch02_emotion_model import (
    HARD_ENOUGH_MARGIN,
    model_floors,
    world_hardness,
)
from forgetting_aus.claims import Claim, floored
from forgetting_aus.config import Config
from forgetting_aus.paper_values import PAPER


def split_sizes(cfg: Config) -> pd.DataFrame:
    """Frames, pain frames and subjects of the pain data's train, val and test splits (rows)."""
    data = pipeline.pain_data(cfg)
    return pd.DataFrame({name: {"frames": len(split), "pain frames": int(split.labels.sum()),
                                "subjects": len(set(split.groups))} for name, split in data.items()}).T


def pain_predictions(cfg: Config) -> dict[str, np.ndarray]:
    """Test-set predictions of FreezeB5..FreezeB0 (the paper's row order)."""
    models = pipeline.pain_models(cfg)
    return {pipeline.model_name(k): models[k].predictions()["y_pred"] for k in sorted(models, reverse=True)}


def table1(cfg: Config) -> dict[str, pd.DataFrame]:
    """Table 1 of this run: point estimates and sequence-bootstrap 95 % intervals.

    The intervals resample whole test sequences (frames of one sequence are not
    independent); with only a handful of test subjects, subject-level resampling would be
    even wider, which the chapter says.
    """
    test = pipeline.pain_data(cfg)["test"]
    meta = pipeline.pain_test_meta(cfg)
    predictions = pain_predictions(cfg)
    estimate = evaluation.table1(predictions, test.labels, class_names=pipeline.PAIN_CLASSES)
    with_ci = evaluation.table1_with_ci(predictions, test.labels, class_names=pipeline.PAIN_CLASSES,
                                        groups=meta["sequence"], n_boot=cfg.n_bootstrap, seed=cfg.seed)
    return {"estimate": estimate, "with_ci": with_ci, "formatted": evaluation.format_with_ci(with_ci)}


def _cell(table: pd.DataFrame, model: str, metric: str, cls: str, stat: str = "estimate") -> float:
    return float(table.loc[(model, stat), (metric, cls)])


def precision_verdict(precision: dict[int, float], precision_high: dict[int, float], recall: dict[int, float],
                      recall_low: dict[int, float]) -> str:
    """Table 1's pattern "pain precision >= pain recall in every model", from the per-model estimates
    and the ends of their intervals that could contradict it (see :func:`table1_claims`)."""
    if any(precision_high[k] < recall_low[k] for k in precision):
        return "fails"
    return "holds" if all(precision[k] >= recall[k] for k in precision) else "inconclusive"


def pain_floors(cfg: Config) -> pd.DataFrame:
    """Learnability floors of FreezeB5..FreezeB0: pain validation macro recall against chance (0.5) plus the margin."""
    models = pipeline.pain_models(cfg)
    return model_floors({pipeline.model_name(k): models[k] for k in sorted(models, reverse=True)},
                        n_classes=len(pipeline.PAIN_CLASSES))


def table1_claims(cfg: Config, tables: dict[str, pd.DataFrame], *, floors: pd.DataFrame | None = None) -> list[Claim]:
    """Table 1's claims (§5, §6) as predicates on this run's pain models.

    A claim that compares a model below its learnability floor (``floors``,
    :func:`pain_floors`) is inconclusive, with the reason.
    """
    ci = tables["with_ci"]
    recall = {k: _cell(ci, pipeline.model_name(k), "Recall", "pain") for k in pipeline.FREEZE_LEVELS}
    low = {k: _cell(ci, pipeline.model_name(k), "Recall", "pain", "low") for k in pipeline.FREEZE_LEVELS}
    high = {k: _cell(ci, pipeline.model_name(k), "Recall", "pain", "high") for k in pipeline.FREEZE_LEVELS}
    f1 = {k: _cell(ci, pipeline.model_name(k), "F1-score", "Avg.") for k in pipeline.FREEZE_LEVELS}
    f1_low = {k: _cell(ci, pipeline.model_name(k), "F1-score", "Avg.", "low") for k in pipeline.FREEZE_LEVELS}
    paper = paper_values.TABLE1_ROWS

    def fmt(values: dict[int, float]) -> str:
        return ", ".join(f"B{k} {values[k]:.2f}" for k in sorted(values, reverse=True))

    many = np.mean([recall[k] for k in (0, 1, 2)])
    few = np.mean([recall[k] for k in (3, 4, 5)])
    # Intervals of the group means are conservatively bounded by the members' intervals.
    many_low, few_high = np.mean([low[k] for k in (0, 1, 2)]), np.mean([high[k] for k in (3, 4, 5)])
    verdict_more = "holds" if many_low > few_high else ("fails" if many < few else "inconclusive")
    best = max(f1, key=f1.get)
    verdict_best = "holds" if best == 3 else ("inconclusive" if f1[3] >= f1_low[best] else "fails")
    saturation = max(recall[0], recall[1]) - recall[2]
    best_deeper = max((0, 1), key=lambda k: recall[k])
    verdict_saturation = "fails" if low[best_deeper] > high[2] else "holds"
    low45 = np.mean([recall[k] for k in (4, 5)])
    rest = np.mean([recall[k] for k in (0, 1, 2, 3)])
    verdict_low45 = "holds" if np.mean([high[k] for k in (4, 5)]) < np.mean([low[k] for k in (0, 1, 2, 3)]) else (
        "fails" if low45 >= rest else "inconclusive")
    paper_recall = {int(m[-1]): v[4] for m, v in paper.items()}
    paper_precision = {int(m[-1]): v[1] for m, v in paper.items()}
    precision = {k: _cell(ci, pipeline.model_name(k), "Precision", "pain") for k in pipeline.FREEZE_LEVELS}
    precision_high = {k: _cell(ci, pipeline.model_name(k), "Precision", "pain", "high") for k in pipeline.FREEZE_LEVELS}
    found = [
        Claim("T1-pain-precision-at-least-recall", PAPER, "Table 1",
              "Every pain model's pain precision is at least its pain recall: the models miss pain rather than "
              "over-call it",
              f"precision {fmt(paper_precision)}; recall {fmt(paper_recall)}",
              f"precision {fmt(precision)}; recall {fmt(recall)}",
              precision_verdict(precision, precision_high, recall, low),
              "holds if precision >= recall in every model; fails if one model's 95 % precision interval lies wholly "
              "below its recall interval (sequence bootstrap); inconclusive otherwise"),
        Claim("T1-more-blocks-more-pain-recall", PAPER, "§5, Table 1",
              "Models with more conv blocks available for pain training (FreezeB0-2) have higher pain recall than FreezeB3-5",
              f"pain recall {fmt(paper_recall)}", f"pain recall {fmt(recall)} (mean B0-2 {many:.2f} vs. B3-5 {few:.2f})",
              verdict_more, "holds if the mean of the B0-2 lower 95 % bounds exceeds the mean of the B3-5 upper bounds (sequence bootstrap)"),
        Claim("T1-pain-recall-saturates", PAPER, "§5, Table 1",
              "Pain recall saturates: unfreezing beyond FreezeB2 (FreezeB1, FreezeB0) does not raise it",
              "B2 0.71, B1 0.71, B0 0.71", f"max(B1, B0) - B2 = {saturation:+.2f}",
              verdict_saturation, "fails only if the better of B1/B0 has its 95 % interval wholly above B2's"),
        Claim("T1-B4-B5-low-pain-recall", PAPER, "§6, Figure 7",
              "Pain recall is considerably lower in FreezeB5 and FreezeB4",
              "B5 0.54, B4 0.56 vs. 0.69-0.71", f"mean B4-5 {low45:.2f} vs. B0-3 {rest:.2f}",
              verdict_low45, "holds if the mean upper bound of B4-5 lies below the mean lower bound of B0-3"),
        Claim("T1-best-F1-FreezeB3", PAPER, "Table 1",
              "FreezeB3 has the best macro-averaged F1 of the six pain models",
              "B3 0.86 (best)", f"best is FreezeB{best} ({f1[best]:.2f}); B3 {f1[3]:.2f}",
              verdict_best, "inconclusive if B3 lies within the best model's 95 % interval"),
    ]
    everyone = [pipeline.model_name(k) for k in pipeline.FREEZE_LEVELS]
    # Precision >= recall is checked per model, but the pattern is claimed of all six.
    compared = {"T1-pain-recall-saturates": [pipeline.model_name(k) for k in (0, 1, 2)]}
    return [floored(claim, floors, compared=compared.get(claim.claim_id, everyone)) for claim in found]


def difference_to_paper(estimate: pd.DataFrame) -> pd.DataFrame:
    """This run's Table 1 minus the paper's, cell by cell, rounded to 2 decimals.

    Parameters
    ----------
    estimate : DataFrame
        ``table1(cfg)["estimate"]``: rows FreezeB5..FreezeB0, the columns of
        ``paper_values.table1()``.
    """
    return (estimate - paper_values.table1().reindex(estimate.index)).round(2)


def headline_numbers(estimate: pd.DataFrame, baselines: pd.DataFrame) -> dict[str, float | str]:
    """The numbers the chapter's prose quotes, by glue name.

    Parameters
    ----------
    estimate : DataFrame
        ``table1(cfg)["estimate"]`` (point estimates, rows FreezeB5..FreezeB0).
    baselines : DataFrame
        ``ch01.trivial_baselines``.

    Returns
    -------
    dict
        ``best_f1_model`` (str) and ``best_f1`` (its macro F1); ``b0_pain_recall``,
        ``b5_pain_recall``; ``pain_best_macro_recall`` (best macro recall of the six),
        ``pain_baseline_best``, ``pain_margin``, ``hard_enough_margin`` (float) and
        ``pain_world_verdict`` (str), from ``ch02.world_hardness``; the paper's
        ``paper_best_f1_model``, ``paper_best_f1``, ``paper_b0_pain_recall`` and
        ``paper_b5_pain_recall`` from :func:`forgetting_aus.paper_values.table1`.
    """
    best_macro_recall = float(estimate[("Recall", "Avg.")].max())
    hardness = world_hardness(baselines, best_macro_recall, task="pain")
    return {"best_f1_model": estimate[("F1-score", "Avg.")].idxmax(),
            "best_f1": float(estimate[("F1-score", "Avg.")].max()),
            "b0_pain_recall": float(estimate.loc["FreezeB0", ("Recall", "pain")]),
            "b5_pain_recall": float(estimate.loc["FreezeB5", ("Recall", "pain")]),
            "pain_best_macro_recall": best_macro_recall, "pain_baseline_best": hardness["best_baseline"],
            "pain_margin": hardness["margin"], "hard_enough_margin": HARD_ENOUGH_MARGIN,
            "pain_world_verdict": hardness["verdict"]} | _paper_headline()


def _paper_headline() -> dict[str, float | str]:
    """The paper's Table 1 values the prose sets beside this run's (``paper_`` + the same names)."""
    paper = paper_values.table1()
    return {"paper_best_f1_model": paper[("F1-score", "Avg.")].idxmax(),
            "paper_best_f1": float(paper[("F1-score", "Avg.")].max()),
            "paper_b0_pain_recall": float(paper.loc["FreezeB0", ("Recall", "pain")]),
            "paper_b5_pain_recall": float(paper.loc["FreezeB5", ("Recall", "pain")])}
