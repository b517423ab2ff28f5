"""Face geometry shared by the renderer, the readers and the explanations.

Landmarks are ``(68, 2)`` arrays of ``(x, y)`` pixel coordinates in the iBUG 68-point
layout (0-based indices: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67).
"""

from __future__ import annotations

import numpy as np

#: A face box is the square around the landmarks' bounding box, this many times its
#: larger side, shifted up by ``FACE_BOX_SHIFT`` of its side so the forehead is inside.
FACE_BOX_SCALE = 1.4
FACE_BOX_SHIFT = 0.08


def face_box_from_landmarks(landmarks: np.ndarray, *, scale: float = FACE_BOX_SCALE,
                            shift: float = FACE_BOX_SHIFT) -> np.ndarray:
    """Square face box around 68 (or 66) landmarks.

    Parameters
    ----------
    landmarks : ndarray of shape (n_points, 2) or (n, n_points, 2)
        ``(x, y)`` pixel coordinates.
    scale : float, keyword-only
        Side of the box relative to the larger side of the landmarks' bounding box.
    shift : float, keyword-only
        Upward shift of the box centre, as a fraction of the box side.

    Returns
    -------
    ndarray of shape (4,) or (n, 4)
        ``(x, y, width, height)`` in pixels (floats; width == height).
    """
    pts = np.asarray(landmarks, dtype=float)
    single = pts.ndim == 2
    if single:
        pts = pts[None]
    lo = pts.min(axis=1)
    hi = pts.max(axis=1)
    side = scale * (hi - lo).max(axis=1)
    centre = (lo + hi) / 2.0
    centre[:, 1] -= shift * side
    box = np.stack([centre[:, 0] - side / 2, centre[:, 1] - side / 2, side, side], axis=1)
    return box[0] if single else box
