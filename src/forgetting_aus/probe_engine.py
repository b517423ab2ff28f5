"""How one probe fold is fitted fast: standardised float64 kernels by BLAS, sklearn's libsvm on them.

The probe is :func:`forgetting_aus.concepts.make_probe`: ``StandardScaler`` then
``SVC(kernel="linear", C, class_weight="balanced")``, refitted on every training fold. A
linear SVM's solver needs only the dot products of the standardised training features, so
each fold's kernel ``Z_train Z_train^T`` is formed by BLAS in float64
(:func:`standardised_fold`), libsvm solves the same dual on it (:func:`libsvm_fit`, the
call ``SVC(kernel="precomputed").fit`` makes) and the decision is the fitted SVM's primal
weights applied to ``Z_test`` (:func:`svm_predict`). Written by hand here: only the
standardisation and the products around libsvm, no solver. The tests pin every piece to
sklearn's: predictions identical to the Pipeline's at 256 and 25 088 features, and
:func:`libsvm_fit` bit for bit equal to ``SVC.fit``.

Speed (measured, README): about 3x the Pipeline's rate at 256 features and 10x at 25 088,
where ``SVC(kernel="linear")`` computes every kernel entry by its own dot product.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.svm import SVC, _libsvm
from threadpoolctl import threadpool_limits

#: The linear SVM's C: fixed in advance, never tuned (see :mod:`forgetting_aus.concepts`).
DEFAULT_C = 1.0
#: Feature columns standardised and multiplied per step of :func:`standardised_fold`.
COLUMN_BLOCK = 1024
#: The estimator whose libsvm call :func:`libsvm_fit` makes (its defaults are the call's).
_SVC = SVC(kernel="precomputed")


def standardise_in_place(train: np.ndarray, test: np.ndarray) -> None:
    """Scale both float64 folds, in place, by the training fold's mean and SD, as ``StandardScaler`` does.

    Population SD (``ddof=0``); a constant feature (SD below ``10 eps``) is scaled by 1.
    The same operations as ``(x - x.mean(0)) / x.std(0)``, so the same bits, without
    their temporary copies.
    """
    mean = train.mean(axis=0)
    np.subtract(train, mean, out=train)
    scale = np.sqrt(np.multiply(train, train).sum(axis=0) / len(train))
    scale[scale < 10 * np.finfo(np.float64).eps] = 1.0
    np.divide(train, scale, out=train)
    np.subtract(test, mean, out=test)
    np.divide(test, scale, out=test)


def standardised_fold(x: np.ndarray, train: np.ndarray, test: np.ndarray
                      ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """One fold's standardised features, in column blocks, and the linear kernel of its training rows, in float64.

    The rows ``train`` and ``test`` of ``x`` are standardised by the training rows' mean
    and SD (:func:`standardise_in_place`), giving ``Z_train`` and ``Z_test``; the training kernel
    ``Z_train Z_train^T`` (by BLAS) is all the SVM's solver needs of the features.

    Parameters
    ----------
    x : ndarray of shape (n, d)
        Features of all images (any float dtype; computed in float64).
    train, test : ndarray of int
        Row indices of the training and test fold.

    Returns
    -------
    z_train : list of ndarray of shape (n_train, <= COLUMN_BLOCK)
        ``Z_train`` by blocks of :data:`COLUMN_BLOCK` columns (``np.hstack`` gives it whole).
    z_test : list of ndarray of shape (n_test, <= COLUMN_BLOCK)
        ``Z_test``, the same blocks.
    k_train : ndarray of shape (n_train, n_train)
        ``Z_train Z_train^T``.
    """
    z_train, z_test = [], []
    k_train = np.zeros((len(train), len(train)))
    # Column blocks: a block of the fold's rows stays in the CPU cache from the cast to
    # its kernel product, where whole 25 088-wide rows would be read from memory once per
    # elementwise pass. Standardisation is per feature, so the blocks change nothing.
    for start in range(0, x.shape[1], COLUMN_BLOCK):
        columns = slice(start, start + COLUMN_BLOCK)
        block_train = x[train, columns].astype(np.float64)
        block_test = x[test, columns].astype(np.float64)
        standardise_in_place(block_train, block_test)
        # np.dot of a matrix with its own transpose is BLAS syrk (half the products of a
        # general product, exactly symmetric); the @ operator does not take that path.
        k_train += np.dot(block_train, block_train.T)
        # kept as blocks: copying them into whole-width arrays cost 15 % of a wide fit
        z_train.append(block_train)
        z_test.append(block_test)
    return z_train, z_test, k_train


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


def svm_predict(k_train: np.ndarray, y_train: np.ndarray, z_train: Sequence[np.ndarray],
                z_test: Sequence[np.ndarray], *, C: float = DEFAULT_C) -> np.ndarray:
    """The probe's SVM fitted on a precomputed linear kernel; its predictions on the test fold.

    ``SVC(kernel="precomputed")`` (:func:`libsvm_fit`) with the probe's C and class
    weights is libsvm solving the same dual as :func:`forgetting_aus.concepts.make_probe`'s
    ``SVC(kernel="linear")`` on the standardised features, with the same unpenalised
    intercept; the decision is that SVM's, ``z_test @ (dual_coef @ z_train[support]) +
    intercept``.

    Parameters
    ----------
    k_train : ndarray of shape (n_train, n_train)
    y_train : ndarray of shape (n_train,)
        0/1 labels, both present.
    z_train, z_test : sequences of ndarray of shape (n_train, d_block) and (n_test, d_block)
        The standardised folds in the same column blocks (:func:`standardised_fold`).
    C : float, keyword-only

    Returns
    -------
    ndarray of shape (n_test,), int
        Predicted labels.
    """
    if not np.isfinite(k_train).all():
        raise ValueError("svm_predict: the features contain NaN or inf; check the model whose features are probed")
    support, dual_coef, intercept = libsvm_fit(k_train, y_train, C=C)
    # The primal weights (sklearn's coef_ of the linear SVM) from the support vectors, block
    # by block: one product with the test fold instead of its whole kernel.
    decision = sum(block_test @ (dual_coef @ block_train[support])
                   for block_train, block_test in zip(z_train, z_test, strict=True))
    return (decision + intercept > 0).astype(int)


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
