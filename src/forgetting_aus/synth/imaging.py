"""The image stage of the renderer: from the painted canonical canvas to sensor pixels.

The canvas is shaded under the image's light (Lambertian, on an ellipsoid head), colour
cast and alpha-premultiplied; one sparse bilinear-interpolation matrix per batch maps it
through the per-image similarity transform (rotation, scale, translation) onto a
cluttered background; then blur and sensor noise. The landmarks go through the same
transform (:func:`_to_pixels`).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from .canvas import U_RANGE, V_RANGE, _Canvas, _p, _planar
from .geometry import F
from .identity import Nuisance

FACE_PX_PER_UNIT = 0.33  # image pixels per face unit at nuisance scale 1, per ``size``
FACE_CENTRE_V = -0.22  # canonical v that lands at the image centre (before the shift)


def _transform(nuisance: Nuisance, size: int):
    """Per-image similarity transform canonical (u, v) -> pixel (x, y)."""
    th = np.deg2rad(nuisance.rotation_deg).astype(np.float64)
    s = FACE_PX_PER_UNIT * size * nuisance.scale.astype(np.float64)
    centre = (size - 1) / 2.0 + nuisance.shift.astype(np.float64) * size
    # Origin: canonical v = FACE_CENTRE_V lands at the (shifted) image centre.
    cos, sin = np.cos(th), np.sin(th)
    ox = centre[:, 0] + s * sin * FACE_CENTRE_V
    oy = centre[:, 1] - s * cos * FACE_CENTRE_V
    return cos, sin, s, ox, oy


def _to_pixels(points: np.ndarray, nuisance: Nuisance, size: int) -> np.ndarray:
    cos, sin, s, ox, oy = _transform(nuisance, size)
    u, v = points[..., 0].astype(np.float64), points[..., 1].astype(np.float64)
    x = ox[:, None] + s[:, None] * (cos[:, None] * u - sin[:, None] * v)
    y = oy[:, None] + s[:, None] * (sin[:, None] * u + cos[:, None] * v)
    return np.stack([x, y], axis=-1).astype(F)


def _shade(cv: _Canvas, g: dict, nuisance: Nuisance) -> np.ndarray:
    """Lambertian shading of the head (an ellipsoid) under the image's light.

    Returns
    -------
    ndarray of shape (n, h, w), float32
        Factor on the canvas colour (applied by :func:`_premultiply`, fused with the
        alpha premultiplication and the colour cast).
    """
    cos, sin = np.cos(np.deg2rad(nuisance.rotation_deg)), np.sin(np.deg2rad(nuisance.rotation_deg))
    el, az = nuisance.light_elevation, nuisance.light_azimuth
    lx, ly, lz = np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)
    lu, lv = lx * cos + ly * sin, -lx * sin + ly * cos  # light in the face frame
    U, V = cv.u[None, None, :], cv.v[None, :, None]
    nx = U / (_p(g["fw"]) + 0.1)
    ny = (V - _p(g["cy"])) / (_p(g["bt"]) + 0.2)
    nz = np.sqrt(np.clip(1 - nx * nx - ny * ny, 0.02, 1))
    lam = np.clip(nx * _p(lu) + ny * _p(lv) + nz * _p(lz), 0, None)
    return _p(nuisance.ambient) + _p(nuisance.light_strength) * lam


def _premultiply(cv: _Canvas, shade: np.ndarray, gain: np.ndarray) -> None:
    """Turn the canvas colour into shaded, colour-cast, alpha-premultiplied colour, in place.

    Parameters
    ----------
    cv : _Canvas
        Painted canvas; its border is made transparent, so that image pixels beyond the
        canvas (clamped onto the border by the warp) get no face.
    shade : ndarray of shape (n, h, w), float32
        Shading factor (see :func:`_shade`).
    gain : ndarray of shape (n, 3), float32
        Per-image colour gain (colour cast times the output full scale). Applying it on
        the canvas instead of the image saves passes over the larger image.
    """
    rgba = cv.rgba
    alpha = rgba[3]
    alpha[:, [0, -1], :] = 0
    alpha[:, :, [0, -1]] = 0
    factor = shade * alpha  # premultiplied alpha: the transparent surround does not bleed
    scratch = np.empty_like(factor)
    for c in range(3):
        np.multiply(factor, _p(gain[:, c]), out=scratch)
        rgba[c] *= scratch


def _upsample_matrix(small: int, size: int) -> np.ndarray:
    """(size, small) bilinear interpolation matrix from ``small`` to ``size`` samples."""
    pos = np.clip((np.arange(size) + 0.5) * small / size - 0.5, 0, small - 1)
    lo = np.minimum(pos.astype(int), small - 2)
    frac = pos - lo
    m = np.zeros((size, small), F)
    m[np.arange(size), lo] = 1 - frac
    m[np.arange(size), lo + 1] = frac
    return m


def _background_planar(nuisance: Nuisance, size: int, *,
                       gain: np.ndarray | None = None) -> np.ndarray:
    """Cluttered background, planar (3, n, size, size): gradient, stripes and soft blobs.

    Drawn at a quarter of the resolution and upsampled bilinearly (two small matrix
    products), since it is smooth and otherwise costs more than the face. ``gain``
    ((n, 3), optional) multiplies the colours, at the low resolution where it is cheap.
    """
    small = max(8, size // 4)
    X = ((np.arange(small, dtype=F) + 0.5) / small)[None, None, :]
    Y = ((np.arange(small, dtype=F) + 0.5) / small)[None, :, None]
    grad = 1 + _p(nuisance.bg_gradient[:, 0]) * (X - 0.5) + _p(nuisance.bg_gradient[:, 1]) * (Y - 0.5)
    st = nuisance.stripes
    stripes = _p(st[:, 0]) * np.sin(2 * np.pi * _p(st[:, 1]) * (X * _p(np.cos(st[:, 2]))
                                                                   + Y * _p(np.sin(st[:, 2])))
                                    + _p(st[:, 3]))
    bg = (_planar(nuisance.background) * (grad + stripes)).astype(F)
    for k in range(nuisance.clutter_centre.shape[1]):
        c, r = nuisance.clutter_centre[:, k], nuisance.clutter_radius[:, k]
        d = np.hypot((X - _p(c[:, 0])) / _p(r[:, 0]), (Y - _p(c[:, 1])) / _p(r[:, 1]))
        m = np.clip((1 - d) * 4, 0, 1) * _p(nuisance.clutter_opacity[:, k])
        bg += (_planar(nuisance.clutter_colour[:, k]) - bg) * m
    if gain is not None:
        bg *= _planar(gain)
    up = _upsample_matrix(small, size)
    return np.matmul(np.matmul(up, bg), up.T).astype(F, copy=False)


def _background(nuisance: Nuisance, size: int) -> np.ndarray:
    """Background images alone, (n, size, size, 3) float32 in [0, 1] (Non-Face rows)."""
    return np.ascontiguousarray(_background_planar(nuisance, size).transpose(1, 2, 3, 0))


def _bilinear_matrix(fu: np.ndarray, fv: np.ndarray, h: int, w: int) -> sparse.csr_matrix:
    """Sparse bilinear-interpolation matrix from canvas pixels to image pixels.

    Parameters
    ----------
    fu, fv : ndarray of shape (n, size, size), float32
        Fractional canvas column and row of every image pixel, already clamped to
        ``[0, w - 1)`` and ``[0, h - 1)``; overwritten (scratch space).
    h, w : int
        Canvas height and width, pixels.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n * size * size, n * h * w), float32
        Row ``k`` holds the four bilinear weights of image pixel ``k`` (flat over
        face, row, column) at its four neighbouring canvas pixels (flat over face, row,
        column), so ``matrix @ plane.ravel()`` warps one canvas plane of the batch.
    """
    n = fu.shape[0]
    j0, i0 = fu.astype(np.int32), fv.astype(np.int32)  # floor, since fu, fv >= 0
    # Subtract in float32: int32 - float32 would promote to float64.
    wu = np.subtract(fu, j0, dtype=F)
    wv = np.subtract(fv, i0, dtype=F)
    top_left = (np.arange(n, dtype=np.int32) * (h * w))[:, None, None] + i0 * w + j0
    # CSR wants each row's entries next to each other: corner is the last axis.
    index = np.empty(fu.shape + (4,), np.int32)
    weight = np.empty(fu.shape + (4,), F)
    across = (np.subtract(1, wu, out=fu), wu)  # fu, fv are spent: reuse them
    down = (np.subtract(1, wv, out=fv), wv)
    for k, (di, dj) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        np.add(top_left, di * w + dj, out=index[..., k])
        np.multiply(down[di], across[dj], out=weight[..., k])
    n_rows = fu.size
    return sparse.csr_matrix((weight.ravel(), index.ravel(),
                              np.arange(0, 4 * n_rows + 1, 4, dtype=np.int32)),
                             shape=(n_rows, n * h * w), copy=False)


def _warp(cv: _Canvas, nuisance: Nuisance, size: int) -> np.ndarray:
    """Bilinear gather of the canonical layer into image pixels.

    The canvas must be premultiplied with a transparent border (:func:`_premultiply`):
    pixels beyond the canvas clamp onto its border.

    Returns
    -------
    ndarray of shape (4, n, size, size), float32
        Premultiplied RGB and alpha.
    """
    _, n, h, w = cv.rgba.shape
    cos, sin, s, ox, oy = _transform(nuisance, size)
    xs = np.arange(size, dtype=F)
    dx = xs[None, None, :] - _p(ox)
    dy = xs[None, :, None] - _p(oy)
    # Image pixel -> canonical grid index (fractional), one pass per coordinate.
    fu = dx * _p(cos * cv.res / s) + dy * _p(sin * cv.res / s) + F(-U_RANGE[0] * cv.res - 0.5)
    fv = dy * _p(cos * cv.res / s) - dx * _p(sin * cv.res / s) + F(-V_RANGE[0] * cv.res - 0.5)
    # Pixels beyond the canvas clamp onto its border, which is transparent, so they get
    # no face (and the canvas edge fades out over one pixel).
    np.clip(fu, 0, w - 1.001, out=fu)
    np.clip(fv, 0, h - 1.001, out=fv)
    # One sparse matrix-vector product per plane fuses the gather of the four corners
    # and their weighting (compiled, float32): half the time of four gathers per plane
    # followed by numpy interpolation passes.
    matrix = _bilinear_matrix(fu, fv, h, w)
    flat = cv.rgba.reshape(4, n * h * w)
    return np.stack([matrix @ plane for plane in flat]).reshape(4, n, size, size)


#: 5-tap kernels whose blend gives 0, 1 and 2 passes of the [1 2 1] / 4 blur.
_BLUR_PASSES = np.array([[0, 0, 16, 0, 0], [0, 4, 8, 4, 0], [1, 4, 6, 4, 1]], F) / 16


def _blur_matrix(kernels: np.ndarray, size: int) -> sparse.csr_matrix:
    """Block-diagonal sparse matrix applying a 5-tap kernel per image along one axis.

    Parameters
    ----------
    kernels : ndarray of shape (n, 5), float32
        One correlation kernel per image.
    size : int
        Length of the blurred axis.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n * size, n * size), float32
        ``matrix @ x``, with ``x`` of shape (n * size, m) (image, position along the
        axis; ``m`` lines), correlates every line of image ``i`` with ``kernels[i]``,
        edges replicated (the taps beyond an edge are repeated entries of the edge
        sample, which the product sums).
    """
    n = len(kernels)
    taps = np.clip(np.arange(size)[:, None] + np.arange(-2, 3), 0, size - 1)  # (size, 5)
    index = ((np.arange(n) * size)[:, None, None] + taps).astype(np.int32)
    weight = np.repeat(kernels.astype(F)[:, None, :], size, axis=1)
    return sparse.csr_matrix((weight.ravel(), index.ravel(),
                              np.arange(0, 5 * n * size + 1, 5, dtype=np.int32)),
                             shape=(n * size, n * size), copy=False)


def _blur(img: np.ndarray, amount: np.ndarray) -> None:
    """Blur planar images (3, n, size, size) in place, ``amount`` (0..2) [1 2 1] passes each.

    Fractional amounts blend the 0-, 1- and 2-pass kernels; edges are replicated. Each
    axis is one sparse block-diagonal product per channel, whose inner loop runs along
    whole image rows: about half the time of a scipy ``correlate1d`` per image and axis,
    including the transposes that turn the horizontal pass into a vertical one.
    """
    if not np.any(amount > 0):
        return
    _, n, size, _ = img.shape
    w0 = np.clip(1 - amount, 0, 1)
    w2 = np.clip(amount - 1, 0, 1)
    kernels = np.stack([w0, 1 - w0 - w2, w2], axis=1).astype(F) @ _BLUR_PASSES
    matrix = _blur_matrix(kernels, size)  # square images: one matrix for both axes
    transposed = np.empty_like(img[0])
    for c in range(3):
        # Vertical pass, written transposed (column-major per image) ...
        vertical = matrix @ img[c].reshape(n * size, size)
        transposed[:] = vertical.reshape(n, size, size).transpose(0, 2, 1)
        # ... so that the horizontal pass is a vertical one too, transposed back.
        horizontal = matrix @ transposed.reshape(n * size, size)
        img[c] = horizontal.reshape(n, size, size).transpose(0, 2, 1)


def _sensor_noise(rng: np.random.Generator, n: int, size: int, sigma: np.ndarray,
                  gray: np.ndarray) -> np.ndarray:
    """Triangular sensor noise, planar (3, n, size, size) float32.

    Each value is the difference of two independent uniform bytes (a triangular
    distribution, bell-shaped like Gaussian noise), scaled to standard deviation
    ``sigma`` ((n,), output units) per image; gray images (``gray``, (n,) bool) get the
    same noise in all three channels. Bytes straight from the bit generator cost a
    quarter of the float draws they replace, and their 511 levels are far finer than
    the output's gray levels.
    """
    count = 3 * n * size * size
    raw = rng.bit_generator.random_raw((2 * count + 7) // 8).view(np.uint8)
    noise = np.subtract(raw[:count], raw[count:2 * count], dtype=F).reshape(3, n, size, size)
    noise *= _p(sigma / np.sqrt((256.0 ** 2 - 1) / 6))  # sd of a difference of bytes
    gray_rows = np.flatnonzero(gray)
    if len(gray_rows):
        noise[1:, gray_rows] = noise[0, gray_rows]
    return noise
