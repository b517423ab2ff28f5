"""Vectorised renderer of the synthetic FACS world: :func:`render_faces`.

A batch of faces is drawn in two stages, both broadcast over the whole batch:

1. **Canonical frame.** Every face is painted on one shared grid of canonical face
   coordinates (``u`` right, ``v`` down, face units; see :mod:`.identity` and
   :mod:`.canvas`), so each facial feature only needs the fixed window of the grid where
   it can ever lie (eyes, brows, mouth ...). Action units act here, through geometry
   (landmark displacement: brows, lids, lip corners, lips, jaw, chin, nostrils; see
   :mod:`.geometry`) and through shading/texture (forehead wrinkles, glabella furrows,
   crow's feet, nose wrinkles, nasolabial folds, dimples, chin boss, teeth and a dark
   mouth opening, sclera above the iris, closed lids ...; see :mod:`.paint`). The shading
   of folds and bulges is drawn as local relief (high-passed, see
   ``paint.TEXTURE_HIGHPASS_DARK``), so that an AU shows as texture, not as a region's
   brightness.
2. **Image** (:mod:`.imaging`). One sparse bilinear-interpolation matrix per batch maps
   the canonical RGBA layer through the per-image similarity transform (rotation, scale,
   translation) onto a cluttered background; then illumination colour cast, blur and
   sensor noise.

The 68 iBUG landmarks are computed from the same geometry and mapped through the same
transform, so they move with the action units and with the nuisance.

All randomness that is not in the identity/nuisance parameters (sensor noise) comes from
``seed``; equal inputs and seed give bit-identical images.

This module chains the stages; ``INNER_MOUTH_CORNERS``, ``face_geometry`` and
``_background`` stay importable from here for the dataset twins (:mod:`.twins`).
"""

from __future__ import annotations

import time

import numpy as np

from ..facs import AU_CODES
from .geometry import INNER_MOUTH_CORNERS, F, face_geometry
from .identity import Identities, Nuisance
from .imaging import (
    _background,
    _background_planar,
    _blur,
    _premultiply,
    _sensor_noise,
    _shade,
    _to_pixels,
    _warp,
)
from .paint import _paint_canonical

__all__ = ["INNER_MOUTH_CORNERS", "_background", "face_geometry", "render_faces", "render_speed"]


def _render_batch(identities, aus, nuisance, unilateral, size, rng, out):
    """Render one batch into ``out`` ((n, size, size, 3) uint8); returns the landmarks."""
    g = face_geometry(identities, aus, unilateral)
    cv = _paint_canonical(identities, g, size)
    # Colour cast and the 0..255 scale act on the small canvas and background, not on
    # the image.
    gain = (nuisance.colour_cast * 255).astype(F)
    _premultiply(cv, _shade(cv, g, nuisance), gain)
    face = _warp(cv, nuisance, size)                       # (4, n, size, size)
    img = _background_planar(nuisance, size, gain=gain)
    transparency = np.subtract(1, face[3], out=face[3])
    img *= transparency
    img += face[:3]
    gray = nuisance.grayscale.astype(bool)
    gray_rows = np.flatnonzero(gray)
    if len(gray_rows):
        part = img[:, gray_rows]
        img[:, gray_rows] = 0.299 * part[0] + 0.587 * part[1] + 0.114 * part[2]
    _blur(img, nuisance.blur)
    img += _sensor_noise(rng, len(gray), size, nuisance.noise_sigma * 255, gray)
    np.clip(img, 0, 255, out=img)
    # Round half up while casting straight into the interleaved output (one pass instead
    # of rounding, casting and transposing).
    np.add(img, 0.5, out=out.transpose(3, 0, 1, 2), casting="unsafe")
    return _to_pixels(g["landmarks"], nuisance, size)


def render_faces(identities: Identities, au_intensities: np.ndarray, nuisance: Nuisance, *,
                 unilateral: np.ndarray | None = None, size: int = 96, seed=None,
                 batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Render faces from identities, action-unit intensities and nuisances.

    Parameters
    ----------
    identities : Identities
        ``n`` identities (see :func:`~.identity.identities_from_ids`).
    au_intensities : ndarray of shape (n, 18)
        Intensities 0-5 (float) in ``facs.AU_CODES`` order. AU43 is eye closure: 0 open,
        >= 1 closed (values in between half close the lids).
    nuisance : Nuisance
        ``n`` nuisance settings (see :func:`~.identity.sample_nuisance`).
    unilateral : ndarray of shape (n,), int, keyword-only, optional
        Side on which AU12 and AU14 act: 0 both (default), -1 image-left half only,
        +1 image-right half only (contempt is unilateral AU14 with a slight AU12).
    size : int, keyword-only
        Side of the square output images, pixels.
    seed : int or numpy Generator, keyword-only
        Seed of the sensor noise; with equal inputs, equal seeds give identical bytes.
    batch_size : int, keyword-only
        Faces rendered at once (memory ~ batch_size * size**2 * 200 bytes).

    Returns
    -------
    images : ndarray of shape (n, size, size, 3), uint8
        RGB images (gray styles have three equal channels).
    landmarks : ndarray of shape (n, 68, 2), float32
        iBUG 68 landmarks in pixel ``(x, y)``, pixel centres at integer coordinates.
    """
    n = len(identities)
    aus = np.asarray(au_intensities, dtype=F)
    if aus.shape != (n, len(AU_CODES)):
        raise ValueError(f"au_intensities must have shape ({n}, {len(AU_CODES)}) to match "
                         f"{n} identities, got {aus.shape}")
    if len(nuisance) != n:
        raise ValueError(f"nuisance has {len(nuisance)} rows but there are {n} identities; "
                         "pass one nuisance row per face")
    if unilateral is None:
        unilateral = np.zeros(n, dtype=np.int8)
    unilateral = np.asarray(unilateral)
    if unilateral.shape != (n,) or not np.isin(unilateral, (-1, 0, 1)).all():
        raise ValueError("unilateral must be an (n,) array of -1, 0, +1 "
                         f"(image-left only, both, image-right only), got {unilateral!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    images = np.empty((n, size, size, 3), np.uint8)
    landmarks = np.empty((n, 68, 2), F)
    for lo in range(0, n, batch_size):
        sl = slice(lo, min(n, lo + batch_size))
        idx = np.arange(sl.start, sl.stop)
        landmarks[sl] = _render_batch(identities.take(idx), aus[sl], nuisance.take(idx),
                                      unilateral[sl], size, rng, images[sl])
    return images, landmarks


def render_speed(n: int = 512, size: int = 96, seed: int = 0) -> float:
    """Faces rendered per second (wall clock, this process's threads) at ``size`` px."""
    from .identity import sample_identities, sample_nuisance

    rng = np.random.default_rng(seed)
    idn = sample_identities(n, rng)
    aus = np.where(rng.random((n, len(AU_CODES))) < 0.2, rng.uniform(0, 5, (n, len(AU_CODES))), 0)
    nuis = sample_nuisance(n, rng)
    start = time.perf_counter()
    render_faces(idn, aus, nuis, size=size, seed=seed)
    return n / (time.perf_counter() - start)
