"""Tests of forgetting_aus.probe_engine's kernel: scipy's dsyrk against the np.dot product it replaced.

The engine's other pieces (standardisation, the libsvm call, predictions against the
reference Pipeline) are tested in test_concepts.py.
"""

from __future__ import annotations

import inspect
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from forgetting_aus import concepts, probe_engine


def numpy_kernel(x, train):
    """The kernel as the engine formed it before scipy's BLAS: np.dot per column block, summed in block order."""
    kernel = None
    for start in range(0, x.shape[1], probe_engine.COLUMN_BLOCK):
        block = probe_engine.standardise(x[train, start:start + probe_engine.COLUMN_BLOCK])[0]
        product = np.dot(block, block.T)
        kernel = product if kernel is None else np.add(kernel, product, out=kernel)
    return kernel


def numpy_decision(fold, dual, intercept, x_test):
    """The decision as the engine computed it before scipy's BLAS: numpy's @ for every product."""
    decision = np.full(len(x_test), intercept)
    start = 0
    for block in fold.z:
        columns = slice(start, start + block.shape[1])
        weights = (dual @ block) / fold.scale[columns]
        decision += x_test[:, columns].astype(np.float64) @ weights - fold.mean[columns] @ weights
        start = columns.stop
    return decision


_SAME_BITS = """
import numpy as np
from forgetting_aus import probe_engine
""" + inspect.getsource(numpy_kernel) + inspect.getsource(numpy_decision) + """
import json
from threadpoolctl import threadpool_info, threadpool_limits
rng = np.random.default_rng(0)
same = []
with threadpool_limits(1, "blas"):
    for n, d in [(300, 256), (299, 3000), (150, 25088), (41, 1025), (7, 1)]:
        x = np.maximum(rng.normal(size=(2 * n, d)), 0).astype(np.float32)
        train, test = np.sort(rng.permutation(2 * n)[:n]), np.arange(n)
        fold = probe_engine.standardised_fold(x, train)
        dual = rng.normal(size=n)
        same.append(bool(np.array_equal(numpy_kernel(x, train), fold.kernel)))
        same.append(bool(np.array_equal(numpy_decision(fold, dual, 0.25, x[test]),
                                        probe_engine.decision_values(fold, dual, 0.25, x[test]))))
print(json.dumps({"same": same, "kernels": sorted({i["architecture"] for i in threadpool_info()
                                                   if i.get("internal_api") == "openblas"})}))
"""


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))


def _kernels_this_cpu_runs() -> list[str]:
    """OpenBLAS kernel families both libraries know by one name (not the generic ones: numpy's 0.3.23 calls them
    Prescott, scipy's 0.3.30 Katmai) that this CPU has: AVX2 (Haswell) and AVX-512 (SkylakeX)."""
    flags = _cpu_flags()
    kernels = []
    if {"avx2", "fma"} <= flags:
        kernels.append("Haswell")
    if {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        kernels.append("SkylakeX")
    return kernels


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or not _cpu_flags(),
                    reason="OpenBLAS kernel names and /proc/cpuinfo are x86-64 Linux's")
