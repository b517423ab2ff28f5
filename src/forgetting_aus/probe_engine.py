"""How one probe fold is fitted fast: standardised float64 kernels by BLAS, sklearn's libsvm on them.

The probe is :func:`forgetting_aus.concepts.make_probe`: ``StandardScaler`` then
``SVC(kernel="linear", C, class_weight="balanced")``, refitted on every training fold. A
linear SVM's solver needs only the dot products of the standardised training features, so
each fold's kernel ``Z_train Z_train^T`` is formed by BLAS in float64
(:func:`standardised_fold`), libsvm solves the same dual on it (:func:`libsvm_fit`, the
call ``SVC(kernel="precomputed").fit`` makes) and the decision is the fitted SVM's primal
weights, rescaled, applied to the raw test rows (:func:`svm_predict`). Written by hand
here: only the standardisation and the products around libsvm, no solver. The tests pin
every piece to sklearn's: predictions identical to the Pipeline's at 256 and 25 088
features, and :func:`libsvm_fit` bit for bit equal to ``SVC.fit``.

Speed (measured, README): at 25 088 features about half of a fit is the kernel's BLAS
product (its floor in float64), where ``SVC(kernel="linear")`` computes every kernel entry
by its own dot product; at 256 features libsvm's own solve, which both share, dominates.
The kernel's products go through scipy's BLAS (:func:`block_product`), which runs this
CPU's AVX-512 kernels where numpy's OpenBLAS fell back to generic ones.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any, NamedTuple

import numpy as np
from scipy.linalg import blas as scipy_blas
from sklearn.svm import SVC, _libsvm
from threadpoolctl import threadpool_limits

#: The linear SVM's C: fixed in advance, never tuned (see :mod:`forgetting_aus.concepts`).
DEFAULT_C = 1.0
#: Feature columns standardised and multiplied per step of :func:`standardised_fold`.
COLUMN_BLOCK = 1024
#: The estimator whose libsvm call :func:`libsvm_fit` makes (its defaults are the call's).
_SVC = SVC(kernel="precomputed")


def standardise(train: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A training fold scaled by its own mean and SD in float64, as ``StandardScaler`` does.

    Population SD (``ddof=0``); a constant feature (SD below ``10 eps``) is scaled by 1.
    The same values as ``(x - x.mean(0)) / x.std(0)`` in float64 (the tests compare them
    with ``StandardScaler``): one float64 copy, then its mean, the subtraction and the
    division in place, the sum of squares one ``einsum``. Bit for bit the earlier order
    (the mean accumulated in float64 from the raw dtype, the cast inside the subtraction;
    the cast is exact and the sums run over the rows in the same order, tested), ~20 %
    faster at 25 088 features: numpy's mixed-dtype loops cast in small buffers.

    Parameters
    ----------
    train : ndarray of shape (n_train, d)
        Any float dtype; not modified.

    Returns
    -------
    z : ndarray of shape (n_train, d), float64
    mean, scale : ndarray of shape (d,)
        What was subtracted and what was divided by (``StandardScaler``'s ``mean_`` and ``scale_``).
    """
    z = train.astype(np.float64)  # always a copy: the input is left alone
    mean = z.mean(axis=0)
    np.subtract(z, mean, out=z)
    scale = np.sqrt(np.einsum("ij,ij->j", z, z) / len(z))
    scale[scale < 10 * np.finfo(np.float64).eps] = 1.0
    np.divide(z, scale, out=z)
    return z, mean, scale


class StandardisedFold(NamedTuple):
    """A training fold standardised by its own mean and SD, and its linear kernel, in float64.

    ``z`` holds ``Z_train`` in blocks of :data:`COLUMN_BLOCK` columns (``np.hstack(z)``
    gives it whole); ``mean`` and ``scale``, of shape (d,), standardise any other rows as
    ``(x - mean) / scale``; ``kernel`` is ``Z_train Z_train^T``, of shape (n_train, n_train),
    all the SVM's solver needs of the features.
    """

    z: list[np.ndarray]
    mean: np.ndarray
    scale: np.ndarray
    kernel: np.ndarray


