"""Figures of chapter 08: the forgetting heatmap, method vs. truth, controls, pair examples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from forgetting_aus import facs
from forgetting_aus.plots import common

__all__ = ["forgetting_heatmap", "method_vs_truth", "controls_figure", "pair_examples"]


#: Colour of the AUs the world predicts to be free to forget (surprise and contempt AUs).
PREDICTED_COLOUR = "tab:green"


CONTROL_COLOUR = "tab:red"


def _colour_ticks(labels, predicted: Sequence[int], *, colour: str = PREDICTED_COLOUR) -> None:
    names = {f"AU{a}" for a in predicted}
    for label in labels:
        if label.get_text() in names:
            label.set_color(colour)
            label.set_fontweight("bold")


def _flag(value) -> bool:
    """A pivoted boolean cell: numpy or Python bool, or NaN where the AU was not measured."""
    return not pd.isna(value) and bool(value)


def forgetting_heatmap(truth: pd.DataFrame, *, predicted: Sequence[int] = ()) -> plt.Figure:
    """Feature-sensitivity ratio FreezeB<k> / FreezeB5 per AU (rows) and model (columns).

    Parameters
    ----------
    truth : DataFrame
        :func:`forgetting_aus.chapters.ch08_ground_truth.truth.forgotten_by_k` output (``au_name``, ``model``, ``effect``,
        ``forgotten``, ``gained``; optionally ``forgotten_beyond_seed`` and
        ``gained_beyond_seed`` from :func:`forgetting_aus.chapters.ch08_ground_truth.truth.beyond_seed_noise`, marked with a
        doubled arrow).
    predicted : AU codes to highlight (the world's prediction), green tick labels.
    """
    models = [m for m in ("FreezeB4", "FreezeB3", "FreezeB2", "FreezeB1", "FreezeB0") if m in set(truth["model"])]
    aus = [f"AU{a}" for a in facs.AU_CODES]
    value = truth.pivot(index="au_name", columns="model", values="effect").reindex(index=aus, columns=models)
    lost = truth.pivot(index="au_name", columns="model", values="forgotten").reindex(index=aus, columns=models)
    won = truth.pivot(index="au_name", columns="model", values="gained").reindex(index=aus, columns=models)
    seeded = "forgotten_beyond_seed" in truth
    if seeded:
        lost2 = truth.pivot(index="au_name", columns="model", values="forgotten_beyond_seed").reindex(
            index=aus, columns=models)
        won2 = truth.pivot(index="au_name", columns="model", values="gained_beyond_seed").reindex(
            index=aus, columns=models)
    span = float(np.nanmax(np.abs(np.log(value.to_numpy(dtype=float))))) if value.notna().any().any() else 0.1
    span = max(span, 0.05)
    fig, ax = plt.subplots(figsize=common.figsize(1.2 * len(models) + 2.6, 6.4))
    image = ax.imshow(np.log(value.to_numpy(dtype=float)), cmap="RdBu", vmin=-span, vmax=span, aspect="auto")
    for i in range(len(aus)):
        for j in range(len(models)):
            v = value.iloc[i, j]
            mark = "↓" if _flag(lost.iloc[i, j]) else "↑" if _flag(won.iloc[i, j]) else ""
            if seeded and (_flag(lost2.iloc[i, j]) or _flag(won2.iloc[i, j])):
                mark *= 2  # beyond the seed-to-seed spread as well
            # white on the dark ends of the map, black in its light middle
            dark = np.isfinite(v) and v > 0 and abs(np.log(v)) > 0.6 * span
            ax.text(j, i, f"{v:.2f}{mark}", ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(len(models)), models)
    ax.set_yticks(range(len(aus)), aus)
    _colour_ticks(ax.get_yticklabels(), predicted)
    cbar = fig.colorbar(image, ax=ax, shrink=0.7)
    cbar.set_label("log(sensitivity ratio to FreezeB5)")
    ax.set_title("Counterfactual feature sensitivity, FreezeBk / FreezeB5", fontsize=10)
    fig.tight_layout()
    return fig


def method_vs_truth(truth_b0: pd.DataFrame, lrp_table: pd.DataFrame | None, probe_table: pd.DataFrame | None, *,
                    model: str = "FreezeB0", predicted: Sequence[int] = ()) -> plt.Figure:
    """The method's evidence per AU against the ground truth, for one model.

    Left: LRP extra positive difference (target minus baseline) per AU region; right:
    probe F1 loss (reference minus model, F1 points). x: ground-truth forgetting
    (1 - feature sensitivity ratio).
    """
    panels = [("LRP: extra difference per pixel", lrp_table, "difference", 1.0),
              ("probe: F1 lost (points)", probe_table, "mean_difference", -100.0)]
    panels = [p for p in panels if p[1] is not None]
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=common.figsize(5.2 * max(len(panels), 1), 4.0), squeeze=False)
    truth = truth_b0.set_index("au")["forgetting"]
    labelled = []
    for ax, (title, table, column, factor) in zip(axes[0], panels, strict=False):
        part = table if "model" not in table.columns else table[table["model"] == model]
        y = part.set_index("au")[column].astype(float) * factor
        shared = [a for a in truth.index if a in y.index and np.isfinite(y.loc[a]) and np.isfinite(truth.loc[a])]
        colours = [PREDICTED_COLOUR if a in predicted else "0.3" for a in shared]
        ax.scatter(truth.loc[shared], y.loc[shared], color=colours, s=18)
        labelled.append((ax, shared, colours, y))
        ax.axvline(0, color="0.7", lw=0.8)
        ax.axhline(0, color="0.7", lw=0.8)
        ax.xaxis.set_major_locator(MaxNLocator(5))  # the panels are narrow: fewer ticks, no overlap
        ax.set_xlabel(f"truth: 1 − sensitivity ratio ({model} / FreezeB5)")
        ax.set_ylabel(title)
        if not shared:
            ax.text(0.5, 0.5, "no AU scored in this run", transform=ax.transAxes, ha="center")
    fig.tight_layout()
    for ax, shared, colours, y in labelled:  # after the layout, so the labels' boxes are final
        common.label_points(ax, truth.loc[shared], y.loc[shared], [f"AU{a}" for a in shared], colours=colours)
    return fig


def controls_figure(truth_controls: Mapping[str, pd.DataFrame], lrp: Mapping[str, pd.DataFrame],
                    probes: pd.DataFrame, *, control_au: int, models: Sequence[str]) -> plt.Figure:
    """Per AU, three measures for the X-free and the sham fine-tune (and the null control).

    Rows of panels: ground-truth sensitivity ratio to the reference, LRP extra difference,
    probe F1 loss; one bar per model; AU X in red.
    """
    aus = list(facs.AU_CODES)
    x = np.arange(len(aus))
    width = 0.8 / max(len(models), 1)
    fig, axes = plt.subplots(3, 1, figsize=common.figsize(10, 7.2), sharex=True)
    for i, model in enumerate(models):
        offset = (i - (len(models) - 1) / 2) * width
        truth = truth_controls[model].set_index("au")["effect"].reindex(aus)
        axes[0].bar(x + offset, truth.to_numpy(dtype=float) - 1, width, bottom=1, label=model)
        diff = lrp[model].set_index("au")["difference"].reindex(aus) if model in lrp else pd.Series(np.nan, aus)
        axes[1].bar(x + offset, diff.to_numpy(dtype=float), width, label=model)
        part = probes[probes["model"] == model].set_index("au")["mean_difference"].reindex(aus)
        axes[2].bar(x + offset, -100 * part.to_numpy(dtype=float), width, label=model)
    axes[0].axhline(1, color="0.5", lw=0.8)
    axes[0].set_ylabel("truth: sensitivity\nratio to reference")
    axes[1].axhline(0, color="0.5", lw=0.8)
    axes[1].set_ylabel("LRP: extra\ndifference / pixel")
    axes[2].axhline(0, color="0.5", lw=0.8)
    axes[2].set_ylabel("probe: F1 lost\n(points)")
    axes[2].set_xticks(x, [f"AU{a}" for a in aus], rotation=90)
    _colour_ticks(axes[2].get_xticklabels(), [control_au], colour=CONTROL_COLOUR)
    axes[0].legend(fontsize=8, ncol=len(models))
    fig.tight_layout()
    return fig


def pair_examples(on: np.ndarray, off: np.ndarray, codes: Sequence[int]) -> plt.Figure:
    """A few counterfactual pairs: on face above, off face below, one column per AU.

    Parameters
    ----------
    on, off : uint8 (len(codes), S, S, 3)
    codes : AU codes of the columns
    """
    n = len(codes)
    fig, axes = plt.subplots(2, n, figsize=common.figsize(1.3 * n, 2.9), squeeze=False)
    for j, code in enumerate(codes):
        for i, (image, row) in enumerate(((on[j], "on"), (off[j], "off"))):
            axes[i, j].imshow(image)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            if j == 0:
                axes[i, j].set_ylabel(row)
        axes[0, j].set_title(f"AU{code}", fontsize=9)
    fig.tight_layout()
    return fig
