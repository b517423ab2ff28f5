"""Writers of the dataset twins, in exactly the native on-disk formats of DATA.md.

Every writer is deterministic in its keyword arguments (``seed`` included): one
``numpy.random.Generator`` seeded with ``seed`` drives all draws in a fixed order, and
identity parameters are a function of ``(seed, identity id)`` with ids from the disjoint
ranges of :data:`.identity.ID_RANGES`. :func:`ensure_twin` writes a twin only when it is
missing or was written with other arguments.

Formats (see ``shared/design/DATA.md``):

- AffectNet: ``training.csv``/``validation.csv`` + ``Manually_Annotated_Images/`` (PNG).
  ``training.csv`` also holds a few rows with codes 8 (None), 9 (Uncertain) and 10
  (Non-Face: background only), :data:`OTHER_CODES_SHARE` of ``n_train`` on top of it,
  so that readers' exclusion of those codes is exercised.
- UNBC-McMaster: ``Images/``, ``Frame_Labels/PSPI/``, ``Frame_Labels/FACS/`` (one line per
  AU with intensity > 0; an empty file when none is coded), ``AAM_landmarks/`` (66 points:
  the iBUG 68 without the inner mouth corners 60 and 64).
- CK+: ``cohn-kanade-images/``, ``FACS/`` (peak frame), ``Emotion/`` (labelled subset),
  ``Landmarks/`` (every frame).
The dataset folder holds only what the release holds (no subject column, no AU truth), so
the study reads a twin exactly as it reads the real data. What only this world knows goes
to a separate **ground-truth folder** (:func:`truth_root`: ``<root>-truth`` beside the
dataset unless ``truth_root`` is given), read only by name, by the parts that check the
world (:func:`forgetting_aus.datasets.read_affectnet` with ``truth=``):

- AffectNet and the six-emotion sets: ``au_intensities.csv``
  (``subDirectory_filePath,subject,AU1,...,AU43,unilateral``);
- UNBC and CK+: ``subjects.csv`` (``subject,identity_id``), the synthetic identity behind
  each subject folder, so that the disjointness of identity pools can be checked.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ..facs import AU_CODES, AU_NAMES, CKPLUS_EMOTIONS, EMOTIONS, au_index, pspi
from ..geometry import face_box_from_landmarks
from .expressions import sample_ckplus_peaks, sample_emotion_aus, sample_pain_sequences
from .identity import ID_RANGES, identities_from_ids, sample_nuisance
from .render import INNER_MOUTH_CORNERS, _background, render_faces

AFFECTNET_HEADER = ("subDirectory_filePath,face_x,face_y,face_width,face_height,"
                    "facial_landmarks,expression,valence,arousal")
SIDECAR_NAME = "au_intensities.csv"
SIDECAR_HEADER = "subDirectory_filePath,subject," + ",".join(AU_NAMES) + ",unilateral"

#: Real AffectNet manual-annotation counts of codes 0-7 (neutral ... contempt).
AFFECTNET_COUNTS = (74874, 134415, 25459, 14090, 6378, 3803, 24882, 3750)
#: Minimum share of ``n_train`` per class (AffectNet's rarest classes are ~1.3 %).
AFFECTNET_MIN_SHARE = 0.025
#: Extra training rows with codes 8/9/10, as a share of ``n_train``.
OTHER_CODES_SHARE = 0.01
#: Images per identity in the AffectNet twin (AffectNet's people rarely repeat).
IMAGES_PER_IDENTITY = 4

#: Typical (valence, arousal) of codes 0-7, after AffectNet's per-class means.
VALENCE_AROUSAL = ((0.0, 0.0), (0.7, 0.3), (-0.6, -0.2), (0.2, 0.7), (-0.5, 0.7),
                   (-0.6, 0.4), (-0.5, 0.6), (-0.4, 0.3))

#: UNBC subject numbers (as in the real dataset's folder names).
UNBC_NUMBERS = (42, 43, 47, 48, 49, 52, 59, 64, 66, 80, 92, 95, 96, 97, 101, 103, 106, 107,
                108, 109, 115, 120, 121, 123, 124)

#: How strongly the actors of each six-emotion stand-in pose, as a multiplier of the
#: prototype AUs' intensities (:func:`~.expressions.sample_emotion_aus`). Fixed from how the
#: real sets were recorded, not fitted to any accuracy: OULU-CASIA's subjects were asked
#: for full posed expressions (1); JAFFE's ten women posed mild expressions that raters
#: often read as ambiguous (Lyons et al. 1998): one half; FACES's actors were trained to
#: pose, but its older faces' expressions are read less accurately (Ebner et al. 2010):
#: three quarters. Together with grey scale (JAFFE), a wide age range (FACES) and studio
#: light (both), this is the stand-ins' domain shift.
POSED_INTENSITY: dict[str, float] = {"oulu": 1.0, "faces": 0.75, "jaffe": 0.5, "default": 1.0}

SUBJECTS_NAME = "subjects.csv"
SUBJECTS_HEADER = "subject,identity_id"

RENDER_CHUNK = 256
#: Suffix of the ground-truth folder beside a twin's dataset folder (:func:`truth_root`).
TRUTH_SUFFIX = "-truth"
STAMP = ".complete.json"
STAMP_VERSION = 1


# --------------------------------------------------------------------------- helpers
def _save_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG", compress_level=1)


def _e(x: float) -> str:
    """A number the way CK+/UNBC label files print it: ``   1.0000000e+00``."""
    return f"{float(x):16.7e}"


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _class_counts(n_train: int, proportions, min_share: float) -> np.ndarray:
    """Per-class training counts with AffectNet's imbalance and a floor."""
    p = np.asarray(AFFECTNET_COUNTS if proportions is None else proportions, float)
    if p.shape != (len(EMOTIONS),) or (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"class_proportions must be {len(EMOTIONS)} non-negative numbers "
                         f"(codes 0-7, facs.EMOTIONS order), got {proportions!r}")
    p = p / p.sum()
    floor = min_share * n_train
    fixed = np.zeros(len(p), bool)
    for _ in range(len(p)):  # raise the small classes to the floor, shrink the others
        free = n_train - floor * fixed.sum()
        counts = np.where(fixed, floor, p * free / p[~fixed].sum())
        newly = (counts < floor) & ~fixed
        if not newly.any():
            break
        fixed |= newly
    counts = np.floor(counts).astype(int)
    counts[np.argmax(counts)] += n_train - counts.sum()
    return counts