def standardised_fold(x: np.ndarray, train: np.ndarray | None) -> StandardisedFold:
    """The rows ``train`` of ``x`` standardised by their own mean and SD, and their linear kernel by BLAS.

    Parameters
    ----------
    x : ndarray of shape (n, d)
        Features of all images (any float dtype; computed in float64).
    train : ndarray of int or None
        Row indices of the training fold; None: every row of ``x`` (read in place, no copy).

    Returns
    -------
    StandardisedFold
    """
    z, means, scales = [], [], []
    n = len(x) if train is None else len(train)
    # Lower triangles of the kernel (summed) and of one block's product, column-major as
    # BLAS writes them; the upper triangles stay zero (syrk never touches them).
    lower = product = None
    # Column blocks: a block of the fold's rows stays in the CPU cache from the cast to
    # its kernel product, where whole 25 088-wide rows would be read from memory once per
    # elementwise pass. Standardisation is per feature, so the blocks change nothing.
    for start in range(0, x.shape[1], COLUMN_BLOCK):
        # rows gathered block by block: a whole-width copy of the fold would be written to memory and read back
        columns = slice(start, start + COLUMN_BLOCK)
        block, mean, scale = standardise(x[:, columns] if train is None else x[train, columns])
        if lower is None:
            # the first block's product is the kernel itself: no matrix to add it to
            lower = block_product(block, out=np.zeros((n, n), order="F"))
        else:
            product = block_product(block, out=np.zeros((n, n), order="F") if product is None else product)
            np.add(lower, product, out=lower)
        # kept as blocks: copying them into whole-width arrays cost 15 % of a wide fit
        z.append(block)
        means.append(mean)
        scales.append(scale)
    # the upper triangle from the lower, exactly (x + 0); the diagonal, doubled by the sum, put back
    kernel = np.add(lower, lower.T, out=np.empty((n, n)))
    np.fill_diagonal(kernel, lower.diagonal())
    return StandardisedFold(z, np.concatenate(means), np.concatenate(scales), kernel)


def block_product(block: np.ndarray, *, out: np.ndarray) -> np.ndarray:
    """The lower triangle of ``block @ block.T`` by BLAS ``dsyrk``, written into ``out``.

    The call numpy's ``np.dot(block, block.T)`` makes (row-major upper, no transpose: the
    same as column-major lower, transposed, on ``block.T``), made through scipy's BLAS:
    the same kernel bits whenever both libraries run the same CPU kernels (tested on two
    of them), but scipy's OpenBLAS (0.3.30 here) recognises newer CPUs that numpy's
    (0.3.23) does not. On the 2-core VM (an Intel CPU of model 207) numpy's fell back to
    its generic SSE3 kernels ("Prescott"): a product ~5x slower than the AVX-512 kernels
    that scipy's runs there and that numpy's ran on the machine of the earlier benches,
    and rounded differently from them.

    Parameters
    ----------
    block : ndarray of shape (n, w), float64, C-contiguous
    out : ndarray of shape (n, n), float64, Fortran-ordered
        Its lower triangle (diagonal included) is overwritten; the rest is left as it is.

    Returns
    -------
    ndarray
        ``out``.
    """
    return scipy_blas.dsyrk(1.0, block.T, trans=1, lower=1, c=out, overwrite_c=1)


def balanced_class_weight(y: np.ndarray) -> np.ndarray:
    """``sklearn.utils.class_weight.compute_class_weight("balanced", classes=[0, 1], y=y)``, by its own formula."""
    return len(y) / (2 * np.bincount(y, minlength=2).astype(np.float64))


