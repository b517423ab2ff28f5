"""Writers of tiny dataset trees in the releases' on-disk formats, for the reader tests.

Each writer builds a few 16-64 px images and the label files around them in ``tmp_path``,
so no binary fixture is committed. Besides the layouts the readers have always read (and
the synthetic twins write), they write the variants real copies have: AffectNet's label
lists in ``Manually_Annotated_file_lists/``, a ``validation.csv`` without header line,
JPEG files and mixed-case extensions, truncated images.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from forgetting_aus.facs import AU_NAMES

RELEASE_LISTS = "Manually_Annotated_file_lists"

AFFECTNET_HEADER = ("subDirectory_filePath,face_x,face_y,face_width,face_height,"
                    "facial_landmarks,expression,valence,arousal")


def face_points(n_points: int = 68, *, offset: float = 0.0) -> np.ndarray:
    """Deterministic landmark-like points inside a 32 x 32 image."""
    t = np.linspace(0, 2 * np.pi, n_points, endpoint=False)
    return np.stack([16 + 8 * np.cos(t), 16 + 8 * np.sin(t)], axis=1) + offset


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


def write_points(path: Path, points: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"   {x:.7e}   {y:.7e}\n" for x, y in points))


def affectnet_line(rel: str, *, code: object = 1, box=(4, 4, 24, 24), landmarks: str | None = None
                   ) -> str:
    if landmarks is None:
        landmarks = ";".join(f"{v:.2f}" for v in face_points().ravel())
    return f"{rel},{box[0]},{box[1]},{box[2]},{box[3]},{landmarks},{code},0.5,-0.25"


def write_affectnet(root: Path, *, training: list[str] | None = None,
                    validation: list[str] | None = None, header: str = AFFECTNET_HEADER,
                    images: bool = True, lists_at: str = "root",
                    validation_header: bool = True) -> Path:
    """An AffectNet tree; by default 6 training rows (one code 9) and 2 validation rows.

    ``lists_at``: "root" (beside the images, as the twins write them), "release" (in
    ``Manually_Annotated_file_lists/``, as the release ships) or "both".
    ``validation_header=False`` writes ``validation.csv`` without its header line.
    """
    if training is None:
        training = [affectnet_line(f"1/train{i}.png", code=c)
                    for i, c in enumerate([0, 1, 1, 2, 9, 7])]
    if validation is None:
        validation = [affectnet_line(f"2/val{i}.png", code=c) for i, c in enumerate([0, 3])]
    folders = {"root": [root], "release": [root / RELEASE_LISTS],
               "both": [root, root / RELEASE_LISTS]}[lists_at]
    for name, rows in (("training.csv", training), ("validation.csv", validation)):
        head = [header] if validation_header or name == "training.csv" else []
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text("\n".join([*head, *rows]) + "\n")
        if images:
            for row in rows:
                rel = row.split(",")[0]
                if not rel.startswith(("/", "..")):
                    write_png(root / "Manually_Annotated_Images" / rel,
                              np.full((32, 32, 3), 100, dtype=np.uint8))
    (root / "Manually_Annotated_Images").mkdir(exist_ok=True)
    return root


def write_sidecar(root: Path, rows: dict[str, tuple[str, dict[int, float]]]) -> None:
    """``rows``: rel path -> (subject, {AU code: intensity})."""
    lines = [",".join(["subDirectory_filePath", "subject", *AU_NAMES, "unilateral"])]
    for rel, (subject, aus) in rows.items():
        values = [f"{aus.get(int(name[2:]), 0.0)}" for name in AU_NAMES]
        lines.append(",".join([rel, subject, *values, "0"]))
    root.mkdir(parents=True, exist_ok=True)
    (root / "au_intensities.csv").write_text("\n".join(lines) + "\n")


def write_unbc(root: Path, spec: dict[str, dict[str, list[float]]]) -> Path:
    """A UNBC tree: ``spec[subject][sequence]`` = PSPI of frames 1, 2, ...

    A pain frame's FACS file codes AU4 at the PSPI (so the PSPI agrees with its AUs);
    a no-pain frame's FACS file is empty.
    """
    for subject, sequences in spec.items():
        for sequence, scores in sequences.items():
            for number, score in enumerate(scores, start=1):
                stem = f"{sequence}{number:03d}"
                rel = Path(subject) / sequence
                write_png(root / "Images" / rel / f"{stem}.png",
                          np.full((32, 32, 3), 10 * number % 255, dtype=np.uint8))
                pspi_file = root / "Frame_Labels" / "PSPI" / rel / f"{stem}_facs.txt"
                pspi_file.parent.mkdir(parents=True, exist_ok=True)
                pspi_file.write_text(f"   {score:.7e}\n")
                facs_file = root / "Frame_Labels" / "FACS" / rel / f"{stem}_facs.txt"
                facs_file.parent.mkdir(parents=True, exist_ok=True)
                facs_file.write_text(f"   4.0000000e+00   {score:.7e}\n" if score > 0 else "")
                write_points(root / "AAM_landmarks" / rel / f"{stem}_aam.txt", face_points(66))
    return root


def write_ckplus(root: Path, sequences: list[dict]) -> Path:
    """A CK+ tree; each sequence dict: subject, sequence, n_frames, facs lines, emotion."""
    for seq in sequences:
        subject, number = seq["subject"], seq["sequence"]
        rel = Path(subject) / number
        for frame in range(1, seq["n_frames"] + 1):
            stem = f"{subject}_{number}_{frame:08d}"
            write_png(root / "cohn-kanade-images" / rel / f"{stem}.png",
                      np.full((32, 32), 50 + frame, dtype=np.uint8))  # CK+ is mostly gray
            write_points(root / "Landmarks" / rel / f"{stem}_landmarks.txt", face_points(68))
        peak = f"{subject}_{number}_{seq['n_frames']:08d}"
        facs_file = root / "FACS" / rel / f"{peak}_facs.txt"
        facs_file.parent.mkdir(parents=True, exist_ok=True)
        facs_file.write_text("".join(f"   {au:.7e}   {i:.7e}\n" for au, i in seq["facs"]))
        (root / "Emotion" / rel).mkdir(parents=True, exist_ok=True)
        if seq.get("emotion") is not None:
            (root / "Emotion" / rel / f"{peak}_emotion.txt").write_text(
                f"   {seq['emotion']:.7e}\n")
    return root


CKPLUS_SPEC = [
    {"subject": "S005", "sequence": "001", "n_frames": 3, "facs": [(1, 2), (2, 3), (5, 1), (26, 2)],
     "emotion": 7},
    {"subject": "S005", "sequence": "002", "n_frames": 2, "facs": [(14, 3), (12, 1), (11, 2)],
     "emotion": None},
    {"subject": "S010", "sequence": "004", "n_frames": 4, "facs": [(6, 2), (12, 4), (25, 0)],
     "emotion": 5},
]




def image_bytes(kind: str, *, size: int = 32, seed: int = 0, **options) -> bytes:
    """A complete ``size`` x ``size`` noise image encoded as ``kind`` ("PNG", "JPEG", ...).

    ``options`` go to PIL's encoder (e.g. ``progressive=True``).
    """
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, kind, **options)
    return buffer.getvalue()


def nest(root: Path, folder: str) -> Path:
    """Move everything in ``root`` one level down into ``root / folder`` (as an unzip does)."""
    inner = root / folder
    inner.mkdir()
    for entry in list(root.iterdir()):
        if entry != inner:
            entry.rename(inner / entry.name)
    return inner
