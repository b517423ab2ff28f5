"""Content-addressed artifacts: hits, misses, and no trusted half-written artifact."""

import multiprocessing
import os
import signal
import time

import numpy as np
import pytest

from forgetting_aus import cache


def _writer(folder):
    cache.write_npz(folder / "a.npz", x=np.arange(5))
    return {"n": 5}


def test_same_inputs_hit(tmp_path):
    store = cache.Store(tmp_path)
    calls = []

    def make(folder):
        calls.append(1)
        return _writer(folder)

    first = store.get_or_make("stage", {"a": 1}, make, code=["forgetting_aus.cache"])
    second = store.get_or_make("stage", {"a": 1}, make, code=["forgetting_aus.cache"])
    assert first == second and len(calls) == 1
    assert cache.read_npz(first / "a.npz")["x"].tolist() == [0, 1, 2, 3, 4]
    assert store.manifest("stage", first.name)["info"] == {"n": 5}


def test_changed_parameter_misses(tmp_path):
    store = cache.Store(tmp_path)
    a = store.get_or_make("stage", {"a": 1}, _writer)
    b = store.get_or_make("stage", {"a": 2}, _writer)
    assert a != b


def test_changed_code_changes_key():
    k1 = cache.artifact_key({"a": 1}, ["forgetting_aus.cache"])
    k2 = cache.artifact_key({"a": 1}, ["forgetting_aus.config"])
    assert k1 != k2


def test_key_is_order_independent_and_type_strict():
    assert cache.hash_params({"a": 1, "b": 2}) == cache.hash_params({"b": 2, "a": 1})
    assert cache.hash_params({"a": 1}) != cache.hash_params({"a": 1.5})
    with pytest.raises(TypeError):
        cache.hash_params({"a": object()})


def test_failed_make_leaves_nothing(tmp_path):
    store = cache.Store(tmp_path)

    def boom(folder):
        (folder / "partial.txt").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        store.get_or_make("stage", {"a": 1}, boom)
    key = cache.artifact_key({"a": 1})
    assert not store.has("stage", key)
    assert not list((tmp_path / "stage").iterdir())


def _slow_make_forever(root):
    store = cache.Store(root)

    def make(folder):
        (folder / "partial.npz").write_bytes(b"\x00" * 100)
        time.sleep(60)

    store.get_or_make("stage", {"a": 1}, make)


def test_killed_write_is_not_trusted_and_is_cleaned(tmp_path):
    process = multiprocessing.get_context("spawn").Process(target=_slow_make_forever, args=(tmp_path,))
    process.start()
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob("stage/.tmp-*/partial.npz")):
        time.sleep(0.1)
    assert list(tmp_path.glob("stage/.tmp-*/partial.npz")), "the writer never started"
    os.kill(process.pid, signal.SIGKILL)
    process.join()
    store = cache.Store(tmp_path)
    key = cache.artifact_key({"a": 1})
    assert not store.has("stage", key)
    path = store.get_or_make("stage", {"a": 1}, _writer)
    assert store.has("stage", key) and (path / "a.npz").exists()
    assert not list((tmp_path / "stage").glob(".tmp-*")), "stale temp folder was not cleaned"


def test_folder_without_manifest_is_not_trusted(tmp_path):
    store = cache.Store(tmp_path)
    key = cache.artifact_key({"a": 1})
    (tmp_path / "stage" / key).mkdir(parents=True)
    assert not store.has("stage", key)
    store.get_or_make("stage", {"a": 1}, _writer)
    assert store.has("stage", key)


def test_npz_refuses_objects(tmp_path):
    with pytest.raises(TypeError, match="pickling"):
        cache.write_npz(tmp_path / "x.npz", x=np.array([{"a": 1}], dtype=object))
