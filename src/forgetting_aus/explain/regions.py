"""Action-unit regions from 68 facial landmarks, and relevance scored over them.

The paper (Prajod et al. 2022, §4.2 and §5) reads difference maps by eye: "FreezeB5 is
paying more attention to dimples" (AU14), "a stronger focus on AU5 (upper lid raise)".
This module makes that reading measurable: each action unit gets a region of the face
derived from the iBUG 68 landmarks, relevance is scored per region, and
:func:`rank_aus` ranks AUs by how much more positive difference relevance they receive on
the images the reference model gets right and the other model gets wrong.

Conventions
-----------
- Landmarks are ``(x, y)`` pixel coordinates in the frame of the maps/images, 0-based
  iBUG order: jaw 0-16, right brow 17-21 (21 inner), left brow 22-26 (22 inner),
  nose bridge 27-30, nostrils 31-35 (33 below the tip), right eye 36-41 (36 outer
  corner), left eye 42-47 (45 outer corner), outer lips 48-59 (48 and 54 corners, 51 top
  of the upper lip), inner lips 60-67. "Right" is the subject's right (image left).
- Pixel ``[row, col]`` has its centre at ``x = col, y = row``.
- Region sizes scale with the inter-ocular distance ``s`` (between the eye centres) and
  offsets follow the face's own axes (up = from mouth centre to eye midpoint), so regions
  move, scale and rotate with the face.
- Masks are boolean arrays of shape ``(n, size, size)``; memory is
  ``n * size**2`` bytes per region, so score large sets in batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from matplotlib.path import Path as _MplPath
from scipy import stats

from forgetting_aus.facs import AU_CODES, AU_DESCRIPTIONS

__all__ = [
    "REGION_NAMES",
    "AU_TO_REGIONS",
    "template_landmarks",
    "au_region_masks",
    "au_masks",
    "region_scores",
    "rank_aus",
    "relevance_share_in_masks",
    "mouth_cut_rows",
    "mouth_crop",
]

#: Named face regions built by :func:`au_region_masks`.
REGION_NAMES: tuple[str, ...] = (
    "forehead_centre",
    "inner_brows",
    "outer_brows",
    "brows",
    "glabella",
    "upper_lids",
    "lower_lids",
    "eyes",
    "outer_eye_corners",
    "cheeks",
    "nose_bridge",
    "nasolabial_folds",
    "upper_lip",
    "lip_corners",
    "dimple_area",
    "lips",
    "mouth",
    "chin",
    "jaw",
)

#: Where each action unit acts (FACS), as a union of named regions. AU12 and AU15 share
#: the lip corners, and AU23/AU24 share the lips: regions cannot tell them apart. AU7
#: (lid tightener) is mapped to the lower lids, which it moves most, so that it is not
#: confounded with AU5's upper lids.
AU_TO_REGIONS: dict[int, tuple[str, ...]] = {
    1: ("inner_brows", "forehead_centre"),
    2: ("outer_brows",),
    4: ("glabella",),
    5: ("upper_lids",),
    6: ("cheeks", "outer_eye_corners"),
    7: ("lower_lids",),
    9: ("nose_bridge",),
    10: ("upper_lip", "nasolabial_folds"),
    12: ("lip_corners",),
    14: ("dimple_area",),
    15: ("lip_corners",),
    17: ("chin",),
    20: ("lip_corners", "mouth"),
    23: ("lips",),
    24: ("lips",),
    25: ("mouth",),
    26: ("mouth", "jaw"),
    43: ("eyes",),
}

_N_POINTS = 68
_RIGHT_EYE = list(range(36, 42))
_LEFT_EYE = list(range(42, 48))
_OUTER_LIPS = list(range(48, 60))


def template_landmarks(size: int = 1) -> np.ndarray:
    """A rough frontal 68-point face filling a ``size`` x ``size`` image.

    Meant for tests, figure sketches and sanity checks, not as a fitted mean shape.

    Returns
    -------
    ndarray of shape (68, 2), float64
        ``(x, y)`` pixel coordinates.
    """
    t = np.pi - np.arange(17) * np.pi / 16
    jaw = np.stack([0.5 + 0.4 * np.cos(t), 0.35 + 0.57 * np.sin(t)], axis=1)
    u = np.linspace(0, 1, 5)
    right_brow = np.stack([0.18 + 0.26 * u, 0.27 - 0.04 * np.sin(np.pi * u)], axis=1)
    left_brow = np.stack([1 - right_brow[::-1, 0], right_brow[::-1, 1]], axis=1)
    bridge = np.stack([np.full(4, 0.5), np.linspace(0.36, 0.55, 4)], axis=1)
    nostrils = np.array([[0.42, 0.60], [0.46, 0.615], [0.5, 0.62], [0.54, 0.615], [0.58, 0.60]])
    right_eye = np.array([[0.25, 0.38], [0.29, 0.36], [0.35, 0.36], [0.39, 0.38],
                          [0.35, 0.40], [0.29, 0.40]])
    left_eye = np.array([[0.61, 0.38], [0.65, 0.36], [0.71, 0.36], [0.75, 0.38],
                         [0.71, 0.40], [0.65, 0.40]])
    outer_lips = np.array([[0.36, 0.75], [0.41, 0.72], [0.46, 0.705], [0.5, 0.71],
                           [0.54, 0.705], [0.59, 0.72], [0.64, 0.75], [0.59, 0.79],
                           [0.54, 0.81], [0.5, 0.815], [0.46, 0.81], [0.41, 0.79]])
    inner_lips = np.array([[0.38, 0.75], [0.45, 0.74], [0.5, 0.742], [0.55, 0.74],
                           [0.62, 0.75], [0.55, 0.76], [0.5, 0.762], [0.45, 0.76]])
    points = np.concatenate([jaw, right_brow, left_brow, bridge, nostrils, right_eye,
                             left_eye, outer_lips, inner_lips])
    return points * size


def _as_landmarks(landmarks) -> np.ndarray:
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim == 2:
        pts = pts[None]
    if pts.ndim != 3 or pts.shape[1:] != (_N_POINTS, 2):
        raise ValueError(
            f"expected landmarks of shape (n, 68, 2) in (x, y) pixels, got {pts.shape}; "
            "66-point CK+ AAM landmarks must first be mapped to the 68-point iBUG layout"
        )
    if not np.isfinite(pts).all():
        raise ValueError("landmarks contain NaN or inf; drop or impute those faces first")
    return pts


class _Canvas:
    """Pixel grid plus the face frame (scale and axes) of each of n faces."""

    def __init__(self, pts: np.ndarray, size: int):
        self.pts = pts
        self.size = int(size)
        self.ys, self.xs = np.mgrid[0:size, 0:size].astype(np.float64)
        self.eye_r = pts[:, _RIGHT_EYE].mean(axis=1)
        self.eye_l = pts[:, _LEFT_EYE].mean(axis=1)
        self.scale = np.linalg.norm(self.eye_l - self.eye_r, axis=1)  # inter-ocular s
        if np.any(self.scale <= 0):
            raise ValueError("degenerate landmarks: the two eye centres coincide")
        mouth = pts[:, _OUTER_LIPS].mean(axis=1)
        up = (self.eye_r + self.eye_l) / 2 - mouth
        self.up = up / np.linalg.norm(up, axis=1, keepdims=True)
        # Towards the subject's left (image right for an upright face).
        side = self.eye_l - self.eye_r
        self.left = side / np.linalg.norm(side, axis=1, keepdims=True)

    def p(self, i: int) -> np.ndarray:
        return self.pts[:, i]

    def disc(self, centre: np.ndarray, radius: np.ndarray) -> np.ndarray:
        dx = self.xs[None] - centre[:, 0, None, None]
        dy = self.ys[None] - centre[:, 1, None, None]
        return dx**2 + dy**2 <= (radius**2)[:, None, None]

    def band(self, a: np.ndarray, b: np.ndarray, half_width: np.ndarray) -> np.ndarray:
        """Pixels within ``half_width`` of the segment from ``a`` to ``b``."""
        ab = b - a
        length2 = np.maximum((ab**2).sum(axis=1), 1e-12)
        px = self.xs[None] - a[:, 0, None, None]
        py = self.ys[None] - a[:, 1, None, None]
        t = np.clip((px * ab[:, 0, None, None] + py * ab[:, 1, None, None])
                    / length2[:, None, None], 0, 1)
        dx = px - t * ab[:, 0, None, None]
        dy = py - t * ab[:, 1, None, None]
        return dx**2 + dy**2 <= (half_width**2)[:, None, None]

    def polyline(self, indices: Iterable[int], half_width: np.ndarray) -> np.ndarray:
        idx = list(indices)
        out = np.zeros((len(self.pts), self.size, self.size), dtype=bool)
        for i, j in zip(idx[:-1], idx[1:], strict=True):
            out |= self.band(self.p(i), self.p(j), half_width)
        return out

    def polygon(self, vertices: np.ndarray) -> np.ndarray:
        """Pixels inside the polygon ``vertices`` of shape (n, k, 2)."""
        grid = np.stack([self.xs.ravel(), self.ys.ravel()], axis=1)
        out = np.empty((len(vertices), self.size, self.size), dtype=bool)
        for k, verts in enumerate(vertices):
            out[k] = _MplPath(verts).contains_points(grid).reshape(self.size, self.size)
        return out

    def scaled_polygon(self, indices: list[int], factor: float) -> np.ndarray:
        verts = self.pts[:, indices]
        centre = verts.mean(axis=1, keepdims=True)
        return self.polygon(centre + factor * (verts - centre))

    def lid(self, indices: list[int], direction: np.ndarray, depth: float) -> np.ndarray:
        """Strip between an eyelid margin and the margin moved ``depth * s`` along direction."""
        margin = self.pts[:, indices]
        moved = margin + (depth * self.scale)[:, None, None] * direction[:, None, :]
        return self.polygon(np.concatenate([margin, moved[:, ::-1]], axis=1))


def _build_regions(c: _Canvas) -> dict[str, np.ndarray]:
    s = c.scale
    up, left = c.up, c.left
    mid_brows = (c.p(21) + c.p(22)) / 2
    right_side, left_side = -left, left  # outward directions of the two face halves
    regions = {
        "forehead_centre": c.disc(mid_brows + 0.3 * s[:, None] * up, 0.2 * s),
        "inner_brows": c.disc(c.p(21) + 0.08 * s[:, None] * up, 0.18 * s)
        | c.disc(c.p(22) + 0.08 * s[:, None] * up, 0.18 * s),
        "outer_brows": c.disc(c.p(17) + 0.08 * s[:, None] * up, 0.15 * s)
        | c.disc(c.p(18) + 0.08 * s[:, None] * up, 0.15 * s)
        | c.disc(c.p(25) + 0.08 * s[:, None] * up, 0.15 * s)
        | c.disc(c.p(26) + 0.08 * s[:, None] * up, 0.15 * s),
        "brows": c.polyline(range(17, 22), 0.1 * s) | c.polyline(range(22, 27), 0.1 * s),
        "glabella": c.disc((mid_brows + c.p(27)) / 2, 0.15 * s),
        "upper_lids": c.lid([36, 37, 38, 39], up, 0.18) | c.lid([42, 43, 44, 45], up, 0.18),
        "lower_lids": c.lid([39, 40, 41, 36], -up, 0.15) | c.lid([45, 46, 47, 42], -up, 0.15),
        "eyes": c.scaled_polygon(_RIGHT_EYE, 1.4) | c.scaled_polygon(_LEFT_EYE, 1.4),
        "outer_eye_corners": c.disc(c.p(36) + 0.15 * s[:, None] * right_side, 0.13 * s)
        | c.disc(c.p(45) + 0.15 * s[:, None] * left_side, 0.13 * s),
        "cheeks": c.disc(c.eye_r - 0.55 * s[:, None] * up + 0.05 * s[:, None] * right_side,
                         0.22 * s)
        | c.disc(c.eye_l - 0.55 * s[:, None] * up + 0.05 * s[:, None] * left_side, 0.22 * s),
        "nose_bridge": c.band(c.p(27), c.p(30), 0.15 * s),
        "nasolabial_folds": c.band(c.p(31) + 0.12 * s[:, None] * right_side,
                                   c.p(48) + 0.12 * s[:, None] * right_side, 0.08 * s)
        | c.band(c.p(35) + 0.12 * s[:, None] * left_side,
                 c.p(54) + 0.12 * s[:, None] * left_side, 0.08 * s),
        "upper_lip": c.polygon(c.pts[:, [48, 31, 32, 33, 34, 35, 54, 64, 63, 62, 61, 60]]),
        "lip_corners": c.disc(c.p(48), 0.13 * s) | c.disc(c.p(54), 0.13 * s),
        "lips": c.polygon(c.pts[:, _OUTER_LIPS]),
        "mouth": c.scaled_polygon(_OUTER_LIPS, 1.25),
        "chin": c.polygon(c.pts[:, [59, 58, 57, 56, 55, 10, 9, 8, 7, 6]]),
        "jaw": c.polyline(range(3, 14), 0.1 * s),
    }
    corner_axis = c.p(48) - c.p(54)
    corner_axis /= np.linalg.norm(corner_axis, axis=1, keepdims=True)
    regions["dimple_area"] = (c.disc(c.p(48) + 0.25 * s[:, None] * corner_axis, 0.12 * s)
                              | c.disc(c.p(54) - 0.25 * s[:, None] * corner_axis, 0.12 * s))
    return {name: regions[name] for name in REGION_NAMES}


def au_region_masks(landmarks: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Boolean masks of the named face regions (:data:`REGION_NAMES`).

    Parameters
    ----------
    landmarks : ndarray of shape (n, 68, 2) or (68, 2)
        ``(x, y)`` pixel coordinates in the ``size`` x ``size`` map frame.
    size : int
        Side of the (square) maps in pixels.

    Returns
    -------
    dict of str to ndarray of bool, shape (n, size, size)
        Regions are clipped to the image (pixels outside are simply absent).
    """
    return _build_regions(_Canvas(_as_landmarks(landmarks), size))


