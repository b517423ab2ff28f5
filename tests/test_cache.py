"""Content-addressed artifacts: hits, misses, and no trusted half-written artifact."""

import multiprocessing
import os
import signal
import time

import numpy as np
import pytest

from forgetting_aus import cache

#: A one-stage registry: these tests exercise the store, not the study's stages.
REGISTRY = {"stage": ("forgetting_aus.cache",)}

def _writer(folder):
    cache.write_npz(folder / "a.npz", x=np.arange(5))
    return {"n": 5}


def test_same_inputs_hit(tmp_path):
    store = cache.Store(tmp_path, registry=REGISTRY)
    calls = []

    def make(folder):
        calls.append(1)
        return _writer(folder)

    first = store.get_or_make("stage", {"a": 1}, make)
    second = store.get_or_make("stage", {"a": 1}, make)
    assert first == second and len(calls) == 1
    assert cache.read_npz(first / "a.npz")["x"].tolist() == [0, 1, 2, 3, 4]
    assert store.manifest("stage", first.name)["info"] == {"n": 5}


def test_changed_parameter_misses(tmp_path):
    store = cache.Store(tmp_path, registry=REGISTRY)
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
    store = cache.Store(tmp_path, registry=REGISTRY)

    def boom(folder):
        (folder / "partial.txt").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        store.get_or_make("stage", {"a": 1}, boom)
    key = store.key("stage", {"a": 1})
    assert not store.has("stage", key)
    assert not list((tmp_path / "stage").iterdir())


def _slow_make_forever(root):
    store = cache.Store(root, registry=REGISTRY)

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
    store = cache.Store(tmp_path, registry=REGISTRY)
    key = store.key("stage", {"a": 1})
    assert not store.has("stage", key)
    path = store.get_or_make("stage", {"a": 1}, _writer)
    assert store.has("stage", key) and (path / "a.npz").exists()
    assert not list((tmp_path / "stage").glob(".tmp-*")), "stale temp folder was not cleaned"


def test_folder_without_manifest_is_not_trusted(tmp_path):
    store = cache.Store(tmp_path, registry=REGISTRY)
    key = store.key("stage", {"a": 1})
    (tmp_path / "stage" / key).mkdir(parents=True)
    assert not store.has("stage", key)
    store.get_or_make("stage", {"a": 1}, _writer)
    assert store.has("stage", key)


def test_npz_refuses_objects(tmp_path):
    with pytest.raises(TypeError, match="pickling"):
        cache.write_npz(tmp_path / "x.npz", x=np.array([{"a": 1}], dtype=object))


# --- integrity: every read checks the manifest's sizes and checksums -------------------

def _made(tmp_path):
    store = cache.Store(tmp_path, registry=REGISTRY)
    folder = store.get_or_make("stage", {"a": 1}, _writer)
    return store, folder


def test_manifest_records_each_file_with_size_and_checksum(tmp_path):
    import hashlib

    store, folder = _made(tmp_path)
    (record,) = store.manifest("stage", folder.name)["files"]
    data = (folder / "a.npz").read_bytes()
    assert record == {"path": "a.npz", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_nested_files_are_recorded_by_relative_path(tmp_path):
    store = cache.Store(tmp_path, registry=REGISTRY)

    def make(folder):
        (folder / "data" / "x").mkdir(parents=True)
        (folder / "data" / "x" / "img.txt").write_text("pixels")

    folder = store.get_or_make("stage", {"a": 1}, make)
    assert [r["path"] for r in store.manifest("stage", folder.name)["files"]] == ["data/x/img.txt"]


def _remade_after(tmp_path, capsys, damage):
    """Damage the artifact's file, then read it again: it must be reported, discarded and remade."""
    store, folder = _made(tmp_path)
    damage(folder / "a.npz")
    cache.forget_verified()  # a new process: nothing verified yet
    calls = []

    def make(out):
        calls.append(1)
        return _writer(out)

    assert not store.has("stage", folder.name)
    assert not folder.exists(), "the damaged artifact was not discarded"
    again = store.get_or_make("stage", {"a": 1}, make)
    assert again == folder and calls == [1]
    assert cache.read_npz(again / "a.npz")["x"].tolist() == [0, 1, 2, 3, 4]
    assert store.has("stage", folder.name)
    return capsys.readouterr().err


def test_truncated_file_is_discarded_and_remade(tmp_path, capsys):
    def truncate(path):
        data = path.read_bytes()
        path.write_bytes(data[:-7])

    err = _remade_after(tmp_path, capsys, truncate)
    key = cache.Store(tmp_path, registry=REGISTRY).key("stage", {"a": 1})
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"artifact stage/{key}: a.npz has ") and "bytes, manifest says" in lines[0]
    assert lines[0].endswith("discarded, remaking")


