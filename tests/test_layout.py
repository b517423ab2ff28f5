"""The package's layering: notebook -> chapter -> plots -> machinery, never the other way.

Imports are read from the source (every ``import`` statement, including those inside
functions, since stages import lazily), so the rules hold for code that runs late too:

- machinery (every module outside ``chapters/`` and ``plots/``) imports no chapter and no plot;
- a plot imports no chapter;
- a chapter imports machinery, plots never, and chapters of a lower number (or its own package).

And no module grows past :data:`MAX_LINES` lines.
"""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "forgetting_aus"
MAX_LINES = 820
MODULES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Package modules a file imports (absolute names), at any depth of the file."""
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("forgetting_aus")}


def layer(name: str) -> tuple[str, int | None]:
    """("chapter", NN), ("plots", None) or ("machinery", None)."""
    match = re.match(r"forgetting_aus\.chapters\.ch(\d\d)", name)
    if match:
        return "chapter", int(match.group(1))
    if name.startswith("forgetting_aus.plots"):
        return "plots", None
    return "machinery", None


def violations(path: Path) -> list[str]:
    kind, number = layer(module_name(path))
    bad = []
    for target in sorted(imported_modules(path)):
        target_kind, target_number = layer(target)
        if target in ("forgetting_aus.chapters", "forgetting_aus.plots"):
            continue  # the package itself (its docstring), not a chapter or a plot
        if kind == "machinery" and target_kind != "machinery":
            bad.append(f"machinery imports {target_kind} {target}")
        elif kind == "plots" and target_kind == "chapter":
            bad.append(f"plots import chapter {target}")
        elif kind == "chapter" and target_kind == "plots":
            bad.append(f"chapter imports plots {target}")
        elif kind == "chapter" and target_kind == "chapter" and target_number > number:
            bad.append(f"chapter {number:02d} imports higher-numbered chapter {target}")
    return bad


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_imports_follow_the_layers(path):
    assert not violations(path), f"{module_name(path)}: " + "; ".join(violations(path))


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_module_is_small_enough(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{module_name(path)} has {lines} lines; split it by concern (limit {MAX_LINES})"


def test_the_rules_catch_a_machinery_module_importing_a_chapter(tmp_path, monkeypatch):
    # The checker itself, on a planted violation: a machinery module importing chapter 06
    # inside a function (where stages import lazily).
    source = "def f():\n    from forgetting_aus.chapters import ch06_concept_embedding\n"
    planted = tmp_path / "forgetting_aus" / "stats_like.py"
    planted.parent.mkdir()
    planted.write_text(source)
    monkeypatch.setattr(__import__(__name__), "PACKAGE", tmp_path / "forgetting_aus")
    assert violations(planted) == ["machinery imports chapter forgetting_aus.chapters.ch06_concept_embedding"]


def test_the_rules_catch_a_chapter_importing_a_later_chapter(tmp_path, monkeypatch):
    planted = tmp_path / "forgetting_aus" / "chapters" / "ch03_pain_transfer.py"
    planted.parent.mkdir(parents=True)
    planted.write_text("from forgetting_aus.chapters import ch04_measuring_forgetting as ch04\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", tmp_path / "forgetting_aus")
    assert violations(planted) == ["chapter 03 imports higher-numbered chapter forgetting_aus.chapters.ch04_measuring_forgetting"]
