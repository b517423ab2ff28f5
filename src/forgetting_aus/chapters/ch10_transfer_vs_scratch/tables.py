"""Chapter 10, Table 2 and the claims: accuracies beside the paper's, scheme differences, cross-dataset drops.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from forgetting_aus import cache, claims, paper_values
from forgetting_aus.chapters.ch02_emotion_model import HARD_ENOUGH_MARGIN
from forgetting_aus.chapters.ch10_transfer_vs_scratch.study import (
    DATASETS,
    MODELS,
    SCHEMES,
    SIX_EMOTIONS,
    StudyResults,
    sets_folder,
)
from forgetting_aus.config import Config
from forgetting_aus.stats import estimate_text

#: Chapter stem under which the claims are recorded.
CHAPTER = "10_transfer_vs_scratch"


def dataset_names() -> list[str]:
    """Display names of the three datasets in the paper's row order (OULU-CASIA, FACES, JAFFE)."""
    return [name for name, *_ in DATASETS.values()]


#: Column labels of the schemes in Table 2, as the paper prints them.
SCHEME_LABELS: dict[str, str] = {"transfer": "Transfer Learning", "scratch": "Train from Scratch"}


#: The paper's Table 2 (accuracy in %, mean ± SD over 10 folds): dataset → scheme → model,
#: from :data:`forgetting_aus.paper_values.ARABIAN_TABLE2`.
PAPER_TABLE2: dict[str, dict[str, dict[str, tuple[float, float]]]] = {
    dataset: {scheme: dict(paper_values.ARABIAN_TABLE2[(dataset, scheme)]) for scheme in SCHEMES}
    for dataset in dataset_names()
}


def set_sizes(cfg: Config) -> pd.DataFrame:
    """Images per class and subjects of each stand-in (the layout of the paper's Table 1)."""
    sizes = cache.read_json(sets_folder(cfg) / cache.MANIFEST)["info"]["sizes"]
    rows = {}
    for key, info in sizes.items():
        column = dict(zip(SIX_EMOTIONS, info["per_class"], strict=True))
        column["Total"] = info["images"]
        column["Subjects"] = info["subjects"]
        rows[DATASETS[key][0]] = column
    return pd.DataFrame(rows)


def table2_numbers(results: StudyResults) -> pd.DataFrame:
    """Accuracy mean and SD (ddof 1) over folds, in %, per (dataset, scheme, model)."""
    grouped = results.accuracies.groupby(["dataset", "scheme", "model"])["accuracy"]
    out = pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(ddof=1), "n_folds": grouped.size()})
    order = pd.MultiIndex.from_product([dataset_names(), SCHEMES, list(MODELS)], names=out.index.names)
    return out.reindex([i for i in order if i in out.index])


def _formatted(cells: dict[tuple[str, str, str], tuple[float, float]]) -> pd.DataFrame:
    columns = pd.MultiIndex.from_tuples([(SCHEME_LABELS[s], m) for s in SCHEMES for m in MODELS])
    rows = {}
    for dataset in dataset_names():
        rows[dataset] = [f"{cells[(dataset, s, m)][0]:.2f} ± {cells[(dataset, s, m)][1]:.2f}"
                         if (dataset, s, m) in cells else "" for s in SCHEMES for m in MODELS]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns)


def table2(results: StudyResults) -> pd.DataFrame:
    """This run's Table 2: "mean ± SD" accuracy (%) over folds, the paper's layout.

    Rows: OULU-CASIA (validation folds), FACES, JAFFE; columns: (scheme, model).
    """
    numbers = table2_numbers(results)
    return _formatted({index: (row["mean"], row["sd"]) for index, row in numbers.iterrows()})


def paper_table2() -> pd.DataFrame:
    """The paper's Table 2 (typed from the paper, reference values only), same layout."""
    return _formatted({(d, s, m): value for d, by_scheme in PAPER_TABLE2.items()
                       for s, by_model in by_scheme.items() for m, value in by_model.items()})


