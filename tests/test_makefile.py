"""The Makefile's environment targets: the GPU build is one documented switch away."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _dry_run(*args: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    return subprocess.run(["make", "-n", "-B", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout


def test_env_gpu_installs_the_cuda_build_and_plain_env_does_not():
    assert '-e ".[dev,gpu]"' in _dry_run("env", "GPU=1")
    plain = _dry_run("env")
    assert '-e ".[dev]"' in plain and "gpu" not in plain


def test_gpu_extra_pins_the_same_tensorflow():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pinned = next(d for d in project["dependencies"] if re.match(r"tensorflow==", d))
    assert project["optional-dependencies"]["gpu"] == [pinned.replace("tensorflow==", "tensorflow[and-cuda]==")]
