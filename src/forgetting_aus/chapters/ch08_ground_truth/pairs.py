"""Chapter 08, part 1: the counterfactual pairs -- each AU on vs. off, everything else equal.

One concern: what is rendered. :func:`sample_pair_design` draws base faces and which AU
goes on in which, :func:`render_pairs` renders and crops both faces of every pair with the
off face's landmark box, :func:`counterfactual_pairs` caches them (stage ``gt_pairs``).
Also the world's own prediction (:func:`world_prediction`) and the AU labels every part
of the chapter prints (:func:`au_label`, :func:`au_labels`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from forgetting_aus import cache, facs, pipeline
from forgetting_aus.config import Config

#: Intensity range of an AU that is "on" in a counterfactual pair (AU43: 1 = closed).
ON_INTENSITY = (3.0, 5.0)


#: Base faces drawn per pair and AU: spares for AUs whose neutral trace must be zero.
BASE_SPARE = 1.5


#: Identity range of the counterfactual faces (disjoint from every twin's).
PAIR_ID_RANGE = "sampled"


#: Seed offsets, so that the ground-truth draws never coincide with a twin's.
PAIRS_SEED_OFFSET = 8_008


#: AUs whose first pair the chapter shows (upper face, lower face, lids).
EXAMPLE_AUS: tuple[int, ...] = (1, 5, 9, 12, 14, 26, 43)


def au_label(code: int) -> str:
    """``"AU14"`` for 14."""
    return f"AU{int(code)}"


def au_labels(codes: Sequence[int]) -> str:
    """``"AU5, AU14"`` for (5, 14); "" for none."""
    return ", ".join(au_label(code) for code in codes)


def emotions_using(code: int) -> list[str]:
    """Emotions whose prototype (``facs.EMOTION_PROTOTYPES``) uses AU ``code``."""
    return [e for e in facs.EMOTIONS if int(code) in facs.EMOTION_PROTOTYPES[e]]


def world_prediction() -> dict[str, Any]:
    """What the world's prototypes predict pain training is free to forget.

    Returns
    -------
    dict
        ``emotions``: the emotions whose prototype has no PSPI AU (surprise, contempt);
        ``aus``: the AUs of those prototypes (none of them a PSPI AU).
    """
    emotions = facs.emotions_without_pspi_aus()
    aus = sorted({a for e in emotions for a in facs.EMOTION_PROTOTYPES[e]} - set(facs.PSPI_AUS))
    return {"emotions": emotions, "aus": aus}


# =========================================================================== 1. pairs
@dataclasses.dataclass(frozen=True)
class PairDesign:
    """What to render: base faces, and for every AU which base faces it is switched on in.

    Attributes
    ----------
    identity_ids : int64 (m,)
    base_aus : float64 (m, 18)
        Neutral-ish AU intensities of the base (off) faces, ``facs.AU_CODES`` order.
    nuisance : synth.Nuisance (m rows)
        With ``noise_sigma`` kept: :func:`render_pairs` adds the sensor noise itself.
    rows : int64 (18, n)
        Base face of pair p of AU j; AU j (and for AU14 also AU12) is 0 in that base.
    intensity : float64 (18, n)
        Intensity of AU j in the on face of pair p.
    side : int8 (18, n)
        ``unilateral`` of the on face: +-1 for AU14 (contempt's one-sided dimple), else 0.
    """

    identity_ids: np.ndarray
    base_aus: np.ndarray
    nuisance: Any
    rows: np.ndarray
    intensity: np.ndarray
    side: np.ndarray

    @property
    def n_pairs(self) -> int:
        return int(self.rows.shape[1])

    def on_aus(self, j: int) -> np.ndarray:
        """AU intensities (n, 18) of the on faces of AU column ``j``."""
        aus = self.base_aus[self.rows[j]].copy()
        aus[:, j] = self.intensity[j]
        return aus


def _must_be_zero(code: int) -> list[int]:
    """AU columns that must be 0 in the base of a pair of AU ``code``."""
    # AU14 is rendered one-sided, which also makes a trace of AU12 one-sided: keep AU12 at 0.
    return [facs.au_index(code)] + ([facs.au_index(12)] if code == 14 else [])


def sample_pair_design(n_pairs: int, *, seed: int) -> PairDesign:
    """Draw the base faces and the on/off assignment of every AU's pairs.

    Base AUs are ``sample_emotion_aus`` draws for *neutral* (each AU with probability
    0.12 at a trace of 0.2-1.2). For AU j the pairs use base faces whose AU j is 0; where
    too few exist, the smallest traces of AU j are set to 0 (before anything is rendered).

    Parameters
    ----------
    n_pairs : int
        Pairs per AU (``gt_pairs_per_au``).
    seed : int, keyword-only

    Returns
    -------
    PairDesign
    """
    from forgetting_aus import synth

    if n_pairs < 2:
        raise ValueError(f"n_pairs must be at least 2 (a bootstrap needs pairs), got {n_pairs}; "
                         "raise gt_pairs_per_au")
    rng = np.random.default_rng([int(seed), PAIRS_SEED_OFFSET])
    m = int(np.ceil(BASE_SPARE * n_pairs)) + 2
    lo, hi = synth.ID_RANGES[PAIR_ID_RANGE]
    ids = lo + rng.choice(hi - lo + 1, size=m, replace=False)
    base, _ = synth.sample_emotion_aus(np.zeros(m, dtype=int), rng)
    nuisance = synth.sample_nuisance(m, rng)
    n_aus = len(facs.AU_CODES)
    rows = np.zeros((n_aus, n_pairs), dtype=np.int64)
    for j, code in enumerate(facs.AU_CODES):
        columns = _must_be_zero(code)
        trace = base[:, columns].sum(axis=1)
        short = n_pairs - int((trace == 0).sum())
        if short > 0:  # clear the weakest traces: only AU j's own columns change
            fix = np.argsort(np.where(trace == 0, np.inf, trace), kind="stable")[:short]
            base[np.ix_(fix, columns)] = 0.0
            trace = base[:, columns].sum(axis=1)
        rows[j] = np.flatnonzero(trace == 0)[:n_pairs]
    intensity = rng.uniform(*ON_INTENSITY, size=(n_aus, n_pairs))
    intensity[facs.au_index(43)] = 1.0
    intensity = np.round(intensity, 2)
    side = np.zeros((n_aus, n_pairs), dtype=np.int8)
    side[facs.au_index(14)] = np.where(rng.random(n_pairs) < 0.5, -1, 1)
    return PairDesign(identity_ids=ids.astype(np.int64), base_aus=base, nuisance=nuisance, rows=rows,
                      intensity=intensity, side=side)


@dataclasses.dataclass(frozen=True)
class CounterfactualPairs:
    """Rendered and cropped counterfactual pairs.

    Attributes
    ----------
    off : uint8 (m, S, S, 3)
        Base faces (every AU's off image is one of them).
    on : uint8 (18, n, S, S, 3)
        On faces of AU j, pair p.
    rows : int64 (18, n)
        Off image of each pair.
    intensity : float64 (18, n)
    off_landmarks : float32 (m, 68, 2)
        In crop pixels.
    base_aus : float64 (m, 18)
    """

    off: np.ndarray
    on: np.ndarray
    rows: np.ndarray
    intensity: np.ndarray
    off_landmarks: np.ndarray
    base_aus: np.ndarray

    @property
    def pairs_per_au(self) -> int:
        """Pairs rendered for each AU (n)."""
        return int(self.rows.shape[1])

    @property
    def n_base(self) -> int:
        """Base (off) faces the pairs share (m)."""
        return len(self.off)

    def pair(self, code: int, p: int) -> tuple[np.ndarray, np.ndarray]:
        """(on, off) images of pair ``p`` of AU ``code``."""
        j = facs.au_index(code)
        return self.on[j, p], self.off[self.rows[j, p]]


def sensor_noise(n: int, size: int, sigma: np.ndarray, *, seed: int) -> np.ndarray:
    """The renderer's sensor noise, drawn per face so a pair can share it.

    Triangular noise (sum of two uniforms) with standard deviation ``sigma`` (fraction of
    full scale), as ``synth.render``; face i's noise depends only on ``(seed, i)``.

    Returns
    -------
    float32 (n, size, size, 3), in 0..255 units.
    """
    out = np.empty((n, size, size, 3), dtype=np.float32)
    for i in range(n):
        u = np.random.default_rng([int(seed), i]).random((2, size, size, 3), dtype=np.float32)
        out[i] = (u[0] + u[1] - 1) * np.float32(sigma[i] * np.sqrt(6.0) * 255.0)
    return out


def _render_clean(identities, aus, nuisance, unilateral, *, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Render without sensor noise (the renderer is then independent of batch composition)."""
    from forgetting_aus import synth

    quiet = dataclasses.replace(nuisance, noise_sigma=np.zeros(len(nuisance)))
    return synth.render_faces(identities, aus, quiet, unilateral=unilateral, size=size, seed=0)


def _with_noise(images: np.ndarray, noise: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(images.astype(np.float32) + noise), 0, 255).astype(np.uint8)


def crop_with_boxes(images: np.ndarray, landmarks: np.ndarray, boxes: np.ndarray, *, size: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Crop each image with a given face box and resize it, as the AffectNet reader does.

    Parameters
    ----------
    images : uint8 (n, H, W, 3)
    landmarks : (n, 68, 2) in image pixels
    boxes : (n, 4) ``(x, y, w, h)``; rounded to whole pixels as the twin's CSV stores them
    size : int, keyword-only

    Returns
    -------
    crops : uint8 (n, size, size, 3)
    landmarks : float32 (n, 68, 2) in crop pixels
    """
    from forgetting_aus.datasets.images import crop_face

    boxes = np.round(np.asarray(boxes, dtype=float))
    out = [crop_face(image, box, points, size=size) for image, box, points in zip(images, boxes, landmarks, strict=True)]
    return np.stack([o[0] for o in out]), np.stack([o[1] for o in out]).astype(np.float32)


def render_pairs(design: PairDesign, *, render_size: int, image_size: int, seed: int) -> CounterfactualPairs:
    """Render every pair at ``render_size`` and crop it to ``image_size``.

    The renderer runs without sensor noise (then a face does not depend on which faces
    share its batch) and each base face's noise is added to it and to all its on faces.
    Both faces of a pair are cropped with the off face's box.

    Returns
    -------
    CounterfactualPairs
    """
    from forgetting_aus import geometry, synth

    identities = synth.identities_from_ids(design.identity_ids, seed=seed)
    m = len(design.identity_ids)
    noise = sensor_noise(m, render_size, np.asarray(design.nuisance.noise_sigma), seed=seed + PAIRS_SEED_OFFSET)
    clean, landmarks = _render_clean(identities, design.base_aus, design.nuisance, np.zeros(m, dtype=np.int8),
                                     size=render_size)
    boxes = geometry.face_box_from_landmarks(landmarks)
    off, off_landmarks = crop_with_boxes(_with_noise(clean, noise), landmarks, boxes, size=image_size)
    n_aus, n = design.rows.shape
    on = np.empty((n_aus, n, image_size, image_size, 3), dtype=np.uint8)
    for j in range(n_aus):
        rows = design.rows[j]
        images, lms = _render_clean(identities.take(rows), design.on_aus(j), design.nuisance.take(rows),
                                    design.side[j], size=render_size)
        on[j], _ = crop_with_boxes(_with_noise(images, noise[rows]), lms, boxes[rows], size=image_size)
    return CounterfactualPairs(off=off, on=on, rows=design.rows, intensity=design.intensity,
                               off_landmarks=off_landmarks, base_aus=design.base_aus)


def counterfactual_pairs(cfg: Config) -> CounterfactualPairs:
    """The chapter's counterfactual pairs, rendered once and cached (stage ``gt_pairs``)."""
    return CounterfactualPairs(**cache.read_npz(pairs_folder(cfg) / "pairs.npz"))


def pairs_folder(cfg: Config) -> Path:
    """Folder of the cached pairs (stage ``gt_pairs``); its name is the key downstream stages use."""
    params = {**cfg.subset(["gt_pairs_per_au", "twin_image_size", "image_size", "seed"])}

    def make(folder: Path) -> dict[str, Any]:
        design = sample_pair_design(cfg.gt_pairs_per_au, seed=cfg.seed)
        pairs = render_pairs(design, render_size=cfg.twin_image_size, image_size=cfg.image_size, seed=cfg.seed)
        cache.write_npz(folder / "pairs.npz", **dataclasses.asdict(pairs))
        return {"n_off": len(pairs.off), "n_on": int(pairs.rows.size)}

    return pipeline.store(cfg).get_or_make("gt_pairs", params, make)


def example_pairs(pairs: CounterfactualPairs, codes: Sequence[int], *, index: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """On and off images of pair ``index`` of each AU in ``codes``: uint8 (len(codes), S, S, 3) each."""
    on, off = zip(*(pairs.pair(code, index) for code in codes), strict=True)
    return np.stack(on), np.stack(off)
