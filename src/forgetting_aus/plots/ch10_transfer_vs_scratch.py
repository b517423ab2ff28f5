"""Figures of chapter 10 (Arabian et al. 2022): accuracies, DICE/IoU bars, class maps.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from forgetting_aus.plots import common

__all__ = ["accuracy_boxplots", "overlap_bars", "class_map_grid", "learning_curves"]


_SCHEME_COLOURS = {"transfer": "tab:blue", "scratch": "tab:orange"}


_SCHEME_LABELS = {"transfer": "transfer learning", "scratch": "from scratch"}


def accuracy_boxplots(accuracies: pd.DataFrame, *, datasets: list[str], models: list[str],
                      schemes: list[str] = ("transfer", "scratch"), chance: float | None = None) -> plt.Figure:
    """Boxplots of fold accuracies: one panel per dataset, a box per (model, scheme).

    Parameters
    ----------
    accuracies : DataFrame
        Columns ``model``, ``scheme``, ``fold``, ``dataset``, ``accuracy`` (%).
    datasets, models, schemes : list of str, keyword-only
        Panel and box order.
    chance : float, keyword-only, optional
        Chance accuracy in % (drawn as a dashed line).
    """
    fig, axes = plt.subplots(1, len(datasets), figsize=common.figsize(4.2 * len(datasets), 3.6), sharey=False, squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        data, positions, colours = [], [], []
        for i, model in enumerate(models):  # noqa: B007 - used in the query string
            for j, scheme in enumerate(schemes):
                values = accuracies.query("dataset == @dataset and model == @model and scheme == @scheme")["accuracy"]
                data.append(values.to_numpy())
                positions.append(i * (len(schemes) + 1) + j)
                colours.append(_SCHEME_COLOURS.get(scheme, "grey"))
        boxes = ax.boxplot(data, positions=positions, widths=0.8, whis=1.5, patch_artist=True,
                           medianprops={"color": "black"})
        for patch, colour in zip(boxes["boxes"], colours, strict=True):
            patch.set_facecolor(colour)
            patch.set_alpha(0.6)
        for values, x in zip(data, positions, strict=True):
            ax.scatter(np.full(len(values), x), values, s=10, color="black", zorder=3)
        centres = [i * (len(schemes) + 1) + (len(schemes) - 1) / 2 for i in range(len(models))]
        ax.set_xticks(centres, models)
        if chance is not None:
            ax.axhline(chance, color="grey", ls="--", lw=1)
        ax.set_title(dataset)
        ax.set_ylabel("accuracy (%)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=_SCHEME_COLOURS[s], alpha=0.6) for s in schemes]
    labels = [_SCHEME_LABELS.get(s, s) for s in schemes]
    if chance is not None:
        handles.append(plt.Line2D([], [], color="grey", ls="--"))
        labels.append("chance")
    fig.legend(handles, labels, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def overlap_bars(summary: pd.DataFrame, *, metric: str, datasets: list[str], models: list[str],
                 schemes: list[str] = ("transfer", "scratch")) -> plt.Figure:
    """Mean DICE or IoU per dataset and model, schemes side by side (paper Figures 1, 2).

    Parameters
    ----------
    summary : DataFrame
        :func:`forgetting_aus.studies.arabian.overlap_summary`, indexed by (dataset,
        model, scheme), with ``<metric>_mean``, ``<metric>_sd`` and ``<metric>_chance``.
    metric : "dice" or "iou", keyword-only
    """
    if metric not in ("dice", "iou"):
        raise ValueError(f"metric must be 'dice' or 'iou', got {metric!r}")
    fig, axes = plt.subplots(1, len(datasets), figsize=common.figsize(4.0 * len(datasets), 3.4), sharey=True, squeeze=False)
    width = 0.8 / len(schemes)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        x = np.arange(len(models))
        for j, scheme in enumerate(schemes):
            means = [summary[f"{metric}_mean"].get((dataset, m, scheme), np.nan) for m in models]
            sds = [summary[f"{metric}_sd"].get((dataset, m, scheme), np.nan) for m in models]
            ax.bar(x + (j - (len(schemes) - 1) / 2) * width, means, width, yerr=np.nan_to_num(sds), capsize=3,
                   color=_SCHEME_COLOURS.get(scheme, "grey"), alpha=0.8, label=_SCHEME_LABELS.get(scheme, scheme))
        chance = summary[f"{metric}_chance"].xs(dataset, level="dataset").mean()
        ax.axhline(chance, color="grey", ls="--", lw=1, label="random mask of equal area")
        ax.set_xticks(x, models)
        ax.set_title(dataset)
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel(f"mean {'DICE' if metric == 'dice' else 'IoU'} over classes")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def class_map_grid(maps: dict[tuple[str, str], np.ndarray], reference: np.ndarray, *, models: list[str],
                   schemes: list[str] = ("transfer", "scratch"), reference_level: float = 0.5,
                   title: str = "") -> plt.Figure:
    """Class-averaged Grad-CAM maps of one class: rows schemes, columns models.

    Parameters
    ----------
    maps : dict
        ``(model, scheme) -> (S, S)`` map in [0, 1] (e.g. averaged over folds).
    reference : ndarray of shape (S, S)
        Share of the class's images covered by its prototype-AU regions; shown in the
        first column and outlined at ``reference_level`` on every map.
    """
    n_cols = len(models) + 1
    fig, axes = plt.subplots(len(schemes), n_cols, figsize=common.figsize(2.3 * n_cols + 0.8, 2.4 * len(schemes)), squeeze=False)
    heat_image = None
    for row, scheme in enumerate(schemes):
        ax = axes[row][0]
        if row == 0:
            image = ax.imshow(reference, cmap="Greens", vmin=0, vmax=1)
            ax.set_title("region of importance", fontsize=9)
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        else:
            ax.axis("off")
        ax.set_xticks([])
        ax.set_yticks([])
        for col, model in enumerate(models, start=1):
            ax = axes[row][col]
            heat = maps.get((model, scheme))
            if heat is not None:  # one scale for every panel, so the maps can be compared
                heat_image = ax.imshow(heat, cmap="inferno", vmin=0, vmax=1)
            ax.contour(reference >= reference_level, levels=[0.5], colors="cyan", linewidths=1)
            ax.set_title(f"{model}, {_SCHEME_LABELS.get(scheme, scheme)}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    if heat_image is not None:
        fig.colorbar(heat_image, cax=fig.add_axes((0.915, 0.15, 0.015, 0.7)), label="class-averaged Grad-CAM (0-1)")
    return fig


def learning_curves(curves: pd.DataFrame, *, models: list[str], schemes: list[str] = ("transfer", "scratch"),
                    chance: float | None = None) -> plt.Figure:
    """Macro recall on the epoch-selection subjects per epoch: one panel per model, a line per scheme.

    Parameters
    ----------
    curves : DataFrame
        Columns ``model``, ``scheme``, ``fold``, ``epoch`` (1-based), ``val_macro_recall``
        (0-1), as ``tables.learning_curves``.
    models, schemes : list of str, keyword-only
        Panel and line order.
    chance : float, keyword-only, optional
        Chance recall in % (drawn dashed).
    """
    fig, axes = plt.subplots(1, len(models), figsize=common.figsize(4.0 * len(models), 3.2), sharey=True, squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        for scheme in schemes:
            chosen = curves[(curves["model"] == model) & (curves["scheme"] == scheme)]
            colour = _SCHEME_COLOURS.get(scheme, "grey")
            for _, fold in chosen.groupby("fold"):
                ax.plot(fold["epoch"], 100 * fold["val_macro_recall"], color=colour, alpha=0.25, lw=0.8)
            mean = chosen.groupby("epoch")["val_macro_recall"].mean()
            ax.plot(mean.index, 100 * mean.to_numpy(), color=colour, lw=2, label=_SCHEME_LABELS.get(scheme, scheme))
        if chance is not None:
            ax.axhline(chance, color="grey", ls="--", lw=1, label="chance")
        ax.set_title(model)
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 100)
    axes[0][0].set_ylabel("macro recall, selection subjects (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig
