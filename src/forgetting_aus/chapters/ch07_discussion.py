"""Chapter 07 (§6, Figures 6 and 7): forgotten AUs against the prototypes, the pain/emotion trade-off.

Figure 6 reads chapter 06's forgotten AUs (:func:`forgotten`) against the emotion
prototypes; Figure 7 weighs pain recall (chapter 03's Table 1) against surprise and
contempt recall of the re-trained heads (chapter 04) with a stated rule
(:func:`best_tradeoff`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from forgetting_aus import facs, pipeline
from forgetting_aus.chapters import ch03_pain_transfer as ch03
from forgetting_aus.chapters import ch04_measuring_forgetting as ch04
from forgetting_aus.chapters import ch06_concept_embedding as ch06
from forgetting_aus.claims import Claim
from forgetting_aus.config import Config
from forgetting_aus.paper_values import PAPER

TRADEOFF_EMOTIONS: tuple[str, ...] = ("surprise", "contempt")


#: Columns of Figure 7's table, in display order, and the names the chapter shows them under.
TRADEOFF_COLUMNS: dict[str, str] = {
    "pain_recall": "pain recall", "pain_low": "pain: 95 % low", "pain_high": "pain: 95 % high",
    "surprise": "surprise recall", "surprise_sd": "surprise SD", "contempt": "contempt recall",
    "contempt_sd": "contempt SD", "emotion": "mean of the two", "scaled_pain": "pain, scaled",
    "scaled_emotion": "emotions, scaled", "score": "score", "best": "best"}


# --------------------------------------------------------------------------- Figure 6
def forgotten(cfg: Config) -> list[int]:
    """The AUs FreezeB0 forgot in this run: chapter 06's rule on its sweep (:func:`ch06.forgotten_aus`)."""
    return ch06.forgotten_aus(ch06.sweep(cfg))


def figure6_highlight(forgotten_aus: Iterable[int]) -> dict[int, str]:
    """The AUs Figure 6 frames, with their legend label (for ``plots01.prototype_matrix_figure``)."""
    return {int(code): "forgotten by FreezeB0" for code in forgotten_aus}


def prototype_numbers(forgotten_aus: Sequence[int]) -> dict[str, str]:
    """The numbers the prose quotes on Figure 6.

    Returns
    -------
    dict
        ``forgotten`` (:func:`ch06.au_list`), ``forgotten_users`` (each AU with the emotions
        whose prototype uses it) and ``forgotten_verdict`` (:func:`forgotten_prototype_check`).
    """
    check = forgotten_prototype_check(forgotten_aus)
    users = "; ".join(f"AU{a}: {', '.join(u) or 'no prototype'}" for a, u in check["users"].items())
    return {"forgotten": ch06.au_list(forgotten_aus), "forgotten_users": users or "no AU was found forgotten",
            "forgotten_verdict": check["verdict"]}


# --------------------------------------------------------------------------- Figure 7
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
    tables = ch03.table1(cfg) if tables is None else tables
    recalls = ch04.retrained_recalls(cfg) if recalls is None else recalls
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


def tradeoff_numbers(chosen: pd.DataFrame, recalls: pd.DataFrame) -> dict[str, str | int]:
    """The numbers the prose quotes on Figure 7.

    Parameters
    ----------
    chosen : DataFrame
        :func:`best_tradeoff` output, indexed by model.
    recalls : DataFrame
        Re-trained recalls (``repetition`` column), as :func:`ch04.retrained_recalls`.

    Returns
    -------
    dict
        ``best_models`` (the rule's models, in table order, joined by "and") and
        ``n_repetitions`` (re-training repetitions).
    """
    return {"best_models": " and ".join(chosen.index[chosen["best"]]),
            "n_repetitions": int(recalls["repetition"].nunique())}


def tradeoff_display(chosen: pd.DataFrame) -> pd.DataFrame:
    """Figure 7's numbers as the chapter shows them: :data:`TRADEOFF_COLUMNS`, named for the reader."""
    return chosen[list(TRADEOFF_COLUMNS)].rename(columns=TRADEOFF_COLUMNS)


# --------------------------------------------------------------------------- claims
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
