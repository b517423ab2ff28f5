"""Figures of chapter 01: the prototype matrix (Figure 6's layout) and class distributions.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from forgetting_aus import facs
from forgetting_aus.plots import common


def prototype_matrix_figure(*, highlight: dict[int, str] | None = None) -> plt.Figure:
    """Heat map of the emotion prototypes, PSPI action units marked.

    Parameters
    ----------
    highlight : dict, optional
        Action unit code → label, drawn as a coloured frame around that AU's column
        (e.g. the AUs a later chapter found forgotten); each distinct label appears once
        in the legend.
    """
    matrix = facs.prototype_matrix().astype(float)
    fig, ax = plt.subplots(figsize=common.figsize(9, 3.6))
    ax.imshow(matrix, cmap="Greys", vmin=0, vmax=1.4, aspect="auto")
    ax.set_xticks(range(len(facs.AU_CODES)), facs.AU_NAMES, rotation=60, fontsize=8)
    ax.set_yticks(range(len(facs.EMOTIONS)), facs.EMOTIONS)
    ax.set_xlabel("action unit")
    ax.set_ylabel("emotion prototype")
    for j, code in enumerate(facs.AU_CODES):
        if code in facs.PSPI_AUS:
            ax.text(j, -0.75, "■", ha="center", va="center", color="tab:red", fontsize=9)
    frame = {"fill": False, "edgecolor": "tab:green", "lw": 2.5}
    for code in highlight or {}:
        j = facs.au_index(code)
        ax.add_patch(plt.Rectangle((j - 0.5, -0.5), 1, len(facs.EMOTIONS), **frame))
    # One legend entry per label: adjacent frames leave no room to write it under each column.
    labels = list(dict.fromkeys((highlight or {}).values()))
    if labels:
        ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, label=label, **frame) for label in labels],
                  loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
    ax.set_ylim(len(facs.EMOTIONS) - 0.5, -1.2)
    ax.set_title("Emotion prototypes (dark = AU used); red ■ = PSPI action unit", fontsize=10)
    fig.tight_layout()
    return fig


def class_distribution_figure(distribution: pd.DataFrame) -> plt.Figure:
    """Class shares of the AffectNet twin beside real AffectNet's (log scale)."""
    fig, ax = plt.subplots(figsize=(7, 3))
    x = np.arange(len(distribution))
    ax.bar(x - 0.2, distribution["AffectNet share"], 0.4, label="AffectNet (paper)", color="grey")
    ax.bar(x + 0.2, distribution["twin share"], 0.4, label="AffectNet twin (this run)", color="tab:blue")
    ax.set_xticks(x, distribution.index)
    ax.set_yscale("log")
    ax.set_ylabel("share of training images (log)")
    ax.set_xlabel("emotion")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig
