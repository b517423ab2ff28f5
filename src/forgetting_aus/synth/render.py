"""Vectorised renderer of the synthetic FACS world.

A batch of faces is drawn in two stages, both broadcast over the whole batch:

1. **Canonical frame.** Every face is painted on one shared grid of canonical face
   coordinates (``u`` right, ``v`` down, face units; see :mod:`.identity`), so each facial
   feature only needs the fixed window of the grid where it can ever lie (eyes, brows,
   mouth ...). Action units act here, through geometry (landmark displacement: brows,
   lids, lip corners, lips, jaw, chin, nostrils) and through shading/texture (forehead
   wrinkles, glabella furrows, crow's feet, nose wrinkles, nasolabial folds, dimples, chin
   boss, teeth and a dark mouth opening, sclera above the iris, closed lids ...). The
   shading of folds and bulges is drawn as local relief (high-passed, see
   ``TEXTURE_HIGHPASS_DARK``), so that an AU shows as texture, not as a region's brightness.
2. **Image.** One sparse bilinear-interpolation matrix per batch maps the canonical RGBA
   layer through the per-image similarity transform (rotation, scale, translation) onto a
   cluttered background; then illumination colour cast, blur and sensor noise.

The 68 iBUG landmarks are computed from the same geometry and mapped through the same
transform, so they move with the action units and with the nuisance.

All randomness that is not in the identity/nuisance parameters (sensor noise) comes from
``seed``; equal inputs and seed give bit-identical images.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import ndimage, sparse

from ..facs import AU_CODES, au_index
from .identity import Identities, Nuisance

F = np.float32

# Canonical grid extent (face units) and its resolution relative to the image size.
U_RANGE = (-1.1, 1.1)
V_RANGE = (-1.45, 1.65)
GRID_PX_PER_UNIT = 0.34  # canonical pixels per face unit, per image pixel of ``size``
FACE_PX_PER_UNIT = 0.33  # image pixels per face unit at nuisance scale 1, per ``size``
FACE_CENTRE_V = -0.22    # canonical v that lands at the image centre (before the shift)
FACE_CY = -0.1           # v of the centre of the face ellipse

#: Landmark indices of the two inner mouth corners, absent from UNBC's 66-point AAM.
INNER_MOUTH_CORNERS = (60, 64)

_SIDES = (-1.0, 1.0)  # image-left (subject's right), image-right

#: Scales (face units) of the high-passes that turn AU textures into local relief: lines
#: (wrinkles, furrows) at ``TEXTURE_HIGHPASS_DARK``, bulges at ``TEXTURE_HIGHPASS_LIGHT``.
#: Skin next to a furrow or a bulge is shaded the other way, so a region's mean brightness
#: barely moves. Why: with one-sided broad shading, a logistic regression on 8x8 pixels
#: read expressions from region brightness. Measured on the default emotion twin when this
#: was introduced (chapter 1 recomputes it every run): 8x8 baseline 0.65 -> 0.59 macro
#: recall, region means 0.47 -> 0.41. To keep every AU above the visibility bar
#: (``checks.au_visibility``) with the relief, the AUs with partly broad cues are drawn
#: stronger (AU7 lid bulge, AU17 chin dimpling, AU24 lip-press bulges) and AU9's nose
#: lines and AU14's dimple are drawn coarser.
TEXTURE_HIGHPASS_DARK = 0.06
TEXTURE_HIGHPASS_LIGHT = 0.12

#: AUs whose effect rises as the square root of the intensity fraction (B = 0.63 of E):
#: FACS intensities grow fast from trace (A) to marked (C) and then saturate, and a linear
#: response leaves small structures (lids, lips, chin, nose) invisible at FACS B at the
#: model's 64 px input (see ``checks.au_visibility``). AU43 (closure) is on/off.
SQRT_RESPONSE_AUS = tuple(code for code in AU_CODES if code != 43)


# --------------------------------------------------------------------------- geometry
def _au_fraction(aus: np.ndarray, code: int) -> np.ndarray:
    """Intensity of AU ``code`` as a fraction 0..1 of the maximum (E = 5)."""
    return np.clip(aus[:, au_index(code)] / 5.0, 0.0, 1.0).astype(F)


def _side_factors(unilateral: np.ndarray) -> np.ndarray:
    """(n, 2) factors of a unilateral AU on the image-left and image-right side."""
    s = np.asarray(unilateral)
    return np.stack([(s != 1), (s != -1)], axis=1).astype(F)


def face_geometry(identities: Identities, au_intensities: np.ndarray,
                  unilateral: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Shape of every face in canonical coordinates, after the action units.

    Parameters
    ----------
    identities : Identities
        ``n`` identities.
    au_intensities : ndarray of shape (n, 18)
        Intensities 0-5 in ``facs.AU_CODES`` order; AU43 is closure 0-1 (>= 1 closed).
    unilateral : ndarray of shape (n,), optional
        Side of AU12/AU14: 0 both sides, -1 image-left only, +1 image-right only.

    Returns
    -------
    dict
        Per-face arrays (float32) used by the painter, plus ``"landmarks"``,
        ``(n, 68, 2)`` canonical (u, v).
    """
    aus = np.asarray(au_intensities, dtype=F)
    n = len(identities)
    if aus.shape != (n, len(AU_CODES)):
        raise ValueError(f"expected AU intensities of shape ({n}, {len(AU_CODES)}) "
                         f"(one row per identity, facs.AU_CODES order), got {aus.shape}")
    if unilateral is None:
        unilateral = np.zeros(n, dtype=np.int8)
    side = _side_factors(unilateral)  # (n, 2)
    a = {code: _au_fraction(aus, code) for code in AU_CODES}
    for code in SQRT_RESPONSE_AUS:
        a[code] = np.sqrt(a[code])
    a12s = a[12][:, None] * side
    a14s = a[14][:, None] * side
    closure = np.clip(aus[:, au_index(43)], 0, 1).astype(F)
    idn = identities
    g: dict[str, np.ndarray] = {"a": a, "a12s": a12s, "a14s": a14s, "closure": closure}

    # Face outline: ellipse whose lower half tapers to the chin; the jaw drops with AU26
    # and the chin boss rises with AU17.
    g["cy"] = np.full(n, FACE_CY, F)
    g["fw"] = idn.face_width
    g["bt"] = idn.forehead
    g["bb"] = idn.chin + 0.16 * a[26] - 0.025 * a[17]
    g["taper"] = idn.jaw_taper

    # Eyes: AU5 raises the upper lid, AU7 tightens (mostly lower) lids, AU6 pushes the lower
    # lid up from below, AU43 closes both lids onto the centre line.
    sgn = np.array(_SIDES, F)
    g["ecx"] = sgn[None, :] * idn.eye_spacing[:, None]
    g["ecy"] = idn.eye_height + 0.012 * a[6]
    g["ew"] = idn.eye_width * (1 - 0.06 * a[6] - 0.12 * a[7])
    open_ = 1 - closure
    g["hu"] = idn.eye_open * np.clip(1 + 3.5 * a[5] - 0.5 * a[7] - 0.2 * a[6] - 0.3 * a[4],
                                     0.3, None) * open_
    # AU7 raises the lower lid most (to a straight line near the pupil, see _paint_eyes).
    g["hl"] = idn.eye_open * 0.75 * np.clip(1 - 1.1 * a[7] - 0.6 * a[6], 0.05, None) * open_

    # Brows: 5 points per side, inner (t=0) to outer (t=1).
    t = np.linspace(0, 1, 5, dtype=F)[None, None, :]
    es, ew = idn.eye_spacing[:, None, None], idn.eye_width[:, None, None]
    inner, outer = es - 0.85 * ew, es + 1.35 * ew
    s3 = sgn[None, :, None]
    r = lambda x: x[:, None, None]  # noqa: E731 - per-face scalar to (n, 1, 1)
    bu = s3 * (inner + (outer - inner) * t) - s3 * 0.09 * r(a[4]) * (1 - t)
    bv = (r(idn.eye_height) - r(idn.brow_gap) - r(idn.brow_arch) * np.sin(np.pi * (0.15 + 0.7 * t))
          - 0.2 * r(a[1]) * (1 - t) ** 1.3 - 0.04 * r(a[1])
          - 0.2 * r(a[2]) * t ** 1.1
          + 0.15 * r(a[4]) * (1 - 0.5 * t) + 0.035 * r(a[9]) * (1 - t))
    g["brow"] = np.stack(np.broadcast_arrays(bu, bv), axis=-1).astype(F)  # (n, 2, 5, 2)
    # AU4 bunches the inner brows: they look thicker.
    g["brow_th"] = (r(idn.brow_thickness) * (1.15 - 0.55 * t)
                    * (1 + 0.4 * r(a[4]) * (1 - t)))[:, 0, :].astype(F)  # (n, 5)

    # Nose: AU9 (and a little AU10) lift and widen the nostril wings.
    tip = idn.nose_tip - 0.02 * a[9]
    g["nose_tip"] = tip
    g["nw"] = idn.nose_width * (1 + 0.15 * a[9] + 0.1 * a[10])
    g["nostril_v"] = tip + 0.045 - 0.035 * a[9] - 0.02 * a[10]

    # Mouth: corners per side; base line through the corners with a centre offset.
    mw = idn.mouth_width[:, None]
    du = sgn[None, :] * (0.07 * a12s - 0.05 * a14s + 0.012 * a[15][:, None]
                         + 0.1 * a[20][:, None] - 0.12 * a[23][:, None]
                         - 0.04 * a[24][:, None])
    gap = np.where(a[25] > 0, 0.05 + 0.08 * a[25], 0.0) + 0.15 * a[26]
    gap = gap * (1 - a[24])
    dv = (-0.085 * a12s - 0.025 * a14s + 0.1 * a[15][:, None] + 0.012 * a[20][:, None]
          + 0.3 * gap[:, None] - 0.01 * a[17][:, None])
    g["mu"] = (sgn[None, :] * mw + du).astype(F)                   # (n, 2) corner u
    g["mv"] = (idn.mouth_height[:, None] + dv).astype(F)          # (n, 2) corner v
    # Centre of the mouth line: AU17 pushes the lower lip (and the line) up.
    g["mc"] = (idn.mouth_height - 0.1 * a[17] + 0.01 * a[10]).astype(F)
    thin = np.clip(1 - 0.95 * a[23] - 0.95 * a[24] - 0.3 * a[20] - 0.2 * a[12], 0.06, 1)
    g["tu"] = idn.lip_upper * thin
    # AU17 pushes the lower lip up and out (pouting), so it shows more of its red.
    g["tl"] = idn.lip_lower * thin * (1 + 0.35 * a[17])
    g["g_up"] = 0.25 * gap + 0.05 * a[10]
    g["g_low"] = 0.75 * gap
    g["up_raise"] = 0.03 * a[10]  # upper lip as a whole

    g["landmarks"] = _landmarks(g)
    return g


