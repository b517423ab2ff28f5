"""Figure 4: per-class recall of the re-trained emotion models.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from forgetting_aus import facs
from forgetting_aus.plots import common


def figure4(recalls: pd.DataFrame, *, reference: pd.Series | None = None) -> plt.Figure:
    """Paper Figure 4: class-wise recall of the six re-trained models, spread over repetitions.

    Parameters
    ----------
    recalls : DataFrame
        One row per (model, frozen_blocks, repetition, emotion, recall).
    reference : Series, optional
        Per-class recall of the original emotion model, drawn as black ticks.
    """
    models = sorted(recalls["frozen_blocks"].unique(), reverse=True)
    emotions = list(facs.EMOTIONS)
    width = 0.8 / len(models)
    colours = plt.cm.viridis(np.linspace(0.05, 0.95, len(models)))
    fig, ax = plt.subplots(figsize=common.figsize(11, 3.8))
    for m, k in enumerate(models):
        part = recalls[recalls["frozen_blocks"] == k].groupby("emotion")["recall"]
        mean, low, high = part.mean().reindex(emotions), part.min().reindex(emotions), part.max().reindex(emotions)
        x = np.arange(len(emotions)) + (m - (len(models) - 1) / 2) * width
        ax.bar(x, mean, width, color=colours[m], label=f"FreezeB{k}")
        ax.errorbar(x, mean, yerr=[mean - low, high - mean], fmt="none", ecolor="black", lw=0.8, capsize=1.5)
    if reference is not None:
        ax.scatter(np.arange(len(emotions)), reference.reindex(emotions), marker="_", s=400, color="black",
                   label="emotion model", zorder=3)
    ax.set_xticks(np.arange(len(emotions)), emotions)
    ax.set_ylabel("recall on the emotion test set")
    ax.set_xlabel("emotion")
    ax.set_ylim(0, 1)
    ax.legend(ncol=7, fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, 1.15))
    fig.tight_layout()
    return fig
