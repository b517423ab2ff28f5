"""Figure helpers shared by every chapter: image grids, matrices, closing a figure.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def close(fig: plt.Figure) -> None:
    """Close a figure after it has been glued (keeps notebook memory flat)."""
    plt.close(fig)


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


def row_shares(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (rows that sum to 0 stay 0), float64 of the same shape."""
    counts = np.asarray(counts, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def confusion_figure(counts: pd.DataFrame, *, normalize: bool, title: str = "") -> plt.Figure:
    """Confusion matrix of image counts, rows = true class, columns = predicted class.

    Parameters
    ----------
    counts : DataFrame of shape (K, K)
        Image counts (e.g. ``evaluation.confusion`` without normalisation), class names
        as index and columns.
    normalize : bool, keyword-only
        ``True``: colour and cell text are the share of the true class (each row sums to
        1; colour scale 0-1), for comparing classes of different sizes. ``False``: colour
        is the count, each cell prints the count and, in brackets, the share of its row
        (Weitz et al.'s Figure 1).
    title : str, keyword-only

    Returns
    -------
    Figure
    """
    values = counts.to_numpy(dtype=float)
    shares = row_shares(values)
    k = len(counts)
    fig, ax = plt.subplots(figsize=(0.6 * k + 2.5, 0.5 * k + 2))
    shown = shares if normalize else values
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fontsize = 7 if k > 5 else 9
    for i in range(k):
        for j in range(values.shape[1]):
            text = f"{shares[i, j]:.2f}" if normalize else f"{int(values[i, j])}\n({shares[i, j]:.0%})"
            # White text on the dark half of the colour scale keeps every cell readable.
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if image.norm(shown[i, j]) > 0.5 else "black")
    ax.set_xticks(range(values.shape[1]), [str(c) for c in counts.columns], rotation=45, ha="right")
    ax.set_yticks(range(k), [str(c) for c in counts.index])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(image, ax=ax, label="share of the true class" if normalize else "images")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