def _mouth_at(g, t, shape):
    """u and the four lip curves' v at parameter ``t``; per-face scalars take ``shape``."""
    rs = lambda x: x.reshape(shape)  # noqa: E731
    uL, uR = rs(g["mu"][:, 0]), rs(g["mu"][:, 1])
    yL, yR = rs(g["mv"][:, 0]), rs(g["mv"][:, 1])
    bump = np.clip(np.sin(np.pi * t), 0, None)
    sb = np.sqrt(bump)
    base = (1 - t) * yL + t * yR + (rs(g["mc"]) - 0.5 * (yL + yR)) * bump
    ui = base - rs(g["g_up"]) * sb - rs(g["up_raise"]) * sb
    li = base + rs(g["g_low"]) * sb
    uo = ui - rs(g["tu"]) * sb
    lo = li + rs(g["tl"]) * sb
    u = (1 - t) * uL + t * uR
    return {"u": u, "base": base, "ui": ui, "li": li, "uo": uo, "lo": lo}


def _landmarks(g: dict) -> np.ndarray:
    n = len(g["cy"])
    lm = np.zeros((n, 68, 2), F)
    # Jaw 0-16, from the image-left ear level round the chin to the image-right.
    psi = np.linspace(-0.25, np.pi + 0.25, 17, dtype=F)[None, :]
    s = np.sin(psi)
    rv = np.where(s < 0, g["bt"][:, None], g["bb"][:, None])
    lm[:, :17, 0] = -np.cos(psi) * g["fw"][:, None] * (1 - g["taper"][:, None] * np.maximum(s, 0) ** 2)
    lm[:, :17, 1] = g["cy"][:, None] + rv * s
    # Brows: 17-21 image-left outer->inner, 22-26 image-right inner->outer.
    lm[:, 17:22] = g["brow"][:, 0, ::-1]
    lm[:, 22:27] = g["brow"][:, 1]
    # Nose: bridge 27-30, nostril base 31-35.
    top = g["ecy"]
    for k in range(4):
        lm[:, 27 + k, 0] = 0.0
        lm[:, 27 + k, 1] = top + (g["nose_tip"] - top) * k / 3
    nw, nv = g["nw"], g["nostril_v"]
    for k, (fu, dv) in enumerate([(-1, -0.02), (-0.5, 0.0), (0, 0.008), (0.5, 0.0), (1, -0.02)]):
        lm[:, 31 + k, 0] = fu * nw
        lm[:, 31 + k, 1] = nv + dv
    # Eyes: 36-41 image-left (36 outer, 39 inner), 42-47 image-right (42 inner, 45 outer).
    for side, start in ((0, 36), (1, 42)):
        cx, cy, ew = g["ecx"][:, side], g["ecy"], g["ew"]
        up, lo = cy - g["hu"] * 8 / 9, cy + g["hl"] * 8 / 9
        order = [(-1, cy), (-1 / 3, up), (1 / 3, up), (1, cy), (1 / 3, lo), (-1 / 3, lo)]
        if side == 1:  # 42 inner(-1), 43 up(-1/3), 44 up(+1/3), 45 outer(+1), 46 lo(+1/3), 47 lo(-1/3)
            order = [(-1, cy), (-1 / 3, up), (1 / 3, up), (1, cy), (1 / 3, lo), (-1 / 3, lo)]
        for k, (fu, v) in enumerate(order):
            lm[:, start + k, 0] = cx + fu * ew
            lm[:, start + k, 1] = v
    # Mouth: outer 48-59, inner 60-67.
    shape = (n, 1)
    outer_t = np.array([0, 1 / 6, 2 / 6, 0.5, 4 / 6, 5 / 6, 1], F)[None, :]
    c = _mouth_at(g, outer_t, shape)
    lm[:, 48:55, 0], lm[:, 48:55, 1] = c["u"], np.where((outer_t == 0) | (outer_t == 1), c["base"], c["uo"])
    lower_t = np.array([5 / 6, 4 / 6, 0.5, 2 / 6, 1 / 6], F)[None, :]
    c = _mouth_at(g, lower_t, shape)
    lm[:, 55:60, 0], lm[:, 55:60, 1] = c["u"], c["lo"]
    inner_t = np.array([0.06, 0.27, 0.5, 0.73, 0.94], F)[None, :]
    c = _mouth_at(g, inner_t, shape)
    lm[:, 60:65, 0] = c["u"]
    lm[:, 60:65, 1] = np.concatenate([c["base"][:, :1], c["ui"][:, 1:4], c["base"][:, 4:]], axis=1)
    lower_inner_t = np.array([0.73, 0.5, 0.27], F)[None, :]
    c = _mouth_at(g, lower_inner_t, shape)
    lm[:, 65:68, 0], lm[:, 65:68, 1] = c["u"], c["li"]
    return lm


