"""Figures 3 and 5 and the AU-region rankings of chapter 05.

The functions take what :mod:`forgetting_aus.chapters.ch05_visual_analysis` computes
(plain mappings and tables) and import no chapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from forgetting_aus.plots import common
from forgetting_aus.stats import ALPHA

__all__ = ["figure3", "figure5", "difference_limit", "ranking_figure", "SALIENCY_CMAP", "DIFFERENCE_CMAP",
           "DIFFERENCE_PERCENTILE", "REGION_COLOUR", "UNDEFINED_NOTE"]


#: Sequential colour map for maps min-max scaled to [0, 1] (the paper's display).
SALIENCY_CMAP = "jet"


#: Diverging colour map for the signed difference maps, centred on zero. Red where FreezeB5
#: puts the larger share of its relevance, blue where FreezeB<k> does.
DIFFERENCE_CMAP = "RdBu_r"


#: Percentile of ``|D|`` over every drawn panel that sets the one symmetric colour limit, so a
#: few extreme pixels do not wash out the rest; pixels beyond it take the end colours.
DIFFERENCE_PERCENTILE = 99.0


#: Outline colour of the AU region drawn on the difference maps (visible on red, blue and white).
REGION_COLOUR = "black"


#: What Figure 5 writes on a difference map that is all-NaN. A model's total relevance
#: is <= 0 there, so its map cannot be read as shares and ``D`` is undefined.
UNDEFINED_NOTE = "difference undefined:\na total relevance <= 0,\nno shares"


def _blank(ax: plt.Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _message_figure(text: str, *, figsize=(6.0, 1.6)) -> plt.Figure:
    fig, ax = plt.subplots(figsize=figsize)
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=10)
    return fig


def figure3(example: Mapping[str, Any] | None, *, reference_name: str = "FreezeB5") -> plt.Figure:
    """Paper's Figure 3: an image and two models' LRP maps, each scaled to [0, 1].

    Parameters
    ----------
    example : mapping or None
        :func:`~forgetting_aus.chapters.ch05_visual_analysis.figure3_example`: ``image`` uint8 (S, S, 3),
        ``reference`` and ``other`` float (S, S) in [0, 1], ``emotion``, ``k``, ``row``.
        None draws a note that no image qualifies.
    reference_name : str, keyword-only

    Returns
    -------
    Figure
    """
    if example is None:
        return _message_figure("No contempt test image is classified correctly by FreezeB5 and wrongly by "
                               "FreezeB0 in this run: there is nothing to show.")
    other_name = f"FreezeB{example['k']}"
    fig, axes = plt.subplots(1, 3, figsize=(common.MAX_WIDTH, 3.3))
    axes[0].imshow(example["image"])
    axes[0].set_title(f"test image {example['row']}\n(true: {example['emotion']})", fontsize=9)
    for ax, key, name in ((axes[1], "reference", reference_name), (axes[2], "other", other_name)):
        shown = ax.imshow(example[key], cmap=SALIENCY_CMAP, vmin=0, vmax=1)
        ax.set_title(f"{name}: LRP for '{example['emotion']}'", fontsize=9)
        bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
        bar.set_label("relevance, min-max scaled", fontsize=7)
        bar.ax.tick_params(labelsize=7)
    for ax in axes:
        _blank(ax)
    fig.tight_layout()
    return fig


def figure5(examples: Mapping[str, Mapping[str, Any]], *, reference_name: str = "FreezeB5") -> plt.Figure:
    """Paper's Figure 5: difference maps of target images, the paper's AU region outlined.

    Parameters
    ----------
    examples : mapping emotion -> mapping
        :func:`~forgetting_aus.chapters.ch05_visual_analysis.figure5_examples`: ``images``
        uint8 (m, S, S, 3), ``difference`` float (m, S, S), the signed D (shares per pixel),
        or all-NaN where it is undefined (a model's total relevance <= 0), ``au_mask`` bool
        (m, S, S), ``au``, ``rows``, ``k``. One row of panels per emotion: each image next
        to its difference map; an all-NaN map is not drawn but gets :data:`UNDEFINED_NOTE`,
        and an emotion with m = 0 gets a note. Every map is drawn in :data:`DIFFERENCE_CMAP`
        on one scale, symmetric about zero, in units of a uniform pixel's share (D x S²),
        with its limit at the :data:`DIFFERENCE_PERCENTILE` th percentile of ``|D|`` over all
        panels, so panels compare.

    Returns
    -------
    Figure
    """
    emotions = list(examples)
    if not emotions:
        return _message_figure("No emotion was selected for Figure 5.")
    n_cols = 2 * max(1, max(len(e["images"]) for e in examples.values()))
    limit = difference_limit(examples)
    fig, axes = plt.subplots(len(emotions), n_cols, figsize=common.figsize(1.75 * n_cols, 2.0 * len(emotions)), squeeze=False)
    shown = None
    for r, emotion in enumerate(emotions):
        example = examples[emotion]
        m = len(example["images"])
        for ax in axes[r]:
            _blank(ax)
            ax.set_frame_on(False)
        if m == 0:
            axes[r, 0].text(0.0, 0.5, f"{emotion}: no test image that {reference_name} gets right and "
                            f"FreezeB{example['k']} gets wrong in this run", fontsize=9, va="center",
                            transform=axes[r, 0].transAxes)
            continue
        for j in range(m):
            ax_image, ax_map = axes[r, 2 * j], axes[r, 2 * j + 1]
            ax_image.set_frame_on(True)
            ax_map.set_frame_on(True)
            ax_image.imshow(example["images"][j])
            ax_image.set_title(f"image {int(example['rows'][j])}", fontsize=8)
            if j == 0:
                ax_image.set_ylabel(emotion, fontsize=9)
            difference = np.asarray(example["difference"][j], dtype=float)
            if not np.isfinite(difference).any():
                ax_map.text(0.5, 0.5, UNDEFINED_NOTE, ha="center", va="center", fontsize=7,
                            transform=ax_map.transAxes)
                continue
            pixels = difference.shape[0] * difference.shape[1]
            shown = ax_map.imshow(difference * pixels, cmap=DIFFERENCE_CMAP, vmin=-limit, vmax=limit)
            if example["au_mask"][j].any():
                ax_map.contour(example["au_mask"][j].astype(float), levels=[0.5], colors=REGION_COLOUR,
                               linewidths=1.2)
            ax_map.set_title(f"D, B5 − B{example['k']}", fontsize=8)
    if shown is not None:
        bar = fig.colorbar(shown, ax=axes.ravel().tolist(), fraction=0.02, pad=0.02)
        bar.set_label(f"D × pixels (red: {reference_name} more)", fontsize=8)
    return fig


def difference_limit(examples: Mapping[str, Mapping[str, Any]]) -> float:
    """The symmetric colour limit Figure 5 shares across its difference maps.

    Parameters
    ----------
    examples : mapping emotion -> mapping
        As for :func:`figure5`.

    Returns
    -------
    float
        The :data:`DIFFERENCE_PERCENTILE` th percentile of ``|D| x S²`` over every finite
        pixel of every map; 1.0 when there is none or it is 0.
    """
    scaled = [np.abs(np.asarray(e["difference"], dtype=float)).ravel() * np.prod(np.shape(e["difference"])[1:])
              for e in examples.values() if np.size(e["difference"])]
    values = np.concatenate(scaled) if scaled else np.zeros(0)
    values = values[np.isfinite(values)]
    limit = float(np.percentile(values, DIFFERENCE_PERCENTILE)) if values.size else 0.0
    return limit if limit > 0 else 1.0


def ranking_figure(rankings: Mapping[str, pd.DataFrame], *, paper_aus: Mapping[str, int],
                   k: int = 0) -> plt.Figure:
    """Extra positive difference per AU region, target vs. baseline, one panel per emotion.

    Parameters
    ----------
    rankings : mapping emotion -> DataFrame
        :func:`~forgetting_aus.chapters.ch05_visual_analysis.au_ranking` tables (index AU names, column
        ``difference``, ``p_holm``).
    paper_aus : mapping emotion -> int
        The AU the paper's observer named, drawn in green.
    k : int, keyword-only
        The compared FreezeB<k> (for the title).

    Returns
    -------
    Figure
        Horizontal bars in the ranking's order; "*" marks a Holm-adjusted p < ``stats.ALPHA``.
    """
    emotions = list(rankings)
    if not emotions:
        return _message_figure("No ranking to show.")
    fig, axes = plt.subplots(1, len(emotions), figsize=common.figsize(4.2 * len(emotions), 4.6), squeeze=False)
    for ax, emotion in zip(axes[0], emotions, strict=True):
        table = rankings[emotion]
        values = table["difference"].to_numpy(dtype=float)
        names = list(table.index)
        if not np.isfinite(values).any():
            ax.text(0.5, 0.5, f"{emotion}: no images to rank", ha="center", va="center", transform=ax.transAxes)
            _blank(ax)
            continue
        paper_name = f"AU{paper_aus.get(emotion)}"
        colours = ["tab:green" if n == paper_name else "tab:grey" for n in names]
        y = np.arange(len(names))
        exponent = common.power_of_ten(np.nanmax(np.abs(values)))
        ax.barh(y, np.nan_to_num(values) / 10.0**exponent, color=colours)
        for yi, p in zip(y, table["p_holm"].to_numpy(dtype=float), strict=True):
            if np.isfinite(p) and p < ALPHA:
                ax.text(0, yi, "*", va="center", ha="right", fontsize=11)
        ax.set_yticks(y, names, fontsize=8)
        ax.invert_yaxis()
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlabel(f"mean positive D per pixel{common.scale_text(exponent)},\ntarget − baseline", fontsize=9)
        ax.set_title(f"{emotion}: FreezeB5 vs FreezeB{k}\n(green: the paper's AU)", fontsize=10)
    fig.tight_layout()
    return fig