def test_one_flipped_byte_is_discarded_and_remade(tmp_path, capsys):
    def flip(path):
        stat = path.stat()
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime: only the checksum tells

    err = _remade_after(tmp_path, capsys, flip)
    assert "a.npz has SHA-256" in err and "discarded, remaking" in err


def test_a_hit_in_get_or_make_is_verified(tmp_path, capsys):
    store, folder = _made(tmp_path)
    (folder / "a.npz").write_bytes(b"short")
    calls = []
    store.get_or_make("stage", {"a": 1}, lambda out: calls.append(1) or _writer(out))
    assert calls == [1] and "a.npz has 5 bytes" in capsys.readouterr().err


def test_missing_file_is_discarded(tmp_path, capsys):
    store, folder = _made(tmp_path)
    (folder / "a.npz").unlink()
    assert not store.has("stage", folder.name)
    assert "a.npz is missing" in capsys.readouterr().err


def test_manifest_without_file_records_is_not_trusted(tmp_path, capsys):
    """Artifacts made by the previous store recorded no files: they are remade, not trusted."""
    store, folder = _made(tmp_path)
    manifest = store.manifest("stage", folder.name)
    del manifest["files"]
    cache.write_json(folder / cache.MANIFEST, manifest)
    assert not store.has("stage", folder.name)
    assert "lists no files" in capsys.readouterr().err


def test_files_above_the_checksum_line_are_size_checked_only(tmp_path, monkeypatch):
    store, folder = _made(tmp_path)
    monkeypatch.setattr(cache, "CHECKSUM_MAX_BYTES", 10)
    cache.forget_verified()
    data = bytearray((folder / "a.npz").read_bytes())
    data[-1] ^= 0xFF
    (folder / "a.npz").write_bytes(bytes(data))
    assert store.has("stage", folder.name)  # same size, too big to checksum: trusted
    (folder / "a.npz").write_bytes(bytes(data[:-1]))
    cache.forget_verified()  # the next run (a new process) reads it again
    assert not store.has("stage", folder.name)


# --- code hashes ignore comments and docstrings ----------------------------------------

PACKAGE_SOURCE = '''"""A throwaway package."""

SCALE = 2  # a constant


def double(x):
    """Twice x."""
    # why: because
    return SCALE * x
'''


def _throwaway_package(tmp_path, monkeypatch, source=PACKAGE_SOURCE):
    package = tmp_path / "h1_throwaway_pkg"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text(source)
    (tmp_path / "h1_other.py").write_text("def f():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return package / "mod.py"


@pytest.mark.parametrize("edit", [
    lambda s: s.replace("# a constant", "# a better comment"),
    lambda s: s.replace('"""Twice x."""', '"""Two times x, in more words."""'),
    lambda s: s.replace('"""A throwaway package."""', '"""Reworded."""\n\n# and a new comment'),
    lambda s: s.replace("    # why: because\n", ""),
    lambda s: s.replace("\n\ndef double", "\n\n\n\ndef double"),
])
def test_comment_and_docstring_edits_keep_keys(tmp_path, monkeypatch, edit):
    mod = _throwaway_package(tmp_path, monkeypatch)
    store = cache.Store(tmp_path / "store", registry={"s": ("h1_throwaway_pkg",), "t": ("h1_other",)})
    before = store.key("s", {"a": 1}), store.key("t", {"a": 1})
    mod.write_text(edit(PACKAGE_SOURCE))
    os.utime(mod, ns=(0, 10**9))  # a new file state for the per-process memo
    assert (store.key("s", {"a": 1}), store.key("t", {"a": 1})) == before


@pytest.mark.parametrize("edit", [
    lambda s: s.replace("SCALE = 2", "SCALE = 3"),
    lambda s: s.replace("return SCALE * x", "return x * SCALE"),
    lambda s: s.replace('    """Twice x."""\n', '    "Twice x."\n    x = x + 0\n'),
])
def test_code_edits_change_the_keys_that_list_the_module(tmp_path, monkeypatch, edit):
    mod = _throwaway_package(tmp_path, monkeypatch)
    store = cache.Store(tmp_path / "store", registry={"s": ("h1_throwaway_pkg.mod",), "t": ("h1_other",)})
    before = store.key("s", {"a": 1}), store.key("t", {"a": 1})
    mod.write_text(edit(PACKAGE_SOURCE))
    os.utime(mod, ns=(0, 10**9))
    after = store.key("s", {"a": 1}), store.key("t", {"a": 1})
    assert after[0] != before[0], "a code change must invalidate the stage that lists the module"
    assert after[1] == before[1], "a stage that does not list the module must keep its key"


def test_a_code_edit_remakes_the_artifact(tmp_path, monkeypatch):
    mod = _throwaway_package(tmp_path, monkeypatch)
    store = cache.Store(tmp_path / "store", registry={"s": ("h1_throwaway_pkg",)})
    first = store.get_or_make("s", {"a": 1}, _writer)
    mod.write_text(PACKAGE_SOURCE.replace("# a constant", "# reworded"))
    os.utime(mod, ns=(0, 10**9))
    assert store.get_or_make("s", {"a": 1}, lambda out: pytest.fail("remade after a comment edit")) == first
    mod.write_text(PACKAGE_SOURCE.replace("SCALE = 2", "SCALE = 5"))
    os.utime(mod, ns=(0, 2 * 10**9))
    assert store.get_or_make("s", {"a": 1}, _writer) != first


def test_module_files_does_not_import(tmp_path, monkeypatch):
    import sys

    _throwaway_package(tmp_path, monkeypatch, source="raise RuntimeError('imported')\n")
    files = cache.module_files("h1_throwaway_pkg.mod")
    assert [f.name for f in files] == ["mod.py"] and "h1_throwaway_pkg.mod" not in sys.modules
    assert {f.name for f in cache.module_files("h1_throwaway_pkg")} == {"__init__.py", "mod.py"}


def test_unknown_registry_module_is_a_clear_error():
    with pytest.raises(ModuleNotFoundError, match="fix the name in forgetting_aus.cache.CODE"):
        cache.hash_code(["forgetting_aus.no_such_module"])


def test_every_registry_entry_names_existing_modules():
    for stage, modules in cache.CODE.items():
        for name in modules:
            assert cache.module_files(name), f"{stage}: {name} has no source files"


def test_an_artifact_published_meanwhile_by_another_process_is_kept(tmp_path):
    """Two makers of one artifact: the second keeps the first's folder (a reader may hold it)."""
    store = cache.Store(tmp_path, registry=REGISTRY)
    other = cache.Store(tmp_path, registry=REGISTRY)

    def slow_make(folder):
        (folder / "who.txt").write_text("second")
        other.get_or_make("stage", {"a": 1}, lambda out: (out / "who.txt").write_text("first") and None)

    folder = store.get_or_make("stage", {"a": 1}, slow_make)
    assert (folder / "who.txt").read_text() == "first" and store.has("stage", folder.name)
    assert not list((tmp_path / "stage").glob(".tmp-*"))


def test_a_folder_verified_in_this_process_is_not_walked_again_until_its_manifest_changes(tmp_path, monkeypatch):
    # Chapters ask for the same upstream artifacts hundreds of times; the twins hold tens
    # of thousands of files, so re-walking them on every hit cost minutes per chapter.
    store, folder = _made(tmp_path)
    cache.forget_verified()
    walks = []
    real_check = cache.check_files
    monkeypatch.setattr(cache, "check_files", lambda *a, **k: walks.append(1) or real_check(*a, **k))
    assert store.has("stage", folder.name) and store.has("stage", folder.name)
    assert len(walks) == 1
    manifest = folder / cache.MANIFEST
    manifest.write_text(manifest.read_text())  # a rewritten manifest (new mtime): verified again
    os.utime(manifest, ns=(manifest.stat().st_atime_ns, manifest.stat().st_mtime_ns + 1))
    assert store.has("stage", folder.name)
    assert len(walks) == 2


def test_read_npz_reads_only_the_named_arrays(tmp_path):
    cache.write_npz(tmp_path / "a.npz", labels=np.arange(3), images=np.zeros((3, 2, 2, 3), np.uint8))
    assert list(cache.read_npz(tmp_path / "a.npz", names=["labels"])) == ["labels"]
    with pytest.raises(KeyError, match=r"no array \['landmarks'\].*holds \['labels', 'images'\]"):
        cache.read_npz(tmp_path / "a.npz", names=["landmarks"])


@pytest.mark.parametrize("rows", [1200, 1199, 999, 5, 0])
def test_trim_npy_keeps_the_first_rows_without_copying_them(tmp_path, rows):
    array = np.arange(1200 * 6, dtype=np.uint8).reshape(1200, 2, 3)
    path = tmp_path / "images.npy"
    np.save(path, array)
    trimmed = cache.trim_npy(path, rows)
    assert not trimmed.flags.writeable
    np.testing.assert_array_equal(trimmed, array[:rows])
    np.testing.assert_array_equal(np.load(path), array[:rows])
    assert path.stat().st_size == trimmed.offset + array[:rows].nbytes