# --------------------------------------------------------------------------- painting
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


def _paint_head(cv: _Canvas, idn: Identities, g: dict) -> None:
    """Neck, ears, hair, and the skin of the face with its AU-driven texture."""
    px = cv.px
    cy, fw, bt, bb, tap = _p(g["cy"]), _p(g["fw"]), _p(g["bt"]), _p(g["bb"]), _p(g["taper"])
    skin = idn.skin
    # Neck (with a shadow under the jaw that follows the chin down for AU26).
    rs, cs, U, V = cv.window(-0.6, 0.6, 0.0, V_RANGE[1])
    neck = _soft(np.abs(U) - 0.42 * fw, px) * _soft(cy + 0.2 - V, px)
    chin_v = cy + bb
    shade = 0.82 - 0.3 * np.exp(-np.clip(V - chin_v, 0, None) / 0.12) * (V > chin_v - 0.3)
    cv.paint(rs, cs, neck, _planar(skin) * shade)
    # Ears.
    for s in _SIDES:
        rs, cs, U, V = cv.side_window(s, 0.3, 1.0, -0.6, 0.3)
        d = np.hypot((U - s * 0.98 * fw) / 0.075, (V - _p(g["ecy"]) - 0.08) / 0.15) - 1
        cv.paint(rs, cs, _soft(d * 0.075, px), skin * 0.88)
    # Hair behind the head.
    hv = _p(idn.hair_volume)
    rs, cs, U, V = cv.window(*U_RANGE, V_RANGE[0], 0.45)
    d = np.hypot(U / (fw + hv), (V - cy + 0.04) / (bt + hv)) - 1
    back = _soft(d * 0.8, px) * _soft(V - (cy + 0.1 + 0.25 * (1 - _p(idn.bald))), px)
    cv.paint(rs, cs, back, idn.hair_colour)
    # The face (at most 0.78 wide, from v = -1.22 to the dropped chin at 1.1) only needs
    # this window of the grid.
    rs, cs, U, V = cv.window(-0.82, 0.82, -1.28, 1.2)
    # Face skin: mask of the tapered ellipse, low-frequency blotches.
    s = (V - cy) / np.where(V < cy, bt, bb)
    halfw = fw * np.sqrt(np.clip(1 - s * s, 0, 1)) * (1 - tap * np.square(np.clip(s, 0, 1)))
    face = _soft(np.abs(U) - halfw, px) * (np.abs(s) < 1)
    ph = idn.texture_phase
    blot = (1 + 0.035 * np.sin(7 * U + _p(ph[:, 0])) * np.sin(6 * V + _p(ph[:, 1]))
            + 0.025 * np.sin(13 * U + 5 * V + _p(ph[:, 2])))
    g["_face_mask"] = face
    g["_blot"] = blot
    g["_hair_rows"] = (rs, cs)


def _texture_aus(cv: _Canvas, idn: Identities, g: dict) -> None:
    """Accumulate AU wrinkles/folds (``cv.dark``) and bulges (``cv.light``)."""
    a = g["a"]
    age = _p(idn.age)
    ecy = _p(g["ecy"])
    # Forehead: AU1 medial and AU2 lateral horizontal wrinkles, rising with the brows.
    rs, cs, U, V = cv.window(-0.75, 0.75, -1.25, -0.2)
    brow_mid = _p(g["brow"][:, :, :, 1].mean(axis=(1, 2)))
    vv = V - brow_mid + 0.22 * U * U
    lines = np.square(np.square(np.square(0.5 + 0.5 * np.cos(2 * np.pi * vv / 0.065))))
    band = np.exp(-np.square((vv + 0.16) / 0.1))
    env1 = np.exp(-np.square(U / 0.2))
    env2 = np.exp(-np.square((np.abs(U) - 0.4) / 0.14))
    cv.dark[:, rs, cs] += lines * band * (0.55 * _p(a[1]) * env1 + 0.55 * _p(a[2]) * env2
                                          + 0.12 * age * (env1 + env2))
    # Glabella: AU4 vertical furrows between the brows, AU9 transverse lines at the nose root.
    rs, cs, U, V = cv.window(-0.25, 0.25, -0.75, 0.05)
    vert = np.exp(-np.square((V - ecy + 0.1) / 0.08))
    cv.dark[:, rs, cs] += 1.3 * _p(a[4]) * vert * (_ridge(np.abs(U) - 0.04, 0.014)
                                                   + 0.3 * _ridge(U, 0.05))
    # ... and bunches the skin above them into a bulge that catches the light.
    cv.light[:, rs, cs] += 0.45 * _p(a[4]) * np.exp(-np.square((V - ecy + 0.26) / 0.06)
                                                    - np.square(U / 0.1))
    # Lines coarse enough (period 0.05 face units, about 2 px of the 64 px model input) to
    # survive as relief rather than as a broad darkening of the nose root.
    root = np.exp(-np.square((V - ecy - 0.06) / 0.08)) * np.exp(-np.square(U / 0.1))
    nose_lines = np.square(np.square(0.5 + 0.5 * np.cos(2 * np.pi * (V - ecy) / 0.05)))
    cv.dark[:, rs, cs] += 1.1 * _p(a[9]) * root * nose_lines
    # Eyes' surroundings: AU6 crow's feet, infraorbital furrow, cheek raise; AU7 lid bulge.
    for side, s in enumerate(_SIDES):
        rs, cs, U, V = cv.side_window(s, 0.0, 0.85, -0.55, 0.4)
        ecx, ew, hl = _p(g["ecx"][:, side]), _p(g["ew"]), _p(g["hl"])
        ox = ecx + s * (ew + 0.015)
        du, dv = s * (U - ox), V - ecy
        rr = np.hypot(du, dv)
        theta = np.arctan2(dv, np.abs(du) + 1e-6)
        fan = np.square(np.square(np.clip(np.cos(11 * theta), 0, 1)))
        feet = fan * (du > 0) * np.exp(-np.square((rr - 0.07) / 0.04)) * (np.abs(theta) < 1.1)
        cv.dark[:, rs, cs] += feet * (0.9 * _p(a[6]) + 0.15 * age)
        q = np.clip(1 - np.square((U - ecx) / (1.3 * ew)), 0, 1)
        furrow = _ridge(dv - hl * q - 0.065 + 0.02 * _p(a[6]), 0.014) * q
        cv.dark[:, rs, cs] += furrow * (0.7 * _p(a[6]) + 0.1 * age)
        q7 = np.clip(1 - np.square((U - ecx) / ew), 0, 1)
        # AU7: the tensed lower lid bulges (a lit band) above a furrow under the eye.
        q7 = np.clip(1 - np.square((U - ecx) / (1.15 * ew)), 0, 1)
        bulge = _ridge(dv - hl * q7 - 0.06, 0.02) * q7
        cv.dark[:, rs, cs] += 2.2 * _p(a[7]) * bulge
        cv.light[:, rs, cs] += 1.2 * _p(a[7]) * _ridge(dv - hl * q7 - 0.025, 0.02) * q7
        # AU4: the lowered inner brow overhangs and shadows the inner upper lid.
        cv.dark[:, rs, cs] += 0.2 * _p(a[4]) * np.exp(
            -np.square((U - ecx + s * 0.04) / 0.09) - np.square((dv + 0.075) / 0.035))
        cheek = np.exp(-np.square((U - ecx - s * 0.03) / 0.13)
                       - np.square((V - ecy - 0.23 + 0.07 * _p(a[6])) / 0.07))
        cv.light[:, rs, cs] += cheek * (0.35 * _p(a[6]) + 0.12 * _p(g["a12s"][:, side]))
    # Lower face folds: nasolabial (AU10, AU12, AU9, AU6), dimples (AU14), AU15/AU20 folds.
    nv, nw = g["nostril_v"], g["nw"]
    for side, s in enumerate(_SIDES):
        rs, cs, U, V = cv.side_window(s, 0.0, 0.6, -0.15, 0.85)
        cu, cvv = g["mu"][:, side], g["mv"][:, side]
        a12, a14 = g["a12s"][:, side], g["a14s"][:, side]
        A = np.stack([s * (nw + 0.03), nv - 0.05], 1)
        M = np.stack([s * (nw + 0.085 + 0.03 * a12), nv + 0.09], 1)
        B = np.stack([cu + s * 0.045, cvv + 0.05], 1)
        d = np.minimum(_seg_dist(U, V, A, M), _seg_dist(U, V, M, B))
        depth = (0.1 + 0.2 * idn.age + 0.55 * a[10] + 0.5 * a12 + 0.3 * a[9] + 0.15 * a[6])
        cv.dark[:, rs, cs] += _p(depth) * _ridge(d, 0.014)
        cv.light[:, rs, cs] += _p(0.25 * a12 + 0.15 * a[10]) * _ridge(d - 0.045, 0.03) * \
            (s * (U - _p(cu)) > 0)
        # AU14 dimple: a dark crescent just lateral to the lip corner.
        dd = np.hypot((U - _p(cu + s * 0.05)) / 0.028, (V - _p(cvv - 0.005)) / 0.06) - 1
        cv.dark[:, rs, cs] += _p(1.8 * a14) * np.clip(1 - np.abs(dd + 0.2), 0, 1)
        cv.light[:, rs, cs] += _p(0.35 * a14) * np.exp(-np.square((U - _p(cu + s * 0.075)) / 0.02)
                                                     - np.square((V - _p(cvv)) / 0.04))
        # AU15: fold below the depressed corner; AU20: stretch folds lateral to the corner.
        C = np.stack([cu, cvv], 1)
        d15 = _seg_dist(U, V, C + np.stack([s * 0.02 + 0 * cu, 0.03 + 0 * cu], 1),
                        C + np.stack([s * 0.06 + 0 * cu, 0.16 + 0 * cu], 1))
        cv.dark[:, rs, cs] += _p(0.5 * a[15]) * _ridge(d15, 0.014)
        d20 = _seg_dist(U, V, C + np.stack([s * 0.03 + 0 * cu, 0.01 + 0 * cu], 1),
                        C + np.stack([s * 0.13 + 0 * cu, 0.07 + 0 * cu], 1))
        cv.dark[:, rs, cs] += _p(0.45 * a[20]) * _ridge(d20, 0.012)
    # AU24 bulges above and below the pressed lips; AU23 tightens (lines around the mouth).
    rs, cs, U, V = cv.window(-0.6, 0.6, -0.15, 0.85)
    mc = _p(g["mc"])
    mouth_env = np.exp(-np.square(U / (_p(g["mu"][:, 1] - g["mu"][:, 0]) * 0.45)))
    cv.light[:, rs, cs] += 1.6 * _p(a[24]) * mouth_env * (
        _ridge(V - mc + _p(g["tu"]) + 0.04, 0.028) + _ridge(V - mc - _p(g["tl"]) - 0.045, 0.028))
    cv.dark[:, rs, cs] += 2.8 * _p(a[24]) * mouth_env * (
        _ridge(V - mc + _p(g["tu"]) + 0.085, 0.016) + _ridge(V - mc - _p(g["tl"]) - 0.095, 0.018))
    # Vertical tightening lines around the lips, coarse enough (period 0.09 face units,
    # about 3 px of a 64 px crop) to survive the model's input size.
    lip_lines = np.square(np.square(0.5 + 0.5 * np.cos(2 * np.pi * U / 0.09)))
    cv.dark[:, rs, cs] += 1.6 * _p(a[23]) * lip_lines * mouth_env * \
        np.exp(-np.square((V - mc) / 0.09)) * (np.abs(V - mc) > 0.012)
    # Chin: AU17 chin boss with "orange peel" dimpling and a deep mentolabial furrow.
    rs, cs, U, V = cv.window(-0.4, 0.4, 0.35, 1.2)
    lip_bottom = mc + _p(g["g_low"] + g["tl"])
    chin_tip = _p(g["cy"] + g["bb"])
    cc = 0.5 * (lip_bottom + chin_tip) + 0.03
    boss = np.exp(-np.square(U / 0.15) - np.square((V - cc) / 0.1))
    # Dimples coarse enough to survive a 64 px crop (period ~0.14 face units).
    peel = np.square(np.sin(45 * U + _p(idn.texture_phase[:, 3])) * np.sin(45 * V))
    cv.dark[:, rs, cs] += _p(1.8 * a[17]) * boss * peel
    cv.light[:, rs, cs] += _p(0.6 * a[17]) * boss
    sulcus = _ridge(V - lip_bottom - 0.045 + 0.015 * U * U, 0.02) * np.exp(-np.square(U / 0.13))
    cv.dark[:, rs, cs] += _p(0.1 + 1.5 * a[17]) * sulcus