def table2_comparison(results: StudyResults) -> pd.DataFrame:
    """The paper's and this run's Table 2 interleaved: rows (dataset, "paper" / "this run")."""
    paper, ours = paper_table2(), table2(results)
    frames = []
    for dataset in dataset_names():
        frames.append(pd.DataFrame([paper.loc[dataset], ours.loc[dataset]],
                                   index=pd.MultiIndex.from_tuples([(dataset, "paper"), (dataset, "this run")])))
    return pd.concat(frames)


def scheme_difference(frame: pd.DataFrame, *, value: str, datasets: Sequence[str], better: str = "scratch",
                      confidence: float = 0.95) -> dict[str, Any]:
    """Paired per-fold difference ``better - other`` scheme, averaged over models and datasets.

    Both schemes of a fold share the data split and the seed, so the per-fold difference
    is paired; its spread over folds gives a t confidence interval.

    Parameters
    ----------
    frame : DataFrame
        Columns ``model``, ``scheme``, ``fold``, ``dataset`` and ``value`` (e.g. the
        accuracies of :class:`StudyResults`, or per-fold overlap means).
    value : str, keyword-only
    datasets : sequence of str, keyword-only
        Display names averaged over.
    better : "scratch" or "transfer", keyword-only
        The scheme the claim says is better.
    confidence : float, keyword-only

    Returns
    -------
    dict
        ``mean``, ``sd`` (over folds, ddof 1), ``low``, ``high`` (t interval),
        ``per_fold`` (list), ``n_folds``, and ``by_dataset`` (mean difference per dataset).
    """
    if better not in SCHEMES:
        raise ValueError(f"better must be one of {SCHEMES}, got {better!r}")
    other = [s for s in SCHEMES if s != better][0]
    data = frame[frame["dataset"].isin(list(datasets))]
    wide = data.pivot_table(index=["fold", "dataset", "model"], columns="scheme", values=value, aggfunc="mean")
    difference = (wide[better] - wide[other]).dropna()
    per_fold = difference.groupby(level="fold").mean()
    n = len(per_fold)
    mean = float(per_fold.mean())
    sd = float(per_fold.std(ddof=1)) if n > 1 else float("nan")
    if n > 1 and sd > 0:
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / np.sqrt(n))
    else:
        half = 0.0 if n > 1 else float("inf")
    by_dataset = difference.groupby(level="dataset").mean()
    return {"mean": mean, "sd": sd, "low": mean - half, "high": mean + half, "per_fold": per_fold.tolist(),
            "n_folds": n, "by_dataset": {k: float(v) for k, v in by_dataset.items()}}


def learning_curves(results: StudyResults) -> pd.DataFrame:
    """Every training run's per-epoch history, read from its artifact.

    Returns
    -------
    DataFrame, one row per (model, scheme, fold, epoch)
        ``epoch`` (1-based), ``loss`` (training), ``val_loss`` and ``val_macro_recall``
        (0-1) on the fold's epoch-selection subjects.
    """
    rows = []
    for run in results.training.itertuples():
        history = cache.read_json(Path(run.folder) / "history.json")
        for epoch, (loss, val_loss, recall) in enumerate(
                zip(history["loss"], history["val_loss"], history["val_macro_recall"], strict=True), start=1):
            rows.append({"model": run.model, "scheme": run.scheme, "fold": run.fold, "epoch": epoch,
                         "loss": loss, "val_loss": val_loss, "val_macro_recall": recall})
    return pd.DataFrame(rows, columns=["model", "scheme", "fold", "epoch", "loss", "val_loss", "val_macro_recall"])


def selected_epochs(results: StudyResults, curves: pd.DataFrame) -> dict[str, float | int]:
    """``selected_epoch_<scheme>``: median over runs of the selected epoch (1-based); ``epochs_trained``.

    ``curves`` is :func:`learning_curves` of the same results (the longest run's epochs).
    """
    out: dict[str, float | int] = {}
    for scheme in SCHEMES:
        chosen = results.training[results.training["scheme"] == scheme]["best_epoch"]
        out[f"selected_epoch_{scheme}"] = float(chosen.median() + 1) if len(chosen) else float("nan")
    out["epochs_trained"] = int(curves["epoch"].max()) if len(curves) else 0
    return out


