"""Figures of chapter 09 (Weitz et al. 2018): heatmaps under four LRP rules, region shares.

The confusion matrix (Weitz's Figure 1) is ``common.confusion_figure(..., normalize=False)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from forgetting_aus.plots import common

__all__ = ["rule_heatmaps_figure", "region_share_figure", "symmetric_limit"]


#: Diverging colour map with red for positive relevance (for the explained class), blue for negative.
RELEVANCE_CMAP = "bwr"


RELEVANCE_LABEL = "relevance (a.u.)"


def symmetric_limit(relevance_map: np.ndarray) -> float:
    """Colour limit ``max |R|`` of one map (1.0 for an all-zero map), so 0 sits at the centre."""
    limit = float(np.nanmax(np.abs(relevance_map))) if np.size(relevance_map) else 0.0
    return limit if limit > 0 and np.isfinite(limit) else 1.0


def rule_heatmaps_figure(images: np.ndarray, maps: Mapping[str, np.ndarray], *, true: Sequence[str],
                         predicted: Sequence[str]) -> plt.Figure:
    """The same images under several LRP rules (Weitz's Figure 3).

    Parameters
    ----------
    images : uint8 array of shape (k, S, S, 3)
        The explained images (first row).
    maps : mapping rule name -> float array of shape (k, S, S)
        Signed relevance, one row of panels per rule, in the mapping's order.
    true, predicted : sequences of k str, keyword-only
        Labels over each image ("true / predicted", as in the paper).

    Returns
    -------
    Figure
        Every map in a diverging colour map with symmetric limits of its own
        (:func:`symmetric_limit`) and a colour bar labelled "relevance (a.u.)", with the
        map's power of ten in the label (``×1e-3``) rather than as an offset text.
    """
    images = np.asarray(images)
    k = len(images)
    rules = list(maps)
    for rule in rules:
        if np.shape(maps[rule])[0] != k:
            raise ValueError(f"rule {rule!r} has {np.shape(maps[rule])[0]} maps for {k} images")
    fig, axes = plt.subplots(len(rules) + 1, k, figsize=common.figsize(2.3 * k, 2.1 * (len(rules) + 1)), squeeze=False)
    for col in range(k):
        ax = axes[0, col]
        ax.imshow(images[col])
        ax.set_title(f"{true[col]} / {predicted[col]}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        for row, rule in enumerate(rules, start=1):
            ax = axes[row, col]
            relevance = np.asarray(maps[rule][col])
            limit = symmetric_limit(relevance)
            # The power of ten goes into the bar's label: an offset text ("1e-3") above the
            # bar would sit on the panel above.
            exponent = common.power_of_ten(limit)
            shown = ax.imshow(relevance / 10.0**exponent, cmap=RELEVANCE_CMAP, vmin=-limit / 10.0**exponent,
                              vmax=limit / 10.0**exponent)
            bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
            bar.set_label(RELEVANCE_LABEL + common.scale_text(exponent), fontsize=7)
            bar.ax.tick_params(labelsize=6)
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(rule, fontsize=9)
    axes[0, 0].set_ylabel("image", fontsize=9)
    fig.tight_layout()
    return fig


def region_share_figure(summary: pd.DataFrame) -> plt.Figure:
    """Share of positive relevance in the class's AU regions, per rule and class.

    Parameters
    ----------
    summary : DataFrame
        :func:`forgetting_aus.chapters.ch09_lrp_rules.analysis.summarize_region_scores` (index rule, class;
        columns ``share``, ``uniform_baseline``, ``excess_low``, ``excess_high``).

    Returns
    -------
    Figure
        Bars: mean share; black ticks: the uniform-map baseline; error bars: the interval
        of the excess, drawn around the share.
    """
    rules = list(dict.fromkeys(summary.index.get_level_values("rule")))
    classes = [c for c in dict.fromkeys(summary.index.get_level_values("class")) if c != "all"]
    width = 0.8 / max(len(classes), 1)
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for j, name in enumerate(classes):
        x = np.arange(len(rules)) + (j - (len(classes) - 1) / 2) * width
        part = summary.xs(name, level="class").reindex(rules)
        share = part["share"].to_numpy(dtype=float)
        baseline = part["uniform_baseline"].to_numpy(dtype=float)
        low = share - (part["excess"] - part["excess_low"]).to_numpy(dtype=float)
        high = share + (part["excess_high"] - part["excess"]).to_numpy(dtype=float)
        ax.bar(x, share, width * 0.9, label=name)
        ax.errorbar(x, share, yerr=[share - low, high - share], fmt="none", ecolor="0.3", capsize=2, lw=1)
        ax.hlines(baseline, x - width * 0.45, x + width * 0.45, colors="black", lw=2,
                  label="uniform map" if j == 0 else None)
    ax.set_xticks(range(len(rules)), rules)
    ax.set_ylabel("share of positive relevance\nin the class's AU regions")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, ncol=len(classes) + 1, loc="upper left")
    fig.tight_layout()
    return fig