def _landmark_string(lm: np.ndarray) -> str:
    return ";".join(f"{x:.2f};{y:.2f}" for x, y in lm)


def _render_rows(ids, aus, unilateral, nuis, *, seed_ids: int, size: int, style: str,
                 rng: np.random.Generator):
    """Render in chunks; yields (row slice, images, landmarks)."""
    n = len(ids)
    for lo in range(0, n, RENDER_CHUNK):
        sl = slice(lo, min(n, lo + RENDER_CHUNK))
        idn = identities_from_ids(ids[sl], seed=seed_ids, style=style)
        images, lms = render_faces(idn, aus[sl], nuis.take(np.arange(sl.start, sl.stop)),
                                   unilateral=unilateral[sl], size=size, seed=rng)
        yield sl, images, lms


def _write_affectnet_rows(root: Path, csv_name: str, names: list[str], ids, codes, aus,
                          unilateral, nuis, *, seed: int, size: int, style: str,
                          rng: np.random.Generator, sidecar: list[str]) -> None:
    """Render rows and write their images, the CSV and the sidecar lines."""
    lines = [AFFECTNET_HEADER]
    va = rng.normal(0, 0.15, (len(ids), 2))
    for sl, images, lms in _render_rows(ids, aus, unilateral, nuis, seed_ids=seed, size=size,
                                        style=style, rng=rng):
        for k, i in enumerate(range(sl.start, sl.stop)):
            image = images[k]
            if codes[i] == 10:  # Non-Face: the background alone
                bg = _background(nuis.take(np.array([i])), size)[0]
                image = np.clip(np.rint(bg * 255), 0, 255).astype(np.uint8)
            _save_png(root / "Manually_Annotated_Images" / names[i], image)
            x, y, w, h = face_box_from_landmarks(lms[k])
            if codes[i] < len(EMOTIONS):
                v, a = np.clip(np.array(VALENCE_AROUSAL[codes[i]]) + va[i], -1, 1)
            elif codes[i] == 10:
                v, a = -2.0, -2.0
            else:
                v, a = np.clip(va[i] * 3, -1, 1)
            lines.append(f"{names[i]},{int(round(x))},{int(round(y))},{int(round(w))},"
                         f"{int(round(h))},{_landmark_string(lms[k])},{int(codes[i])},"
                         f"{v:.3f},{a:.3f}")
            sidecar.append(f"{names[i]},{ids[i]}," + ",".join(f"{q:.2f}" for q in aus[i])
                           + f",{int(unilateral[i])}")
    (root / csv_name).write_text("\n".join(lines) + "\n")