def learned_accuracies(results: StudyResults) -> pd.DataFrame:
    """The rows of ``results.accuracies`` whose arm met its learnability floor (:func:`arm_floors`)."""
    floors = arm_floors(results.accuracies)
    learned = floors.index[floors["met"]].tolist()
    return results.accuracies[results.accuracies.set_index(["scheme", "model"]).index.isin(learned)]


def shift_numbers(domains: pd.DataFrame, transfer_drops: pd.DataFrame) -> dict[str, float | str]:
    """Glued numbers of the domain shift (:mod:`.domains` and :func:`dataset_drops`).

    Keys, for ``<set>`` in ``faces`` and ``jaffe``: ``domain_accuracy_<set>``,
    ``domain_low_<set>``, ``domain_high_<set>`` (% of images the domain classifier assigns
    to their set), ``transfer_drop_<set>``, ``transfer_drop_low_<set>``,
    ``transfer_drop_high_<set>`` (pp, OULU minus the set, as text to one decimal; "n/a"
    when no transfer arm learned or one fold gives no interval) and
    ``transfer_drop_word_<set>`` ("lower", "higher" or "not measurably different", from
    the interval against 0).
    """
    out: dict[str, float | str] = {}
    oulu = DATASETS["oulu"][0]
    for key in ("faces", "jaffe"):
        name = DATASETS[key][0]
        row = domains.loc[f"{oulu} vs. {name}"]
        out |= {f"domain_accuracy_{key}": 100 * float(row["accuracy"]), f"domain_low_{key}": 100 * float(row["low"]),
                f"domain_high_{key}": 100 * float(row["high"])}
        drop = transfer_drops.loc[name] if name in transfer_drops.index else None
        low, high = (float(drop["low"]), float(drop["high"])) if drop is not None else (np.nan, np.nan)
        mean = float(drop["mean"]) if drop is not None else np.nan
        out |= {f"transfer_drop_{key}": estimate_text(mean, ".1f"),
                f"transfer_drop_low_{key}": estimate_text(low, ".1f"),
                f"transfer_drop_high_{key}": estimate_text(high, ".1f"),
                f"transfer_drop_word_{key}": ("lower" if low > 0 else "higher" if high < 0
                                              else "not measurably different")}
    return out


def arm_floors(accuracies: pd.DataFrame, *, margin: float = HARD_ENOUGH_MARGIN) -> pd.DataFrame:
    """Each compared arm's learnability floor: an arm that did not learn cannot be compared.

    An arm is a (scheme, model) pair; its measure is the mean accuracy over folds on the
    OULU-CASIA validation folds (the data it was trained for), its floor chance (one of six
    classes; no trivial baseline is fitted here) plus ``margin`` (chapter 02's
    :data:`HARD_ENOUGH_MARGIN`, fixed before any run).

    Returns
    -------
    DataFrame, index (scheme, model)
        ``accuracy`` and ``floor`` (%), ``met`` (bool).
    """
    oulu = accuracies[accuracies["dataset"] == DATASETS["oulu"][0]]
    mean = oulu.groupby(["scheme", "model"])["accuracy"].mean()
    mean = mean.reindex([(s, m) for s in SCHEMES for m in MODELS if (s, m) in mean.index])  # the paper's order
    # one rule for every floor of the book: claims.learnability_floors, on fractions
    floors = claims.learnability_floors(dict(enumerate(mean.to_numpy() / 100.0)), n_classes=len(SIX_EMOTIONS),
                                        margin=margin)
    return pd.DataFrame({"accuracy": mean, "floor": 100.0 * floors["floor"].to_numpy(dtype=float),
                         "met": floors["met"].to_numpy(dtype=bool)}, index=mean.index)