def libsvm_fit(k_train: np.ndarray, y_train: np.ndarray, *, C: float = DEFAULT_C) -> tuple[np.ndarray, np.ndarray, float]:
    """``SVC(kernel="precomputed", C=C, class_weight="balanced").fit(k_train, y_train)``: its support, dual and intercept.

    The same call into sklearn's libsvm that ``SVC.fit`` makes, with the same arguments
    (:data:`_SVC` holds the estimator's defaults), without the estimator around it: on a
    few hundred images ``SVC.fit``'s input checks, label encoding and class-weight
    helpers cost about twice libsvm's own solve (measured). The tests pin this call to
    ``SVC.fit``'s results.

    Parameters
    ----------
    k_train : ndarray of shape (n_train, n_train), float64
        Linear kernel of the standardised training fold.
    y_train : ndarray of shape (n_train,), int
        0/1 labels, both present.
    C : float, keyword-only

    Returns
    -------
    support : ndarray of int
        Training rows that are support vectors (``SVC.support_``).
    dual_coef : ndarray of shape (n_support,)
        ``SVC.dual_coef_[0]`` (sign as sklearn's: positive decision = class 1).
    intercept : float
        ``SVC.intercept_[0]``.
    """
    y_train = np.asarray(y_train, dtype=np.int64)
    # libsvm's verbosity is a process-wide switch that SVC.fit sets before every fit;
    # left on, every fit prints its solver summary (into the chapter's output).
    _libsvm.set_verbosity_wrap(0)
    support, _, _, dual_coef, intercept, *_ = _libsvm.fit(
        np.ascontiguousarray(k_train, dtype=np.float64), y_train.astype(np.float64), svm_type=0,  # C-SVC
        sample_weight=np.empty(0), class_weight=balanced_class_weight(y_train), kernel="precomputed", C=C,
        nu=_SVC.nu, probability=False, degree=_SVC.degree, shrinking=_SVC.shrinking, tol=_SVC.tol,
        cache_size=_SVC.cache_size, coef0=_SVC.coef0, gamma=0.0, epsilon=_SVC.epsilon, max_iter=_SVC.max_iter,
        random_seed=0)  # the seed only shuffles probability estimates, which are off
    # libsvm's binary decision is positive for the first class (0); SVC flips both signs.
    return support, -dual_coef[0], -float(intercept[0])


def svm_predict(fold: StandardisedFold, y_train: np.ndarray, x_test: np.ndarray, *,
                C: float = DEFAULT_C) -> np.ndarray:
    """The probe's SVM fitted on a standardised training fold's kernel; its predictions on the test rows.

    ``SVC(kernel="precomputed")`` (:func:`libsvm_fit`) with the probe's C and class
    weights is libsvm solving the same dual as :func:`forgetting_aus.concepts.make_probe`'s
    ``SVC(kernel="linear")`` on the standardised features, with the same unpenalised
    intercept. Its decision on a test row is ``((x - mean) / scale) @ w + intercept`` with
    the primal weights ``w = dual_coef @ Z_train[support]`` (sklearn's ``coef_``),
    computed as ``x @ (w / scale) - mean @ (w / scale) + intercept``: the test rows are
    never standardised, which costs what standardising the training fold does.

    Parameters
    ----------
    fold : StandardisedFold
        The training fold (:func:`standardised_fold`).
    y_train : ndarray of shape (n_train,)
        0/1 labels, both present.
    x_test : ndarray of shape (n_test, d)
        Test rows, raw (as ``x`` in :func:`standardised_fold`).
    C : float, keyword-only

    Returns
    -------
    ndarray of shape (n_test,), int
        Predicted labels.
    """
    if not np.isfinite(fold.kernel).all():
        raise ValueError("svm_predict: the features contain NaN or inf; check the model whose features are probed")
    support, dual_coef, intercept = libsvm_fit(fold.kernel, y_train, C=C)
    # The dual over every training row (zero off the support): one matrix-vector product
    # per block, where gathering the support rows first copies them.
    dual = np.zeros(len(y_train))
    dual[support] = dual_coef
    decision = decision_values(fold, dual, intercept, x_test)
    if not np.isfinite(decision).all():
        raise ValueError("svm_predict: the test features contain NaN or inf; check the model whose features are "
                         "probed")
    return (decision > 0).astype(int)


