"""Digests of a finished run, to prove a behaviour-preserving change preserved behaviour.

    .venv/bin/python scripts/run_digests.py [--profile default] [--book-dir .] > digests.txt

prints one line per claims file (``sha256sum results/<profile>/claims/*``) and one per
image that an executed chapter shows (its chapter, the figure's glue name or cell index,
and the SHA-256 of the PNG bytes). Diff the output of two cold runs: identical lines mean
identical claims and pixel-identical figures.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def claims_digests(run_dir: Path) -> list[str]:
    """``<sha256>  claims/<file>`` for every claims file of a run, sorted by name."""
    return [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  claims/{p.name}"
            for p in sorted((run_dir / "claims").glob("*.json"))]


def figure_digests(notebook: Path) -> list[str]:
    """``<chapter> <figure> <sha256>`` for every PNG output of an executed notebook."""
    cells = json.loads(notebook.read_text())["cells"]
    lines = []
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            # glued figures carry papermill's record prefix; figures shown directly do not
            png = data.get("image/png", data.get("application/papermill.record/image/png"))
            if png is None:
                continue
            name = output.get("metadata", {}).get("scrapbook", {}).get("name", f"cell{index}")
            digest = hashlib.sha256(base64.b64decode(png)).hexdigest()
            lines.append(f"{notebook.stem} {name} {digest}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--results", type=Path, default=REPO / "results", help="the results folder of the run")
    parser.add_argument("--chapters", type=Path, default=REPO / "book" / "chapters",
                        help="the folder of the executed chapters (.ipynb)")
    args = parser.parse_args()
    for line in claims_digests(args.results / args.profile):
        print(line)
    for notebook in sorted(args.chapters.glob("*.ipynb")):
        for line in figure_digests(notebook):
            print(line)


if __name__ == "__main__":
    main()
