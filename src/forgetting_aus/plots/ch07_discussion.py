"""Figure 7: the pain/emotion trade-off.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Ellipse


def figure7(chosen: pd.DataFrame) -> plt.Figure:
    """Paper Figure 7: pain, surprise and contempt recall of the six models; best trade-off marked.

    Parameters
    ----------
    chosen : DataFrame
        :func:`forgetting_aus.chapters.ch07_discussion.best_tradeoff` of its ``tradeoff_data``,
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
