"""Thresholding maps and comparing masks with DICE and IoU (Arabian et al. 2022, §2.2).

All functions are vectorised over leading axes: the last two axes are the image plane.

Empty masks: when *both* masks are empty the two agree perfectly on "nothing salient",
so DICE and IoU are defined as ``empty`` (1.0 by default; pass ``empty=np.nan`` to
exclude such pairs from averages). When only one is empty the overlap is 0.
"""

from __future__ import annotations

import numpy as np

__all__ = ["threshold_map", "dice", "iou"]


def threshold_map(maps: np.ndarray, *, quantile: float | None = None,
                  value: float | None = None) -> np.ndarray:
    """Binary mask of the salient pixels of each map.

    Parameters
    ----------
    maps : ndarray of shape (..., H, W)
    quantile : float in [0, 1], keyword-only
        Keep pixels ``>=`` the map's own ``quantile`` (e.g. 0.8: the top 20 %).
    value : float, keyword-only
        Keep pixels ``>= value`` (e.g. 0.5 on [0, 1]-normalised Grad-CAM maps).
        Exactly one of ``quantile`` and ``value`` must be given.

    Returns
    -------
    ndarray of bool, same shape as ``maps``
    """
    if (quantile is None) == (value is None):
        raise ValueError("give exactly one of quantile= or value=")
    arr = np.asarray(maps, dtype=np.float64)
    if arr.ndim < 2:
        raise ValueError(f"expected maps with at least 2 axes (H, W), got shape {arr.shape}")
    if value is not None:
        return arr >= value
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"quantile must lie in [0, 1], got {quantile}")
    cut = np.quantile(arr, quantile, axis=(-2, -1), keepdims=True)
    return arr >= cut


def _counts(mask_a, mask_b):
    a = np.asarray(mask_a, dtype=bool)
    b = np.asarray(mask_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"masks must have the same shape, got {a.shape} and {b.shape}")
    if a.ndim < 2:
        raise ValueError(f"expected masks with at least 2 axes (H, W), got shape {a.shape}")
    inter = np.logical_and(a, b).sum(axis=(-2, -1))
    return inter, a.sum(axis=(-2, -1)), b.sum(axis=(-2, -1))


def dice(mask_a: np.ndarray, mask_b: np.ndarray, *, empty: float = 1.0) -> np.ndarray | float:
    """DICE coefficient ``2 |A & B| / (|A| + |B|)`` over the last two axes.

    Parameters
    ----------
    mask_a, mask_b : ndarray of bool, shape (..., H, W)
    empty : float, keyword-only
        Value when both masks are empty (see module docstring).

    Returns
    -------
    float or ndarray of shape (...)
    """
    inter, na, nb = _counts(mask_a, mask_b)
    denom = na + nb
    out = np.where(denom > 0, 2.0 * inter / np.where(denom > 0, denom, 1), empty)
    return float(out) if out.ndim == 0 else out


def iou(mask_a: np.ndarray, mask_b: np.ndarray, *, empty: float = 1.0) -> np.ndarray | float:
    """Intersection over union ``|A & B| / |A | B|`` over the last two axes.

    Parameters
    ----------
    mask_a, mask_b : ndarray of bool, shape (..., H, W)
    empty : float, keyword-only
        Value when both masks are empty (see module docstring).

    Returns
    -------
    float or ndarray of shape (...)
    """
    inter, na, nb = _counts(mask_a, mask_b)
    union = na + nb - inter
    out = np.where(union > 0, inter / np.where(union > 0, union, 1), empty)
    return float(out) if out.ndim == 0 else out
