"""How a chapter shows a table: compact numbers, and a long table as a summary plus a CSV.

A chapter table is for reading, so :func:`use_compact_display` makes pandas show counts
as integers and other numbers to a few significant digits; the frames keep full
precision. A table too long to read on the page is cut to its first rows per group
(:func:`head_per_group`), and
:func:`csv_download` adds a link that downloads the whole table as CSV. The link carries
the file in the page itself (a ``data:`` URL), so it works in the book opened offline
from disk, with no file to copy beside the page.

Written by hand: formatting and a data URL are a few lines of pandas and base64.
"""

from __future__ import annotations

import base64
import html

import numpy as np
import pandas as pd

__all__ = ["number_text", "use_compact_display", "head_per_group", "csv_download", "SIGNIFICANT_DIGITS"]

#: Significant digits of a non-integer number in a chapter table.
SIGNIFICANT_DIGITS = 3


def number_text(value: float, *, digits: int = SIGNIFICANT_DIGITS) -> str:
    """One number as a chapter table shows it.

    Examples
    --------
    >>> number_text(300.0), number_text(0.833333), number_text(-0.003333), number_text(4.1234e-05)
    ('300', '0.833', '-0.00333', '4.12e-05')
    """
    value = float(value)
    if not np.isfinite(value):
        return "—" if np.isnan(value) else str(value)
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value)}"
    return f"{value:.{digits}g}"


def use_compact_display(*, digits: int = SIGNIFICANT_DIGITS) -> None:
    """Make pandas show every float of a displayed table as :func:`number_text` does.

    Called once by each chapter after its imports: the tables a notebook displays then
    show ``300`` for a count stored as a float and three significant digits otherwise,
    while the frames themselves keep full precision.
    """
    if digits < 1:
        raise ValueError(f"digits must be at least 1, got {digits}")
    pd.set_option("display.float_format", lambda value: number_text(value, digits=digits))


def head_per_group(frame: pd.DataFrame, *, rows: int, level: int | str = 0) -> pd.DataFrame:
    """The first ``rows`` rows of each group of the index's ``level`` (e.g. top AUs per emotion).

    Parameters
    ----------
    frame : DataFrame with a MultiIndex
    rows : int, keyword-only
        Rows kept per group, >= 1.
    level : int or str, keyword-only
        The index level that defines the groups.
    """
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    return frame.groupby(level=level, sort=False, group_keys=False).head(rows)


def csv_download(frame: pd.DataFrame, *, filename: str, text: str = "the full table (CSV)") -> object:
    """A link that downloads ``frame`` as a CSV file, carried in the page itself.

    Parameters
    ----------
    frame : DataFrame
        Written with its index and full precision.
    filename : str, keyword-only
        The name the browser saves it under; must end in ``.csv``.
    text : str, keyword-only
        The link's text.

    Returns
    -------
    IPython.display.HTML
        ``<a download="filename" href="data:text/csv;base64,...">text</a>``.
    """
    from IPython.display import HTML

    if not filename.endswith(".csv") or "/" in filename:
        raise ValueError(f"filename must be a plain name ending in .csv, got {filename!r}")
    payload = base64.b64encode(frame.to_csv().encode("utf-8")).decode("ascii")
    return HTML(f'<p><a download="{html.escape(filename)}" href="data:text/csv;base64,{payload}">'
                f"Download {html.escape(text)}</a> ({len(frame)} rows).</p>")
