"""Refuse a Python other than 3.11 with a message that says why and what to do."""

import sys

if sys.version_info[:2] != (3, 11):
    found = ".".join(map(str, sys.version_info[:3]))
    sys.exit(
        f"This book needs Python 3.11, found {found} ({sys.executable}).\n"
        "Why: iNNvestigate 2.1.2 (LRP) supports Python < 3.12 and TensorFlow < 2.15, and\n"
        "TensorFlow 2.14 has no wheels for Python >= 3.12.\n"
        "What to do: install Python 3.11 (e.g. 'pyenv install 3.11' or your package manager)\n"
        "and run 'make book PYTHON_BOOTSTRAP=/path/to/python3.11', or use conda:\n"
        "'conda env create -f environment.yml && conda activate forgetting-aus'."
    )
