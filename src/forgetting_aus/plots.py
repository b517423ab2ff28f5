"""One function per figure of the book, each returning a matplotlib Figure (or a table).

Figures have labelled axes with units, readable fonts and colour maps suited to the data
(sequential for non-negative maps, diverging for signed relevance).
"""

from __future__ import annotations

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
        (e.g. the AUs a later chapter found forgotten); each distinct label appears once
        in the legend.
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


def close(fig: plt.Figure) -> None:
    """Close a figure after it has been glued (keeps notebook memory flat)."""
    plt.close(fig)




def training_curves(history: dict, *, title: str) -> plt.Figure:
    """Loss (train, validation) and validation macro recall per epoch, best epoch marked."""
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (ax_loss, ax_recall) = plt.subplots(1, 2, figsize=(9, 3.2))
    ax_loss.plot(epochs, history["loss"], label="training")
    ax_loss.plot(epochs, history["val_loss"], label="validation")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("focal loss (per image)")
    ax_loss.legend(frameon=False)
    ax_recall.plot(epochs, history["val_macro_recall"], color="tab:green")
    best = int(history["best_epoch"]) + 1
    ax_recall.axvline(best, color="grey", ls="--", lw=1)
    ax_recall.annotate(f"selected: epoch {best}", (best, min(history["val_macro_recall"])), fontsize=8,
                       xytext=(4, 4), textcoords="offset points", color="grey")
    ax_recall.set_xlabel("epoch")
    ax_recall.set_ylabel("validation macro recall")
    ax_recall.set_ylim(0, 1)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def confusion_figure(confusion: pd.DataFrame, *, title: str) -> plt.Figure:
    """Row-normalised confusion matrix (true class in rows), shares printed in cells."""
    values = confusion.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(0.6 * len(confusion) + 2.5, 0.5 * len(confusion) + 2))
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(confusion.columns)), confusion.columns, rotation=45, ha="right")
    ax.set_yticks(range(len(confusion.index)), confusion.index)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if values[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(image, ax=ax, label="share of the true class")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def per_class_recall_figure(recall: pd.Series, *, title: str) -> plt.Figure:
    """Bar chart of per-class recall with the chance level."""
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar(recall.index, recall.to_numpy(), color="tab:blue")
    ax.axhline(1 / len(recall), color="grey", ls=":", lw=1, label="chance")
    ax.set_ylim(0, 1)
    ax.set_ylabel("recall on the test set")
    ax.set_xlabel("emotion")
    ax.legend(frameon=False)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


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
    fig, ax = plt.subplots(figsize=(11, 3.8))
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


def image_grid(images: np.ndarray, *, row_labels: list[str], col_labels: list[str] | None = None,
               title: str = "", cell: float = 1.1) -> plt.Figure:
    """Grid of uint8 images, shape (rows, cols, H, W, 3), with row (and column) labels."""
    rows, cols = images.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(cell * cols + 1.2, cell * rows + 0.4), squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.imshow(images[r, c])
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(row_labels[r], rotation=0, ha="right", va="center", fontsize=8)
            if r == 0 and col_labels is not None:
                ax.set_title(col_labels[c], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
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


def matrix_figure(matrix: pd.DataFrame, *, title: str, label: str, cmap: str = "viridis",
                  vmin: float | None = None, vmax: float | None = None, fmt: str = "{:.2f}") -> plt.Figure:
    """Annotated heat map of a square or rectangular table (e.g. AU co-occurrence)."""
    values = matrix.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(0.45 * values.shape[1] + 2.5, 0.4 * values.shape[0] + 1.8))
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(values.shape[1]), matrix.columns, rotation=60, fontsize=7)
    ax.set_yticks(range(values.shape[0]), matrix.index, fontsize=7)
    if values.size <= 400:
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                if np.isfinite(values[i, j]):
                    ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center", fontsize=5.5,
                            color="white" if image.norm(values[i, j]) < 0.5 else "black")
    fig.colorbar(image, ax=ax, label=label)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
