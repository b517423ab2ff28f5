"""Figures, one module per chapter (``chNN_<notebook stem>``) plus :mod:`.common`.

Every function returns a matplotlib Figure from data it is given; a figure with a paper
number is ``figureN``. Plots import machinery and other plots, never a chapter
(``tests/test_layout.py`` enforces it).
"""