def truth_root(root) -> Path:
    """The ground-truth folder of the twin written to ``root``: ``<root>-truth`` beside it.

    It holds what real releases lack (subject ids of AffectNet-format sets, AU intensities
    of every AffectNet image, the identity behind each subject folder); the dataset folder
    itself holds only what the release holds.
    """
    root = Path(root)
    return root.with_name(root.name + TRUTH_SUFFIX)


def _truth_folder(root: Path, given) -> Path:
    folder = truth_root(root) if given is None else Path(given)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --------------------------------------------------------------------------- AffectNet
def write_affectnet_twin(root, *, n_train: int = 9000, n_test_per_class: int = 100,
                         class_proportions=None, image_size: int = 96, seed: int = 0,
                         exclude_aus=(), style: str = "default", truth_root=None,
                         release_quirks: bool = False) -> Path:
    """Write the AffectNet twin under ``root``, its ground truth under ``truth_root``.

    Parameters
    ----------
    root : path
    n_train : int, keyword-only
        Emotion rows (codes 0-7) of ``training.csv``; class counts follow AffectNet's
        imbalance (:data:`AFFECTNET_COUNTS`) with a floor of :data:`AFFECTNET_MIN_SHARE`.
        :data:`OTHER_CODES_SHARE` x ``n_train`` rows with codes 8-10 come on top.
    n_test_per_class : int, keyword-only
        Rows per class 0-7 in the balanced ``validation.csv`` (the paper's test set).
    class_proportions : sequence of 8 floats, keyword-only, optional
        Overrides AffectNet's proportions (codes 0-7).
    image_size : int, keyword-only
    seed : int, keyword-only
    exclude_aus : iterable of int, keyword-only
        AUs never shown (positive control), see :func:`.expressions.sample_emotion_aus`.
    style : str, keyword-only
        Nuisance style (:func:`.identity.sample_nuisance`).
    truth_root : path, keyword-only, optional
        Where ``au_intensities.csv`` goes (default :func:`truth_root` of ``root``).
    release_quirks : bool, keyword-only
        Write what real copies of the release hold (:func:`add_affectnet_quirks`): the
        label lists in ``Manually_Annotated_file_lists/``, ``validation.csv`` without its
        header line, one truncated image and one image whose extension is upper case.

    Returns
    -------
    pathlib.Path
        ``root``. Identities: training ids from ``ID_RANGES["affectnet_train"]``,
        validation ids from ``ID_RANGES["affectnet_validation"]``, about
        :data:`IMAGES_PER_IDENTITY` images each.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sidecar = [SIDECAR_HEADER]
    counts = _class_counts(n_train, class_proportions, AFFECTNET_MIN_SHARE)
    n_other = int(round(OTHER_CODES_SHARE * n_train))
    train_codes = np.concatenate([np.repeat(np.arange(len(EMOTIONS)), counts),
                                  8 + np.arange(n_other) % 3])
    test_codes = np.repeat(np.arange(len(EMOTIONS)), n_test_per_class)
    for split, csv_name, codes in (("train", "training.csv", train_codes),
                                   ("validation", "validation.csv", test_codes)):
        codes = rng.permutation(codes)
        n = len(codes)
        n_ids = max(1, int(np.ceil(n / IMAGES_PER_IDENTITY)))
        lo, hi = ID_RANGES[f"affectnet_{split}"]
        if n_ids > hi - lo + 1:
            raise ValueError(f"{n_ids} identities do not fit the id range of {split}")
        ids = lo + rng.permutation(np.arange(n) % n_ids)
        emo = np.where(codes < len(EMOTIONS), codes, rng.integers(0, len(EMOTIONS), n))
        aus, unilateral = sample_emotion_aus(emo, rng, exclude_aus=exclude_aus)
        # None (8) and Uncertain (9): a blend of two expressions, no clear emotion.
        other = codes >= 8
        if other.any():
            aus2, _ = sample_emotion_aus(rng.integers(0, len(EMOTIONS), other.sum()), rng,
                                         exclude_aus=exclude_aus)
            aus[other] = np.round(0.5 * (aus[other] + aus2), 2)
            aus[other, au_index(43)] = (aus[other, au_index(43)] >= 1).astype(float)
            unilateral[other] = 0
        nuis = sample_nuisance(n, rng, style=style)
        names = [f"{1 + i // 500}/{split}_{i:06d}.png" for i in range(n)]
        _write_affectnet_rows(root, csv_name, names, ids, codes, aus, unilateral, nuis,
                              seed=seed, size=image_size, style="default", rng=rng,
                              sidecar=sidecar)
    (_truth_folder(root, truth_root) / SIDECAR_NAME).write_text("\n".join(sidecar) + "\n")
    if release_quirks:
        add_affectnet_quirks(root)
    return root


#: Bytes kept of the image :func:`add_affectnet_quirks` truncates (a PNG signature and a bit).
TRUNCATED_BYTES = 40


def add_affectnet_quirks(root) -> None:
    """Give a written AffectNet twin the quirks of real copies of the release.

    - ``training.csv`` and ``validation.csv`` move to ``Manually_Annotated_file_lists/``;
    - ``validation.csv`` loses its header line;
    - the image of the first emotion row of ``training.csv`` is cut to
      :data:`TRUNCATED_BYTES` bytes (the release holds a few corrupt files);
    - the image of the second emotion row gets an upper-case extension (``.PNG``) while
      the list keeps ``.png``.
    """
    root = Path(root)
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(exist_ok=True)
    for name in ("training.csv", "validation.csv"):
        os.replace(root / name, lists / name)
    validation = (lists / "validation.csv").read_text().splitlines(keepends=True)
    (lists / "validation.csv").write_text("".join(validation[1:]))
    rows = [line.split(",") for line in (lists / "training.csv").read_text().splitlines()[1:]]
    emotion_rows = [row[0] for row in rows if int(row[6]) < len(EMOTIONS)]
    truncated, upper = emotion_rows[0], emotion_rows[1]
    images = root / "Manually_Annotated_Images"
    (images / truncated).write_bytes((images / truncated).read_bytes()[:TRUNCATED_BYTES])
    os.replace(images / upper, (images / upper).with_suffix(".PNG"))


def write_six_emotion_set(root, *, n_subjects: int = 20, images_per_subject_per_class: int = 2,
                          image_size: int = 96, seed: int = 0, style: str = "oulu",
                          posed_intensity: float | None = None, truth_root=None) -> Path:
    """Write a six-emotion stand-in (OULU-CASIA / FACES / JAFFE) in the AffectNet format.

    Only ``training.csv`` (codes of anger, disgust, fear, happy, sad, surprise in
    ``facs.EMOTIONS`` order), and the sidecar (subject ids) in ``truth_root``. ``style`` picks both the identity
    distribution and the nuisance style; identities come from ``ID_RANGES["six_<style>"]``.
    ``posed_intensity`` scales the prototype AUs (default: the style's
    :data:`POSED_INTENSITY`).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    six = [EMOTIONS.index(e) for e in ("anger", "disgust", "fear", "happy", "sad", "surprise")]
    lo, _ = ID_RANGES[f"six_{style}"]
    subjects = lo + np.arange(n_subjects)
    ids = np.repeat(subjects, 6 * images_per_subject_per_class)
    codes = np.tile(np.repeat(six, images_per_subject_per_class), n_subjects)
    n = len(codes)
    posed = POSED_INTENSITY[style] if posed_intensity is None else posed_intensity
    aus, unilateral = sample_emotion_aus(codes, rng, posed_intensity=posed)
    nuis = sample_nuisance(n, rng, style=style)
    names = [f"{style}/{ids[i]}_{i:05d}.png" for i in range(n)]
    sidecar = [SIDECAR_HEADER]
    _write_affectnet_rows(root, "training.csv", names, ids, codes, aus, unilateral, nuis,
                          seed=seed, size=image_size,
                          style=style if style != "default" else "default", rng=rng,
                          sidecar=sidecar)
    (_truth_folder(root, truth_root) / SIDECAR_NAME).write_text("\n".join(sidecar) + "\n")
    return root


