"""Image loading for any tidy index: decode, crop the face, resize, map the landmarks.

Crops are taken from each row's face box (``crop="box"``: AffectNet's annotated box; for
UNBC-McMaster and CK+ the readers store ``geometry.face_box_from_landmarks``) or
recomputed from the landmarks (``crop="landmarks"``). A box that leaves the image is
padded with the image's edge values, so faces near the border are not shifted. Crops are
resized with PIL's bilinear filter; grayscale (and palette, alpha) images become RGB.

A file is decoded in full (PIL opens lazily and would notice a cut file only at
``load()``), and a PNG or JPEG must also reach its end marker (the IEND chunk, resp. the
EOI marker after the last scan): PIL accepts a PNG cut after its pixel data, and any cut
file once some other code sets ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES``. A box that does
not overlap the decoded image cannot crop a face; such rows, like unreadable files, raise
or are skipped and counted with their paths.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from PIL import Image, UnidentifiedImageError

from forgetting_aus.geometry import face_box_from_landmarks

from .common import (
    FACE_BOX_COLUMNS,
    FaceBoxError,
    ImageLoadError,
    ReadReport,
    check_on_error,
    landmarks_array,
)

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
        If the file is missing, unreadable or truncated (the message names it); a PNG or
        JPEG must reach its end marker, whatever ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES``.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # decode now, so truncation is detected here and not later
            kind = image.format
            rgb = image.convert("RGB")
        missing_end = _missing_end_marker(data, kind)
    except FileNotFoundError:
        raise ImageLoadError(f"image file {path} does not exist (expected a PNG/JPEG face image)"
                             ) from None
    except _DECODE_ERRORS as error:
        raise ImageLoadError(
            f"cannot read image {path}: expected a complete PNG/JPEG file, found an unreadable "
            f"or truncated one ({type(error).__name__}: {error}). Re-extract the file, or pass "
            f"on_error='skip' to skip and count such images."
        ) from None
    if missing_end:
        raise ImageLoadError(
            f"cannot read image {path}: expected a complete {kind} file, found a truncated one "
            f"({len(data)} bytes, no {missing_end}). Re-extract the file, or pass "
            f"on_error='skip' to skip and count such images."
        )
    return np.asarray(rgb, dtype=np.uint8)


# A marker that ends a JPEG scan's entropy-coded data: 0xFF followed by neither a stuffed
# 0x00, a restart marker (0xD0-0xD7) nor a fill byte 0xFF.
_NEXT_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def _missing_end_marker(data: bytes, kind: str | None) -> str:
    """What a PNG or JPEG lacks at its end ('' if complete, or another format)."""
    if kind == "PNG":
        return "" if _png_reaches_iend(data) else "complete IEND chunk"
    if kind in ("JPEG", "MPO"):  # MPO: a JPEG with extra frames appended after the first EOI
        return "" if _jpeg_reaches_eoi(data) else "EOI marker (FF D9) after the image data"
    return ""


def _png_reaches_iend(data: bytes) -> bool:
    """Whether the chunks after the 8-byte signature lead, by their lengths, to an IEND."""
    position = 8
    while position + 8 <= len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        kind = data[position + 4:position + 8]
        end = position + 8 + length + 4  # header, data, CRC
        if end > len(data):
            return False
        if kind == b"IEND":
            return True
        position = end
    return False


def _jpeg_reaches_eoi(data: bytes) -> bool:
    """Whether the segments after SOI lead to an EOI; bytes after it (e.g. appended data)
    are never looked at, and embedded thumbnails are skipped with their segment."""
    position = 2  # after SOI
    while position + 2 <= len(data):
        if data[position] != 0xFF:  # not at a marker: resynchronise on the next one
            found = _NEXT_JPEG_MARKER.search(data, position)
            if found is None:
                return False
            position = found.start()
            continue
        marker = data[position + 1]
        if marker == 0xD9:
            return True
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _JPEG_STANDALONE:
            position += 2
            continue
        if position + 4 > len(data):
            return False
        position += 2 + int.from_bytes(data[position + 2:position + 4], "big")
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next marker
            found = _NEXT_JPEG_MARKER.search(data, position)
            if found is None:
                return False
            position = found.start()
    return False


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


class _Skipped(NamedTuple):
    """A row :func:`load_faces` skipped: why (the report's reason), the message, the file."""

    reason: str
    message: str
    path: str


def check_box_overlaps(box: np.ndarray, shape: tuple[int, ...], *, path: str) -> None:
    """Error unless ``box`` is finite, non-empty and overlaps an image of ``shape``.

    Parameters
    ----------
    box : ndarray of shape (4,)
        ``(x, y, width, height)`` in pixels.
    shape : tuple
        ``(height, width, ...)`` of the decoded image.
    path : str
        The image file, for the message.

    Raises
    ------
    FaceBoxError
        Naming the file, the box and the image size.
    """
    x, y, width, height = (float(v) for v in box)
    inside = (np.isfinite([x, y, width, height]).all() and width > 0 and height > 0
              and x < shape[1] and y < shape[0] and x + width > 0 and y + height > 0)
    if not inside:
        raise FaceBoxError(
            f"face box of {path}: expected a box that overlaps the {shape[1]} x {shape[0]} px "
            f"image, found x={x:g}, y={y:g}, width={width:g}, height={height:g}. Fix the row's "
            f"box, or pass on_error='skip' to skip and count such rows."
        )


def _load_one(path: str, box: np.ndarray, points: np.ndarray, size: int, skip: bool,
              where: str):
    """One face crop, or the :class:`_Skipped` record (``where``: the row's label file and line)."""
    try:
        image = decode_rgb(path)
        check_box_overlaps(box, image.shape, path=path)
        return crop_face(image, box, points, size=size)
    except (ImageLoadError, FaceBoxError) as error:
        message = f"{where}: {error}" if where else str(error)
        if not skip:
            raise type(error)(message) from None
        reason = ("unreadable or truncated image" if isinstance(error, ImageLoadError)
                  else "face box outside the image")
        return _Skipped(reason, message, path)


def _row_places(index: pd.DataFrame) -> list[str]:
    """``"<label file>, line N"`` of each row where the index records them (AffectNet), else ''."""
    if "source" in index.columns and "line" in index.columns:
        return [f"{source}, line {line}" for source, line in zip(index["source"], index["line"],
                                                                  strict=True)]
    return [""] * len(index)


#: Rows decoded per step of :func:`load_faces`: what is held besides the output array.
LOAD_CHUNK_ROWS = 256


def load_faces(index: pd.DataFrame, *, size: int, crop: str = "box", n_jobs: int = 1,
               on_error: str = "raise", report: ReadReport | None = None,
               return_mask: bool = False, out: np.ndarray | None = None, progress: str | None = None):
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
        An unreadable or truncated image raises :class:`ImageLoadError` naming the file (a
        face box that does not overlap its image, :class:`FaceBoxError`), or is skipped
        and counted in ``report`` with its path.
    report : ReadReport, optional, keyword-only
        Counts images loaded and skipped (``report.skipped_paths`` lists the files).
    return_mask : bool, keyword-only
        Also return which rows were loaded (needed to align labels when skipping).
    out : ndarray of shape (n, size, size, 3), uint8, optional, keyword-only
        Where the crops are written, loaded rows first, in order (e.g. a memory-mapped
        ``.npy`` from ``np.lib.format.open_memmap``, so a dataset of any size is decoded
        into its store without sitting in memory: rows are decoded
        :data:`LOAD_CHUNK_ROWS` at a time). By default a new array.
    progress : str, optional, keyword-only
        Show a progress bar (images done, rate, time left) with this description.

    Returns
    -------
    images : ndarray of shape (n_loaded, size, size, 3), uint8
        The first ``n_loaded`` rows of ``out`` when given.
    landmarks : ndarray of shape (n_loaded, 68, 2), float32
        In pixels of the output crop.
    loaded : ndarray of shape (n,), bool
        Only with ``return_mask=True``.
    """
    check_on_error(on_error)
    if int(size) < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size!r}")
    boxes = face_boxes(index, crop=crop)
    points = landmarks_array(index)
    paths = index["path"].astype(str).tolist()
    work = list(zip(paths, boxes, points, _row_places(index), strict=True))
    skip = on_error == "skip"
    shape = (len(work), int(size), int(size), 3)
    if out is None:
        out = np.empty(shape, dtype=np.uint8)
    elif tuple(out.shape) != shape or out.dtype != np.uint8:
        raise ValueError(f"out must be a uint8 array of shape {shape} (one row per index row), "
                         f"got {out.dtype} {tuple(out.shape)}")
    landmarks = np.empty((len(work), 68, 2), dtype=np.float32)
    loaded = np.zeros(len(work), dtype=bool)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(work), desc=progress, unit="image", disable=progress is None)
    k = 0
    with Parallel(n_jobs=n_jobs, prefer="threads") as parallel:
        for start in range(0, len(work), LOAD_CHUNK_ROWS):
            chunk = work[start:start + LOAD_CHUNK_ROWS]
            if n_jobs == 1:
                results = [_load_one(p, b, q, int(size), skip, w) for p, b, q, w in chunk]
            else:
                results = parallel(delayed(_load_one)(p, b, q, int(size), skip, w) for p, b, q, w in chunk)
            for offset, result in enumerate(results):
                if isinstance(result, _Skipped):
                    if report is not None:
                        report.skip(result.reason, result.message, path=result.path)
                    continue
                out[k], landmarks[k] = result
                loaded[start + offset] = True
                k += 1
            bar.update(len(chunk))
    bar.close()
    if report is not None:
        report.rows_read += k
    images, landmarks = out[:k], landmarks[:k]
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