def _paint_skin(cv: _Canvas, idn: Identities, g: dict) -> None:
    rs, cs = g["_hair_rows"]
    dark = np.clip(cv.dark[:, rs, cs], 0, 0.85)
    light = np.clip(cv.light[:, rs, cs], 0, 0.5)
    sigma_dark, sigma_light = TEXTURE_HIGHPASS_DARK * cv.res, TEXTURE_HIGHPASS_LIGHT * cv.res  # canonical px
    relief = (ndimage.gaussian_filter(dark, (0, sigma_dark, sigma_dark)) - dark
              + light - ndimage.gaussian_filter(light, (0, sigma_light, sigma_light)))
    tex = g["_blot"] * (1 + np.maximum(relief, -0.9))
    cv.paint(rs, cs, g["_face_mask"], _planar(idn.skin) * tex)
    # Fringe: hair over the forehead above the (receding at the sides) hairline.
    U, V = cv.u[cs][None, None, :], cv.v[rs][None, :, None]
    cy, bt = _p(g["cy"]), _p(g["bt"])
    hl = cy - bt * _p(idn.hairline) + 0.35 * U * U
    fringe = g["_face_mask"] * _soft(V - hl, cv.px * 1.5) * (1 - _p(idn.bald))
    cv.paint(rs, cs, fringe, idn.hair_colour)


