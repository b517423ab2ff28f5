"""Figure 7: the pain/emotion trade-off.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Ellipse

from forgetting_aus.plots import common

#: Colour of the best trade-off's marks (ellipse and plane point), distinct from every line.
BEST_COLOUR = "black"

#: Line colours of pain and the two emotions, none of them BEST_COLOUR.
LINE_COLOURS = {"pain": "tab:red", "surprise": "tab:blue", "contempt": "tab:purple"}


def figure7(chosen: pd.DataFrame) -> plt.Figure:
    """Paper Figure 7: pain, surprise and contempt recall of the six models; best trade-off marked.

    Parameters
    ----------
    chosen : DataFrame
        :func:`forgetting_aus.chapters.ch07_discussion.best_tradeoff` of its ``tradeoff_data``,
        indexed by model FreezeB5..FreezeB0.
    """
    fig, (ax, ax_plane) = plt.subplots(1, 2, figsize=common.figsize(10, 4.6), gridspec_kw={"width_ratios": [3, 2]})
    x = np.arange(len(chosen))
    pain = chosen["pain_recall"]
    ax.errorbar(x, pain, yerr=[pain - chosen["pain_low"], chosen["pain_high"] - pain], marker="o",
                color=LINE_COLOURS["pain"], capsize=3, label="pain (95 % sequence bootstrap)")
    for emotion in ("surprise", "contempt"):
        ax.errorbar(x, chosen[emotion], yerr=chosen[f"{emotion}_sd"].fillna(0), marker="s",
                    color=LINE_COLOURS[emotion], capsize=3,
                    label=f"{emotion} (mean ± SD, re-trained)")
    for n_drawn, i in enumerate(np.flatnonzero(chosen["best"].to_numpy(dtype=bool))):
        ax.add_patch(Ellipse((i, 0.5), 0.8, 1.05, fill=False, edgecolor=BEST_COLOUR, lw=2, ls="--",
                             label="best trade-off by the rule" if n_drawn == 0 else None))
    ax.set_xticks(x, chosen.index)
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("recall")
    # Below the axes, so the legend covers no model's points or ellipse.
    ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    ax.set_title("recall per model; dashed ellipse: best trade-off by the rule", fontsize=9)
    ax_plane.scatter(chosen["pain_recall"], chosen["emotion"], c=np.where(chosen["best"], BEST_COLOUR, "lightgrey"),
                     edgecolors="black", s=50, zorder=3)
    ax_plane.set_xlabel("pain recall")
    ax_plane.set_ylabel("mean of surprise and contempt recall")
    ax_plane.set_title("trade-off plane (score = min of scaled recalls);\nblack: best", fontsize=9)
    ax_plane.margins(0.15)  # room for the labels inside the axes
    fig.tight_layout()
    common.label_points(ax_plane, chosen["pain_recall"], chosen["emotion"],
                        [f"{model.replace('FreezeB', 'B')} ({score:.2f})" for model, score in chosen["score"].items()],
                        fontsize=8)
    return fig
