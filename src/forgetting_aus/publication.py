"""Which faces a figure may show: licensed dataset faces only for publishable subjects.

AffectNet, UNBC-McMaster and CK+ are licensed; their licences let a paper show the faces
of a few consenting subjects (UNBC: four test subjects, as in the paper's figures) and no
others. A figure built on the real datasets therefore shows a face only when its subject
is listed in the ``publishable_subjects`` knob (default: none); every other face is
replaced by its 68-landmark outline on a plain background, so that saliency drawn over
it still shows *where* on the face the relevance lies. The synthetic twins are this
project's own renderings and are always shown.

Written by hand: drawing a landmark outline is a few PIL calls; no library decides
publication.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

#: Landmark index ranges of the iBUG 68-point outline: (first, last + 1, closed).
OUTLINE_PARTS: tuple[tuple[int, int, bool], ...] = (
    (0, 17, False),   # jaw
    (17, 22, False),  # right brow
    (22, 27, False),  # left brow
    (27, 31, False),  # nose bridge
    (31, 36, False),  # nostrils
    (36, 42, True),   # right eye
    (42, 48, True),   # left eye
    (48, 60, True),   # outer lips
    (60, 68, True),   # inner lips
)
BACKGROUND = 235
LINE = 70


def publishable_set(knob: str) -> frozenset[str]:
    """The subject ids of the ``publishable_subjects`` knob (comma-separated, blanks ignored)."""
    return frozenset(part.strip() for part in knob.split(",") if part.strip())


def outline_image(landmarks: np.ndarray, *, size: int) -> np.ndarray:
    """The face's landmark outline, dark lines on a light background.

    Parameters
    ----------
    landmarks : float (68, 2)
        x, y in pixels of the ``size`` x ``size`` crop.
    size : int, keyword-only

    Returns
    -------
    uint8 (size, size, 3)
    """
    points = np.asarray(landmarks, dtype=float)
    if points.shape != (68, 2):
        raise ValueError(f"landmarks must have shape (68, 2) in crop pixels, got {points.shape}")
    canvas = Image.new("L", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    width = max(1, size // 96)
    for first, stop, closed in OUTLINE_PARTS:
        part = [tuple(p) for p in points[first:stop]]
        draw.line(part + part[:1] if closed else part, fill=LINE, width=width)
    return np.repeat(np.asarray(canvas, dtype=np.uint8)[..., None], 3, axis=2)


def displayable_faces(images: np.ndarray, landmarks: np.ndarray, subjects: np.ndarray, *,
                      data_source: str, publishable: str) -> np.ndarray:
    """The images a figure may show: real faces of unlisted subjects become outlines.

    Parameters
    ----------
    images : uint8 (n, S, S, 3)
    landmarks : float (n, 68, 2)
        In crop pixels.
    subjects : str (n,)
        Subject ids, ``""`` where unknown (AffectNet: never publishable).
    data_source : {"twins", "real"}, keyword-only
        ``"twins"``: synthetic faces, all shown.
    publishable : str, keyword-only
        The ``publishable_subjects`` knob.

    Returns
    -------
    uint8 (n, S, S, 3)
        A copy; rows of unlisted real subjects replaced by :func:`outline_image`.
    """
    images = np.array(images, copy=True)
    if data_source == "twins":
        return images
    listed = publishable_set(publishable)  # never holds "": an unknown subject is never publishable
    for i, subject in enumerate(subjects):
        if str(subject) not in listed:
            images[i] = outline_image(landmarks[i], size=images.shape[1])
    return images
