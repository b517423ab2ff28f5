"""Chapter 02 (§3.2 step 1): the emotion model's training set, its summary and the world's hardness verdict.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forgetting_aus import evaluation, facs, pipeline
from forgetting_aus.chapters import ch01_datasets as ch01
from forgetting_aus.config import Config


def training_set(cfg: Config) -> dict:
    """The emotion training split's class counts, the class-balanced beta and the split sizes.

    Returns
    -------
    dict
        ``counts`` (Series of int, images per emotion in ``facs.EMOTIONS`` order),
        ``beta`` (float, eq. 2's beta, :func:`forgetting_aus.pipeline.class_balance_beta`),
        ``n_train``, ``n_val``, ``n_test`` (int, images per split) and ``validation_split``
        (str: how the validation rows were held out of ``training.csv``; by subject only
        where every image has a subject id, which AffectNet as it ships does not).
    """
    data = pipeline.emotion_data(cfg)
    by_subject = bool(len(data["train"])) and all((split.groups != "").all() for split in (data["train"], data["val"]))
    counts = pd.Series(np.bincount(data["train"].labels, minlength=len(facs.EMOTIONS)), index=facs.EMOTIONS,
                       name="training images")
    return {"counts": counts, "beta": pipeline.class_balance_beta(cfg, counts.to_numpy()),
            "n_train": len(data["train"]), "n_val": len(data["val"]), "n_test": len(data["test"]),
            "validation_split": "whole subjects" if by_subject else
                                "rows stratified by class (AffectNet has no subject ids)"}


def class_weights_table(counts: pd.Series, history: dict) -> pd.DataFrame:
    """Training images and class weight per emotion, weights rounded to 3 decimals.

    Parameters
    ----------
    counts : Series
        ``training_set(cfg)["counts"]``.
    history : dict
        The emotion model's history (``class_weights``: one weight per emotion).
    """
    weights = pd.Series(history["class_weights"], index=counts.index, name="class weight")
    return pd.concat([counts, weights.round(3)], axis=1)


def emotion_model_summary(cfg: Config) -> dict:
    """Per-class recall, confusion matrices, macro recall and history of the emotion model.

    Returns
    -------
    dict
        ``recall`` (Series per emotion), ``macro_recall``, ``accuracy`` (float),
        ``confusion`` (row-normalised DataFrame), ``confusion_counts`` (int DataFrame;
        rows true, columns predicted) and ``history`` (dict).
    """
    test = pipeline.emotion_data(cfg)["test"]
    trained = pipeline.emotion_model(cfg)
    y_pred = trained.predictions()["y_pred"]
    recall = evaluation.per_class_recall(test.labels, y_pred, class_names=facs.EMOTIONS)
    return {
        "recall": recall,
        "macro_recall": float(recall.mean()),
        "accuracy": float(np.mean(test.labels == y_pred)),
        "confusion": evaluation.confusion(test.labels, y_pred, class_names=facs.EMOTIONS, normalize="true"),
        "confusion_counts": evaluation.confusion(test.labels, y_pred, class_names=facs.EMOTIONS),
        "history": trained.history(),
    }


#: Smallest macro-recall margin of a CNN over the better trivial baseline for a synthetic
#: task (emotion in chapter 2, pain in chapter 3) to count as hard enough, set before
#: looking: a world in which a linear model on tiny images comes closer is too easy to say
#: much about the CNN.
HARD_ENOUGH_MARGIN = 0.20


def selected_validation_recall(trained: pipeline.Trained) -> float:
    """Macro recall (0-1) on the validation data at the epoch the training selected."""
    history = trained.history()
    return float(history["val_macro_recall"][history["best_epoch"]])


def model_floors(trained: dict[str, pipeline.Trained], *, n_classes: int) -> pd.DataFrame:
    """Learnability floors of compared models: chance plus :data:`HARD_ENOUGH_MARGIN` on validation macro recall.

    Chance, not the trivial baselines: the floor asks whether a model learned its task at
    all, while the baselines measure how hard the world is for a CNN (chapter 02). A model
    made weaker on purpose (a frozen FreezeB5) must still be comparable, because its
    weakness is what the paper compares.

    Parameters
    ----------
    trained : mapping model name -> pipeline.Trained
    n_classes : int, keyword-only

    Returns
    -------
    DataFrame, index model name
        ``recall``, ``floor``, ``met`` (``claims.learnability_floors``).
    """
    from forgetting_aus import claims

    recall = {name: selected_validation_recall(model) for name, model in trained.items()}
    return claims.learnability_floors(recall, n_classes=n_classes, margin=HARD_ENOUGH_MARGIN)


def world_hardness_verdict(margin: float, *, task: str = "emotion", bar: float = HARD_ENOUGH_MARGIN) -> str:
    """The chapters' sentence on a CNN's margin (macro recall) over the trivial baselines.

    Parameters
    ----------
    margin : float
        CNN macro recall minus the better trivial baseline's, on the same task.
    task : str, keyword-only
        Name of the synthetic task in the sentence ("emotion", "pain").
    bar : float, keyword-only
        Margin from which the task counts as hard enough.
    """
    if margin >= bar:
        return (f"far above the trivial classifiers, so the synthetic {task} task is not one a linear model on "
                "tiny images solves")
    return (f"not far above them: the synthetic {task} task is easier than intended for a linear model on tiny "
            "images — a finding about the world, stated here rather than tuned away")


def world_hardness(baselines: pd.DataFrame, macro_recall: float, *, task: str,
                   bar: float = HARD_ENOUGH_MARGIN) -> dict:
    """A CNN's margin over the better trivial baseline of its task, and the verdict on it.

    Parameters
    ----------
    baselines : DataFrame
        ``ch01.trivial_baselines``: columns ``task`` ("emotion (8 classes)", "pain (2
        classes)"), ``baseline`` and ``macro_recall``.
    macro_recall : float
        The CNN's held-out macro recall on the same task.
    task : {"emotion", "pain"}, keyword-only
        First word of the baselines' task name.
    bar : float, keyword-only
        Margin from which the task counts as hard enough.

    Returns
    -------
    dict
        ``best_baseline`` (float), ``margin`` (``macro_recall - best_baseline``) and
        ``verdict`` (:func:`world_hardness_verdict`).
    """
    rows = baselines[baselines["task"].str.split().str[0] == task]
    if rows.empty:
        raise ValueError(f"no trivial baseline for task {task!r}; the table has tasks "
                         f"{sorted(baselines['task'].unique())}")
    best = float(rows["macro_recall"].max())
    margin = float(macro_recall) - best
    return {"best_baseline": best, "margin": margin,
            "verdict": world_hardness_verdict(margin, task=task, bar=bar)}


def headline_numbers(summary: dict, baselines: pd.DataFrame) -> dict[str, float | str]:
    """The test-set numbers the chapter's prose quotes, against the trivial baselines, by glue name.

    Parameters
    ----------
    summary : dict
        :func:`emotion_model_summary`.
    baselines : DataFrame
        ``ch01.trivial_baselines``.

    Returns
    -------
    dict
        ``emotion_macro_recall``, ``emotion_accuracy``, ``emotion_baseline_pixels``,
        ``emotion_baseline_regions`` (macro recall of the two baselines),
        ``emotion_margin``, ``hard_enough_margin`` (float) and ``emotion_world_verdict`` (str).
    """
    recall_of = ch01.baseline_numbers(baselines)
    hardness = world_hardness(baselines, summary["macro_recall"], task="emotion")
    return {"emotion_macro_recall": summary["macro_recall"], "emotion_accuracy": summary["accuracy"],
            "emotion_baseline_pixels": recall_of["baseline_emotion_pixels_8x8"],
            "emotion_baseline_regions": recall_of["baseline_emotion_region_means"],
            "emotion_margin": hardness["margin"], "hard_enough_margin": HARD_ENOUGH_MARGIN,
            "emotion_world_verdict": hardness["verdict"]}