def au_masks(landmarks: np.ndarray, size: int, *,
             aus: Iterable[int] = AU_CODES) -> dict[int, np.ndarray]:
    """Boolean mask of each action unit: the union of its :data:`AU_TO_REGIONS`.

    Parameters
    ----------
    landmarks : ndarray of shape (n, 68, 2) or (68, 2)
    size : int
    aus : iterable of int, keyword-only
        AU codes (default: all of ``facs.AU_CODES``).

    Returns
    -------
    dict of int to ndarray of bool, shape (n, size, size)
    """
    regions = au_region_masks(landmarks, size)
    out = {}
    for code in aus:
        if code not in AU_TO_REGIONS:
            raise ValueError(f"AU{code} has no region; known AUs: {sorted(AU_TO_REGIONS)}")
        names = AU_TO_REGIONS[code]
        mask = regions[names[0]].copy()
        for name in names[1:]:
            mask |= regions[name]
        out[int(code)] = mask
    return out


def _as_maps(maps) -> np.ndarray:
    arr = np.asarray(maps, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"expected maps of shape (n, H, W), got {arr.shape}")
    return arr


def region_scores(maps: np.ndarray, masks: Mapping) -> pd.DataFrame:
    """Positive relevance per pixel of each region, per image.

    Parameters
    ----------
    maps : ndarray of shape (n, H, W)
        Signed relevance (raw, shares or difference maps).
    masks : mapping of name to ndarray of bool, shape (n, H, W) or (H, W)
        E.g. the output of :func:`au_region_masks` or :func:`au_masks`.

    Returns
    -------
    DataFrame of shape (n, len(masks))
        ``sum(max(map, 0) * mask) / sum(mask)``: mean positive relevance over the region
        (units of the map per pixel); NaN where a region is empty or the map is NaN.
        Index ``image`` (0..n-1), one column per mask key.
    """
    arr = _as_maps(maps)
    positive = np.maximum(arr, 0)
    columns = {}
    for name, mask in masks.items():
        m = np.broadcast_to(np.asarray(mask, dtype=bool), arr.shape) if np.ndim(mask) == 2 \
            else np.asarray(mask, dtype=bool)
        if m.shape != arr.shape:
            raise ValueError(f"mask {name!r} has shape {m.shape}, maps have shape {arr.shape}")
        area = m.sum(axis=(1, 2))
        total = (positive * m).sum(axis=(1, 2))
        columns[name] = np.where(area > 0, total / np.maximum(area, 1), np.nan)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(arr), name="image"))


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (NaNs kept out of the family)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok])]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def rank_aus(diff_maps_target: np.ndarray, landmarks_target: np.ndarray,
             diff_maps_baseline: np.ndarray, landmarks_baseline: np.ndarray, *,
             aus: Iterable[int] = AU_CODES, alternative: str = "two-sided") -> pd.DataFrame:
    """Rank action units by the extra positive difference relevance on target images.

    With difference maps ``D = R5/sum(R5) - Rk/sum(Rk)`` (:func:`difference_map`), an AU
    whose region gets more positive ``D`` on the *target* images (e.g. correct by
    FreezeB5, wrong by FreezeB<k>) than on *baseline* images (both models correct) is a
    candidate forgotten concept (paper §4.2, made quantitative).

    Parameters
    ----------
    diff_maps_target : ndarray of shape (n_t, S, S)
    landmarks_target : ndarray of shape (n_t, 68, 2)
        In the maps' pixel frame.
    diff_maps_baseline : ndarray of shape (n_b, S, S)
    landmarks_baseline : ndarray of shape (n_b, 68, 2)
    aus : iterable of int, keyword-only
    alternative : {"two-sided", "greater", "less"}, keyword-only
        Mann-Whitney alternative for target vs baseline scores.

    Returns
    -------
    DataFrame indexed by AU name ("AU14"), sorted by ``difference`` (descending)
        Columns: ``au``, ``description``, ``mean_target``, ``mean_baseline``,
        ``difference`` (target - baseline), ``rank_biserial`` (2U/(n_t n_b) - 1, in
        [-1, 1], positive when target scores tend to be higher), ``u_statistic``,
        ``p_value`` (Mann-Whitney U), ``p_holm`` (Holm-adjusted over the AUs),
        ``n_target``, ``n_baseline`` (maps with a finite score).
    """
    target = _as_maps(diff_maps_target)
    baseline = _as_maps(diff_maps_baseline)
    aus = [int(a) for a in aus]
    for name, arr in (("target", target), ("baseline", baseline)):
        if arr.shape[1] != arr.shape[2]:
            raise ValueError(f"{name} maps must be square (n, S, S), got {arr.shape}")
    scores_t = region_scores(target, au_masks(landmarks_target, target.shape[1], aus=aus))
    scores_b = region_scores(baseline, au_masks(landmarks_baseline, baseline.shape[1], aus=aus))
    rows = []
    for code in aus:
        t = scores_t[code].dropna().to_numpy()
        b = scores_b[code].dropna().to_numpy()
        if len(t) and len(b):
            res = stats.mannwhitneyu(t, b, alternative=alternative)
            u, p = float(res.statistic), float(res.pvalue)
            effect = 2 * u / (len(t) * len(b)) - 1
        else:
            u = p = effect = np.nan
        rows.append({
            "au": code,
            "description": AU_DESCRIPTIONS[code],
            "mean_target": t.mean() if len(t) else np.nan,
            "mean_baseline": b.mean() if len(b) else np.nan,
            "rank_biserial": effect,
            "u_statistic": u,
            "p_value": p,
            "n_target": len(t),
            "n_baseline": len(b),
        })
    table = pd.DataFrame(rows, index=pd.Index([f"AU{a}" for a in aus], name="au_name"))
    table.insert(4, "difference", table["mean_target"] - table["mean_baseline"])
    table.insert(table.columns.get_loc("p_value") + 1, "p_holm", _holm(table["p_value"]))
    return table.sort_values("difference", ascending=False)