def _arm_names(arms: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{scheme} {model}" for scheme, model in arms) or "none"


def floor_numbers(floors: pd.DataFrame) -> dict[str, float | str]:
    """``arm_floor`` (%), ``arms_below`` and ``arms_met`` (prose lists) of :func:`arm_floors`."""
    return {"arm_floor": float(floors["floor"].iloc[0]),
            "arms_below": _arm_names(floors.index[~floors["met"]].tolist()),
            "arms_met": _arm_names(floors.index[floors["met"]].tolist())}


def _paper_scheme_gap(dataset: str) -> float:
    """The paper's mean over models of scratch − transfer accuracy on one dataset (pp)."""
    table = PAPER_TABLE2[dataset]
    return float(np.mean([table["scratch"][m][0] - table["transfer"][m][0] for m in MODELS]))


#: What a comparison gives when no arm can enter it (:func:`study_claims`).
NO_DIFFERENCE: dict[str, Any] = {"mean": float("nan"), "sd": float("nan"), "low": -float("inf"),
                                 "high": float("inf"), "per_fold": [], "n_folds": 0, "by_dataset": {}}


def _interval_text(diff: dict[str, Any], unit: str) -> str:
    if diff["n_folds"] == 0:
        return "not computed"
    return (f"mean {diff['mean']:+.2f}{unit}, 95% CI [{diff['low']:+.2f}, {diff['high']:+.2f}] "
            f"over {diff['n_folds']} folds")


def study_claims(results: StudyResults, overlaps: pd.DataFrame) -> list[claims.Claim]:
    """Arabian et al.'s claims as predicates on this run, with verdicts from the fold spread.

    Each verdict comes from a 95% t interval of the paired per-fold difference between
    the schemes (:func:`scheme_difference`): holds when it excludes 0 on the claimed
    side, fails when it excludes 0 on the other, inconclusive otherwise. Only arms that
    met their learnability floor (:func:`arm_floors`) are compared: a scheme comparison
    uses the models whose two arms both did, and is inconclusive, with the reason, when
    none did; the cross-dataset drop uses every arm that did.
    """
    unseen = [DATASETS["faces"][0], DATASETS["jaffe"][0]]
    oulu = DATASETS["oulu"][0]
    all_sets = dataset_names()
    floors = arm_floors(results.accuracies)
    # Scheme comparisons use the models whose two arms both learned; the drop, every arm that did.
    compared = [m for m in MODELS if all(floors["met"].get((s, m), False) for s in SCHEMES)]
    acc = results.accuracies[results.accuracies["model"].isin(compared)]
    overlaps = overlaps[overlaps["model"].isin(compared)]
    below = floors.index[~floors["met"]].tolist()
    not_compared = (f"; not compared: {_arm_names(below)} below the learnability floor "
                    f"({floors['floor'].iloc[0]:.1f} % on the OULU validation folds)" if below else "")

    def floored(verdict: str) -> str:
        return verdict if compared else "inconclusive"

    generalise = scheme_difference(acc, value="accuracy", datasets=unseen, better="scratch") if compared else NO_DIFFERENCE
    by = generalise["by_dataset"]
    claim_generalise = claims.Claim(
        claim_id="A22-scratch-generalises", paper=paper_values.ARABIAN, section="§3.2, Table 2",
        statement="Models trained from scratch generalise better to unseen datasets (FACES, JAFFE) than "
                  "transfer-learned ones.",
        paper_value=f"scratch − transfer: {_paper_scheme_gap('FACES'):+.2f} pp (FACES), "
                    f"{_paper_scheme_gap('JAFFE'):+.2f} pp (JAFFE), mean over the three models",
        this_run=(f"scratch − transfer: {by.get('FACES', np.nan):+.2f} pp (FACES), {by.get('JAFFE', np.nan):+.2f} pp "
                  f"(JAFFE); {_interval_text(generalise, ' pp')}{not_compared}" if compared else not_compared[2:]),
        verdict=floored(claims.verdict_from_interval(generalise["low"], generalise["high"], threshold=0.0,
                                                     greater=True)),
        evidence="paired per-fold difference of accuracy, averaged over models and the two unseen sets; 95% t interval")

    per_fold = overlaps.groupby(["model", "scheme", "fold", "dataset"], as_index=False)[["dice", "iou"]].mean()
    dice, iou = ((scheme_difference(per_fold, value=value, datasets=all_sets, better="scratch") if compared
                  else NO_DIFFERENCE) for value in ("dice", "iou"))
    verdicts = {claims.verdict_from_interval(d["low"], d["high"], threshold=0.0, greater=True) for d in (dice, iou)}
    claim_attend = claims.Claim(
        claim_id="A22-scratch-attends-regions", paper=paper_values.ARABIAN, section="§3.2, Figures 1 and 2",
        statement="Models trained from scratch adhere better to the regions of importance (higher DICE and IoU "
                  "of class-averaged Grad-CAM maps) than transfer-learned ones, on every dataset.",
        paper_value="scratch > transfer on all three datasets; DICE gaps above 15 % for some models, IoU gaps "
                    "above 10 % for most",
        this_run=(f"scratch − transfer DICE {_interval_text(dice, '')}; IoU {_interval_text(iou, '')} "
                  f"(reference: prototype-AU regions){not_compared}" if compared else not_compared[2:]),
        verdict=floored(verdicts.pop() if len(verdicts) == 1 else "inconclusive"),
        evidence="paired per-fold difference of the class-mean DICE and IoU, averaged over models and datasets; "
                 "95% t intervals; holds/fails only when DICE and IoU agree")

    training_set = scheme_difference(acc, value="accuracy", datasets=[oulu], better="transfer") if compared else NO_DIFFERENCE
    claim_oulu = claims.Claim(
        claim_id="A22-transfer-better-on-oulu", paper=paper_values.ARABIAN, section="§3.2, Table 2",
        statement="On the training set's validation folds (OULU-CASIA) transfer learning is slightly better "
                  "than training from scratch.",
        paper_value=f"transfer − scratch: {-_paper_scheme_gap('OULU-CASIA'):+.2f} pp",
        this_run=(f"transfer − scratch: {_interval_text(training_set, ' pp')}{not_compared}" if compared
                  else not_compared[2:]),
        verdict=floored(claims.verdict_from_interval(training_set["low"], training_set["high"], threshold=0.0,
                                                     greater=True)),
        evidence="paired per-fold difference of validation-fold accuracy, averaged over models; 95% t interval")

    learned = learned_accuracies(results)
    drop = _cross_dataset_drop(learned) if len(learned) else NO_DIFFERENCE
    claim_drop = claims.Claim(
        claim_id="A22-cross-dataset-drop", paper=paper_values.ARABIAN, section="§3.2",
        statement="Accuracy on FACES and JAFFE is far below the OULU-CASIA validation accuracy: the models do not "
                  "generalise well to unseen data.",
        paper_value=f"OULU − mean(FACES, JAFFE): {_paper_drop():+.2f} pp (mean over models and schemes)",
        this_run=f"OULU − mean(FACES, JAFFE): {_interval_text(drop, ' pp')}"
                 + (f"; arms below the learnability floor left out: {_arm_names(below)}" if below else ""),
        verdict=claims.verdict_from_interval(drop["low"], drop["high"], threshold=0.0, greater=True)
        if len(learned) else "inconclusive",
        evidence="per-fold difference averaged over the models and schemes that met their learnability floor; "
                 "95% t interval")
    return [claim_generalise, claim_attend, claim_oulu, claim_drop]


def _cross_dataset_drop(acc: pd.DataFrame, confidence: float = 0.95) -> dict[str, Any]:
    wide = acc.pivot_table(index=["fold", "model", "scheme"], columns="dataset", values="accuracy")
    gap = wide["OULU-CASIA"] - wide[["FACES", "JAFFE"]].mean(axis=1)
    return _fold_interval(gap.groupby(level="fold").mean(), confidence)


def dataset_drops(accuracies: pd.DataFrame, *, scheme: str, confidence: float = 0.95) -> pd.DataFrame:
    """How much lower one scheme's models score on each unseen set than on OULU-CASIA.

    Per fold, the OULU validation accuracy minus the unseen set's accuracy, averaged over
    the models of ``accuracies`` (pass only the arms that met their floor); a t interval
    over the folds.

    Parameters
    ----------
    accuracies : DataFrame
        As ``StudyResults.accuracies`` (accuracy in %).
    scheme : {"transfer", "scratch"}, keyword-only
    confidence : float, keyword-only

    Returns
    -------
    DataFrame indexed by the unseen sets' display names
        ``mean``, ``low``, ``high`` (percentage points; positive: lower on the unseen set),
        ``sd``, ``n_folds``. Empty when no model of the scheme is in ``accuracies``.
    """
    chosen = accuracies[accuracies["scheme"] == scheme]
    if chosen.empty:
        return pd.DataFrame(columns=["mean", "low", "high", "sd", "n_folds"])
    wide = chosen.pivot_table(index=["fold", "model"], columns="dataset", values="accuracy")
    oulu = DATASETS["oulu"][0]
    rows = {}
    for key in ("faces", "jaffe"):
        name = DATASETS[key][0]
        rows[name] = _fold_interval((wide[oulu] - wide[name]).groupby(level="fold").mean(), confidence)
    return pd.DataFrame.from_dict(rows, orient="index")[["mean", "low", "high", "sd", "n_folds"]]


def _fold_interval(per_fold: pd.Series, confidence: float) -> dict[str, Any]:
    """Mean of per-fold values with a t interval over the folds (infinite with one fold)."""
    n, mean = len(per_fold), float(per_fold.mean())
    sd = float(per_fold.std(ddof=1)) if n > 1 else float("nan")
    if n > 1:
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / np.sqrt(n)) if sd > 0 else 0.0
    else:
        half = float("inf")  # one fold: no spread, no interval
    return {"mean": mean, "sd": sd, "low": mean - half, "high": mean + half, "n_folds": n}