def _paint_brows(cv: _Canvas, idn: Identities, g: dict) -> None:
    colour = (idn.hair_colour * _p(idn.brow_darkness)[:, 0, 0, None]
              + idn.skin * (1 - _p(idn.brow_darkness)[:, 0, 0, None]) * 0.5)
    for side in range(2):
        rs, cs, U, V = cv.side_window(_SIDES[side], -0.02, 0.8, -1.05, -0.15)
        pts = g["brow"][:, side]       # (n, 5, 2) inner->outer
        th = g["brow_th"]              # (n, 5)
        if side == 0:                  # order by increasing u
            pts, th = pts[:, ::-1], th[:, ::-1]
        y = np.broadcast_to(_p(pts[:, 0, 1]), (len(pts),) + np.broadcast(U, V).shape[1:]).copy()
        w = np.broadcast_to(_p(th[:, 0]), y.shape).copy()
        for k in range(4):
            x0, x1 = _p(pts[:, k, 0]), _p(pts[:, k + 1, 0])
            tt = (U - x0) / (x1 - x0)
            seg = tt >= 0
            y = np.where(seg, _p(pts[:, k, 1]) + tt * _p(pts[:, k + 1, 1] - pts[:, k, 1]), y)
            w = np.where(seg, _p(th[:, k]) + tt * _p(th[:, k + 1] - th[:, k]), w)
        ends = np.maximum(_p(pts[:, 0, 0]) - U, U - _p(pts[:, 4, 0]))
        d = np.maximum(np.abs(V - y) - 0.5 * w, ends)
        strands = 0.85 + 0.15 * np.sin(260 * U + 90 * V)
        cv.paint(rs, cs, _soft(d, cv.px) * strands, colour)


