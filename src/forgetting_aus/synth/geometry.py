"""Face geometry of the synthetic FACS world: each face's shape after its action units.

Everything here is in canonical face coordinates (``u`` right, ``v`` down, face units; see
:mod:`.identity`). Action units act on the geometry through landmark displacement (brows,
lids, lip corners, lips, jaw, chin, nostrils): :func:`face_geometry` returns the per-face
arrays that the painter (:mod:`.paint`) draws from, and the 68 iBUG landmarks in canonical
coordinates (:mod:`.imaging` maps them to pixels with the image's transform).
"""

from __future__ import annotations

import numpy as np

from ..facs import AU_CODES, au_index
from .identity import Identities

F = np.float32

FACE_CY = -0.1  # v of the centre of the face ellipse

#: Landmark indices of the two inner mouth corners, absent from UNBC's 66-point AAM.
INNER_MOUTH_CORNERS = (60, 64)

_SIDES = (-1.0, 1.0)  # image-left (subject's right), image-right

#: AUs whose effect rises as the square root of the intensity fraction (B = 0.63 of E):
#: FACS intensities grow fast from trace (A) to marked (C) and then saturate, and a linear
#: response leaves small structures (lids, lips, chin, nose) invisible at FACS B at the
#: model's 64 px input (see ``checks.au_visibility``). AU43 (closure) is on/off.
SQRT_RESPONSE_AUS = tuple(code for code in AU_CODES if code != 43)


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
