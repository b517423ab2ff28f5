"""Readers of the AffectNet, UNBC-McMaster and CK+ on-disk formats (real and twin alike).

Each reader returns a tidy :class:`pandas.DataFrame`, one row per image (see the reader's
docstring for its columns), fills a :class:`ReadReport` with what it read and skipped,
and raises :class:`DatasetFormatError` naming file, line, expected and found on bad input.
The readers accept the releases as they ship and the variants copies commonly have (see
``DATA.md``, "Native on-disk formats"); a report states its counts beside the release's
(:data:`PUBLISHED_COUNTS`, :func:`format_counts`).
The paper's splits and selections (:func:`affectnet_splits`, :func:`unbc_protocol`,
:func:`probe_dataset`) and the image loader (:func:`load_faces`, :func:`iter_faces`) work
on those indexes.
"""

from .affectnet import affectnet_splits, read_affectnet
from .ckplus import PRESENCE_COLUMNS, au_presence, ckplus_peak_frames, probe_dataset, read_ckplus
from .common import (
    AU_COLUMNS,
    FACE_BOX_COLUMNS,
    LANDMARK_COLUMNS,
    DatasetFormatError,
    DatasetNotFoundError,
    FaceBoxError,
    ImageLoadError,
    ReadReport,
    format_counts,
    landmarks_array,
    resolve_root,
)
from .images import crop_face, decode_rgb, iter_faces, load_faces, loading_speed
from .release import PUBLISHED_COUNTS, published_counts
from .unbc import (
    SelectionCheckError,
    check_unbc_selection,
    landmarks_66_to_68,
    read_unbc,
    unbc_protocol,
)

__all__ = [
    "AU_COLUMNS",
    "FACE_BOX_COLUMNS",
    "LANDMARK_COLUMNS",
    "PRESENCE_COLUMNS",
    "au_presence",
    "PUBLISHED_COUNTS",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "FaceBoxError",
    "ImageLoadError",
    "ReadReport",
    "SelectionCheckError",
    "affectnet_splits",
    "check_unbc_selection",
    "ckplus_peak_frames",
    "crop_face",
    "decode_rgb",
    "format_counts",
    "iter_faces",
    "landmarks_66_to_68",
    "landmarks_array",
    "load_faces",
    "loading_speed",
    "probe_dataset",
    "published_counts",
    "read_affectnet",
    "read_ckplus",
    "read_unbc",
    "resolve_root",
    "unbc_protocol",
]
