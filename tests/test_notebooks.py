"""The chapters' parameters cells start from the book's state: the default profile's values."""

import ast

import pytest

from forgetting_aus import config, runner

CHAPTERS = runner.discover_chapters(config.REPO_ROOT / "notebooks")


def parameters_cell_values(path):
    """``name -> value`` of the literal assignments in a chapter's parameters cell."""
    import jupytext

    notebook = jupytext.reads(path.read_text(), fmt="py:percent")
    cell = next(c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    values = {}
    for node in ast.parse(cell.source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, (
            f"{path.name}: the parameters cell holds only 'knob = literal' lines, found {ast.unparse(node)!r}")
        values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_parameters_cell_equals_default_profile(path):
    # A chapter opened by hand in Jupyter runs with its parameters cell as overrides, so the
    # cell must hold the default profile's values or tweaking would not start from the book.
    defaults = config.read_profile("default")
    values = parameters_cell_values(path)
    assert values.pop("profile") == "default"
    drifted = {name: (value, defaults.get(name)) for name, value in values.items() if defaults.get(name) != value}
    assert not drifted, (f"{path.name}: parameters cell differs from params/default.yml "
                         f"(cell value, profile value): {drifted}")
