"""Tests of the shared figure helpers: row shares and the one confusion figure."""

from __future__ import annotations

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
