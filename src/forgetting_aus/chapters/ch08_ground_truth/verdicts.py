"""Chapter 08, part 5: what the chapter reports -- summary tables, glued values, claims.

One concern: turning the truth and the methods' results into the chapter's tables
(:func:`control_summary`, :func:`null_summary`), the values its prose glues (the
``*_headline`` functions, so the notebook neither indexes tables by position nor formats
numbers) and its claims (:func:`ground_truth_claims`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from forgetting_aus import facs, pipeline, stats
from forgetting_aus.chapters.ch02_emotion_model import HARD_ENOUGH_MARGIN
from forgetting_aus.chapters.ch08_ground_truth.controls import NULL, SHAM, X_FREE
from forgetting_aus.chapters.ch08_ground_truth.methods import lrp_flags, probe_flags, probe_order
from forgetting_aus.chapters.ch08_ground_truth.pairs import au_label, au_labels
from forgetting_aus.chapters.ch08_ground_truth.truth import (
    LEVEL,
    TOP_K,
    beyond_seed_noise,
    null_leave_one_out,
    seed_noise,
    truth_ranking,
)
from forgetting_aus.claims import Claim, learnability_floors
from forgetting_aus.paper_values import PAPER
from forgetting_aus.stats import ALPHA

#: Rows of :func:`null_summary`: the counterfactual interval alone, and with the seed threshold.
NULL_TRUTH_ROW = "truth: feature ratio interval < 1"
NULL_SEED_ROW = "truth: beyond seed noise (each AU held out)"


# =========================================================================== 6. summaries
def control_summary(truth_controls: Mapping[str, pd.DataFrame], lrp: Mapping[str, pd.DataFrame],
                    probes: Mapping[str, pd.DataFrame], *, control_au: int) -> pd.DataFrame:
    """The positive control, X-free against sham: what each measure says about AU X.

    Returns
    -------
    DataFrame, one row (``X-free vs sham``)
        ground truth ratio of AU X [interval], whether it is forgotten (interval below 1)
        and beyond seed noise (also below the null pair's seed threshold), and its rank
        among the AUs (1 = most forgotten); LRP rank of X and its flag; probe difference of X,
        its rank and its flag; and the other AUs each measure flags.
    """
    name = au_label(control_au)
    model = X_FREE
    # The control bites only if X's loss exceeds what a seed alone does (the null pair).
    judged = beyond_seed_noise(truth_controls[model], truth_controls[NULL])
    gt = judged.loc[name]
    truth_order = truth_ranking(truth_controls[model])
    lrp_table = lrp[model]
    flags_lrp = lrp_flags(lrp_table)
    probe_part = probes["controls"][probes["controls"]["model"] == model].set_index("au")
    flags_probe = probe_flags(probes["controls"], model)
    probe_rank = probe_order(probes["controls"], model)
    rank = lrp_table.loc[name, "rank"]
    row = {
        "model": f"{model} vs {SHAM}",
        f"truth: {name} feature ratio [95 %]": f"{gt['effect']:.2f} [{gt['low']:.2f}, {gt['high']:.2f}]",
        f"truth: {name} forgotten": bool(gt["forgotten"]),
        "truth: seed threshold": f"{gt['seed_threshold']:.2f}",
        f"truth: {name} forgotten beyond seed noise": bool(gt["forgotten_beyond_seed"]),
        f"truth: rank of {name}": _rank_text(control_au, truth_order),
        f"LRP: rank of {name}": "—" if pd.isna(rank) else f"{int(rank)} of {len(lrp_table)}",
        f"LRP: {name} flagged": control_au in flags_lrp,
        "LRP: flags": ", ".join(map(au_label, flags_lrp)) or "none",
        f"probe: {name} F1 diff": (f"{100 * probe_part.loc[control_au, 'mean_difference']:+.1f}"
                                   if control_au in probe_part.index else "not probed"),
        f"probe: rank of {name}": _rank_text(control_au, probe_rank),
        f"probe: {name} flagged": control_au in flags_probe,
        "probe: flags": ", ".join(map(au_label, flags_probe)) or "none",
    }
    return pd.DataFrame([row]).set_index("model")


def _rank_text(code: int, order: Sequence[int]) -> str:
    """"r of n" for AU ``code`` in a ranking (most forgotten first), "—" if not ranked."""
    return f"{list(order).index(code) + 1} of {len(order)}" if code in order else "—"


def null_summary(truth_null: pd.DataFrame, lrp: Mapping[str, pd.DataFrame], probes: Mapping[str, pd.DataFrame], *,
                 alpha: float = ALPHA) -> pd.DataFrame:
    """How many AUs each measure flags when two FreezeB0 differ only in their seed.

    Returns
    -------
    DataFrame, one row per measure: ``flags`` (count), ``of`` (AUs tested), ``expected``
    (alpha x tested without multiplicity correction, 0 to alpha with), ``which``.
    """
    gt_flags = [int(a) for a in truth_null.loc[truth_null["forgotten"], "au"]]
    gt_tested = int(truth_null["effect"].notna().sum())
    loo_flags = null_leave_one_out(truth_null)
    null_probe = probes["null"]
    tested_probe = int((null_probe["model"] == NULL).sum())
    rows = [
        {"measure": NULL_TRUTH_ROW, "flags": len(gt_flags), "of": gt_tested,
         "expected if no change": f"≈ {(1 - LEVEL) / 2 * gt_tested:.1f} (one side of a {LEVEL:.0%} interval)",
         "which": gt_flags},
        {"measure": NULL_SEED_ROW, "flags": len(loo_flags), "of": gt_tested,
         "expected if no change": f"≈ {(1 - LEVEL) / 2 * gt_tested:.1f} (one side of a {LEVEL:.0%} prediction interval)",
         "which": loo_flags},
        {"measure": "LRP regions (Holm)", "flags": len(lrp_flags(lrp[NULL], alpha=alpha)),
         "of": int(lrp[NULL]["difference"].notna().sum()), "expected if no change": f"any flag with prob. ≤ {alpha}",
         "which": lrp_flags(lrp[NULL], alpha=alpha)},
        {"measure": "probe, corrected t (per AU)", "flags": len(probe_flags(null_probe, NULL, holm=False)),
         "of": tested_probe, "expected if no change": f"≈ {alpha * tested_probe:.1f}",
         "which": probe_flags(null_probe, NULL, holm=False)},
        {"measure": "probe, corrected t (Holm)", "flags": len(probe_flags(null_probe, NULL)), "of": tested_probe,
         "expected if no change": f"any flag with prob. ≤ {alpha}", "which": probe_flags(null_probe, NULL)},
    ]
    out = pd.DataFrame(rows).set_index("measure")
    out["which"] = out["which"].map(lambda aus: ", ".join(map(au_label, aus)) or "none")
    return out


#: The AUs the paper finds FreezeB0 forgot (§5): AU5 (surprise) and AU14 (contempt).
PAPER_FORGOTTEN_AUS = (5, 14)


#: Id of the claim that FreezeB0 truly forgot the paper's AUs.
PAPER_AUS_CLAIM_ID = "GT-paper-AUs-forgotten"


def paper_aus_claim(truth: pd.DataFrame, *, aus: Sequence[int] = PAPER_FORGOTTEN_AUS) -> Claim:
    """Did FreezeB0 truly forget the paper's AUs? The counterfactual truth, beyond seed noise.

    Rule: holds if every AU in ``aus`` is forgotten beyond seed noise
    (:func:`beyond_seed_noise`); fails if none has a ratio interval below 1; inconclusive
    otherwise.
    """
    b0 = truth[truth["model"] == pipeline.model_name(0)].set_index("au")
    beyond = [a for a in aus if bool(b0.loc[a, "forgotten_beyond_seed"])]
    below = [a for a in aus if bool(b0.loc[a, "forgotten"])]
    threshold = float(b0["seed_threshold"].iloc[0])
    verdict = "holds" if len(beyond) == len(aus) else "fails" if not below else "inconclusive"
    names = " and ".join(au_label(a) for a in aus)
    return Claim(
        PAPER_AUS_CLAIM_ID, PAPER, "§5, §6 (beyond the paper)",
        f"FreezeB0 truly forgot {names}: the counterfactual ground truth, beyond seed noise",
        "FreezeB0 forgot AU5 (surprise) and AU14 (contempt), read from LRP maps and probes",
        "; ".join(f"{au_label(a)} ratio {b0.loc[a, 'effect']:.2f} [{b0.loc[a, 'low']:.2f}, {b0.loc[a, 'high']:.2f}]"
                  for a in aus)
        + f"; seed threshold {threshold:.2f}; forgotten beyond seed noise: "
        + (", ".join(map(au_label, b0.index[b0["forgotten_beyond_seed"]])) or "none"),
        verdict,
        "ratio = FreezeB0 / FreezeB5 counterfactual feature sensitivity; forgotten beyond seed noise = 95 % pair "
        "bootstrap interval below 1 and ratio below exp(-t sigma), sigma the RMS log ratio of two FreezeB0 seeds; "
        "holds if all the paper's AUs pass, fails if none has an interval below 1")


def recovery_verdict(spearman: float, p_spearman: float, *, alpha: float = ALPHA) -> str:
    """Does a method's order of the AUs recover the truth's? ``holds``: positive agreement beyond chance
    (permutation p < ``alpha``); ``fails``: no positive agreement (rho <= 0); ``inconclusive``
    otherwise, or when nothing was scored (NaN)."""
    if not (np.isfinite(spearman) and np.isfinite(p_spearman)):
        return "inconclusive"
    if spearman <= 0:
        return "fails"
    return "holds" if p_spearman < alpha else "inconclusive"


#: Classes each control model tells apart (its chance is one over this).
CONTROL_CLASSES = {X_FREE: len(facs.EMOTIONS), SHAM: len(facs.EMOTIONS), NULL: 2}


def control_floors(validation_recall: Mapping[str, float], *, margin: float = HARD_ENOUGH_MARGIN) -> pd.DataFrame:
    """The control models' learnability floors: chance plus ``margin`` (``claims.learnability_floors``).

    Parameters
    ----------
    validation_recall : mapping model name -> float
        Best validation macro recall of :data:`X_FREE`, :data:`SHAM` and :data:`NULL`
        (their training histories' ``best_score``).

    Returns
    -------
    DataFrame, index model
        ``recall``, ``floor``, ``met``.
    """
    # The controls tell different numbers of classes apart: one floor table per model.
    return pd.concat([learnability_floors({name: recall}, n_classes=CONTROL_CLASSES[name], margin=margin)
                      for name, recall in validation_recall.items()])


def _below_floor(floors: pd.DataFrame | None, names: Sequence[str]) -> str:
    """Reason text when a model of ``names`` misses its floor, else ``""``."""
    if floors is None:
        return ""
    missed = [n for n in names if n in floors.index and not floors.loc[n, "met"]]
    return "; ".join(f"{n} below its learnability floor (validation macro recall {floors.loc[n, 'recall']:.2f} < "
                     f"{floors.loc[n, 'floor']:.2f}), so the control is not judged" for n in missed)


def ground_truth_claims(precision: pd.DataFrame, controls: pd.DataFrame, null: pd.DataFrame, *, control_au: int,
                        truth: pd.DataFrame | None = None, floors: pd.DataFrame | None = None,
                        alpha: float = ALPHA) -> list[Claim]:
    """The chapter's claims: the method against the ground truth and its controls.

    Rules
    -----
    - the paper's AUs (when ``truth`` comes through :func:`beyond_seed_noise`): see
      :func:`paper_aus_claim`.
    - recovery (LRP, probe for FreezeB0): :func:`recovery_verdict` of the rank agreement
      with the truth (precision@k against the AUs forgotten beyond seed noise is shown).
    - positive control (X-free against sham): holds if both measures flag X; fails if
      neither does; inconclusive if one does, or if the counterfactual truth does not
      confirm that X was lost beyond seed noise (the control did not bite).
    - null control: holds if the Holm-corrected measures flag nothing and the per-AU probe
      test flags at most ``2 * alpha * tested + 1`` AUs; fails otherwise.
    - either control is inconclusive, with the reason, when one of its models misses its
      learnability floor (``floors``: :func:`control_floors`).
    """
    out = [paper_aus_claim(truth)] if truth is not None and "forgotten_beyond_seed" in truth else []
    for method, claim_id in (("LRP regions", "GT-LRP-recovers"), ("probe sweep", "GT-probe-recovers")):
        part = precision[(precision["method"] == method) & (precision["model"] == pipeline.model_name(0))]
        if part.empty:
            continue
        r = part.iloc[0]
        out.append(Claim(
            claim_id, PAPER, "§4.2-§4.3 (beyond the paper)",
            f"The {method} ranking recovers the AUs FreezeB0 truly forgot",
            "the paper assumes its method finds the forgotten AUs",
            f"Spearman rho = {stats.estimate_text(r['spearman'], '+.2f')} with the truth's order of "
            f"{int(r['n_aus'])} AUs (permutation p = {stats.p_text(r['p_spearman'])}); precision@{int(r['k'])} = "
            f"{stats.estimate_text(r['precision'])} against the {int(r['n_forgotten'])} AUs forgotten beyond seed "
            f"noise (chance {stats.estimate_text(r['chance'])}, p = {stats.p_text(r['p_precision'])}); method top: "
            f"{r['method_top']}; true top: {r['true_top']}",
            recovery_verdict(r["spearman"], r["p_spearman"], alpha=alpha),
            "truth: AUs ordered by 1 - (feature sensitivity of FreezeB0 / of FreezeB5) on counterfactual pairs; "
            f"holds if the method's order agrees with it (Spearman rho > 0, permutation p < {alpha}), fails if rho "
            "<= 0; precision@k against the AUs forgotten beyond seed noise is shown with its chance (their share)"))
    name = au_label(control_au)
    x = controls.iloc[0]
    flagged = [bool(x[f"LRP: {name} flagged"]), bool(x[f"probe: {name} flagged"])]
    lost = bool(x[f"truth: {name} forgotten beyond seed noise"])
    unlearned = _below_floor(floors, [X_FREE, SHAM])
    verdict = ("inconclusive" if not lost or unlearned else "holds" if all(flagged) else "fails" if not any(flagged)
               else "inconclusive")
    out.append(Claim(
        "GT-positive-control", PAPER, "beyond the paper",
        f"The method flags {name} for a model whose block 5 learned again without {name}, against its sham",
        "—",
        f"truth: {name} ratio {x[f'truth: {name} feature ratio [95 %]']}, rank {x[f'truth: rank of {name}']}"
        + ("" if lost else f" (the control did not bite: not below the seed threshold {x['truth: seed threshold']})")
        + "; "
        f"LRP {'flags' if flagged[0] else 'does not flag'} {name} (rank {x[f'LRP: rank of {name}']}); probe "
        f"{'flags' if flagged[1] else 'does not flag'} it ({x[f'probe: {name} F1 diff']} F1 points, rank "
        f"{x[f'probe: rank of {name}']})" + (f"; {unlearned}" if unlearned else ""),
        verdict,
        "X-free vs sham: the same re-drawn block 5 fine-tuned on the same faces, with and without X; flag: LRP extra "
        "difference > 0 with Holm p < 0.05; probe F1 difference < 0 with corrected-t Holm p < 0.05; holds if both "
        "flag X, fails if neither does; inconclusive if one does, or whenever the counterfactual truth does not "
        "confirm that X was lost beyond seed noise (the control did not bite)"))
    holm_flags = int(null.loc["LRP regions (Holm)", "flags"] + null.loc["probe, corrected t (Holm)", "flags"])
    per_au = null.loc["probe, corrected t (per AU)"]
    limit = 2 * alpha * int(per_au["of"]) + 1
    unlearned = _below_floor(floors, [NULL])
    verdict = "inconclusive" if unlearned else "holds" if holm_flags == 0 and per_au["flags"] <= limit else "fails"
    out.append(Claim(
        "GT-null-control", PAPER, "beyond the paper",
        "Two FreezeB0 that differ only in their seed: the method flags nothing beyond alpha",
        "—",
        "; ".join(f"{m}: {int(r['flags'])} of {int(r['of'])} ({r['which']})" for m, r in null.iterrows())
        + (f"; {unlearned}" if unlearned else ""),
        verdict,
        f"holds if the Holm-corrected LRP and probe tests flag no AU and the per-AU corrected probe test at most "
        f"2 alpha n + 1 = {limit:.1f}; the ground-truth row shows what seed alone does to the counterfactual measure"))
    return out


# =========================================================================== 7. glued values
def check_headline(check: Mapping[str, Any]) -> dict[str, Any]:
    """Glued values of the control data check (:func:`controls.control_check`).

    Returns
    -------
    dict
        ``control_n`` (faces), ``control_sham_share`` (per cent of sham faces with AU X),
        ``control_users`` (emotions whose prototype uses X, or "no emotion").
    """
    return {"control_n": check["n"], "control_sham_share": 100 * check["sham_share"],
            "control_users": ", ".join(check["x_users"]) or "no emotion"}


def truth_headline(truth: pd.DataFrame, null_truth: pd.DataFrame, summary: pd.DataFrame, *,
                   model: str = "FreezeB0", k: int = TOP_K) -> dict[str, Any]:
    """Glued values of the ground-truth section for ``model``.

    Parameters
    ----------
    truth : :func:`truth.beyond_seed_noise` output (one ``seed_threshold`` for all rows)
    null_truth : the null control's truth table (:func:`truth.controls_truth`)
    summary : :func:`truth.truth_summary` output

    Returns
    -------
    dict
        ``seed_sigma`` and ``seed_threshold`` (floats); ``b0_forgotten``,
        ``b0_beyond_seed``, ``b0_gained_seed``, ``b0_top``, ``b0_top_logit``,
        ``b0_top_predicted`` (text from ``summary``); ``pspi_aus`` (text).
    """
    row = summary.loc[model]
    return {"seed_sigma": seed_noise(null_truth), "seed_threshold": float(truth["seed_threshold"].iloc[0]),
            "b0_forgotten": row["forgotten (features)"], "b0_beyond_seed": row["forgotten beyond seed noise"],
            "b0_gained_seed": row["gained beyond seed noise"], "b0_top": row[f"top {k} (features)"],
            "b0_top_logit": row[f"top {k} (logits)"], "b0_top_predicted": row[f"top {k} predicted"],
            "pspi_aus": au_labels(facs.PSPI_AUS)}


def control_headline(controls: pd.DataFrame, *, control_au: int) -> dict[str, str]:
    """Glued values of the positive control (:func:`control_summary`'s one row).

    Returns
    -------
    dict
        ``x_truth`` (ratio [interval]), ``x_truth_rank``, ``x_lrp_rank``, ``x_probe_rank``.
    """
    name = au_label(control_au)
    x = controls.loc[f"{X_FREE} vs {SHAM}"]
    return {"x_truth": x[f"truth: {name} feature ratio [95 %]"], "x_truth_rank": x[f"truth: rank of {name}"],
            "x_lrp_rank": x[f"LRP: rank of {name}"], "x_probe_rank": x[f"probe: rank of {name}"]}


def null_headline(null: pd.DataFrame) -> dict[str, Any]:
    """Glued values of the null control (:func:`null_summary`).

    Returns
    -------
    dict
        ``null_truth_flags`` and ``null_seed_flags`` (AUs flagged by the counterfactual
        interval alone and with the seed threshold), ``null_seed_which`` (their names).
    """
    return {"null_truth_flags": int(null.loc[NULL_TRUTH_ROW, "flags"]),
            "null_seed_flags": int(null.loc[NULL_SEED_ROW, "flags"]),
            "null_seed_which": null.loc[NULL_SEED_ROW, "which"]}


#: Methods of :func:`methods.precision_table` and the prefix of their glued values.
PRECISION_METHODS = {"LRP regions": "lrp", "probe sweep": "probe"}


def precision_headline(precision: pd.DataFrame, *, model: str = "FreezeB0") -> dict[str, Any]:
    """Glued values of the scoring section for ``model``.

    Returns
    -------
    dict
        For ``lrp`` and ``probe``: ``<m>_spearman`` and ``<m>_p`` (rank agreement with the
        truth and its permutation p, as :func:`forgetting_aus.stats.p_equation` writes it),
        ``<m>_precision`` (precision@k against the AUs forgotten beyond seed noise),
        ``<m>_top`` (the method's top AUs); "n/a", "p = n/a", "n/a", "not scored" when the
        method has no row. ``chance`` (the forgotten AUs' share) and ``n_forgotten`` of the
        first row (NaN without rows). Estimates are text to two decimals
        (:func:`forgetting_aus.stats.estimate_text`).
    """
    rows = precision[precision["model"] == model].set_index("method")
    out: dict[str, Any] = {}
    for method, key in PRECISION_METHODS.items():
        found = method in rows.index
        out[f"{key}_spearman"] = stats.estimate_text(rows.loc[method, "spearman"] if found else np.nan)
        out[f"{key}_p"] = stats.p_equation(rows.loc[method, "p_spearman"]) if found else "p = n/a"
        out[f"{key}_precision"] = stats.estimate_text(rows.loc[method, "precision"] if found else np.nan)
        out[f"{key}_top"] = rows.loc[method, "method_top"] if found else "not scored"
    out["chance"] = stats.estimate_text(rows["chance"].iloc[0] if len(rows) else np.nan)
    out["n_forgotten"] = int(rows["n_forgotten"].iloc[0]) if len(rows) else np.nan
    return out


def paper_aus_headline(chapter_claims: Sequence[Claim]) -> dict[str, str]:
    """``paper_aus_truth`` and ``paper_aus_verdict``: this run's value and verdict of the
    claim that FreezeB0 truly forgot the paper's AUs (:func:`paper_aus_claim`)."""
    claim = next((c for c in chapter_claims if c.claim_id == PAPER_AUS_CLAIM_ID), None)
    if claim is None:
        raise ValueError(f"no claim {PAPER_AUS_CLAIM_ID!r} among {[c.claim_id for c in chapter_claims]}; "
                         "pass truth (through truth.beyond_seed_noise) to ground_truth_claims")
    return {"paper_aus_truth": claim.this_run, "paper_aus_verdict": claim.verdict}