def _paint_eyes(cv: _Canvas, idn: Identities, g: dict) -> None:
    px = cv.px
    ecy, ew, hu, hl = _p(g["ecy"]), _p(g["ew"]), _p(g["hu"]), _p(g["hl"])
    lash_colour = idn.hair_colour * 0.5
    for side in range(2):
        rs, cs, U, V = cv.side_window(_SIDES[side], 0.02, 0.6, -0.5, 0.05)
        ecx = _p(g["ecx"][:, side])
        du, dv = U - ecx, V - ecy
        q = np.clip(1 - np.square(du / ew), 0, 1)
        # AU7 straightens the lower lid: q**p with p < 1 flattens its arc.
        upper, lower = -hu * q, hl * q ** _p(1 - 0.75 * g["a"][7])
        inside = (_soft(upper - dv, px) * _soft(dv - lower, px)
                  * np.clip((hu + hl) * q / px, 0, 1))
        # Eye contents: sclera, iris, pupil, catch light.
        ri = _p(idn.iris_radius)
        rr = np.hypot(du, dv - 0.004)
        iris = _soft(rr - ri, px)
        pupil = _soft(rr - 0.42 * ri, px)
        corner_shadow = 1 - 0.25 * np.square(du / ew)
        col = _planar(np.array([0.94, 0.93, 0.9], F)) * corner_shadow
        col = col + (_planar(idn.iris_colour) - col) * iris
        col = col * (1 - pupil * 0.9)
        glint = np.exp(-np.square(np.hypot(du + 0.3 * ri, dv + 0.3 * ri) / (0.2 * ri)))
        col = col + glint * 0.6
        cv.paint(rs, cs, inside, col)
        # Upper-lid crease (smoothed away when the lid is raised by AU5).
        qc = np.clip(1 - np.square(du / (1.1 * ew)), 0, 1)
        crease = _ridge(dv + (hu + 0.035) * qc, 0.01) * qc * (0.3 - 0.2 * _p(g["a"][5]))
        cv.paint(rs, cs, crease, idn.skin * 0.55)
        # Lash lines: dark upper lid edge (the closed-eye line for AU43), lighter lower.
        lash = _ridge(dv - upper + 0.004, 0.011) * (q > 0) * np.clip(q * 4, 0, 1)
        cv.paint(rs, cs, 0.9 * lash, lash_colour)
        low = _ridge(dv - lower, 0.007) * (q > 0)
        cv.paint(rs, cs, (0.35 + 0.6 * _p(g["a"][7])) * low, lash_colour)


