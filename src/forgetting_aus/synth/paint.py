"""Painting the faces of a batch on the canonical canvas, features and AU textures.

Head (neck, ears, hair), skin with its AU-driven texture, fringe, brows, eyes, nose and
mouth are painted from the geometry of :mod:`.geometry`, each in the window of the
canonical grid where it can ever lie (:mod:`.canvas`). Action units act here through
shading/texture (forehead wrinkles, glabella furrows, crow's feet, nose wrinkles,
nasolabial folds, dimples, chin boss, teeth and a dark mouth opening, sclera above the
iris, closed lids ...). The shading of folds and bulges is drawn as local relief
(high-passed, see ``TEXTURE_HIGHPASS_DARK``), so that an AU shows as texture, not as a
region's brightness.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .canvas import U_RANGE, V_RANGE, _Canvas, _p, _planar, _ridge, _seg_dist, _soft
from .geometry import _SIDES, F, _mouth_at
from .identity import Identities

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
