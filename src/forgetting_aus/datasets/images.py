"""Image loading for any tidy index: decode, crop the face, resize, map the landmarks.

Crops are taken from each row's face box (``crop="box"``: AffectNet's annotated box; for
UNBC-McMaster and CK+ the readers store ``geometry.face_box_from_landmarks``) or
recomputed from the landmarks (``crop="landmarks"``). A box that leaves the image is
padded with the image's edge values, so faces near the border are not shifted. Crops are
resized with PIL's bilinear filter; grayscale (and palette, alpha) images become RGB.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from PIL import Image, UnidentifiedImageError

from forgetting_aus.geometry import face_box_from_landmarks

from .common import FACE_BOX_COLUMNS, ImageLoadError, ReadReport, landmarks_array

_DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError,
                  UnidentifiedImageError)


def decode_rgb(path: str) -> np.ndarray:
    """Decode an image file to RGB.

    Returns
    -------
    ndarray of shape (height, width, 3), uint8

    Raises
    ------
    ImageLoadError
        If the file is missing, unreadable or truncated (the message names it).
    """
    try:
        with Image.open(path) as image:
            image.load()  # decode now, so truncation is detected here and not later
            rgb = image.convert("RGB")
    except FileNotFoundError:
        raise ImageLoadError(f"image file {path} does not exist (expected a PNG/JPEG face image)"
                             ) from None
    except _DECODE_ERRORS as error:
        raise ImageLoadError(
            f"cannot read image {path}: expected a complete PNG/JPEG file, found an unreadable "
            f"or truncated one ({type(error).__name__}: {error}). Re-extract the file, or pass "
            f"on_error='skip' to skip and count such images."
        ) from None
    return np.asarray(rgb, dtype=np.uint8)


def crop_square_region(image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop ``box`` out of ``image``, padding with edge values where it leaves the image.

    Parameters
    ----------
    image : ndarray of shape (height, width, 3)
    box : ndarray of shape (4,)
        ``(x, y, width, height)`` in pixels; rounded to whole pixels (at least 1 x 1).

    Returns
    -------
    crop : ndarray of shape (rounded height, rounded width, 3)
    origin : ndarray of shape (2,), float
        ``(x0, y0)`` of the rounded box, the pixel origin of the crop in the image.
    """
    x, y, width, height = (float(v) for v in box)
    x0, y0 = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
    x1 = max(int(np.floor(x + width + 0.5)), x0 + 1)
    y1 = max(int(np.floor(y + height + 0.5)), y0 + 1)
    # Clipped index arrays repeat the border row/column: edge padding without a full pad.
    rows = np.clip(np.arange(y0, y1), 0, image.shape[0] - 1)
    cols = np.clip(np.arange(x0, x1), 0, image.shape[1] - 1)
    return image[rows[:, None], cols[None, :]], np.array([x0, y0], dtype=float)