def _paint_nose(cv: _Canvas, idn: Identities, g: dict) -> None:
    rs, cs, U, V = cv.window(-0.35, 0.35, -0.4, 0.35)
    nv, nw, tip = _p(g["nostril_v"]), _p(g["nw"]), _p(g["nose_tip"])
    dark = idn.skin * 0.3
    for s in _SIDES:
        d = np.hypot((U - s * 0.5 * nw) / 0.032, (V - nv + 0.004) / 0.014) - 1
        cv.paint(rs, cs, 0.85 * _soft(d * 0.014, cv.px), dark)
        wing = np.hypot((U - s * 0.8 * nw) / (0.35 * nw), (V - nv + 0.02) / 0.05) - 1
        cv.paint(rs, cs, 0.45 * _ridge(wing * 0.05, 0.008) * (V < nv + 0.01), idn.skin * 0.55)
        side_line = _ridge(U - s * 0.06, 0.015) * (V > _p(g["ecy"]) + 0.05) * (V < tip - 0.02)
        cv.paint(rs, cs, 0.12 * side_line, idn.skin * 0.6)
    hi = np.exp(-np.square(U / 0.04) - np.square((V - tip + 0.02) / 0.04))
    cv.paint(rs, cs, 0.25 * hi, np.minimum(idn.skin * 1.25, 1))


def _paint_mouth(cv: _Canvas, idn: Identities, g: dict) -> None:
    rs, cs, U, V = cv.window(-0.55, 0.55, 0.05, 1.05)
    px = cv.px
    uL, uR = _p(g["mu"][:, 0]), _p(g["mu"][:, 1])
    t = np.clip((U - uL) / (uR - uL), 0, 1)
    c = _mouth_at(g, t, (-1, 1, 1))
    ends = _soft(uL - U, px) * _soft(U - uR, px)
    lips = _soft(c["uo"] - V, px) * _soft(V - c["lo"], px) * ends
    opening = (_soft(c["ui"] - V, px) * _soft(V - c["li"], px) * ends
               * np.clip((c["li"] - c["ui"]) / px, 0, 1))
    lower = V > c["base"]
    lip_col = np.where(lower, _planar(np.minimum(idn.lip_colour * 1.1, 1)),
                       _planar(idn.lip_colour))
    cv.paint(rs, cs, lips, lip_col)
    # Lip seam when closed.
    # Lip seam when closed; pressed (AU24) or tightened (AU23) lips make it a darker,
    # straighter line.
    press = _p(np.maximum(g["a"][23], g["a"][24]))
    seam = (_ridge(V - c["base"], 0.009 + 0.008 * press) * ends
            * (1 - np.clip((c["li"] - c["ui"]) / px, 0, 1)))
    cv.paint(rs, cs, (0.7 + 0.3 * press) * seam, idn.lip_colour * (0.35 - 0.15 * np.maximum(g["a"][23], g["a"][24]))[:, None])
    # Mouth opening: dark cavity, upper teeth below the upper lip, lower teeth when wide.
    gap = c["li"] - c["ui"]
    # Upper teeth fill at most half of a narrow gap, so parted lips (AU25) always show a
    # dark band between them.
    teeth_up = V < c["ui"] + np.minimum(0.035, 0.35 * gap)
    teeth_low = (V > c["li"] - 0.025 * np.clip((gap - 0.07) / 0.04, 0, 1))
    gaps = 0.85 + 0.15 * np.cos(2 * np.pi * U / 0.035)
    cavity = np.array([0.16, 0.05, 0.06], F)
    tooth = np.array([0.93, 0.9, 0.82], F)
    col = np.where(teeth_up | teeth_low, _planar(tooth) * gaps, _planar(cavity))
    cv.paint(rs, cs, opening, col)


def _paint_canonical(identities: Identities, g: dict, size: int) -> _Canvas:
    cv = _Canvas(len(identities), size)
    _paint_head(cv, identities, g)
    _texture_aus(cv, identities, g)
    _paint_skin(cv, identities, g)
    _paint_brows(cv, identities, g)
    _paint_eyes(cv, identities, g)
    _paint_nose(cv, identities, g)
    _paint_mouth(cv, identities, g)
    return cv


# --------------------------------------------------------------------------- imaging
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
