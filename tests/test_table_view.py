"""Tests of how chapters show tables: compact numbers, summaries, a CSV download."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pandas as pd
import pytest

from forgetting_aus import table_view


def test_number_text_writes_counts_as_integers_and_other_numbers_to_three_digits():
    assert [table_view.number_text(v) for v in (300.0, 0.833333, -0.003333, 0.8775, 4.1234e-5, -2.0)] == [
        "300", "0.833", "-0.00333", f"{0.8775:.3g}", "4.12e-05", "-2"]
    assert table_view.number_text(np.nan) == "—" and table_view.number_text(np.inf) == "inf"
    assert table_view.number_text(0.123456, digits=2) == "0.12"


def test_use_compact_display_changes_what_pandas_shows_not_the_values():
    frame = pd.DataFrame({"count": [300.0], "value": [-0.003333]})
    with pd.option_context("display.float_format", None):
        table_view.use_compact_display()
        html = frame.to_html()
        assert "<td>300</td>" in html and "<td>-0.00333</td>" in html
        assert frame.loc[0, "value"] == -0.003333  # the frame keeps its precision
    with pytest.raises(ValueError, match="digits must be at least 1"):
        table_view.use_compact_display(digits=0)


def test_head_per_group_keeps_the_first_rows_of_each_group_in_order():
    index = pd.MultiIndex.from_product([["contempt", "surprise"], [f"AU{i}" for i in range(6)]],
                                       names=["emotion", "au"])
    frame = pd.DataFrame({"rank": list(range(1, 7)) * 2}, index=index)
    head = table_view.head_per_group(frame, rows=2)
    assert list(head.index) == [("contempt", "AU0"), ("contempt", "AU1"), ("surprise", "AU0"), ("surprise", "AU1")]
    with pytest.raises(ValueError, match="rows must be at least 1"):
        table_view.head_per_group(frame, rows=0)


def test_csv_download_carries_the_whole_table_in_the_link():
    frame = pd.DataFrame({"difference": [4.1234567e-5, -1e-7]}, index=pd.Index(["AU14", "AU5"], name="au"))
    html = table_view.csv_download(frame, filename="rankings.csv").data
    assert 'download="rankings.csv"' in html and "(2 rows)" in html
    payload = re.search(r"base64,([A-Za-z0-9+/=]+)", html).group(1)
    back = pd.read_csv(io.StringIO(base64.b64decode(payload).decode("utf-8")), index_col="au")
    pd.testing.assert_frame_equal(back, frame)  # full precision, index included
    with pytest.raises(ValueError, match="ending in .csv"):
        table_view.csv_download(frame, filename="../rankings.txt")