def crop_face(image: np.ndarray, box: np.ndarray, landmarks: np.ndarray, *, size: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """Crop a face box, resize it to ``size`` x ``size`` and map the landmarks into it.

    Parameters
    ----------
    image : ndarray of shape (height, width, 3), uint8
    box : ndarray of shape (4,)
        ``(x, y, width, height)`` in pixels of ``image``.
    landmarks : ndarray of shape (68, 2)
        ``(x, y)`` in pixels of ``image``.
    size : int, keyword-only
        Side of the output in pixels.

    Returns
    -------
    face : ndarray of shape (size, size, 3), uint8
    landmarks : ndarray of shape (68, 2), float32
        In pixels of ``face`` (a point on the box's left edge maps to x = 0, one on its
        right edge to x = size).
    """
    crop, origin = crop_square_region(image, box)
    height, width = crop.shape[:2]
    face = np.asarray(Image.fromarray(crop).resize((size, size), Image.BILINEAR), dtype=np.uint8)
    scale = np.array([size / width, size / height])
    mapped = (np.asarray(landmarks, dtype=float) - origin) * scale
    return face, mapped.astype(np.float32)


def face_boxes(index: pd.DataFrame, *, crop: str) -> np.ndarray:
    """``(n, 4)`` crop boxes of an index: its face box columns, or boxes from landmarks."""
    if crop == "box":
        missing = [c for c in FACE_BOX_COLUMNS if c not in index.columns]
        if missing:
            raise KeyError(f"crop='box' needs the columns {FACE_BOX_COLUMNS}; missing {missing}")
        return index.loc[:, list(FACE_BOX_COLUMNS)].to_numpy(dtype=float)
    if crop == "landmarks":
        points = landmarks_array(index)
        if len(points) == 0:
            return np.zeros((0, 4))
        return face_box_from_landmarks(points)
    raise ValueError(f"crop must be 'box' or 'landmarks', got {crop!r}")


def _load_one(path: str, box: np.ndarray, points: np.ndarray, size: int, skip: bool):
    try:
        return crop_face(decode_rgb(path), box, points, size=size)
    except ImageLoadError as error:
        if not skip:
            raise
        return str(error)


def load_faces(index: pd.DataFrame, *, size: int, crop: str = "box", n_jobs: int = 1,
               on_error: str = "raise", report: ReadReport | None = None,
               return_mask: bool = False):
    """Load, crop and resize the faces of an index.

    Parameters
    ----------
    index : DataFrame
        A tidy index (any of the three readers) with ``path``, the face box columns and
        the landmark columns.
    size : int, keyword-only
        Side of the square output images, in pixels.
    crop : {"box", "landmarks"}, keyword-only
        Crop each row's face box, or the box ``geometry.face_box_from_landmarks`` derives
        from its landmarks.
    n_jobs : int, keyword-only
        Threads decoding in parallel (PIL releases the GIL while decoding).
    on_error : {"raise", "skip"}, keyword-only
        An unreadable or truncated image raises :class:`ImageLoadError` naming the file, or
        is skipped and counted in ``report``.
    report : ReadReport, optional, keyword-only
        Counts images loaded and skipped.
    return_mask : bool, keyword-only
        Also return which rows were loaded (needed to align labels when skipping).

    Returns
    -------
    images : ndarray of shape (n_loaded, size, size, 3), uint8
    landmarks : ndarray of shape (n_loaded, 68, 2), float32
        In pixels of the output crop.
    loaded : ndarray of shape (n,), bool
        Only with ``return_mask=True``.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if int(size) < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size!r}")
    boxes = face_boxes(index, crop=crop)
    points = landmarks_array(index)
    paths = index["path"].astype(str).tolist()
    work = list(zip(paths, boxes, points, strict=True))
    skip = on_error == "skip"
    if n_jobs == 1:
        results = [_load_one(p, b, q, int(size), skip) for p, b, q in work]
    else:
        results = Parallel(n_jobs=n_jobs, prefer="threads")(
            delayed(_load_one)(p, b, q, int(size), skip) for p, b, q in work
        )
    loaded = np.array([not isinstance(r, str) for r in results], dtype=bool)
    images = np.zeros((int(loaded.sum()), size, size, 3), dtype=np.uint8)
    landmarks = np.zeros((int(loaded.sum()), 68, 2), dtype=np.float32)
    k = 0
    for result in results:
        if isinstance(result, str):
            if report is not None:
                report.skip("unreadable or truncated image", result)
            continue
        images[k], landmarks[k] = result
        k += 1
    if report is not None:
        report.rows_read += k
    if return_mask:
        return images, landmarks, loaded
    return images, landmarks


def iter_faces(index: pd.DataFrame, *, size: int, batch_size: int, crop: str = "box",
               n_jobs: int = 1, on_error: str = "raise", report: ReadReport | None = None
               ) -> Iterator[tuple[np.ndarray, np.ndarray, pd.DataFrame]]:
    """Stream the faces of an index in batches, so a full-scale dataset never sits in memory.

    Yields
    ------
    images : ndarray of shape (b, size, size, 3), uint8
    landmarks : ndarray of shape (b, 68, 2), float32
    rows : DataFrame
        The ``b`` index rows of this batch that were loaded (labels stay aligned when
        ``on_error="skip"`` drops an unreadable image).
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    for start in range(0, len(index), int(batch_size)):
        rows = index.iloc[start:start + int(batch_size)]
        images, landmarks, loaded = load_faces(rows, size=size, crop=crop, n_jobs=n_jobs,
                                               on_error=on_error, report=report,
                                               return_mask=True)
        yield images, landmarks, rows[loaded]


def loading_speed(index: pd.DataFrame, *, size: int, n: int, crop: str = "box",
                  n_jobs: int = 1) -> float:
    """Images per second that :func:`load_faces` decodes, crops and resizes.

    Loads the first ``n`` rows of ``index`` (cycling if it has fewer) once.
    """
    if len(index) == 0 or n < 1:
        raise ValueError("loading_speed needs a non-empty index and n >= 1")
    rows = index.iloc[np.arange(int(n)) % len(index)]
    start = time.perf_counter()
    load_faces(rows, size=size, crop=crop, n_jobs=n_jobs)
    return int(n) / max(time.perf_counter() - start, 1e-9)
