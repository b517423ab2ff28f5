"""Checks of the synthetic world that the book's data chapter runs and publishes.

- :func:`au_visibility`: can every AU be detected, on held-out identities, from the
  model-sized face crop alone? (It must: otherwise no network could learn or forget it.)
- :func:`trivial_baselines`: is a task trivially separable by tiny-pixel or region-mean
  logistic regression? (It must not be: nuisance has to matter.)
- :func:`au_roles_in_pain`, :func:`au_cooccurrence`: the AU statistics the book states.

All functions return plain dicts / DataFrames and print nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, recall_score
from sklearn.model_selection import GroupShuffleSplit, StratifiedShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..facs import AU_CODES, AU_NAMES, PSPI_AUS, au_index, pspi
from ..geometry import face_box_from_landmarks
from .identity import ID_RANGES, identities_from_ids, sample_nuisance
from .render import render_faces


def crop_faces(images: np.ndarray, landmarks: np.ndarray, *, size: int,
               grayscale: bool = False) -> np.ndarray:
    """Crop each image to its landmark face box and resize it (PIL bilinear).

    Parameters
    ----------
    images : ndarray of shape (n, H, W, 3), uint8
    landmarks : ndarray of shape (n, 68, 2)
    size : int, keyword-only
        Side of the output crops.
    grayscale : bool, keyword-only

    Returns
    -------
    ndarray of shape (n, size, size, 3) or (n, size, size), uint8
    """
    boxes = face_box_from_landmarks(landmarks)
    out = []
    for image, (x, y, w, h) in zip(images, boxes, strict=False):
        pil = Image.fromarray(image)
        if grayscale:
            pil = pil.convert("L")
        box = tuple(int(round(v)) for v in (x, y, x + w, y + h))
        out.append(np.asarray(pil.crop(box).resize((size, size), Image.BILINEAR)))
    return np.stack(out)


def hog_features(gray: np.ndarray, *, cells: int = 8, bins: int = 9) -> np.ndarray:
    """Small HOG: unsigned gradient orientation histograms on a ``cells`` x ``cells`` grid.

    Parameters
    ----------
    gray : ndarray of shape (n, S, S)
        Grayscale crops; ``S`` divisible by ``cells``.

    Returns
    -------
    ndarray of shape (n, cells * cells * bins), float32
        Square-rooted, L2-normalised per 2x2 block neighbourhood (cell-wise).
    """
    g = gray.astype(np.float32)
    gx = np.zeros_like(g)
    gy = np.zeros_like(g)
    gx[:, :, 1:-1] = g[:, :, 2:] - g[:, :, :-2]
    gy[:, 1:-1, :] = g[:, 2:, :] - g[:, :-2, :]
    mag = np.hypot(gx, gy)
    ang = np.mod(np.arctan2(gy, gx), np.pi)
    b = np.minimum((ang / np.pi * bins).astype(int), bins - 1)
    n, s, _ = g.shape
    c = s // cells
    # Histogram by one weighted bincount over (image, cell row, cell column, bin) indices.
    cell = np.arange(c * cells) // c
    index = (((np.arange(n)[:, None, None] * cells + cell[None, :, None]) * cells
              + cell[None, None, :]) * bins + b[:, :c * cells, :c * cells])
    hist = np.bincount(index.ravel(), weights=mag[:, :c * cells, :c * cells].ravel(),
                       minlength=n * cells * cells * bins)
    hist = np.sqrt(hist.reshape(n, cells, cells, bins)).astype(np.float32)
    # Local contrast normalisation over the 3x3 cell neighbourhood.
    energy = np.square(hist).sum(-1)
    pad = np.pad(energy, ((0, 0), (1, 1), (1, 1)), mode="edge")
    local = sum(pad[:, i:i + cells, j:j + cells] for i in range(3) for j in range(3))
    hist = hist / np.sqrt(local[..., None] / 9 + 1e-3)
    return hist.reshape(n, -1)


def _single_au_faces(code: int, n: int, id_range: str, n_identities: int, seed: int,
                     size: int, render_size: int, rng: np.random.Generator):
    lo, _ = ID_RANGES[id_range]
    ids = lo + rng.integers(0, n_identities, n)
    intensity = np.where(np.arange(n) % 2 == 0, 0.0, rng.integers(1, 6, n).astype(float))
    aus = np.zeros((n, len(AU_CODES)))
    aus[:, au_index(code)] = np.minimum(intensity, 1.0) if code == 43 else intensity
    idn = identities_from_ids(ids, seed=seed)
    nuis = sample_nuisance(n, rng)
    images, lms = render_faces(idn, aus, nuis, size=render_size, seed=rng)
    crops = crop_faces(images, lms, size=size, grayscale=True)
    return crops, intensity


def au_visibility(*, size: int = 64, n_identities: int = 100, n_per_au: int = 400,
                  render_size: int = 96, seed: int = 0, C: float = 0.05,
                  n_jobs: int = 1) -> pd.DataFrame:
    """Detectability of every AU on held-out identities, from the model-input crop.

    For each AU, ``n_per_au`` single-AU faces (half with the AU absent, half at intensity
    1-5, every other AU 0, random identity and nuisance) are rendered on ``n_identities``
    training identities and as many on disjoint held-out identities; faces are cropped
    with ``geometry.face_box_from_landmarks`` and resized to ``size`` (PIL bilinear). A
    logistic regression on HOG features learns absent vs present on the training
    identities; the score is the F1 of "intensity >= 2 vs absent" on the held-out ones
    (AU43, closure, counts as present at any positive intensity). The default scale
    (14 400 renders) takes about a minute of one CPU core and gives every AU F1 >= 0.8;
    the held-out F1 has a standard error of about 0.02 there. ``n_jobs`` worker processes
    share the AUs (the result does not depend on it).

    Returns
    -------
    pandas.DataFrame
        Index ``AU_NAMES``; columns ``f1`` (held-out, >= 2 vs absent), ``f1_all`` (any
        intensity vs absent), ``n_train``, ``n_test``.
    """
    from joblib import Parallel, delayed

    rows = Parallel(n_jobs=n_jobs)(
        delayed(_au_detectability)(k, code, size=size, n_identities=n_identities,
                                   n_per_au=n_per_au, render_size=render_size, seed=seed, C=C)
        for k, code in enumerate(AU_CODES))
    return pd.DataFrame(rows).set_index("au")


def _au_detectability(k: int, code: int, *, size: int, n_identities: int, n_per_au: int,
                      render_size: int, seed: int, C: float) -> dict:
    """One row of :func:`au_visibility`; its randomness depends only on ``(seed, k)``."""
    rng = np.random.default_rng([seed, k])
    Xtr, ytr = _single_au_faces(code, n_per_au, "check_train", n_identities, seed, size,
                                render_size, rng)
    Xte, yte = _single_au_faces(code, n_per_au, "check_heldout", n_identities, seed, size,
                                render_size, rng)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    clf.fit(hog_features(Xtr), ytr > 0)
    pred = clf.predict(hog_features(Xte))
    strong = (yte == 0) | (yte >= 2) | ((code == 43) & (yte > 0))
    return {"au": AU_NAMES[k],
            "f1": f1_score(yte[strong] > 0, pred[strong]),
            "f1_all": f1_score(yte > 0, pred),
            "n_train": len(ytr), "n_test": int(strong.sum())}


def _region_means(gray: np.ndarray) -> np.ndarray:
    """Mean intensity of fixed regions of an aligned face crop (n, S, S) -> (n, 12)."""
    s = gray.shape[1]
    f = lambda a, b, c, d: gray[:, int(a * s):int(b * s), int(c * s):int(d * s)].mean((1, 2))  # noqa: E731
    regions = [(0.05, 0.25, 0.2, 0.8),   # forehead
               (0.25, 0.38, 0.15, 0.45), (0.25, 0.38, 0.55, 0.85),  # brows
               (0.36, 0.48, 0.15, 0.45), (0.36, 0.48, 0.55, 0.85),  # eyes
               (0.33, 0.45, 0.42, 0.58),  # glabella / nose root
               (0.45, 0.62, 0.4, 0.6),    # nose
               (0.5, 0.7, 0.1, 0.35), (0.5, 0.7, 0.65, 0.9),  # cheeks
               (0.62, 0.78, 0.3, 0.7),    # mouth
               (0.78, 0.95, 0.35, 0.65),  # chin
               (0.0, 1.0, 0.0, 1.0)]      # whole crop
    return np.stack([f(*r) for r in regions], axis=1)


def held_out_split(labels: np.ndarray, groups: np.ndarray, *, seed: int,
                   test_size: float = 0.25) -> tuple[np.ndarray, np.ndarray, str]:
    """One train/test split: by whole subjects when every row has one, else stratified.

    Parameters
    ----------
    labels : int (n,)
    groups : str (n,)
        Subject ids, ``""`` where unknown (real AffectNet has none).
    seed : int, keyword-only
    test_size : float, keyword-only
        Share of the subjects (grouped) or rows (stratified) held out.

    Returns
    -------
    train, test : int arrays of row indices
    held_out_by : str
        ``"subject"`` (``GroupShuffleSplit``) or ``"stratified rows (no subject ids)"``
        (``StratifiedShuffleSplit``: without ids, one person's images may sit on both sides).
    """
    labels, groups = np.asarray(labels), np.asarray(groups, dtype=str)
    if len(groups) and (groups != "").all():
        split = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
        train, test = next(split.split(labels, labels, groups))
        return train, test, "subject"
    split = StratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    train, test = next(split.split(labels, labels))
    return train, test, "stratified rows (no subject ids)"


#: Faces cropped at a time for the trivial baselines: at AffectNet's size, the 48 x 48 float
#: crops of the whole training split would take ~2.5 GB; 1 024 at a time take ~10 MB.
BASELINE_CHUNK_ROWS = 1024


def baseline_features(images: np.ndarray, landmarks: np.ndarray, *,
                      chunk_rows: int = BASELINE_CHUNK_ROWS) -> dict[str, np.ndarray]:
    """The trivial baselines' features, ``chunk_rows`` faces at a time.

    Every feature depends on its own face only, so the chunking changes memory, not
    values (a test checks this bit for bit).

    Parameters
    ----------
    images : ndarray of shape (n, H, W, 3), uint8
        In memory or memory-mapped (only ``chunk_rows`` rows are read at a time).
    landmarks : ndarray of shape (n, 68, 2)
    chunk_rows : int, keyword-only

    Returns
    -------
    dict
        ``"pixels_8x8"``: (n, 64) float32, the 48 x 48 grey crop resized to 8 x 8, in [0, 1];
        ``"region_means"``: (n, 12) float32, mean intensities of fixed face regions.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    tiny, regions = [], []
    for start in range(0, len(images), chunk_rows):
        stop = start + chunk_rows
        gray = crop_faces(images[start:stop], landmarks[start:stop], size=48, grayscale=True).astype(np.float32) / 255
        tiny.append(np.stack([np.asarray(Image.fromarray((g * 255).astype(np.uint8)).resize(
            (8, 8), Image.BILINEAR), np.float32) / 255 for g in gray]).reshape(len(gray), -1))
        regions.append(_region_means(gray))
    return {"pixels_8x8": np.concatenate(tiny), "region_means": np.concatenate(regions)}


def trivial_baselines(images: np.ndarray, labels: np.ndarray, landmarks: np.ndarray,
                      groups: np.ndarray, *, seed: int, test_size: float = 0.25) -> dict:
    """Held-out scores of two trivial classifiers (a task must not be this easy).

    Faces are cropped with their landmark face box; held out by subject where ``groups``
    gives every row one, else by stratified rows (:func:`held_out_split`).

    - ``"pixels_8x8"``: logistic regression on the 8x8 grayscale crop (64 features);
    - ``"region_means"``: logistic regression on the mean intensities of 12 fixed regions
      of the crop (forehead, brows, eyes, glabella, nose, cheeks, mouth, chin, all).

    Returns
    -------
    dict
        ``{name: {"macro_recall": float, "macro_f1": float}}`` plus ``"chance"``
        (1 / number of classes), ``"n_train"``, ``"n_test"`` and ``"held_out_by"``.
    """
    labels = np.asarray(labels)
    feats = baseline_features(images, landmarks)
    tr, te, held_out_by = held_out_split(labels, groups, seed=seed, test_size=test_size)
    out: dict = {"chance": 1.0 / len(np.unique(labels)), "n_train": len(tr), "n_test": len(te),
                 "held_out_by": held_out_by}
    for name, X in feats.items():
        clf = make_pipeline(StandardScaler(),
                            LogisticRegression(max_iter=3000, class_weight="balanced"))
        clf.fit(X[tr], labels[tr])
        pred = clf.predict(X[te])
        out[name] = {"macro_recall": recall_score(labels[te], pred, average="macro"),
                     "macro_f1": f1_score(labels[te], pred, average="macro")}
    return out


def _au_matrix(facs_table: pd.DataFrame) -> np.ndarray:
    missing = [c for c in AU_NAMES if c not in facs_table.columns]
    if missing:
        raise ValueError(f"facs_table lacks the AU columns {missing}; expected columns "
                         f"{list(AU_NAMES)} (intensities, 0 = absent)")
    return facs_table[list(AU_NAMES)].to_numpy(dtype=float)


def au_roles_in_pain(facs_table: pd.DataFrame) -> pd.DataFrame:
    """Base rate of every AU in pain and no-pain frames, and its role for the pain task.

    Parameters
    ----------
    facs_table : DataFrame
        One row per frame with columns ``AU1 ... AU43`` (intensities); a ``pspi`` column
        is used if present, else PSPI is computed with ``facs.pspi``.

    Returns
    -------
    DataFrame
        Index ``AU_NAMES``; columns ``rate_pain``, ``rate_no_pain``, ``rate_all`` and
        ``role``: ``"pain-informative"`` (a PSPI AU), ``"present-but-uninformative"``
        (occurs, not in PSPI) or ``"absent"`` (never occurs).
    """
    a = _au_matrix(facs_table)
    score = facs_table["pspi"].to_numpy(float) if "pspi" in facs_table else pspi(a)
    pain = score > 0
    present = a > 0
    rows = []
    for j, code in enumerate(AU_CODES):
        rate_all = present[:, j].mean() if len(a) else np.nan
        role = ("pain-informative" if code in PSPI_AUS
                else "present-but-uninformative" if present[:, j].any() else "absent")
        rows.append({"au": AU_NAMES[j],
                     "rate_pain": present[pain, j].mean() if pain.any() else np.nan,
                     "rate_no_pain": present[~pain, j].mean() if (~pain).any() else np.nan,
                     "rate_all": rate_all, "role": role})
    return pd.DataFrame(rows).set_index("au")


def au_cooccurrence(facs_table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """18 x 18 AU co-occurrence: ``"counts"`` (rows with both AUs) and ``"conditional"``.

    ``conditional.loc[row, col]`` = P(col present | row present) (NaN if row never occurs).
    """
    present = (_au_matrix(facs_table) > 0).astype(int)
    counts = present.T @ present
    diag = np.diag(counts).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        cond = counts / diag[:, None]
    return {"counts": pd.DataFrame(counts, index=AU_NAMES, columns=AU_NAMES),
            "conditional": pd.DataFrame(cond, index=AU_NAMES, columns=AU_NAMES)}
