"""Figures of chapter 06: per-repetition differences, mouth-mask validation, the sweep heatmap.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from forgetting_aus import facs, pipeline
from forgetting_aus.concepts import MASKED_AUS, REFERENCE
from forgetting_aus.plots import common
from forgetting_aus.stats import ALPHA

__all__ = ["sweep_heatmap", "crop_validation_figure", "repetition_differences_figure"]


def sweep_heatmap(table: pd.DataFrame, *, folds: tuple[str, ...] = ("stratified", "grouped"),
                  test: str = "corrected_t") -> plt.Figure:
    """Mean probe F1 difference FreezeBk - FreezeB5 per AU and model, one panel per fold scheme.

    Parameters
    ----------
    table : DataFrame
        :func:`forgetting_aus.chapters.ch06_concept_embedding.sweep` output.
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
    fig, axes = plt.subplots(1, len(schemes), figsize=common.figsize(3.0 * len(schemes) + 2.2, 0.3 * len(aus) + 1.6),
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
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8,
                 label="mean F1 difference, B<k> − B5 (points)\nred: B<k> worse, blue: better")
    return fig


def crop_validation_figure(validation: pd.DataFrame) -> plt.Figure:
    """Probe F1 uncropped vs mouth-masked for each AU and model, with the chance level.

    Parameters
    ----------
    validation : DataFrame
        :func:`forgetting_aus.chapters.ch06_concept_embedding.mouth_crop_validation` output.
    """
    models = list(dict.fromkeys(validation["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=common.figsize(3.4 * len(models), 3.0), sharey=True, squeeze=False)
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
        :func:`forgetting_aus.chapters.ch06_concept_embedding.paper_tests` rows in the same order as ``differences``.
    """
    fig, axes = plt.subplots(1, len(differences), figsize=common.figsize(2.8 * len(differences), 3.2), squeeze=False,
                             sharey=False)
    for ax, (label, d), (_, row) in zip(axes[0], differences.items(), tests.iterrows(), strict=True):
        counts, _, _ = ax.hist(100 * d, bins=min(30, max(5, len(d) // 10)), color="lightgrey", edgecolor="grey")
        # The intervals above the tallest bar, so they cover none.
        top = max(float(np.max(counts)), 1.0)
        for y, (low, high, colour, name) in zip(
                (1.25, 1.12), ((row["paired_t_ci_low"], row["paired_t_ci_high"], "tab:red", "naive 95 % CI"),
                               (row["corrected_t_ci_low"], row["corrected_t_ci_high"], "tab:blue",
                                "corrected 95 % CI")), strict=True):
            ax.hlines(y * top, 100 * low, 100 * high, color=colour, lw=3, label=name)
        ax.set_ylim(0, 1.35 * top)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("B0 - B5 F1 per repetition (points)", fontsize=8)
    axes[0][0].set_ylabel("repetitions")
    handles, labels = axes[0][0].get_legend_handles_labels()
    # Below the panels, so the legend covers no bar or interval.
    fig.legend(handles, labels, fontsize=8, frameon=False, loc="lower center", ncol=2)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig
