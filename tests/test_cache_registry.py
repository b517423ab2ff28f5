"""The code audit behind the registry check: it sees the package code a make executes.

``tests/test_book.py`` runs the smoke book with the audit on and checks
:data:`forgetting_aus.cache.CODE` against what each stage executed; these tests prove the
audit itself on tiny fake stages made of real, light package functions (``facs``,
``geometry``), so they run in seconds.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from forgetting_aus import cache, facs, geometry

FACS, GEOMETRY = "forgetting_aus.facs", "forgetting_aus.geometry"


@pytest.fixture
def audit_dir(tmp_path, monkeypatch):
    from joblib.externals.loky import get_reusable_executor

    folder = tmp_path / "audit"
    monkeypatch.setenv(cache.AUDIT_ENV, str(folder))
    # Workers read the variable when they start: loky's workers left by an earlier test
    # (of any module) would not see it.
    get_reusable_executor().shutdown(wait=True)
    return folder


def _uses_facs(folder):
    facs.au_index(4)
    cache.write_json(folder / "x.json", {"ok": 1})


def _uses_facs_and_geometry(folder):
    _uses_facs(folder)
    geometry.face_box_from_landmarks(np.zeros((68, 2)) + np.arange(68)[:, None])


def test_a_module_outside_the_entry_is_reported_uncovered(tmp_path, audit_dir):
    registry = {"fake": (FACS,)}
    cache.Store(tmp_path / "store", registry=registry).get_or_make("fake", {"a": 1}, _uses_facs_and_geometry)
    executed = cache.audit_records(audit_dir)
    assert set(executed) == {"fake"}
    assert {FACS, GEOMETRY} <= executed["fake"]
    # the store itself (cache) is exempt; this test module is outside the package
    assert cache.uncovered_modules("fake", executed["fake"], registry) == [GEOMETRY]


def test_a_covering_entry_passes_and_a_package_covers_its_modules(tmp_path, audit_dir):
    cache.Store(tmp_path / "store", registry={"fake": (FACS, GEOMETRY)}).get_or_make(
        "fake", {"a": 1}, _uses_facs_and_geometry)
    executed = cache.audit_records(audit_dir)["fake"]
    assert cache.uncovered_modules("fake", executed, {"fake": (FACS, GEOMETRY)}) == []
    assert cache.uncovered_modules("fake", executed, {"fake": ("forgetting_aus",)}) == []
    assert cache.covers(("forgetting_aus.explain",), "forgetting_aus.explain.lrp")
    assert not cache.covers(("forgetting_aus.explain",), "forgetting_aus.explainers")


def test_an_upstream_stage_made_inside_a_make_is_recorded_as_itself(tmp_path, audit_dir):
    store = cache.Store(tmp_path / "store", registry={"up": (GEOMETRY,), "down": (FACS,)})

    def down(folder):
        store.get_or_make("up", {"b": 1}, lambda out: _uses_facs_and_geometry(out) and None)
        _uses_facs(folder)

    store.get_or_make("down", {"a": 1}, down)
    executed = cache.audit_records(audit_dir)
    assert GEOMETRY in executed["up"] and GEOMETRY not in executed["down"]
    assert FACS in executed["down"]


def test_a_hit_records_nothing_and_a_failed_make_no_record(tmp_path, audit_dir):
    store = cache.Store(tmp_path / "store", registry={"fake": (FACS,)})
    store.get_or_make("fake", {"a": 1}, _uses_facs)
    store.get_or_make("fake", {"a": 1}, _uses_facs)

    def boom(folder):
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        store.get_or_make("fake", {"a": 2}, boom)
    assert len(list(audit_dir.glob("*.json"))) == 1


def test_audit_is_off_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(cache.AUDIT_ENV, raising=False)
    cache.Store(tmp_path / "store", registry={"fake": (FACS,)}).get_or_make("fake", {"a": 1}, _uses_facs)
    assert sys.gettrace() is None or sys.gettrace() is not cache._audit_trace
    assert not (tmp_path / "audit").exists()


def _geometry_task(i):
    return geometry.face_box_from_landmarks(np.zeros((68, 2)) + i)


def test_joblib_work_inside_a_make_is_seen(tmp_path, audit_dir):
    from joblib import Parallel, delayed

    def make(folder):
        Parallel(n_jobs=2)(delayed(_geometry_task)(i) for i in range(3))

    cache.Store(tmp_path / "store", registry={"fake": (FACS,)}).get_or_make("fake", {"a": 1}, make)
    assert GEOMETRY in cache.audit_records(audit_dir)["fake"]


def _worker_makes(root, i):
    store = cache.Store(root, registry={"fake": (FACS,)})
    return store.get_or_make("fake", {"i": i}, _uses_facs_and_geometry).name


def test_a_joblib_worker_that_makes_an_artifact_records_it(tmp_path, audit_dir):
    from joblib import Parallel, delayed

    Parallel(n_jobs=2)(delayed(_worker_makes)(tmp_path / "store", i) for i in range(2))
    records = [json.loads(p.read_text()) for p in audit_dir.glob("*.json")]
    assert len(records) == 2 and all(GEOMETRY in r["modules"] for r in records)


def test_a_subprocess_records_itself_for_the_artifact_being_made(tmp_path, audit_dir):
    child = ("from forgetting_aus import cache, geometry\nimport numpy as np\n"
             "with cache.audit_subprocess():\n"
             "    geometry.face_box_from_landmarks(np.zeros((68, 2)))\n")

    def make(folder):
        subprocess.run([sys.executable, "-c", child], check=True, env=dict(os.environ))

    cache.Store(tmp_path / "store", registry={"fake": (FACS,)}).get_or_make("fake", {"a": 1}, make)
    records = [json.loads(p.read_text()) for p in audit_dir.glob("*.json")]
    assert len(records) == 2, "parent and child each write a record"
    assert {r["stage"] for r in records} == {"fake"} and len({r["key"] for r in records}) == 1
    assert GEOMETRY in cache.audit_records(audit_dir)["fake"]


def test_module_names_of_package_files():
    assert cache.module_of(geometry.__file__) == GEOMETRY
    assert cache.module_of(cache.module_files("forgetting_aus.explain")[0].parent / "__init__.py") == \
        "forgetting_aus.explain"
    with pytest.raises(ValueError, match="not a source file"):
        cache.module_of(__file__)
