"""Figures of chapters 06 (concept probes) and 07 (discussion, Figure 7).

Each function takes the tables of :mod:`forgetting_aus.probing` and returns a matplotlib
Figure; Figure 6 is :func:`forgetting_aus.plots.prototype_matrix_figure`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Ellipse

from . import facs, pipeline
from .probing import ALPHA, MASKED_AUS, REFERENCE

__all__ = ["sweep_heatmap", "crop_validation_figure", "repetition_differences_figure", "figure7"]


def sweep_heatmap(table: pd.DataFrame, *, folds: tuple[str, ...] = ("stratified", "grouped"),
                  test: str = "corrected_t") -> plt.Figure:
    """Mean probe F1 difference FreezeBk - FreezeB5 per AU and model, one panel per fold scheme.

    Parameters
    ----------
    table : DataFrame
        :func:`forgetting_aus.probing.sweep` output.
    folds : tuple of str, keyword-only
        Fold schemes to draw (those present in ``table``).
    test : str, keyword-only
        The test whose Holm-corrected p-value gives the ``*`` mark; ``·`` marks cells that
        only the paper's naive paired t-test (Holm) calls significant.
    """
    schemes = [f for f in folds if f in set(table["folds"])]
    models = [pipeline.model_name(k) for k in sorted(pipeline.FREEZE_LEVELS, reverse=True)
              if pipeline.model_name(k) != REFERENCE]
    aus = [a for a in facs.AU_CODES if a in set(table["au"])]
    values = {s: table[table["folds"] == s].pivot(index="au", columns="model", values="mean_difference")
              .reindex(index=aus, columns=models) * 100 for s in schemes}
    limit = max(1.0, max(float(np.nanmax(np.abs(v.to_numpy()))) for v in values.values()))
    fig, axes = plt.subplots(1, len(schemes), figsize=(3.0 * len(schemes) + 2.2, 0.3 * len(aus) + 1.6),
                             squeeze=False, sharey=True)
    image = None
    for ax, scheme in zip(axes[0], schemes, strict=True):
        part = table[table["folds"] == scheme].set_index(["au", "model"])
        image = ax.imshow(values[scheme].to_numpy(), cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
        for i, au in enumerate(aus):
            for j, model in enumerate(models):
                if (au, model) not in part.index:
                    continue
                row = part.loc[(au, model)]
                mark = "*" if row[f"{test}_p_holm"] < ALPHA else "·" if row["paired_t_p_holm"] < ALPHA else ""
                ax.text(j, i, mark, ha="center", va="center", fontsize=11, color="black")
        ax.set_xticks(range(len(models)), [m.replace("FreezeB", "B") for m in models])
        if ax is axes[0][0]:
            ax.set_yticks(range(len(aus)), [f"AU{a}" + (" (masked)" if a in MASKED_AUS else "") for a in aus],
                          fontsize=8)
        ax.set_title(f"{scheme} folds", fontsize=10)
        ax.set_xlabel("model (vs. FreezeB5)")
    fig.colorbar(image, ax=axes[0].tolist(), label="mean F1 difference (points)", shrink=0.8)
    return fig


def crop_validation_figure(validation: pd.DataFrame) -> plt.Figure:
    """Probe F1 uncropped vs mouth-masked for each AU and model, with the chance level.

    Parameters
    ----------
    validation : DataFrame
        :func:`forgetting_aus.probing.mouth_crop_validation` output.
    """
    models = list(dict.fromkeys(validation["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(3.4 * len(models), 3.0), sharey=True, squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        part = validation[validation["model"] == model].reset_index(drop=True)
        x = np.arange(len(part))
        ax.bar(x - 0.18, part["f1_full"], 0.36, label="uncropped", color="tab:blue")
        ax.bar(x + 0.18, part["f1_cropped"], 0.36, label="mouth masked", color="tab:orange")
        for i, chance in enumerate(part["chance_f1"]):
            ax.hlines(chance, i - 0.4, i + 0.4, color="black", ls="--", lw=1,
                      label="chance (always 'present')" if i == 0 else None)
        ax.set_xticks(x, part["au"])
        ax.set_title(model, fontsize=10)
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("probe F1 (positive class)")
    axes[0][0].legend(fontsize=7, frameon=False, loc="upper left")
    fig.tight_layout()
    return fig


def repetition_differences_figure(differences: dict[str, np.ndarray], tests: pd.DataFrame) -> plt.Figure:
    """Per-repetition F1 differences FreezeB0 - FreezeB5 with the naive and corrected intervals.

    Parameters
    ----------
    differences : dict label -> float (n_repeats,)
        Per-repetition mean differences, keyed ``"AU14 stratified"`` etc.
    tests : DataFrame
        :func:`forgetting_aus.probing.paper_tests` rows in the same order as ``differences``.
    """
    fig, axes = plt.subplots(1, len(differences), figsize=(2.8 * len(differences), 2.8), squeeze=False, sharey=False)
    for ax, (label, d), (_, row) in zip(axes[0], differences.items(), tests.iterrows(), strict=True):
        ax.hist(100 * d, bins=min(30, max(5, len(d) // 10)), color="lightgrey", edgecolor="grey")
        top = ax.get_ylim()[1]
        for y, (low, high, colour, name) in zip(
                (0.92, 0.8), ((row["paired_t_ci_low"], row["paired_t_ci_high"], "tab:red", "naive 95 % CI"),
                              (row["corrected_t_ci_low"], row["corrected_t_ci_high"], "tab:blue",
                               "corrected 95 % CI")), strict=True):
            ax.hlines(y * top, 100 * low, 100 * high, color=colour, lw=3, label=name)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("B0 - B5 F1 per repetition (points)", fontsize=8)
    axes[0][0].set_ylabel("repetitions")
    axes[0][0].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(0, 0.75))
    fig.tight_layout()
    return fig


def figure7(chosen: pd.DataFrame) -> plt.Figure:
    """Paper Figure 7: pain, surprise and contempt recall of the six models; best trade-off marked.

    Parameters
    ----------
    chosen : DataFrame
        :func:`forgetting_aus.probing.best_tradeoff` of :func:`probing.tradeoff_data`,
        indexed by model FreezeB5..FreezeB0.
    """
    fig, (ax, ax_plane) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    x = np.arange(len(chosen))
    pain = chosen["pain_recall"]
    ax.errorbar(x, pain, yerr=[pain - chosen["pain_low"], chosen["pain_high"] - pain], marker="o", color="tab:red",
                capsize=3, label="pain (95 % sequence bootstrap)")
    for emotion, colour in (("surprise", "tab:blue"), ("contempt", "tab:green")):
        ax.errorbar(x, chosen[emotion], yerr=chosen[f"{emotion}_sd"].fillna(0), marker="s", color=colour, capsize=3,
                    label=f"{emotion} (mean ± SD, re-trained)")
    for i, best in enumerate(chosen["best"]):
        if best:
            ax.add_patch(Ellipse((i, 0.5), 0.8, 1.05, fill=False, edgecolor="limegreen", lw=2.5))
    ax.set_xticks(x, chosen.index)
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("recall")
    ax.legend(fontsize=7, frameon=False, loc="lower left")
    ax.set_title("recall per model; green: best trade-off by the rule", fontsize=9)
    ax_plane.scatter(chosen["pain_recall"], chosen["emotion"], c=np.where(chosen["best"], "limegreen", "grey"),
                     s=50, zorder=3)
    for model, row in chosen.iterrows():
        ax_plane.annotate(f"{model.replace('FreezeB', 'B')} ({row['score']:.2f})", (row["pain_recall"], row["emotion"]),
                          xytext=(4, 3), textcoords="offset points", fontsize=8)
    ax_plane.set_xlabel("pain recall")
    ax_plane.set_ylabel("mean of surprise and contempt recall")
    ax_plane.set_title("trade-off plane (score = min of scaled recalls)", fontsize=9)
    fig.tight_layout()
    return fig