def relevance_share_in_masks(maps: np.ndarray, masks) -> pd.DataFrame:
    """Share of each map's positive relevance inside the union of ``masks``.

    For the Weitz et al. extension: do the eyes, nose and mouth hold the relevance? A
    uniform map would put ``area fraction`` of its relevance there, which is reported as
    the baseline.

    Parameters
    ----------
    maps : ndarray of shape (n, H, W)
    masks : mapping of name to bool array, or sequence of bool arrays
        Each of shape (n, H, W) or (H, W); their union is used.

    Returns
    -------
    DataFrame with index ``image`` and columns
        ``share`` (positive relevance inside / total positive relevance; NaN if the map
        has no positive relevance), ``uniform_baseline`` (mask area / image area) and
        ``excess`` (share - baseline).
    """
    arr = _as_maps(maps)
    items = list(masks.values()) if isinstance(masks, Mapping) else list(masks)
    if not items:
        raise ValueError("give at least one mask")
    union = np.zeros(arr.shape, dtype=bool)
    for mask in items:
        m = np.asarray(mask, dtype=bool)
        if m.shape not in (arr.shape, arr.shape[1:]):
            raise ValueError(f"mask of shape {m.shape} does not fit maps of shape {arr.shape}")
        union |= m
    positive = np.maximum(arr, 0)
    total = positive.sum(axis=(1, 2))
    inside = (positive * union).sum(axis=(1, 2))
    share = np.where(total > 0, inside / np.where(total > 0, total, 1), np.nan)
    baseline = union.mean(axis=(1, 2))
    return pd.DataFrame(
        {"share": share, "uniform_baseline": baseline, "excess": share - baseline},
        index=pd.RangeIndex(len(arr), name="image"),
    )