def decision_values(fold: StandardisedFold, dual: np.ndarray, intercept: float, x_test: np.ndarray) -> np.ndarray:
    """The SVM's decision on raw test rows: ``x @ (w / scale) - mean @ (w / scale) + intercept``, block by block.

    Parameters
    ----------
    fold : StandardisedFold
    dual : ndarray of shape (n_train,)
        Signed dual coefficients of every training row (zero off the support).
    intercept : float
    x_test : ndarray of shape (n_test, d)
        Raw test rows.

    Returns
    -------
    ndarray of shape (n_test,), float64
    """
    decision = np.full(len(x_test), intercept)
    # the test rows of one block in float64: one buffer for every block (a fresh copy per
    # block cost twice the copy itself at 25 088 features); the same values as astype's
    test_rows = np.empty(len(x_test) * fold.z[0].shape[1])
    start = 0
    for block in fold.z:
        columns = slice(start, start + block.shape[1])
        weights = _vector_matrix(dual, block) / fold.scale[columns]
        rows = test_rows[:len(x_test) * block.shape[1]].reshape(len(x_test), block.shape[1])  # C-contiguous
        np.copyto(rows, x_test[:, columns])
        # rows @ weights and mean @ weights, as numpy calls BLAS for them (see _vector_matrix)
        decision += scipy_blas.dgemv(1.0, rows.T, weights, trans=1) - scipy_blas.ddot(fold.mean[columns], weights)
        start = columns.stop
    return decision


def _vector_matrix(vector: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``vector @ matrix`` (C-contiguous, float64) by scipy's BLAS ``dgemv``, as :func:`block_product` its product.

    The call numpy makes for ``@`` (``dgemv`` on the matrix's transpose, no transpose
    flag): the same bits whenever both libraries run the same CPU kernels (checked under
    Haswell and SkylakeX); so are ``dgemv`` with ``trans=1`` for ``matrix @ vector`` and
    ``ddot``, which :func:`svm_predict` calls directly. A one-column matrix is numpy's
    own case (it does not call ``dgemv`` for it) and stays numpy's.
    """
    if matrix.shape[1] == 1:
        return vector @ matrix
    return scipy_blas.dgemv(1.0, matrix.T, vector)


#: Whether :func:`keep_freed_memory` ran in this process.
_MALLOC_TUNED = False


def keep_freed_memory() -> None:
    """Let glibc's malloc keep freed memory for reuse instead of handing it back to the OS.

    Every fit allocates and frees arrays of a few hundred kB to tens of MB (the fold's
    features, their kernel). With glibc's defaults these are mapped fresh or trimmed away
    when freed, so each fit pays page faults on memory it just released: measured 40 % of
    a 256-feature fit and most of a 25 088-feature one on the 2-core VM. Thresholds of
    256 MB keep them on the heap; the process' memory stays at its peak, which the probes
    keep small. Once per process; a no-op off glibc.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED or not sys.platform.startswith("linux"):
        return
    _MALLOC_TUNED = True
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    mallopt(m_mmap_threshold, 256 << 20)
    mallopt(m_trim_threshold, 256 << 20)


def one_blas_thread() -> Any:
    """A context in which BLAS runs on one thread.

    The probes run in parallel as tasks (``n_jobs``); a fold's kernel is too small for
    BLAS threads to pay, and on a busy machine they wait on each other (measured several
    times slower per fit). joblib's workers already run one thread each; this covers
    ``n_jobs=1``.
    """
    return threadpool_limits(limits=1, user_api="blas")
