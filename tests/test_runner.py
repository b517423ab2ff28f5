"""The runner injects the right knobs, skips unchanged chapters and names failing cells."""

import textwrap

import pytest

from forgetting_aus import runner

CHAPTER = textwrap.dedent('''\
    # %% [markdown]
    # # A chapter

    # %% tags=["parameters"]
    profile = "default"  # profile
    seed = 0  # seed
    pain_epochs = 1  # epochs

    # %%
    value = seed * 2
    ''')


def test_parameter_names_from_tagged_cell(tmp_path):
    assert runner.parameter_names(CHAPTER, tmp_path / "x.py") == ["profile", "seed", "pain_epochs"]


def test_missing_parameters_cell_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="exactly one cell tagged 'parameters'"):
        runner.parameter_names("# %%\nx = 1\n", tmp_path / "x.py")


def test_injects_profile_values_for_declared_knobs_only(tmp_path):
    injected = runner.chapter_parameters(CHAPTER, tmp_path / "x.py", "smoke", {"seed": 4})
    assert injected == {"profile": "smoke", "seed": 4, "pain_epochs": 1}


def test_overrides_reach_chapters_that_do_not_declare_them(tmp_path):
    """``--set results_dir=...`` must move every chapter's cache, not only the runner's stamps."""
    injected = runner.chapter_parameters(CHAPTER, tmp_path / "x.py", "smoke", {"results_dir": "/tmp/elsewhere"})
    assert injected["results_dir"] == "/tmp/elsewhere"
    assert "emotion_epochs" not in injected


def test_unknown_parameter_is_rejected(tmp_path):
    source = CHAPTER.replace("pain_epochs = 1", "pain_epoch = 1")
    with pytest.raises(ValueError, match="not knobs"):
        runner.chapter_parameters(source, tmp_path / "x.py", "default", {})


def test_stamp_changes_with_each_input():
    base = runner.chapter_stamp("src", {"a": 1}, "code", "up")
    assert base == runner.chapter_stamp("src", {"a": 1}, "code", "up")
    assert base != runner.chapter_stamp("src2", {"a": 1}, "code", "up")
    assert base != runner.chapter_stamp("src", {"a": 2}, "code", "up")
    assert base != runner.chapter_stamp("src", {"a": 1}, "code2", "up")
    assert base != runner.chapter_stamp("src", {"a": 1}, "code", "up2")


def test_discover_orders_chapters_and_summary_last(tmp_path):
    for name in ["02_b.py", "summary.py", "01_a.py", "helper.py"]:
        (tmp_path / name).write_text("")
    assert [p.name for p in runner.discover_chapters(tmp_path)] == ["01_a.py", "02_b.py", "summary.py"]
    assert [p.name for p in runner.select_chapters(runner.discover_chapters(tmp_path), "2")] == ["02_b.py"]


def test_parse_overrides():
    assert runner.parse_overrides(["pain_epochs=5", "width=0.25", "affectnet_root=null"]) == {
        "pain_epochs": 5, "width": 0.25, "affectnet_root": None}
    with pytest.raises(SystemExit):
        runner.parse_overrides(["oops"])


def test_failing_cell_is_named(tmp_path):
    runner.ensure_kernel()
    source = CHAPTER + "\n# %%\nraise ValueError('broken on purpose')\n"
    path = tmp_path / "07_broken.py"
    with pytest.raises(runner.ChapterFailed, match=r"chapter 07_broken failed in cell \d+.*ValueError: broken on purpose"):
        runner.execute_chapter(source, path, tmp_path / "out.ipynb", {"profile": "smoke"}, kernel=runner.KERNEL_NAME)


def test_injected_cell_hidden(tmp_path):
    import nbformat

    runner.ensure_kernel()
    out = tmp_path / "out.ipynb"
    runner.execute_chapter(CHAPTER, tmp_path / "01_ok.py", out, {"profile": "smoke", "seed": 3}, kernel=runner.KERNEL_NAME)
    notebook = nbformat.read(out, as_version=4)
    injected = [c for c in notebook.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "remove-cell" in injected[0].metadata.tags
    assert "seed = 3" in injected[0].source


def _package(tmp_path, body):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text('"""Package."""\n')
    (package / "sub" / "mod.py").write_text(body)
    return package


def test_package_hash_ignores_comments_and_docstrings(tmp_path):
    body = 'def f(x):\n    """Docstring."""\n    return x + 1  # comment\n'
    package = _package(tmp_path, body)
    before = runner.package_hash(package)
    (package / "sub" / "mod.py").write_text('def f(x):\n    """Another docstring."""\n    # why\n    return x + 1\n')
    assert runner.package_hash(package) == before
    (package / "sub" / "mod.py").write_text('def f(x):\n    """Docstring."""\n    return x + 2\n')
    assert runner.package_hash(package) != before


def test_package_hash_sees_new_and_moved_files(tmp_path):
    package = _package(tmp_path, "X = 1\n")
    before = runner.package_hash(package)
    (package / "sub" / "mod.py").rename(package / "mod.py")
    moved = runner.package_hash(package)
    (package / "extra.py").write_text("Y = 2\n")
    assert len({before, moved, runner.package_hash(package)}) == 3


def test_chapter_output_reaches_the_log_and_the_terminal_while_it_runs(tmp_path):
    import io

    from forgetting_aus import progress

    runner.ensure_kernel()
    source = CHAPTER + "\n# %%\nimport sys\nprint('epoch 1 of 2')\nprint('loss 0.5', file=sys.stderr)\n"
    terminal = io.StringIO()
    with progress.ChapterLog(tmp_path / "logs" / "02_x.log", echo=terminal) as log:
        runner.execute_chapter(source, tmp_path / "02_x.py", tmp_path / "out.ipynb", {"profile": "smoke"},
                               kernel=runner.KERNEL_NAME, log=log)
    written = (tmp_path / "logs" / "02_x.log").read_text()
    assert "epoch 1 of 2" in written and "loss 0.5" in written
    assert terminal.getvalue() == written


def test_devices_text_names_the_gpus_and_how_training_uses_them():
    assert runner.devices_text([], distribute="auto") == "on the CPU (TensorFlow sees no GPU)"
    one = ["/physical_device:GPU:0"]
    assert runner.devices_text(one, distribute="auto") == "on 1 GPU (GPU:0; one GPU per training run)"
    two = one + ["/physical_device:GPU:1"]
    assert runner.devices_text(two, distribute="auto") == "on 2 GPUs (GPU:0, GPU:1; MirroredStrategy over 2 replicas)"
    assert runner.devices_text(two, distribute="none").endswith("one GPU per training run)")
