"""Each profile executes into its own book folder, so profiles never serve each other's pages."""

import json
import textwrap

import pytest

from forgetting_aus import runner

CHAPTER = textwrap.dedent('''\
    # %% [markdown]
    # # A chapter

    # %% tags=["parameters"]
    profile = "default"  # profile
    seed = 0  # seed

    # %%
    value = seed
    ''')


def fake_repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    (repo / "notebooks" / "01_a.py").write_text(CHAPTER)
    return repo


def fake_execute(source, path, output, parameters, *, kernel, log=None):
    """Stand-in for papermill: the executed notebook records the profile it ran with."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"profile": parameters["profile"]}))


def test_default_then_smoke_then_default_serves_the_defaults_pages(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "execute_chapter", fake_execute)
    monkeypatch.setattr(runner, "ensure_kernel", lambda kernel: None)
    repo = fake_repo(tmp_path)
    overrides = {"results_dir": str(tmp_path / "results")}
    statuses = []
    for profile in ("default", "smoke", "default"):
        log = runner.run(profile, repo=repo, overrides=overrides)
        statuses.append([entry["status"] for entry in log])
    assert statuses == [["ran"], ["ran"], ["skipped"]]
    for profile in ("default", "smoke"):
        page = runner.book_folder(repo, profile) / "book" / "chapters" / "01_a.ipynb"
        assert json.loads(page.read_text()) == {"profile": profile}


def test_a_real_data_profile_stops_before_any_chapter_without_its_datasets(tmp_path, monkeypatch):
    executed = []
    monkeypatch.setattr(runner, "execute_chapter", lambda *a, **k: executed.append(a))
    monkeypatch.setattr(runner, "ensure_kernel", lambda kernel: None)
    for env_var in ("FORGETTING_AUS_AFFECTNET", "FORGETTING_AUS_UNBC", "FORGETTING_AUS_CKPLUS"):
        monkeypatch.delenv(env_var, raising=False)
    with pytest.raises(runner.PreflightFailed, match="AffectNet: no folder given"):
        runner.run("paper", repo=fake_repo(tmp_path),
                   overrides={"results_dir": str(tmp_path / "results"), "allow_cpu": True})
    assert executed == []
