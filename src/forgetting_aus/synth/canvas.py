"""The canonical canvas of a batch and the primitives that paint on it.

Every face of a batch is painted on one shared grid of canonical face coordinates (``u``
right, ``v`` down, face units), so each facial feature only needs the fixed window of the
grid where it can ever lie. This module holds the grid (extent and resolution), the
canvas (planar RGBA plus the darkening/highlight accumulators of the AU relief), its
alpha blend restricted to the support of a feature, and the small field helpers that
the painter (:mod:`.paint`) composes: anti-aliased inside indicator, Gaussian line
profile, distance to segments, colours and per-face scalars broadcast over the grid.
"""

from __future__ import annotations

import numpy as np

from .geometry import F

# Canonical grid extent (face units) and its resolution relative to the image size.
U_RANGE = (-1.1, 1.1)
V_RANGE = (-1.45, 1.65)
GRID_PX_PER_UNIT = 0.34  # canonical pixels per face unit, per image pixel of ``size``


class _Canvas:
    """Canonical RGBA canvas of a batch, plus darkening/highlight accumulators."""

    def __init__(self, n: int, size: int):
        self.res = GRID_PX_PER_UNIT * size  # canonical pixels per face unit
        self.px = F(1.0 / self.res)          # one canonical pixel, in face units
        self.u = (U_RANGE[0] + (np.arange(int(np.ceil((U_RANGE[1] - U_RANGE[0]) * self.res)))
                                + 0.5) * self.px).astype(F)
        self.v = (V_RANGE[0] + (np.arange(int(np.ceil((V_RANGE[1] - V_RANGE[0]) * self.res)))
                                + 0.5) * self.px).astype(F)
        h, w = len(self.v), len(self.u)
        # Planar layout (channel, face, row, column): per-pixel opacities (n, h, w)
        # broadcast against it without a trailing length-3 axis, which numpy loops over
        # slowly, and the warp gathers whole channel planes.
        self.rgba = np.zeros((4, n, h, w), F)
        self.dark = np.zeros((n, h, w), F)
        self.light = np.zeros((n, h, w), F)

    def window(self, u0: float, u1: float, v0: float, v1: float):
        """Slices of the grid covering [u0,u1]x[v0,v1] and their (1,1,w), (1,h,1) coords."""
        cs = slice(max(0, int(np.searchsorted(self.u, u0))), int(np.searchsorted(self.u, u1)))
        rs = slice(max(0, int(np.searchsorted(self.v, v0))), int(np.searchsorted(self.v, v1)))
        return rs, cs, self.u[cs][None, None, :], self.v[rs][None, :, None]

    def side_window(self, s: float, inner: float, outer: float, v0: float, v1: float):
        """:meth:`window` of ``inner <= s * u <= outer`` (one side of the face, ``s`` = -1 or 1)."""
        return self.window(*sorted((s * inner, s * outer)), v0, v1)

    def paint(self, rs, cs, opacity: np.ndarray, colour) -> None:
        """Alpha-blend ``colour`` ((n, 3), (3,) or planar (3, n, h, w)) with ``opacity`` (n, h, w).

        Only the bounding box (over the batch) of the pixels with positive opacity is
        blended: many features (lashes, creases, nostrils, the fringe) cover a small part
        of the window they are computed on, and blending costs eight passes over it.
        """
        n, h, w = self.dark.shape[0], rs.stop - rs.start, cs.stop - cs.start
        opacity = np.broadcast_to(opacity, (n, h, w))
        box = _support(opacity > 0)
        if box is None:
            return
        r, c = box
        op = np.clip(opacity[:, r, c], 0, 1).astype(F, copy=False)
        col = _crop(_planar(colour), r, c)
        rows = slice(rs.start + r.start, rs.start + r.stop)
        cols = slice(cs.start + c.start, cs.start + c.stop)
        sub = self.rgba[:3, :, rows, cols]
        step = col - sub
        step *= op
        sub += step
        al = self.rgba[3, :, rows, cols]
        step = 1 - al
        step *= op
        al += step


def _support(mask: np.ndarray) -> tuple[slice, slice] | None:
    """Row and column slices of the bounding box of ``mask`` (n, h, w) over all faces.

    Returns ``None`` where the mask is empty.
    """
    rows = np.flatnonzero(mask.any(axis=(0, 2)))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(mask[:, rows[0]:rows[-1] + 1].any(axis=(0, 1)))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _crop(planar: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """``planar`` (3, 1|n, 1|h, 1|w) cut to ``rows`` x ``cols`` of its full-size axes."""
    return planar[:, :, rows if planar.shape[2] > 1 else slice(None),
                  cols if planar.shape[3] > 1 else slice(None)]


def _planar(colour) -> np.ndarray:
    """Colour (3,) or (n, 3) as (3, 1|n, 1, 1); planar (3, n, h, w) colours pass through."""
    col = np.asarray(colour, F)
    if col.ndim == 1:
        return col[:, None, None, None]
    if col.ndim == 2:
        return col.T[:, :, None, None]
    return col


def _soft(d: np.ndarray, px: float) -> np.ndarray:
    """Anti-aliased inside indicator of a signed distance ``d`` (negative inside)."""
    # One new array, updated in place (the fields are large and mostly call-local).
    out = np.divide(d, -px, dtype=F)
    out += 0.5
    return np.clip(out, 0, 1, out=out)


def _ridge(d: np.ndarray, width) -> np.ndarray:
    """Gaussian line profile of a distance ``d`` from a line."""
    out = np.divide(d, width, dtype=F)
    np.square(out, out=out)
    np.negative(out, out=out)
    return np.exp(out, out=out)


def _seg_dist(U, V, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Distance from grid points to per-face segments A->B ((n, 2) each)."""
    ax, ay = A[:, 0, None, None], A[:, 1, None, None]
    bx, by = B[:, 0, None, None] - ax, B[:, 1, None, None] - ay
    t = np.clip(((U - ax) * bx + (V - ay) * by) / (bx * bx + by * by + 1e-9), 0, 1)
    return np.hypot(U - ax - t * bx, V - ay - t * by)


def _p(x):
    """Per-face scalar to (n, 1, 1)."""
    return np.asarray(x, F)[:, None, None]
