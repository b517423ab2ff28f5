"""One function per figure of the book, each returning a matplotlib Figure (or a table).

Figures have labelled axes with units, readable fonts and colour maps suited to the data
(sequential for non-negative maps, diverging for signed relevance).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - the book renders figures to files, never to a screen

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import facs


def prototype_table() -> pd.DataFrame:
    """Emotion prototypes as a table: rows AUs, columns emotions, "●" where used.

    Mirrors the layout of the paper's Figure 6, with a column marking the PSPI AUs.
    """
    rows = {}
    for code in facs.AU_CODES:
        name = f"AU{code} – {facs.AU_DESCRIPTIONS[code]}"
        rows[name] = {e: ("●" if code in facs.EMOTION_PROTOTYPES[e] else "") for e in facs.EMOTIONS if e != "neutral"}
        rows[name]["PSPI AU"] = "■" if code in facs.PSPI_AUS else ""
    return pd.DataFrame.from_dict(rows, orient="index")


def prototype_matrix_figure(*, highlight: dict[int, str] | None = None) -> plt.Figure:
    """Heat map of the emotion prototypes, PSPI action units marked.

    Parameters
    ----------
    highlight : dict, optional
        Action unit code → label, drawn as a coloured frame around that AU's column
        (e.g. the AUs a later chapter found forgotten).
    """
    matrix = facs.prototype_matrix().astype(float)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.imshow(matrix, cmap="Greys", vmin=0, vmax=1.4, aspect="auto")
    ax.set_xticks(range(len(facs.AU_CODES)), facs.AU_NAMES, rotation=60, fontsize=8)
    ax.set_yticks(range(len(facs.EMOTIONS)), facs.EMOTIONS)
    ax.set_xlabel("action unit")
    ax.set_ylabel("emotion prototype")
    for j, code in enumerate(facs.AU_CODES):
        if code in facs.PSPI_AUS:
            ax.text(j, -0.75, "■", ha="center", va="center", color="tab:red", fontsize=9)
    for code, label in (highlight or {}).items():
        j = facs.au_index(code)
        ax.add_patch(plt.Rectangle((j - 0.5, -0.5), 1, len(facs.EMOTIONS), fill=False, edgecolor="tab:green", lw=2.5))
        ax.text(j, len(facs.EMOTIONS) - 0.2, label, ha="center", va="top", color="tab:green", fontsize=8)
    ax.set_ylim(len(facs.EMOTIONS) - 0.5, -1.2)
    ax.set_title("Emotion prototypes (dark = AU used); red ■ = PSPI action unit", fontsize=10)
    fig.tight_layout()
    return fig


def close(fig: plt.Figure) -> None:
    """Close a figure after it has been glued (keeps notebook memory flat)."""
    plt.close(fig)


__all__ = ["prototype_table", "prototype_matrix_figure", "close"]
