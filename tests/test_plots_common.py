"""Tests of the shared figure helpers: row shares and the one confusion figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from forgetting_aus.plots import common


def _counts() -> pd.DataFrame:
    names = ["a", "b", "c"]
    return pd.DataFrame([[8, 2, 0], [1, 3, 0], [0, 0, 0]], index=names, columns=names)


def test_row_shares_leave_empty_rows_at_zero():
    shares = common.row_shares(_counts().to_numpy())
    np.testing.assert_allclose(shares, [[0.8, 0.2, 0.0], [0.25, 0.75, 0.0], [0.0, 0.0, 0.0]])


def test_confusion_figure_normalised_shows_row_shares_on_a_fixed_scale():
    fig = common.confusion_figure(_counts(), normalize=True, title="t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts][:3] == ["0.80", "0.20", "0.00"]
    assert ax.images[0].get_clim() == (0.0, 1.0)
    assert fig.axes[1].get_ylabel() == "share of the true class"
    assert ax.get_title() == "t" and ax.get_ylabel() == "true class"
    common.close(fig)


def test_confusion_figure_counts_shows_counts_with_row_shares():
    fig = common.confusion_figure(_counts(), normalize=False)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts[0] == "8\n(80%)" and texts[4] == "3\n(75%)" and texts[8] == "0\n(0%)"
    assert ax.images[0].get_clim() == (0.0, 8.0)
    assert fig.axes[1].get_ylabel() == "images"
    # The darkest cell gets white text, an empty one black.
    assert ax.texts[0].get_color() == "white" and ax.texts[8].get_color() == "black"
    common.close(fig)


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_label_points_places_crowded_labels_apart_and_inside_the_axes():
    from matplotlib.text import Text

    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 0.05, 18), rng.normal(0, 0.05, 18)  # a tight cluster, as in chapter 08
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(x, y)
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    left_out = common.label_points(ax, x, y, [f"AU{i}" for i in range(18)])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, renderer) for t in ax.texts]
    assert len(boxes) == 18 - len(left_out) and len(left_out) <= 2
    frame = ax.get_window_extent(renderer)
    for i, box in enumerate(boxes):
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        assert not any(_overlap(box, other) for other in boxes[i + 1:])
    plt.close(fig)


def test_label_points_keeps_a_lone_label_next_to_its_point():
    fig, ax = plt.subplots()
    ax.scatter([0.5], [0.5])
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    assert common.label_points(ax, [0.5], [0.5], ["AU14"], colours=["tab:red"]) == []
    (text,) = ax.texts
    assert text.get_text() == "AU14" and text.get_color() == "tab:red" and text.arrow_patch is None
    plt.close(fig)


def test_power_of_ten_and_its_label():
    assert [common.power_of_ten(v) for v in (3.2e-5, -0.04, 7.0, 0.0, float("nan"), 1e3)] == [-5, -2, 0, 0, 0, 3]
    assert common.scale_text(-3) == " ×1e-3" and common.scale_text(0) == ""