def _paper_drop() -> float:
    values = []
    for s in SCHEMES:
        for m in MODELS:
            unseen = np.mean([PAPER_TABLE2[d][s][m][0] for d in ("FACES", "JAFFE")])
            values.append(PAPER_TABLE2["OULU-CASIA"][s][m][0] - unseen)
    return float(np.mean(values))


def headline_numbers(results: StudyResults, overlaps: pd.DataFrame, claim_list: Sequence[claims.Claim]
                     ) -> dict[str, float | str]:
    """The numbers the chapter's prose quotes, by name (accuracies in %, overlaps 0-1).

    Keys: ``acc_<scheme>_<dataset>`` (mean over models and folds; dataset keys ``oulu``,
    ``faces``, ``jaffe``), ``paper_acc_<scheme>_<dataset>``, ``dice_<scheme>``,
    ``iou_<scheme>`` (mean over models, folds and datasets), ``dice_chance``,
    ``chance_accuracy``, ``n_folds``, ``n_fits``, ``verdict_<claim id, - as _>``.
    """
    out: dict[str, float | str] = {}
    acc = results.accuracies
    for key, (name, *_rest) in DATASETS.items():
        for scheme in SCHEMES:
            out[f"acc_{scheme}_{key}"] = float(acc.query("dataset == @name and scheme == @scheme")["accuracy"].mean())
            out[f"paper_acc_{scheme}_{key}"] = float(np.mean([v[0] for v in PAPER_TABLE2[name][scheme].values()]))
    per_fold = overlaps.groupby(["model", "scheme", "fold", "dataset"], as_index=False)[
        ["dice", "iou", "dice_chance"]].mean()
    for scheme in SCHEMES:
        chosen = per_fold[per_fold["scheme"] == scheme]
        out[f"dice_{scheme}"] = float(chosen["dice"].mean())
        out[f"iou_{scheme}"] = float(chosen["iou"].mean())
    out["dice_chance"] = float(per_fold["dice_chance"].mean())
    out["chance_accuracy"] = 100.0 / len(SIX_EMOTIONS)
    out["n_folds"] = int(acc["fold"].nunique())
    out["n_fits"] = int(len(results.training))
    for claim in claim_list:
        out[f"verdict_{claim.claim_id.replace('-', '_')}"] = claim.verdict
    return out