@pytest.mark.parametrize("kernel", _kernels_this_cpu_runs())
def test_kernel_and_decision_are_numpys_bit_for_bit_on_the_same_blas_kernels(kernel):
    """With numpy's and scipy's OpenBLAS forced onto the same CPU kernels, the engine's kernel and decision values
    are those of numpy's products bit for bit, at one block, many blocks, a ragged last block and one feature."""
    env = {**os.environ, "OPENBLAS_CORETYPE": kernel}
    out = subprocess.run([sys.executable, "-c", _SAME_BITS], env=env, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["kernels"] == [kernel]  # both libraries did run it
    assert all(result["same"]), result


def _old_predict(x, y, train, test):
    """The engine's predictions with numpy's products throughout (the path before scipy's BLAS)."""
    fold = probe_engine.standardised_fold(x, train)
    fold = fold._replace(kernel=numpy_kernel(x, train))
    support, dual_coef, intercept = probe_engine.libsvm_fit(fold.kernel, y[train])
    dual = np.zeros(len(train))
    dual[support] = dual_coef
    return (numpy_decision(fold, dual, intercept, x[test]) > 0).astype(int)


@pytest.mark.parametrize(("n", "d", "n_repeats"), [(600, 256, 20), (200, 25088, 3)])
def test_predictions_are_those_of_the_numpy_kernel(n, d, n_repeats):
    """Where numpy's BLAS runs other kernels than scipy's (numpy's OpenBLAS 0.3.23 falls back to its generic
    kernels on CPUs it does not know), kernels and decisions differ in the last bits; the predictions do not,
    on every fold of the tests' planted features."""
    rng = np.random.default_rng(d)
    y = (rng.random(n) < 0.3).astype(int)
    x = np.maximum(rng.normal(size=(n, d)), 0).astype(np.float32)
    x[np.ix_(y == 1, np.arange(max(1, d // 50)))] += 0.6
    for rep in range(n_repeats):
        for folds in concepts.FOLD_SCHEMES:
            groups = np.arange(n) // 5
            for train, test in concepts.cv_splits(y, groups=groups, folds=folds, random_state=rep):
                np.testing.assert_array_equal(concepts.fold_predict(x, y, train, test), _old_predict(x, y, train, test))


def test_kernel_is_symmetric_c_ordered_and_its_lower_triangle_is_blas():
    x = np.maximum(np.random.default_rng(3).normal(size=(50, 2100)), 0).astype(np.float32)
    train = np.arange(5, 45)
    fold = probe_engine.standardised_fold(x, train)
    assert fold.kernel.flags["C_CONTIGUOUS"] and fold.kernel.shape == (40, 40)
    np.testing.assert_array_equal(fold.kernel, fold.kernel.T)
    z = np.hstack(fold.z)
    np.testing.assert_allclose(fold.kernel, z @ z.T, rtol=1e-12, atol=1e-9)


def test_every_row_is_read_in_place_with_the_same_bits_as_gathered():
    """probe_predict's shortcut: train=None standardises x's rows where they are, bit for bit the gathered fold."""
    rng = np.random.default_rng(4)
    for n, d in [(60, 2500), (300, 256), (5, 3)]:
        x = (np.maximum(rng.normal(size=(n, d)), 0) * 7).astype(np.float32)
        whole, gathered = probe_engine.standardised_fold(x, None), probe_engine.standardised_fold(x, np.arange(n))
        np.testing.assert_array_equal(whole.kernel, gathered.kernel)
        np.testing.assert_array_equal(whole.mean, gathered.mean)
        np.testing.assert_array_equal(whole.scale, gathered.scale)
        for a, b in zip(whole.z, gathered.z, strict=True):
            np.testing.assert_array_equal(a, b)
    x = np.maximum(rng.normal(size=(90, 1500)), 0).astype(np.float32)
    y = (rng.random(90) < 0.4).astype(int)
    train, test = np.arange(0, 90, 2), np.arange(1, 90, 2)
    np.testing.assert_array_equal(concepts.probe_predict(x[train], y[train], x[test]),
                                  concepts.fold_predict(x, y, train, test))


def _standardise_as_before(train):
    """standardise() before the float64 copy came first: mean from the raw dtype, the cast inside the subtraction."""
    mean = train.mean(axis=0, dtype=np.float64)
    z = np.subtract(train, mean, dtype=np.float64)
    scale = np.sqrt(np.einsum("ij,ij->j", z, z) / len(z))
    scale[scale < 10 * np.finfo(np.float64).eps] = 1.0
    np.divide(z, scale, out=z)
    return z, mean, scale


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_standardise_is_bit_for_bit_its_earlier_order(dtype):
    """Copy-then-mean gives the bits of mean-in-float64-then-subtract: contiguous blocks, column views of a wide
    array, one row, one column, constant and large-valued features."""
    rng = np.random.default_rng(5)
    wide = (np.maximum(rng.normal(size=(300, 3000)), 0) * 40).astype(dtype)
    wide[:, 3] = 7
    cases = [wide[:, :1024], wide[:, 1024:2048], wide[np.arange(0, 300, 3), 2048:], wide[:1], wide[:, :1],
             (rng.normal(size=(17, 5)) * 1e4).astype(dtype)]
    for block in cases:
        for got, want in zip(probe_engine.standardise(block), _standardise_as_before(block), strict=True):
            np.testing.assert_array_equal(got, want)
