"""Figure helpers shared by every chapter: image grids, matrices, closing a figure.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.text import Text

#: Widest figure, in inches, any chapter draws. The book's content column is 672 px wide
#: in a 1 280 px window and figures render at 100 dpi, so a figure of at most 8.8 in is
#: shrunk by at most a quarter and its 8-pt text stays readable (the browser test checks).
MAX_WIDTH = 8.8


def figsize(width: float, height: float) -> tuple[float, float]:
    """``(width, height)`` in inches with the width capped at :data:`MAX_WIDTH`.

    Figures whose width grows with their panels call it, so many panels get narrower
    instead of making the page shrink the whole figure, text included.
    """
    return min(float(width), MAX_WIDTH), float(height)


def power_of_ten(value: float) -> int:
    """The exponent a figure moves into its axis or colour-bar label (``×1e-5``).

    ``floor(log10(|value|))``; 0 for 0, NaN or infinity. Dividing the data by ``10**e``
    keeps tick labels short and leaves matplotlib no offset text ("1e-5" at an axis end),
    which overlaps neighbouring panels.

    Examples
    --------
    >>> power_of_ten(3.2e-5), power_of_ten(-0.04), power_of_ten(7.0), power_of_ten(0.0)
    (-5, -2, 0, 0)
    """
    value = abs(float(value))
    return int(np.floor(np.log10(value))) if np.isfinite(value) and value > 0 else 0


def scale_text(exponent: int) -> str:
    """`` ×1e<exponent>`` for a label, or "" for exponent 0."""
    return f" ×1e{exponent}" if exponent else ""


def close(fig: plt.Figure) -> None:
    """Close a figure after it has been glued (keeps notebook memory flat)."""
    plt.close(fig)


def image_grid(images: np.ndarray, *, row_labels: list[str], col_labels: list[str] | None = None,
               title: str = "", cell: float = 1.1) -> plt.Figure:
    """Grid of uint8 images, shape (rows, cols, H, W, 3), with row (and column) labels."""
    rows, cols = images.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=figsize(cell * cols + 1.2, cell * rows + 0.4), squeeze=False)
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
    """Annotated heat map of a square or rectangular table (e.g. AU co-occurrence).

    Cells of up to 400-cell tables carry their value in ``fmt``, without the leading zero
    (``.57``).
    """
    values = matrix.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=figsize(0.45 * values.shape[1] + 2.5, 0.4 * values.shape[0] + 1.8))
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(values.shape[1]), matrix.columns, rotation=60, fontsize=8)
    ax.set_yticks(range(values.shape[0]), matrix.index, fontsize=8)
    if values.size <= 400:
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                if np.isfinite(values[i, j]):
                    text = fmt.format(values[i, j])
                    # ".57" rather than "0.57": the shorter text fits a cell at a readable size.
                    text = text[1:] if text.startswith("0.") else text.replace("-0.", "-.", 1)
                    ax.text(j, i, text, ha="center", va="center", fontsize=7,
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
    fig, ax = plt.subplots(figsize=figsize(0.6 * k + 2.5, 0.5 * k + 2))
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


#: Distances, in points, at which :func:`label_points` tries a label; beyond the first it
#: draws a leader line.
LABEL_RINGS = (3, 11, 20, 30)

#: Where :func:`label_points` tries a label, in points from its point. The four diagonal
#: corners first, then farther rings.
LABEL_OFFSETS = tuple((dx * r, dy * r) for r in LABEL_RINGS for dx, dy in
                      ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)))


def label_points(ax: plt.Axes, x, y, labels, *, colours=None, fontsize: float = 7) -> list[str]:
    """Label scatter points so that no two labels overlap and none leaves the axes.

    Each label takes the first offset of :data:`LABEL_OFFSETS` where its box overlaps no
    label placed before it, no point, and stays inside the axes; labels farther than the
    first ring get a thin leader line. A label with no free place is left out. Written by
    hand because adjustText moves labels iteratively with no guarantee that they end
    apart, and a fixed candidate list gives a layout a test can check.

    Parameters
    ----------
    ax : Axes
        Axes that already hold the points, with their final limits and size (call
        ``tight_layout`` before, not after).
    x, y : sequences of float, length n
        Data coordinates of the points.
    labels : sequence of str, length n
    colours : sequence of colours, length n, keyword-only
        Text colours (default black).
    fontsize : float, keyword-only

    Returns
    -------
    list of str
        The labels left out (none when every label found a place).
    """
    fig = ax.figure
    fig.canvas.draw()  # final limits and layout: the pixel boxes below depend on them
    renderer = fig.canvas.get_renderer()
    colours = ["black"] * len(labels) if colours is None else list(colours)
    frame = ax.get_window_extent(renderer)
    points = ax.transData.transform(np.column_stack([np.asarray(x, float), np.asarray(y, float)]))
    point_boxes = [(px - 3, py - 3, px + 3, py + 3) for px, py in points]
    placed, left_out = [], []

    def free(box):
        inside = frame.x0 <= box[0] and box[2] <= frame.x1 and frame.y0 <= box[1] and box[3] <= frame.y1
        return inside and not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]
                                  for b in placed + point_boxes)

    for (px, py), label, colour in zip(points, labels, colours, strict=True):
        for dx, dy in LABEL_OFFSETS:
            text = ax.annotate(label, ax.transData.inverted().transform((px, py)), xytext=(dx, dy),
                               textcoords="offset points", fontsize=fontsize, color=colour,
                               ha="left" if dx >= 0 else "right", va="bottom" if dy >= 0 else "top",
                               arrowprops=None if max(abs(dx), abs(dy)) <= LABEL_RINGS[0] else
                               {"arrowstyle": "-", "color": "0.6", "lw": 0.5, "shrinkA": 0, "shrinkB": 2})
            text.update_positions(renderer)
            extent = Text.get_window_extent(text, renderer)  # the text's box, without the leader line
            box = (extent.x0, extent.y0, extent.x1, extent.y1)
            if free(box):
                placed.append(box)
                break
            text.remove()
        else:
            left_out.append(label)
    return left_out