# --------------------------------------------------------------------------- UNBC
def _unbc_names(n_subjects: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    numbers = list(UNBC_NUMBERS) + [200 + k for k in range(max(0, n_subjects - 25))]
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = []
    for k in range(n_subjects):
        ini = "".join(rng.choice(list(letters), 2))
        out.append((f"{numbers[k]:03d}-{ini}{numbers[k]:03d}", f"{ini}{numbers[k]:03d}"))
    return out


#: Smooth per-sequence drift (standard deviation over a sequence) of the nuisance fields:
#: posed lab sequences (CK+) barely move; UNBC's patients move their heads, the room
#: light and the webcam's white balance drift, and motion blur comes and goes.
DRIFT_CALM = {"rotation_deg": 2.0, "shift": 0.01}
DRIFT_WEBCAM = {"rotation_deg": 5.0, "shift": 0.025, "scale": 0.04, "light_azimuth": 0.35,
                "light_strength": 0.08, "ambient": 0.06, "colour_cast": 0.04, "blur": 0.4,
                "noise_sigma": 0.008}
#: Valid ranges the drifted fields are clipped to.
_DRIFT_LIMITS = {"scale": (0.75, 1.25), "light_strength": (0.05, 0.9), "ambient": (0.25, 0.95),
                 "colour_cast": (0.75, 1.25), "blur": (0.0, 2.0), "noise_sigma": (0.0, 0.08)}


def _jitter(nuis, n_frames: int, rng: np.random.Generator, *, drift: dict | None = None):
    """Repeat one nuisance over a sequence's frames with a smooth drift.

    Each field in ``drift`` (default :data:`DRIFT_CALM`) moves along its own random walk,
    centred on the sequence's draw and scaled to that standard deviation (per element for
    vector fields), so consecutive frames differ a little and the sequence a lot.
    """
    drift = DRIFT_CALM if drift is None else drift
    rep = nuis.take(np.zeros(n_frames, int))
    fields = {f: getattr(rep, f).copy() for f in rep.__dataclass_fields__}
    for name, sd in drift.items():
        value = fields[name]
        walk = np.cumsum(rng.normal(0, 1, value.shape), axis=0)
        walk -= walk.mean(axis=0)
        walk /= max(1.0, np.sqrt(n_frames))
        value = value + sd * walk
        if name in _DRIFT_LIMITS:
            value = np.clip(value, *_DRIFT_LIMITS[name])
        fields[name] = value.astype(np.float32)
    return type(rep)(**fields)


def _subject_pain_sequences(n_sequences: int, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Pain sequences of one subject with at least one pain and one no-pain frame.

    Every UNBC-McMaster subject shows pain at some point (they were recruited for shoulder
    pain), and the paper's selection needs a pain and a no-pain frame of each; redrawing a
    subject's sequences until both occur keeps the twin reproducible from the seed.
    """
    for _ in range(1000):
        aus = sample_pain_sequences(n_sequences, n_frames, rng)
        scores = pspi(aus.reshape(-1, aus.shape[-1]))
        if (scores > 0).any() and (scores == 0).any():
            return aus
    raise RuntimeError(f"could not draw pain sequences with both pain and no-pain frames from "
                       f"{n_sequences} sequences of {n_frames} frames; use longer or more sequences")


def write_unbc_twin(root, *, n_subjects: int = 25, sequences_per_subject: int = 5,
                    frames_per_sequence: int = 60, image_size: int = 96,
                    seed: int = 0, truth_root=None) -> Path:
    """Write the UNBC-McMaster twin under ``root``.

    UNBC is webcam video of patients, so each sequence draws a ``"unbc"`` nuisance (head
    pose, uneven room light, white balance, blur, noise, a busy room) and its frames
    drift smoothly around it (:data:`DRIFT_WEBCAM`: head motion, light and white-balance
    drift, motion blur); frames of a sequence share identity. AUs follow
    :func:`.expressions.sample_pain_sequences` (integers; PSPI from facs.pspi).
    Identities: ``ID_RANGES["unbc"]`` (first ``n_subjects`` ids), listed in
    ``subjects.csv`` of ``truth_root`` (default :func:`truth_root` of ``root``).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = _unbc_names(n_subjects, rng)
    lo, _ = ID_RANGES["unbc"]
    keep = [i for i in range(68) if i not in INNER_MOUTH_CORNERS]
    _write_text(_truth_folder(root, truth_root) / SUBJECTS_NAME, "\n".join(
        [SUBJECTS_HEADER] + [f"{subject},{lo + s}" for s, (subject, _) in enumerate(names)]) + "\n")
    for s, (subject, short) in enumerate(names):
        aus = _subject_pain_sequences(sequences_per_subject, frames_per_sequence, rng)
        base = sample_nuisance(sequences_per_subject, rng, style="unbc")
        idn_id = lo + s
        for q in range(sequences_per_subject):
            suffix = "".join(rng.choice(list("aefiu"), 2)) + "aff"
            seq = f"{short}t{q + 1}{suffix}"
            nuis = _jitter(base.take(np.array([q])), frames_per_sequence, rng,
                           drift=DRIFT_WEBCAM)
            idn = identities_from_ids(np.full(frames_per_sequence, idn_id), seed=seed)
            images, lms = render_faces(idn, aus[q], nuis, size=image_size, seed=rng)
            scores = pspi(aus[q])
            for f in range(frames_per_sequence):
                stem = f"{seq}{f + 1:03d}"
                rel = Path(subject) / seq
                _save_png(root / "Images" / rel / f"{stem}.png", images[f])
                _write_text(root / "Frame_Labels" / "PSPI" / rel / f"{stem}_facs.txt",
                            _e(scores[f]) + "\n")
                facs_lines = "".join(f"{_e(c)}{_e(aus[q, f, j])}\n"
                                     for j, c in enumerate(AU_CODES) if aus[q, f, j] > 0)
                _write_text(root / "Frame_Labels" / "FACS" / rel / f"{stem}_facs.txt", facs_lines)
                _write_text(root / "AAM_landmarks" / rel / f"{stem}_aam.txt",
                            "".join(f"{x:.4f} {y:.4f}\n" for x, y in lms[f, keep]))
    return root


# --------------------------------------------------------------------------- CK+
#: With ``release_quirks``, every this-many-th FACS entry of the CK+ twin is "present, intensity not coded" (0).
UNCODED_EVERY = 7


def write_ckplus_twin(root, *, n_subjects: int = 120, sequences_per_subject: int = 5,
                      frames_per_sequence: int = 4, image_size: int = 96,
                      seed: int = 0, truth_root=None, release_quirks: bool = False) -> Path:
    """Write the CK+ twin under ``root``.

    Each sequence goes linearly from neutral (frame 1) to the posed peak (last frame);
    only the peak is FACS coded (integer intensities of the AUs present), an emotion
    label is written for a subset (:func:`.expressions.sample_ckplus_peaks`). Lab
    conditions (``"faces"`` nuisance), most sequences grayscale like CK+.
    Identities: ``ID_RANGES["ckplus"]``, listed in ``subjects.csv`` of ``truth_root``
    (default :func:`truth_root` of ``root``). With ``release_quirks``, every
    :data:`UNCODED_EVERY`-th AU entry of the FACS files is listed with intensity 0, as CK+
    lists an AU that is present but whose intensity was not coded.
    """
    if frames_per_sequence < 2:
        raise ValueError(f"frames_per_sequence must be >= 2 (neutral ... peak), got "
                         f"{frames_per_sequence}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lo, _ = ID_RANGES["ckplus"]
    n_seq = n_subjects * sequences_per_subject
    peaks, unilateral, emotion = sample_ckplus_peaks(n_seq, rng)
    ck_code = {name: code for code, name in CKPLUS_EMOTIONS.items()}
    ramp = np.linspace(0, 1, frames_per_sequence)[:, None]
    _write_text(_truth_folder(root, truth_root) / SUBJECTS_NAME, "\n".join(
        [SUBJECTS_HEADER] + [f"S{5 + s:03d},{lo + s}" for s in range(n_subjects)]) + "\n")
    k = n_entries = 0
    for s in range(n_subjects):
        subject = f"S{5 + s:03d}"
        base = sample_nuisance(sequences_per_subject, rng, style="faces")
        gray = rng.random(sequences_per_subject) < 0.7
        for q in range(sequences_per_subject):
            seq = f"{q + 1:03d}"
            nuis = _jitter(base.take(np.array([q])), frames_per_sequence, rng)
            nuis = type(nuis)(**{**{f: getattr(nuis, f) for f in nuis.__dataclass_fields__},
                                 "grayscale": np.full(frames_per_sequence, gray[q])})
            aus = peaks[k][None, :] * ramp
            idn = identities_from_ids(np.full(frames_per_sequence, lo + s), seed=seed)
            images, lms = render_faces(idn, aus, nuis, size=image_size, seed=rng,
                                       unilateral=np.full(frames_per_sequence, unilateral[k]))
            rel = Path(subject) / seq
            for f in range(frames_per_sequence):
                stem = f"{subject}_{seq}_{f + 1:08d}"
                _save_png(root / "cohn-kanade-images" / rel / f"{stem}.png", images[f])
                _write_text(root / "Landmarks" / rel / f"{stem}_landmarks.txt",
                            "".join(f"{_e(x)}{_e(y)}\n" for x, y in lms[f]))
            peak = f"{subject}_{seq}_{frames_per_sequence:08d}"
            entries = [(c, peaks[k, j]) for j, c in enumerate(AU_CODES) if peaks[k, j] > 0]
            if release_quirks:
                entries = [(c, 0.0 if (n_entries + e) % UNCODED_EVERY == 0 else q) for e, (c, q) in enumerate(entries)]
            n_entries += len(entries)
            _write_text(root / "FACS" / rel / f"{peak}_facs.txt", "".join(f"{_e(c)}{_e(q)}\n" for c, q in entries))
            if emotion[k] >= 0:
                _write_text(root / "Emotion" / rel / f"{peak}_emotion.txt",
                            _e(ck_code[EMOTIONS[emotion[k]]]) + "\n")
            k += 1
    return root


# --------------------------------------------------------------------------- ensure
WRITERS = {
    "affectnet": write_affectnet_twin,
    "unbc": write_unbc_twin,
    "ckplus": write_ckplus_twin,
    "six_emotion": write_six_emotion_set,
}


def _normalise(kwargs: dict) -> dict:
    return json.loads(json.dumps(kwargs, sort_keys=True, default=list))


def ensure_twin(kind: str, root, **kwargs) -> Path:
    """Write twin ``kind`` to ``root`` unless it is already there with these arguments.

    The twin is written into a temporary sibling folder that is renamed onto ``root``
    when complete (its ground truth into :func:`truth_root` of ``root``); then ``root/.complete.json`` records ``kind`` and the arguments. An
    existing ``root`` with a matching stamp is left untouched; one without a stamp or with
    other arguments is replaced.

    Returns
    -------
    pathlib.Path
        ``root``.
    """
    if kind not in WRITERS:
        raise ValueError(f"unknown twin kind {kind!r}; expected one of {sorted(WRITERS)}")
    root = Path(root)
    wanted = {"kind": kind, "kwargs": _normalise(kwargs), "version": STAMP_VERSION}
    stamp = root / STAMP
    if stamp.is_file():
        try:
            if json.loads(stamp.read_text()) == wanted:
                return root
        except json.JSONDecodeError:
            pass
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        # The ground truth goes straight to its final folder; the stamp, written last, vouches for both.
        WRITERS[kind](tmp, truth_root=truth_root(root), **kwargs)
        if root.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
            os.replace(root, old / "x")
            shutil.rmtree(old)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    part = root / (STAMP + ".part")
    part.write_text(json.dumps(wanted, indent=1, sort_keys=True))
    os.replace(part, stamp)
    return root
