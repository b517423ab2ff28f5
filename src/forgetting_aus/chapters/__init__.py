"""The book's chapters: one module (or small package) per notebook, ``chNN_<notebook stem>``.

A chapter module holds exactly what its notebook calls: the stage calls, the tables, the
claims and the headline numbers. It imports machinery (``config``, ``pipeline``,
``concepts``, ``explain``, ...) and lower-numbered chapters only; no machinery module and
no plot imports a chapter (``tests/test_layout.py`` enforces it). Importing this package
loads no chapter, so neither TensorFlow nor any study is imported by accident.
"""