def mouth_cut_rows(landmarks: np.ndarray) -> np.ndarray:
    """Row of the mouth cut of each face: halfway between nose tip (33) and upper lip (51).

    Returns
    -------
    ndarray of shape (n,), float64
        ``y`` coordinate; pixels whose centre lies below it belong to the removed part.
    """
    pts = _as_landmarks(landmarks)
    return (pts[:, 33, 1] + pts[:, 51, 1]) / 2


def _resize_rows(image: np.ndarray, height: int) -> np.ndarray:
    """Linear resampling along rows (half-pixel centres, as tf.image.resize bilinear)."""
    h_in = image.shape[0]
    src = (np.arange(height) + 0.5) * h_in / height - 0.5
    src = np.clip(src, 0, h_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, h_in - 1)
    frac = (src - lo)[:, None, None]
    return (1 - frac) * image[lo] + frac * image[hi]


def mouth_crop(images: np.ndarray, landmarks: np.ndarray, *, mode: str = "mask",
               fill=None) -> np.ndarray:
    """Remove the mouth for the AU5 probe ("we crop the bottom of the images such that
    they do not contain the mouth area", paper §5).

    The cut is a horizontal line halfway between the nose tip (33) and the top of the
    upper lip (51), so it lies above every lip landmark and below the eyes.

    ``mode="mask"`` (default) replaces the pixels below the line by the mean face colour
    and leaves every other pixel untouched: the eyes stay at the position and scale the
    network was trained on, so the AU5 probe on frozen features does not also measure a
    change of scale or aspect ratio. ``mode="crop"`` keeps the rows above the line and
    stretches them back to the full height (what cropping followed by the usual resize
    to the network input does); it removes the mouth as completely but distorts the face.

    Parameters
    ----------
    images : ndarray of shape (n, H, W, C)
    landmarks : ndarray of shape (n, 68, 2)
        In the images' pixel frame.
    mode : {"mask", "crop"}, keyword-only
    fill : float or array-like of shape (C,), optional, keyword-only
        Colour for ``"mask"``; default: per image, the mean colour of the face (inside the
        jaw-and-brow outline) above the cut.

    Returns
    -------
    ndarray of shape (n, H, W, C), float32
    """
    imgs = np.asarray(images, dtype=np.float32)
    if imgs.ndim != 4:
        raise ValueError(f"expected images of shape (n, H, W, C), got {imgs.shape}")
    pts = _as_landmarks(landmarks)
    if len(pts) != len(imgs):
        raise ValueError(f"got {len(imgs)} images but {len(pts)} landmark sets")
    if mode not in ("mask", "crop"):
        raise ValueError(f"mode must be 'mask' or 'crop', got {mode!r}")
    n, height, width, _ = imgs.shape
    cut = mouth_cut_rows(pts)
    rows = np.arange(height)
    out = imgs.copy()
    if mode == "crop":
        for k in range(n):
            keep = int(np.clip(np.floor(cut[k]) + 1, 1, height))
            out[k] = _resize_rows(imgs[k, :keep], height)
        return out
    ys, xs = np.mgrid[0:height, 0:width]
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
    outline = list(range(0, 17)) + list(range(26, 16, -1))
    for k in range(n):
        below = rows > cut[k]
        if fill is not None:
            colour = np.broadcast_to(np.asarray(fill, dtype=np.float32), imgs.shape[-1:])
        else:
            face = _MplPath(pts[k, outline]).contains_points(grid).reshape(height, width)
            face &= ~below[:, None]
            region = imgs[k][face] if face.any() else imgs[k][~below]
            colour = region.mean(axis=0) if len(region) else imgs[k].reshape(-1, imgs.shape[-1]).mean(axis=0)
        out[k, below] = colour
    return out
