"""Chapter 09, Table 2 and the claims: class-wise results beside the paper's, fold statistics, verdicts.

"Average/Total" of Table 2 is the support-weighted average (scikit-learn's old
``avg / total`` row, which the paper's numbers match), so its recall equals accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forgetting_aus import claims, paper_values, pipeline
from forgetting_aus.chapters.ch02_emotion_model import HARD_ENOUGH_MARGIN
from forgetting_aus.chapters.ch09_lrp_rules.analysis import cluster_bootstrap_mean
from forgetting_aus.chapters.ch09_lrp_rules.study import (
    CLASS_NAMES,
    CLASSES,
    ThreeClassData,
    confusion_counts,
)
from forgetting_aus.stats import estimate_text

#: Chapter stem under which the claims are recorded.
CHAPTER = "09_lrp_rules"


#: Weitz et al. 2018, Table 2 (best fold), in this chapter's layout (from :mod:`forgetting_aus.paper_values`).
PAPER_TABLE2: pd.DataFrame = pd.DataFrame(
    {column: [row[j] for row in paper_values.WEITZ_TABLE2.values()]
     for j, column in enumerate(("Precision", "Recall", "F1-score", "#Images"))},
    index=pd.Index([*CLASS_NAMES, "Average/Total"], name="class"),
)


def data_summary(data: ThreeClassData) -> pd.DataFrame:
    """Images, subjects and emotion-model-seen images per class, and images per fold.

    Returns
    -------
    DataFrame indexed by class (Table 2's names)
        ``images``, ``subjects``, ``seen_by_emotion_model`` and one ``fold <f>`` column
        per fold (images of the class in that fold).
    """
    frame = pd.DataFrame({"class": np.asarray(CLASS_NAMES)[data.split.labels], "subject": data.split.groups,
                          "seen": data.seen_by_emotion_model, "fold": data.folds})
    table = frame.groupby("class", sort=False).agg(images=("subject", "size"), subjects=("subject", "nunique"),
                                                   seen_by_emotion_model=("seen", "sum"))
    per_fold = frame.pivot_table(index="class", columns="fold", values="subject", aggfunc="size", fill_value=0)
    per_fold.columns = [f"fold {f}" for f in per_fold.columns]
    return table.join(per_fold).loc[list(CLASS_NAMES)]


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
    return pd.DataFrame(confusion_counts(pred["y_true"], pred["y_pred"]),
                        index=pd.Index(CLASS_NAMES, name="true"), columns=pd.Index(CLASS_NAMES, name="predicted"))


def _t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    from scipy import stats

    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:  # one fold: no spread, no interval
        return (mean, -np.inf, np.inf)
    if np.allclose(values, values[0]):
        return (mean, mean, mean)
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return (mean, mean - half, mean + half)


def learnability_floor(scores: pd.DataFrame, *, margin: float = HARD_ENOUGH_MARGIN) -> dict[str, float | bool]:
    """The Weitz models' floor: mean held-out fold accuracy at least chance (one of three
    classes) plus ``margin`` (chapter 02's :data:`HARD_ENOUGH_MARGIN`, fixed before any run).

    Returns
    -------
    dict
        ``floor``, ``accuracy`` (mean over the trained folds) and ``met``.
    """
    accuracy = float(scores["accuracy"].mean())
    # one rule for every floor of the book: claims.learnability_floors (three classes)
    floor = claims.learnability_floors({"Weitz": accuracy}, n_classes=3, margin=margin).loc["Weitz"]
    return {"floor": float(floor["floor"]), "accuracy": accuracy, "met": bool(floor["met"])}


def weitz_claims(scores: pd.DataFrame, best: int, face_parts: pd.DataFrame, *, n_boot: int,
                 seed: int, n_folds: int | None = None) -> list[claims.Claim]:
    """Weitz et al.'s claims as predicates on this run's artifacts.

    Parameters
    ----------
    scores : DataFrame
        :func:`.study.fold_scores`.
    best : int
        :func:`.study.best_fold`.
    face_parts : DataFrame
        :func:`.analysis.face_part_scores` (LRP-PresetAFlat).
    n_boot, seed : int, keyword-only
        Subject-cluster bootstrap of the face-part excess.
    n_folds : int, keyword-only, optional
        Folds of the cross-validation (``weitz_folds``; default: the rows of ``scores``).
        When fewer were trained (``weitz_trained_folds``), the best fold and the range of
        fold accuracies are unknown, so ``W-best-fold-accuracy`` is inconclusive.

    Returns
    -------
    list of Claim
        ``W-happy-as-pain`` (happy→pain exceeds happy→disgust; t-interval of the per-fold
        difference), ``W-eyes-nose-mouth`` (PresetAFlat's positive relevance in eyes + nose
        + mouth exceeds their area fraction for happy and pain; bootstrap intervals of the
        excess) and ``W-best-fold-accuracy`` (holds when 0.67 lies within this run's range
        of fold accuracies). With a single fold the t-interval is infinite: inconclusive.
        The first two read a trained model: below :func:`learnability_floor` they are
        inconclusive, with the reason.
    """
    n_folds = len(scores) if n_folds is None else n_folds
    floor = learnability_floor(scores)
    # A model that did not learn has no confusions or relevance worth reading.
    below = ("" if floor["met"] else f"; the models are below their learnability floor (mean fold accuracy "
             f"{floor['accuracy']:.2f} < {floor['floor']:.2f}), so this is not judged")

    def floored(verdict: str) -> str:
        return verdict if floor["met"] else "inconclusive"

    diff = (scores["happy_as_pain"] - scores["happy_as_disgust"]).to_numpy()
    mean, low, high = _t_interval(diff)
    happy_claim = claims.Claim(
        claim_id="W-happy-as-pain", paper=paper_values.WEITZ, section="§5, Figure 1; §6",
        statement="Happy faces are often misclassified as pain (more than as disgust)",
        paper_value=f"{paper_values.WEITZ_HAPPY_AS_PAIN:.0%} of happy images called pain (best fold)",
        this_run=(f"happy→pain {scores['happy_as_pain'].mean():.0%} vs happy→disgust "
                  f"{scores['happy_as_disgust'].mean():.0%} (mean of {len(scores)} folds); best fold "
                  f"{scores.loc[best, 'happy_as_pain']:.0%} vs {scores.loc[best, 'happy_as_disgust']:.0%}{below}"),
        verdict=floored(claims.verdict_from_interval(low, high)),
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
        claim_id="W-eyes-nose-mouth", paper=paper_values.WEITZ, section="§5, Figure 3",
        statement="With LRP-PresetAFlat, mostly the eyes, the nose and the mouth contribute to both happiness and pain",
        paper_value="seen by eye on two pain images",
        this_run="; ".join(f"{name}: excess share {estimate_text(m, '+.3f')} "
                           f"[{estimate_text(lo, '+.3f')}, {estimate_text(hi, '+.3f')}]"
                           for name, (m, lo, hi) in intervals.items()) + below,
        verdict=floored(verdict),
        evidence=("share of positive PresetAFlat relevance in eyes + nose + mouth minus their area fraction, "
                  "best fold's test images explained for their true class; 95% subject-cluster bootstrap; "
                  "holds when both classes' intervals lie above 0"))
    accuracies = scores["accuracy"].to_numpy()
    inside = accuracies.min() <= paper_values.WEITZ_BEST_FOLD_ACCURACY <= accuracies.max()
    verdict = "holds" if inside else "fails"
    evidence = ("holds when 0.67 lies within this run's range of fold accuracies; the synthetic world's "
                "difficulty is a design choice, so a mismatch says nothing about BioVid")
    if len(scores) < n_folds:  # the untrained folds could hold the best one, and widen the range
        verdict = "inconclusive"
        evidence += f"; only {len(scores)} of {n_folds} folds trained, so the best fold is unknown"
    accuracy_claim = claims.Claim(
        claim_id="W-best-fold-accuracy", paper=paper_values.WEITZ, section="§5, Table 2",
        statement="The best fold reaches an accuracy of 0.67 on pain vs happiness vs disgust",
        paper_value=f"{paper_values.WEITZ_BEST_FOLD_ACCURACY:.2f}",
        this_run=(f"best fold {scores.loc[best, 'accuracy']:.2f}; folds {accuracies.min():.2f}–"
                  f"{accuracies.max():.2f}"),
        verdict=verdict, evidence=evidence)
    return [happy_claim, parts_claim, accuracy_claim]

def fold_numbers(scores: pd.DataFrame, best: int) -> dict[str, float | int | str]:
    """The cross-validation numbers the chapter's prose quotes, by glue name.

    Parameters
    ----------
    scores : DataFrame
        :func:`.study.fold_scores` (accuracy and happy-row shares in [0, 1], one row per fold).
    best : int
        :func:`.study.best_fold`.

    Returns
    -------
    dict
        ``best_fold``, ``n_folds`` (int); ``best_accuracy``, ``mean_accuracy``,
        ``sd_accuracy`` (SD over folds, ddof 1, as text to two decimals: "n/a" with one
        fold), ``best_happy_as_pain``,
        ``best_happy_as_disgust``, ``mean_happy_as_pain``, ``mean_happy_as_disgust``,
        ``paper_accuracy``, ``paper_happy_as_pain`` (float, shares); ``pain_happy_shared``
        and ``pain_disgust_shared`` (the AUs two classes share, str).
    """
    from forgetting_aus.chapters.ch09_lrp_rules.analysis import shared_class_aus

    shared = shared_class_aus()
    return {
        "best_fold": best,
        "best_accuracy": float(scores.loc[best, "accuracy"]),
        "mean_accuracy": float(scores["accuracy"].mean()),
        "sd_accuracy": estimate_text(scores["accuracy"].std(ddof=1), ".2f"),
        "n_folds": len(scores),
        "best_happy_as_pain": float(scores.loc[best, "happy_as_pain"]),
        "best_happy_as_disgust": float(scores.loc[best, "happy_as_disgust"]),
        "mean_happy_as_pain": float(scores["happy_as_pain"].mean()),
        "mean_happy_as_disgust": float(scores["happy_as_disgust"].mean()),
        "paper_accuracy": paper_values.WEITZ_BEST_FOLD_ACCURACY,
        "paper_happy_as_pain": paper_values.WEITZ_HAPPY_AS_PAIN,
        "pain_happy_shared": shared[("pain", "happy")],
        "pain_disgust_shared": shared[("pain", "disgust")],
    }


#: :func:`.analysis.summarize_region_scores`' columns as the chapter shows them.
REGION_COLUMNS: dict[str, str] = {
    "share": "share in the regions", "uniform_baseline": "uniform map's share", "excess": "excess",
    "excess_low": "excess: 95 % low", "excess_high": "excess: 95 % high",
    "above_baseline": "images above baseline", "n": "images"}
#: :func:`.analysis.rule_runtimes`' columns as the chapter shows them.
RUNTIME_COLUMNS: dict[str, str] = {"maps": "maps", "seconds": "seconds", "maps_per_second": "maps per second"}


def region_summary_display(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`.analysis.summarize_region_scores` as the chapter shows it: :data:`REGION_COLUMNS`."""
    return summary[list(REGION_COLUMNS)].rename(columns=REGION_COLUMNS)


def runtimes_display(runtimes: pd.DataFrame) -> pd.DataFrame:
    """:func:`.analysis.rule_runtimes` as the chapter shows it: :data:`RUNTIME_COLUMNS`."""
    return runtimes[list(RUNTIME_COLUMNS)].rename(columns=RUNTIME_COLUMNS)


def rule_numbers(region_summary: pd.DataFrame, runtimes: pd.DataFrame) -> dict[str, float | str]:
    """Best and worst rule by pooled excess share, fastest and slowest rule, by glue name.

    Parameters
    ----------
    region_summary : DataFrame
        :func:`.analysis.summarize_region_scores` of the class regions (index rule, class;
        class "all" pools the classes).
    runtimes : DataFrame
        :func:`.analysis.rule_runtimes` (index rule, column ``maps_per_second``).

    Returns
    -------
    dict
        ``best_rule``, ``worst_rule``, ``fastest_rule``, ``slowest_rule`` (str) and
        ``best_rule_excess``, ``worst_rule_excess`` (float, share minus area fraction).
    """
    pooled = region_summary.xs("all", level="class")
    return {
        "best_rule": str(pooled["excess"].idxmax()),
        "best_rule_excess": float(pooled["excess"].max()),
        "worst_rule": str(pooled["excess"].idxmin()),
        "worst_rule_excess": float(pooled["excess"].min()),
        "fastest_rule": str(runtimes["maps_per_second"].idxmax()),
        "slowest_rule": str(runtimes["maps_per_second"].idxmin()),
    }


def claim_numbers(claim_list: Sequence[claims.Claim]) -> dict[str, str]:
    """The verdicts (and the face-part measurement) the prose quotes, from :func:`weitz_claims`.

    Returns
    -------
    dict
        ``verdict_happy``, ``verdict_parts``, ``verdict_accuracy`` (one of
        ``claims.VERDICTS``) and ``parts_this_run`` (the eyes-nose-mouth claim's value).
    """
    by_id = {c.claim_id: c for c in claim_list}
    return {"verdict_happy": by_id["W-happy-as-pain"].verdict, "verdict_parts": by_id["W-eyes-nose-mouth"].verdict,
            "verdict_accuracy": by_id["W-best-fold-accuracy"].verdict,
            "parts_this_run": by_id["W-eyes-nose-mouth"].this_run}
