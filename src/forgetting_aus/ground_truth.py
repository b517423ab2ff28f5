"""Chapter 08, ground truth: does the paper's method find what was really forgotten?

The synthetic world knows every face's action units, so forgetting can be *measured*
without the paper's method and the method can be scored against it.

1. **Counterfactual pairs** (:func:`sample_pair_design`, :func:`render_pairs`,
   :func:`counterfactual_pairs`): for every AU, ``gt_pairs_per_au`` pairs of faces with
   the same identity, nuisance, sensor noise and neutral-ish base AUs, the AU on
   (intensity 3-5; AU43: closed) in one and off (0) in the other. Both faces are cropped
   with the *off* face's landmark box (as the AffectNet reader crops, rounded box, PIL
   bilinear), so the pair differs in the AU alone, not in a zoom that a jaw drop or a
   brow raise would cause through the landmark box.
2. **Sensitivities** (:func:`sensitivities`): how much the AU moves each model's
   ``block5_pool`` features (L2 distance on vs off, divided by the mean distance between
   two random base faces, so models with different feature scales compare), and how much
   it moves the true-class logits of the re-trained emotion models (mean over the emotions
   whose prototype uses the AU of ``logit(on) - logit(off)``).
3. **The forgotten-AU rule** (:func:`compare_sensitivity`): FreezeB<k> forgot an AU when
   its sensitivity is below FreezeB5's: ratio (features) or difference (logits) with a
   paired bootstrap interval over pairs that excludes 1 (0). That interval covers the
   faces, not the training run; :func:`beyond_seed_noise` adds the training run: the
   spread of log ratios between two FreezeB0 that differ only in their seed
   (:func:`seed_noise`) sets the threshold a ratio must pass (:func:`seed_threshold`),
   and :func:`null_leave_one_out` checks the threshold on the seed pair itself.
4. **Controls** (:func:`control_model`, :func:`null_model`): the emotion model with
   block 5 drawn afresh, fine-tuned on emotion faces that never show AU X, against the
   same on the same faces with X (the sham): the X-free model must lose X; a second
   FreezeB0 that differs from the first only in its seed must lose nothing.
5. **The method, scored** (:func:`lrp_rankings`, :func:`probe_tables`,
   :func:`precision_table`): chapter 05's LRP region ranking (pooled over emotions,
   class-matched baseline) and chapter 06's probe comparison, their precision@k against
   the counterfactual top-k, with permutation p-values.

Everything expensive is cached in the artifact store, keyed by the upstream artifact keys
and the knobs; the cache keys hash the source of the functions that make each artifact.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import cache, facs, pipeline
from .claims import Claim
from .config import Config

PAPER = "Prajod 2022"
REFERENCE_K = 5
COMPARED_KS: tuple[int, ...] = (0, 1, 2, 3, 4)
ALPHA = 0.05
LEVEL = 0.95
#: Intensity range of an AU that is "on" in a counterfactual pair (AU43: 1 = closed).
ON_INTENSITY = (3.0, 5.0)
#: Base faces drawn per pair and AU: spares for AUs whose neutral trace must be zero.
BASE_SPARE = 1.5
#: Identity range of the counterfactual faces (disjoint from every twin's).
PAIR_ID_RANGE = "sampled"
#: Seed offsets, so that the ground-truth draws never coincide with a twin's.
PAIRS_SEED_OFFSET = 8_008
CONTROL_SEED_OFFSET = 8_108
#: Conv block drawn afresh before the positive control's fine-tunes.
CONTROL_REINIT_BLOCK = 5
NULL_SEED_OFFSET = 1
#: Names of the control models in every table.
X_FREE, SHAM, NULL = "X-free", "sham", "FreezeB0 (seed 2)"
#: Precision@k is reported at this k (the paper names two AUs; three leaves room for a tie).
TOP_K = 3
N_PERMUTATIONS = 10_000

_TRAIN_CODE = ("forgetting_aus.models", "forgetting_aus.losses", "forgetting_aus.training")


def _source_hash(*functions: Any) -> str:
    """SHA-256 of some functions' source: cache keys that ignore edits elsewhere."""
    digest = hashlib.sha256()
    for function in functions:
        digest.update(inspect.getsource(function).encode())
    return digest.hexdigest()[:16]


def au_label(code: int) -> str:
    """``"AU14"`` for 14."""
    return f"AU{int(code)}"


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
    from . import synth

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
    from . import synth

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
    from .datasets.images import crop_face

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
    from . import geometry, synth

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
    return CounterfactualPairs(**cache.read_npz(_pairs_folder(cfg) / "pairs.npz"))


def _pairs_folder(cfg: Config) -> Path:
    params = {**cfg.subset(["gt_pairs_per_au", "twin_image_size", "image_size", "seed"]),
              "code": _source_hash(sample_pair_design, _must_be_zero, render_pairs, sensor_noise, _render_clean,
                                   _with_noise, crop_with_boxes)}

    def make(folder: Path) -> dict[str, Any]:
        design = sample_pair_design(cfg.gt_pairs_per_au, seed=cfg.seed)
        pairs = render_pairs(design, render_size=cfg.twin_image_size, image_size=cfg.image_size, seed=cfg.seed)
        cache.write_npz(folder / "pairs.npz", **dataclasses.asdict(pairs))
        return {"n_off": len(pairs.off), "n_on": int(pairs.rows.size)}

    return pipeline.store(cfg).get_or_make("gt_pairs", params, make,
                                          code=pipeline.TWIN_CODE)


# =========================================================================== 2. sensitivities
def feature_distances(f_on: np.ndarray, f_off: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """L2 distance between each pair's on and off features.

    Parameters
    ----------
    f_on : float (18, n, d)
    f_off : float (m, d)
    rows : int (18, n)

    Returns
    -------
    float64 (18, n)
    """
    return np.linalg.norm(np.asarray(f_on, dtype=np.float64) - np.asarray(f_off, dtype=np.float64)[rows], axis=-1)


def typical_distance(f_off: np.ndarray, *, n_pairs: int = 2000, seed: int) -> float:
    """Mean L2 feature distance between two different random base faces (the scale)."""
    f = np.asarray(f_off, dtype=np.float64)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, len(f), n_pairs)
    b = (a + rng.integers(1, len(f), n_pairs)) % len(f)  # never a == b
    return float(np.linalg.norm(f[a] - f[b], axis=1).mean())


def logit_changes(z_on: np.ndarray, z_off: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Mean change of the logits of the emotions that use each AU, on minus off.

    Parameters
    ----------
    z_on : float (18, n, 8) pre-softmax scores of the on faces
    z_off : float (m, 8)
    rows : int (18, n)

    Returns
    -------
    float64 (18, n); NaN for AUs no prototype uses (AU43).
    """
    z_on = np.asarray(z_on, dtype=np.float64)
    z_off = np.asarray(z_off, dtype=np.float64)
    out = np.full(rows.shape, np.nan)
    for j, code in enumerate(facs.AU_CODES):
        users = [facs.EMOTIONS.index(e) for e in emotions_using(code)]
        if users:
            out[j] = (z_on[j][:, users] - z_off[rows[j]][:, users]).mean(axis=1)
    return out


def _features_and_logits(model_path: Path, pairs: CounterfactualPairs, *, with_logits: bool
                         ) -> dict[str, np.ndarray]:
    """``block5_pool`` features (and head logits) of every on and off image."""
    import tensorflow as tf

    from . import models

    model = models.load_model(model_path)
    base = models.conv_base(model)
    n_aus, n = pairs.rows.shape
    on = pairs.on.reshape(-1, *pairs.on.shape[2:])
    out = {}
    for name, images in (("off", pairs.off), ("on", on)):
        maps = base.predict(models.preprocess(images), batch_size=256, verbose=0)
        out[f"features_{name}"] = maps.reshape(len(images), -1).astype(np.float32)
        if with_logits:
            head = tf.keras.Model(model.get_layer("flatten").input, model.get_layer("predictions").output)
            out[f"logits_{name}"] = head.predict(maps, batch_size=512, verbose=0).astype(np.float32)
    out["features_on"] = out["features_on"].reshape(n_aus, n, -1)
    if with_logits:
        out["logits_on"] = out["logits_on"].reshape(n_aus, n, -1)
    return out


def pair_outputs(cfg: Config, name: str, trained: pipeline.Trained, pairs_key: str, pairs: CounterfactualPairs, *,
                 with_logits: bool) -> dict[str, np.ndarray]:
    """Cached :func:`_features_and_logits` of one model (stage ``gt_pair_outputs``)."""
    params = {"model": trained.key, "pairs": pairs_key, "logits": with_logits,
              "code": _source_hash(_features_and_logits)}

    def make(folder: Path) -> dict[str, Any]:
        cache.write_npz(folder / "outputs.npz", **_features_and_logits(trained.model_path, pairs,
                                                                         with_logits=with_logits))
        return {"model": name}

    folder = pipeline.store(cfg).get_or_make("gt_pair_outputs", params, make, code=("forgetting_aus.models",))
    return cache.read_npz(folder / "outputs.npz")


def sensitivities(cfg: Config, *, controls: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """Per-pair sensitivities of every model: normalised feature distance and logit change.

    Models: FreezeB0..FreezeB5 (conv bases of the pain models, logits of their re-trained
    emotion heads, repetition 0); with ``controls`` also the X-free and sham fine-tunes
    and the second-seed FreezeB0 (features; its re-trained head's logits).

    Returns
    -------
    dict model name -> {"feature": float64 (18, n), "logit": float64 (18, n) or absent}
        ``feature``: distance / :func:`typical_distance` of that model (unitless);
        ``logit``: :func:`logit_changes` (logit units).
    """
    folder = _pairs_folder(cfg)
    pairs, key = CounterfactualPairs(**cache.read_npz(folder / "pairs.npz")), folder.name
    sources: dict[str, tuple[pipeline.Trained, bool]] = {}
    for k in pipeline.FREEZE_LEVELS:
        sources[pipeline.model_name(k)] = (pipeline.retrained_model(cfg, k, 0), True)
    if controls:
        sources[X_FREE] = (control_model(cfg, X_FREE), False)
        sources[SHAM] = (control_model(cfg, SHAM), False)
        sources[NULL] = (null_retrained(cfg), True)
    out = {}
    for name, (trained, with_logits) in sources.items():
        arrays = pair_outputs(cfg, name, trained, key, pairs, with_logits=with_logits)
        scale = typical_distance(arrays["features_off"], seed=cfg.seed)
        entry = {"feature": feature_distances(arrays["features_on"], arrays["features_off"], pairs.rows) / scale}
        if with_logits:
            entry["logit"] = logit_changes(arrays["logits_on"], arrays["logits_off"], pairs.rows)
        out[name] = entry
    return out


# =========================================================================== 3. the rule
def compare_sensitivity(reference: np.ndarray, other: np.ndarray, *, kind: str, n_bootstrap: int, seed: int,
                        level: float = LEVEL) -> pd.DataFrame:
    """Is each AU's sensitivity lower in ``other`` than in ``reference``? (paired bootstrap)

    Parameters
    ----------
    reference, other : float (18, n)
        Per-pair sensitivities of the same pairs under two models.
    kind : {"ratio", "difference"}, keyword-only
        ``ratio = mean(other) / mean(reference)`` (for positive measures, e.g. feature
        distances) or ``difference = mean(other) - mean(reference)`` (for signed ones).
    n_bootstrap : int, keyword-only
        Resamples of the pairs (the same resampled pairs for both models).
    seed : int, keyword-only
    level : float, keyword-only
        Percentile interval level.

    Returns
    -------
    DataFrame indexed by AU name
        ``au``, ``reference``, ``other`` (means), ``effect`` (ratio or difference),
        ``low``, ``high`` (interval), ``forgotten`` (interval wholly below 1 / 0),
        ``gained`` (wholly above), ``forgetting`` (1 - ratio, or -difference: larger =
        more forgotten; the score the ground-truth ranking sorts by).
    """
    if kind not in ("ratio", "difference"):
        raise ValueError(f"kind must be 'ratio' or 'difference', got {kind!r}")
    ref = np.asarray(reference, dtype=np.float64)
    oth = np.asarray(other, dtype=np.float64)
    if ref.shape != oth.shape or ref.ndim != 2:
        raise ValueError(f"reference and other must be (n_aus, n_pairs) arrays of one shape, got {ref.shape} "
                         f"and {oth.shape}")
    n_aus, n = ref.shape
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_bootstrap, n))
    neutral = 1.0 if kind == "ratio" else 0.0
    rows = []
    for j in range(n_aus):
        r, o = ref[j], oth[j]
        if not np.isfinite(r).all() or not np.isfinite(o).all():
            rows.append({"reference": np.nan, "other": np.nan, "effect": np.nan, "low": np.nan, "high": np.nan})
            continue
        boot_r, boot_o = r[draws].mean(axis=1), o[draws].mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            effect = o.mean() / r.mean() if kind == "ratio" else o.mean() - r.mean()
            boot = boot_o / boot_r if kind == "ratio" else boot_o - boot_r
        low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
        rows.append({"reference": r.mean(), "other": o.mean(), "effect": effect, "low": low, "high": high})
    table = pd.DataFrame(rows, index=pd.Index([au_label(a) for a in facs.AU_CODES[:n_aus]], name="au_name"))
    table.insert(0, "au", list(facs.AU_CODES[:n_aus]))
    table["forgotten"] = table["high"] < neutral
    table["gained"] = table["low"] > neutral
    table["forgetting"] = neutral - table["effect"] if kind == "ratio" else -table["effect"]
    return table


def forgotten_by_k(sens: Mapping[str, Mapping[str, np.ndarray]], *, measure: str = "feature", n_bootstrap: int,
                   seed: int, ks: Sequence[int] = COMPARED_KS) -> pd.DataFrame:
    """:func:`compare_sensitivity` of FreezeB<k> against FreezeB5 for every k, long format.

    Returns
    -------
    DataFrame with a ``model`` column and the :func:`compare_sensitivity` columns.
    """
    kind = "ratio" if measure == "feature" else "difference"
    reference = sens[pipeline.model_name(REFERENCE_K)][measure]
    parts = []
    for k in ks:
        name = pipeline.model_name(k)
        table = compare_sensitivity(reference, sens[name][measure], kind=kind, n_bootstrap=n_bootstrap, seed=seed)
        parts.append(table.reset_index().assign(model=name))
    return pd.concat(parts, ignore_index=True)


def truth_ranking(table: pd.DataFrame, *, aus: Sequence[int] | None = None) -> list[int]:
    """AU codes sorted by ground-truth forgetting, most forgotten first (NaN last)."""
    part = table if aus is None else table[table["au"].isin(list(aus))]
    part = part.dropna(subset=["forgetting"]).sort_values("forgetting", ascending=False, kind="stable")
    return [int(a) for a in part["au"]]


def controls_truth(sens: Mapping[str, Mapping[str, np.ndarray]], *, n_bootstrap: int, seed: int
                   ) -> dict[str, pd.DataFrame]:
    """Ground truth for the controls: feature-sensitivity ratios to their reference.

    The X-free fine-tune against its sham, the second-seed FreezeB0 against the first.

    Returns
    -------
    dict model name -> :func:`compare_sensitivity` table
    """
    pairs = {X_FREE: SHAM, NULL: pipeline.model_name(0)}
    return {model: compare_sensitivity(sens[ref]["feature"], sens[model]["feature"], kind="ratio",
                                       n_bootstrap=n_bootstrap, seed=seed)
            for model, ref in pairs.items() if model in sens}


def seed_noise(null_table: pd.DataFrame) -> float:
    """Seed-to-seed spread of the log feature-sensitivity ratio, pooled over the AUs.

    Parameters
    ----------
    null_table : DataFrame
        :func:`compare_sensitivity` of two models that differ only in their training seed
        (the second-seed FreezeB0 against the first): for every AU the true ratio is 1,
        so ``log(effect)`` is pure noise of a training run (and of the finite pairs).

    Returns
    -------
    float
        Root mean square of ``log(effect)`` over the AUs (its mean is known to be 0 under
        the null, so it is not subtracted); NaN ratios are skipped.
    """
    logs = np.log(null_table["effect"].to_numpy(dtype=np.float64))
    logs = logs[np.isfinite(logs)]
    if logs.size < 2:
        raise ValueError(f"need the null comparison's ratio for at least 2 AUs to estimate seed noise, got {logs.size}")
    return float(np.sqrt(np.mean(np.square(logs))))


def seed_threshold(sigma: float, n_aus: int, *, level: float = LEVEL) -> float:
    """Largest sensitivity ratio that counts as forgotten beyond seed noise.

    A ratio is forgotten beyond seed noise when ``log(ratio) < -t * sigma``, ``t`` the
    ``(1 + level) / 2`` quantile of Student's t with ``n_aus`` degrees of freedom (``sigma``
    is a root mean square of ``n_aus`` null log ratios with known mean 0): the one-sided
    rule of a two-sided ``level`` prediction interval for a new seed-only log ratio.

    Returns
    -------
    float
        ``exp(-t * sigma)``, a ratio below 1 (``1 / threshold`` is the gain threshold).
    """
    from scipy import stats

    if not sigma >= 0 or n_aus < 1:
        raise ValueError(f"sigma must be >= 0 and n_aus >= 1, got sigma={sigma}, n_aus={n_aus}")
    return float(np.exp(-stats.t.ppf((1 + level) / 2, n_aus) * sigma))


def beyond_seed_noise(table: pd.DataFrame, null_table: pd.DataFrame, *, level: float = LEVEL) -> pd.DataFrame:
    """Add to feature-ratio tables whether each AU's change exceeds what a seed alone does.

    The bootstrap interval of :func:`compare_sensitivity` resamples faces; a FreezeB<k>
    trained with another seed would give other ratios. The null comparison measures that
    spread (:func:`seed_noise`); since FreezeB5's conv blocks carry no pain-training seed
    while the null pair carries two, it bounds the noise of a FreezeB<k> / FreezeB5 ratio
    from above (conservative). Noise is assumed alike across AUs.

    Parameters
    ----------
    table : DataFrame
        :func:`compare_sensitivity` or :func:`forgotten_by_k` output of the feature measure.
    null_table : DataFrame
        The null comparison (:func:`controls_truth`'s entry for the second-seed FreezeB0).
    level : float, keyword-only

    Returns
    -------
    DataFrame
        ``table`` with ``seed_threshold`` (ratio), ``forgotten_beyond_seed`` (interval below
        1 and ratio below the threshold) and ``gained_beyond_seed`` (interval above 1 and
        ratio above 1 / threshold).
    """
    n_aus = int(null_table["effect"].notna().sum())
    threshold = seed_threshold(seed_noise(null_table), n_aus, level=level)
    out = table.copy()
    out["seed_threshold"] = threshold
    out["forgotten_beyond_seed"] = out["forgotten"] & (out["effect"] < threshold)
    out["gained_beyond_seed"] = out["gained"] & (out["effect"] > 1 / threshold)
    return out


def null_leave_one_out(null_table: pd.DataFrame, *, level: float = LEVEL) -> list[int]:
    """AUs the seed-noise rule flags as forgotten between two seeds, each held out in turn.

    For every AU the threshold comes from the *other* AUs' null log ratios, so the check is
    not circular: with no forgetting and AU-exchangeable noise about ``(1 - level) / 2`` of
    the AUs are flagged.

    Returns
    -------
    list of int
        AU codes whose null ratio is below, and whose interval lies below 1, the threshold
        estimated without them.
    """
    flagged = []
    for name, row in null_table.iterrows():
        others = null_table.drop(index=name)
        n_aus = int(others["effect"].notna().sum())
        threshold = seed_threshold(seed_noise(others), n_aus, level=level)
        if bool(row["forgotten"]) and row["effect"] < threshold:
            flagged.append(int(row["au"]))
    return flagged


def truth_summary(feature: pd.DataFrame, logit: pd.DataFrame, *, k: int = TOP_K) -> pd.DataFrame:
    """Per FreezeB<k>: the AUs truly forgotten by each ground-truth measure, and the top k.

    Returns
    -------
    DataFrame indexed by model: ``forgotten (features)``, ``forgotten beyond seed noise``
    and ``gained beyond seed noise`` (when ``feature`` went through
    :func:`beyond_seed_noise`), ``forgotten (logits)``,
    ``top k (features)``, ``top k (logits)``, ``top k predicted`` (how many of the
    feature top k are AUs of the surprise or contempt prototypes).
    """
    predicted = set(world_prediction()["aus"])
    rows = []
    for model in feature["model"].unique():
        f = feature[feature["model"] == model]
        g = logit[logit["model"] == model]
        top_f, top_g = truth_ranking(f)[:k], truth_ranking(g)[:k]
        row = {"model": model,
               "forgotten (features)": ", ".join(map(au_label, f.loc[f["forgotten"], "au"])) or "none"}
        if "forgotten_beyond_seed" in f:
            row["forgotten beyond seed noise"] = ", ".join(map(au_label, f.loc[f["forgotten_beyond_seed"], "au"])) or "none"
            row["gained beyond seed noise"] = ", ".join(map(au_label, f.loc[f["gained_beyond_seed"], "au"])) or "none"
        rows.append({**row,
                     "forgotten (logits)": ", ".join(map(au_label, g.loc[g["forgotten"], "au"])) or "none",
                     f"top {k} (features)": ", ".join(map(au_label, top_f)),
                     f"top {k} (logits)": ", ".join(map(au_label, top_g)),
                     f"top {k} predicted": f"{len(set(top_f) & predicted)} of {k}"})
    return pd.DataFrame(rows).set_index("model")


def example_pairs(pairs: CounterfactualPairs, codes: Sequence[int], *, index: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """On and off images of pair ``index`` of each AU in ``codes``: uint8 (len(codes), S, S, 3) each."""
    on, off = zip(*(pairs.pair(code, index) for code in codes), strict=True)
    return np.stack(on), np.stack(off)


# =========================================================================== 4. controls
def control_images_count(cfg: Config) -> int:
    """Images of a control fine-tune: as many as the pain training selection (train + val)."""
    return int(cfg.unbc_n_pain + cfg.unbc_n_no_pain)


def render_control_data(n: int, *, control_au: int, render_size: int, image_size: int, seed: int
                        ) -> dict[str, np.ndarray]:
    """Emotion faces, balanced over the 8 classes, rendered twice: without AU X and with it.

    The same identities, nuisance, sensor noise and AU draws in both versions (the
    sampler draws in fixed shapes, so ``exclude_aus`` changes AU X's column only).

    Returns
    -------
    dict
        ``labels`` int64 (n,), ``x_free`` and ``sham`` uint8 (n, S, S, 3), ``aus_x_free``
        and ``aus_sham`` float64 (n, 18).
    """
    from . import geometry, synth

    rng = np.random.default_rng([int(seed), CONTROL_SEED_OFFSET])
    labels = rng.permutation(np.arange(n) % len(facs.EMOTIONS)).astype(np.int64)
    lo, hi = synth.ID_RANGES[PAIR_ID_RANGE]
    # Identities from the top of the range: never those of the counterfactual pairs.
    ids = hi - rng.choice((hi - lo) // 2, size=n, replace=False)
    identities = synth.identities_from_ids(ids, seed=seed)
    aus_seed = int(rng.integers(0, 2**31 - 1))
    aus_sham, unilateral = synth.sample_emotion_aus(labels, np.random.default_rng(aus_seed))
    aus_free, _ = synth.sample_emotion_aus(labels, np.random.default_rng(aus_seed), exclude_aus=(control_au,))
    nuisance = synth.sample_nuisance(n, rng)
    noise_seed = int(rng.integers(0, 2**31 - 1))
    out: dict[str, np.ndarray] = {"labels": labels, "aus_x_free": aus_free, "aus_sham": aus_sham}
    for name, aus in (("x_free", aus_free), ("sham", aus_sham)):
        images, landmarks = synth.render_faces(identities, aus, nuisance, unilateral=unilateral, size=render_size,
                                               seed=noise_seed)
        out[name], _ = crop_with_boxes(images, landmarks, geometry.face_box_from_landmarks(landmarks),
                                       size=image_size)
    return out


def control_data(cfg: Config) -> dict[str, np.ndarray]:
    """:func:`render_control_data` for this run (cached, stage ``gt_control_data``)."""
    params = {**cfg.subset(["gt_control_au", "twin_image_size", "image_size", "seed", "unbc_n_pain",
                            "unbc_n_no_pain"]), "code": _source_hash(render_control_data, crop_with_boxes)}

    def make(folder: Path) -> dict[str, Any]:
        data = render_control_data(control_images_count(cfg), control_au=cfg.gt_control_au,
                                   render_size=cfg.twin_image_size, image_size=cfg.image_size, seed=cfg.seed)
        cache.write_npz(folder / "data.npz", **data)
        return {"n": len(data["labels"])}

    folder = pipeline.store(cfg).get_or_make("gt_control_data", params, make,
                                            code=pipeline.TWIN_CODE)
    return cache.read_npz(folder / "data.npz")


def _save_trained(folder: Path, model, history: dict[str, Any], test: pipeline.Split) -> dict[str, Any]:
    """Model, history and test predictions, as :mod:`pipeline` saves a trained model."""
    from . import models

    models.save_model(model, folder / "model.keras")
    cache.write_json(folder / "history.json", history)
    probabilities = model.predict(models.preprocess(test.images), batch_size=256, verbose=0)
    cache.write_npz(folder / "predictions.npz", y_pred=probabilities.argmax(axis=1), probabilities=probabilities)
    return {"best_epoch": history.get("best_epoch"), "best_score": history.get("best_score")}


def control_model(cfg: Config, variant: str) -> pipeline.Trained:
    """The positive control (``X_FREE``) or its sham (``SHAM``): block 5 learned again.

    A copy of the emotion model whose conv block :data:`CONTROL_REINIT_BLOCK` gets fresh
    weights (:func:`models.reinitialise_block`, the same draw for both variants), every
    layer trainable (as FreezeB0), fine-tuned on :func:`control_data` (the X-free or the
    sham images; the last ``unbc_n_val`` of them validate), ``gt_finetune_epochs`` epochs,
    ``pain_batch_size``, the emotion loss (focal, ``emotion_gamma``; the classes are
    balanced, so unweighted) and the emotion augmentation (flip). The two variants differ
    in AU X alone, so X-free against sham is the contrast in which X must be lost: block 5
    of the X-free model never saw it. (Fine-tuning the emotion model without re-drawing a
    block kept X: absence alone gives the network no reason to drop a feature.) Cached
    (stage ``gt_control_model``).
    """
    if variant not in (X_FREE, SHAM):
        raise ValueError(f"variant must be {X_FREE!r} or {SHAM!r}, got {variant!r}")
    source = pipeline.emotion_model(cfg)
    data_folder_params = cfg.subset(["gt_control_au", "twin_image_size", "image_size", "unbc_n_pain",
                                     "unbc_n_no_pain"])
    params = {"emotion_model": source.key, "variant": variant, "data": data_folder_params,
              "reinitialised_block": CONTROL_REINIT_BLOCK,
              "data_code": _source_hash(render_control_data, crop_with_boxes),
              **cfg.subset(["gt_finetune_epochs", "pain_batch_size", "emotion_gamma", "unbc_n_val", "learning_rate",
                            "momentum", "seed", "mixed_precision"])}

    def make(folder: Path) -> dict[str, Any]:
        from . import losses, models, training

        data = control_data(cfg)
        images = data["x_free" if variant == X_FREE else "sham"]
        labels = data["labels"]
        n_val = cfg.unbc_n_val
        model = models.load_model(source.model_path)
        models.reinitialise_block(model, CONTROL_REINIT_BLOCK, seed=cfg.seed + CONTROL_SEED_OFFSET)
        models.freeze_blocks(model, 0)
        history = training.fit_classifier(
            model, (images[:-n_val], labels[:-n_val]), (images[-n_val:], labels[-n_val:]),
            loss=losses.focal_loss(gamma=cfg.emotion_gamma), epochs=cfg.gt_finetune_epochs, batch_size=cfg.pain_batch_size,
            learning_rate=cfg.learning_rate, momentum=cfg.momentum, augment="flip", select_by="macro_recall",
            seed=cfg.seed + CONTROL_SEED_OFFSET, mixed_precision=cfg.mixed_precision, progress=False)
        model = history.pop("model", model)
        return _save_trained(folder, model, history, pipeline.emotion_data(cfg)["test"])

    return pipeline.Trained(pipeline.store(cfg).get_or_make("gt_control_model", params, make, code=_TRAIN_CODE))


def null_model(cfg: Config) -> pipeline.Trained:
    """FreezeB0 trained exactly as :func:`pipeline.pain_model` (k = 0) with another seed.

    Only the seeds of the new head's initialisation and of the data order, augmentation
    and dropout change (``+ NULL_SEED_OFFSET``). Cached (stage ``gt_null_model``).
    """
    first = pipeline.pain_model(cfg, 0)
    source = pipeline.emotion_model(cfg)
    params = {"pain_model": first.key, "emotion_model": source.key, "seed_offset": NULL_SEED_OFFSET,
              **cfg.subset(["pain_epochs", "pain_batch_size", "pain_gamma", "head_units", "dropout", "learning_rate",
                            "momentum", "seed", "mixed_precision"])}

    def make(folder: Path) -> dict[str, Any]:
        from . import losses, models, training

        data = pipeline.pain_data(cfg)
        seed = cfg.seed + NULL_SEED_OFFSET
        model = models.with_new_head(source.load(), len(pipeline.PAIN_CLASSES), head_units=cfg.head_units,
                                     dropout=cfg.dropout, seed=seed + 100)
        models.freeze_blocks(model, 0)
        history = training.fit_classifier(
            model, (data["train"].images, data["train"].labels), (data["val"].images, data["val"].labels),
            loss=losses.focal_loss(gamma=cfg.pain_gamma), epochs=cfg.pain_epochs, batch_size=cfg.pain_batch_size,
            learning_rate=cfg.learning_rate, momentum=cfg.momentum, augment="pain", select_by="macro_recall",
            seed=seed, mixed_precision=cfg.mixed_precision, progress=False)
        model = history.pop("model", model)
        return _save_trained(folder, model, history, data["test"])

    return pipeline.Trained(pipeline.store(cfg).get_or_make("gt_null_model", params, make, code=_TRAIN_CODE))


def null_retrained(cfg: Config) -> pipeline.Trained:
    """The second-seed FreezeB0's conv blocks with an emotion head re-trained as in §4.1.

    The same recipe as :func:`pipeline.retrained_model` (repetition 0): frozen features of
    both orientations, :func:`training.fit_head`, the emotion loss. Cached (stage
    ``gt_null_retrained``).
    """
    source = null_model(cfg)
    params = {"pain_model": source.key, "data": pipeline.emotion_model(cfg).key,
              **cfg.subset(["head_units", "dropout", "learning_rate", "momentum", "seed", "retrain_epochs",
                            "retrain_batch_size", "emotion_gamma", "cb_beta", "cb_effective_scale"])}

    def make(folder: Path) -> dict[str, Any]:
        from . import models, training

        data = pipeline.emotion_data(cfg)
        base = models.conv_base(source.load())
        train = training.extract_features(base, data["train"].images)
        flipped = training.extract_features(base, data["train"].images, flip=True)
        val = training.extract_features(base, data["val"].images)
        loss, _ = pipeline.emotion_loss(cfg, data["train"].labels)
        head = training.fit_head(train, flipped, data["train"].labels, val, data["val"].labels,
                                 num_classes=len(facs.EMOTIONS), loss=loss, epochs=cfg.retrain_epochs,
                                 batch_size=cfg.retrain_batch_size, learning_rate=cfg.learning_rate,
                                 momentum=cfg.momentum, head_units=cfg.head_units, dropout=cfg.dropout,
                                 seed=cfg.seed + NULL_SEED_OFFSET + 1000, select_by="macro_recall", progress=False)
        model = training.assemble(base, head)
        return _save_trained(folder, model, {}, data["test"])

    return pipeline.Trained(pipeline.store(cfg).get_or_make("gt_null_retrained", params, make, code=_TRAIN_CODE))


def control_check(cfg: Config) -> dict[str, Any]:
    """Does the control data really lack AU X, and the sham data show it?

    Returns
    -------
    dict
        ``au``, ``n``, ``x_free_max`` (largest AU X intensity in the X-free data: 0),
        ``sham_share`` (share of sham faces with AU X > 0), ``identical_elsewhere`` (the
        two versions' AUs agree on every other AU), ``x_users`` (emotions using X).
    """
    data = control_data(cfg)
    j = facs.au_index(cfg.gt_control_au)
    others = [i for i in range(len(facs.AU_CODES)) if i != j]
    return {"au": cfg.gt_control_au, "n": len(data["labels"]),
            "x_free_max": float(data["aus_x_free"][:, j].max()),
            "sham_share": float((data["aus_sham"][:, j] > 0).mean()),
            "identical_elsewhere": bool(np.array_equal(data["aus_x_free"][:, others], data["aus_sham"][:, others])),
            "x_users": emotions_using(cfg.gt_control_au)}


# =========================================================================== 5a. LRP
@dataclasses.dataclass(frozen=True)
class Comparison:
    """Two emotion classifiers compared by the method: ``reference`` vs ``other``."""

    name: str
    reference: str
    other: str


def comparisons(*, controls: bool = True) -> list[Comparison]:
    """The compared model pairs: the paper's (FreezeB5 vs FreezeB0) and the controls.

    The positive control compares the X-free fine-tune with its sham (the reference), the
    null control the second-seed FreezeB0 with the first.
    """
    out = [Comparison(pipeline.model_name(0), pipeline.model_name(REFERENCE_K), pipeline.model_name(0))]
    if controls:
        out += [Comparison(X_FREE, SHAM, X_FREE), Comparison(NULL, pipeline.model_name(0), NULL)]
    return out


def emotion_classifiers(cfg: Config, *, controls: bool = True) -> dict[str, pipeline.Trained]:
    """Every emotion classifier an LRP comparison needs, by name."""
    out = {pipeline.model_name(REFERENCE_K): pipeline.retrained_model(cfg, REFERENCE_K, 0),
           pipeline.model_name(0): pipeline.retrained_model(cfg, 0, 0)}
    if controls:
        out |= {X_FREE: control_model(cfg, X_FREE), SHAM: control_model(cfg, SHAM), NULL: null_retrained(cfg)}
    return out


def matched_selection(labels: np.ndarray, y_reference: np.ndarray, y_other: np.ndarray, *, max_images: int,
                      seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Target rows (reference right, other wrong; any class) and a class-matched baseline.

    Chapter 05's selection pooled over the emotions: targets are capped at ``max_images``
    (random subsample); the baseline takes, per class, as many both-right images as that
    class has targets (fewer where fewer exist), so the two sets share their class mix and
    a region score cannot differ between them only because the emotions differ.

    Returns
    -------
    target, baseline : sorted int64 arrays of test rows
    """
    labels, y_reference, y_other = (np.asarray(a) for a in (labels, y_reference, y_other))
    rng = np.random.default_rng(seed)
    right = y_reference == labels
    target = np.flatnonzero(right & (y_other != labels))
    if len(target) > max_images:
        target = rng.choice(target, size=max_images, replace=False)
    baseline = []
    for c in np.unique(labels[target]):
        pool = np.flatnonzero(right & (y_other == labels) & (labels == c))
        count = min(len(pool), int((labels[target] == c).sum()))
        baseline.append(rng.choice(pool, size=count, replace=False))
    baseline = np.concatenate(baseline) if baseline else np.zeros(0, dtype=np.int64)
    return np.sort(target).astype(np.int64), np.sort(baseline).astype(np.int64)


def lrp_rankings(cfg: Config, *, controls: bool = True, explain=None) -> dict[str, pd.DataFrame]:
    """Chapter 05's AU region ranking for every comparison (LRP maps cached, stage ``gt_lrp``).

    Returns
    -------
    dict comparison name -> :func:`forgetting_aus.visual.au_ranking` table (indexed by AU
    name, sorted by ``difference``; ``rank``, ``difference``, ``p_holm``, ``n_target``...).
    """
    from . import visual
    from .explain import lrp

    test = pipeline.emotion_data(cfg)["test"]
    classifiers = emotion_classifiers(cfg, controls=controls)
    chosen = {}
    for c in comparisons(controls=controls):
        chosen[c.name] = matched_selection(test.labels, classifiers[c.reference].predictions()["y_pred"],
                                           classifiers[c.other].predictions()["y_pred"],
                                           max_images=cfg.lrp_max_images, seed=cfg.seed)
    rows: dict[str, list[np.ndarray]] = {}
    for c in comparisons(controls=controls):
        for model in (c.reference, c.other):
            rows.setdefault(model, []).extend(chosen[c.name])
    rows = {m: np.unique(np.concatenate(r)).astype(np.int64) for m, r in rows.items()}
    rows = {m: r for m, r in rows.items() if len(r)}
    params = {"models": {m: classifiers[m].key for m in rows}, "rows": rows, "method": visual.METHOD}

    def make(folder: Path) -> dict[str, Any]:
        from . import models

        run = explain or lrp.lrp_maps_many
        names = list(rows)
        jobs = [lrp.LRPJob(classifiers[m].model_path, models.preprocess(test.images[rows[m]]),
                           test.labels[rows[m]].astype(np.int64), visual.METHOD) for m in names]
        maps = run(jobs) if jobs else []
        cache.write_npz(folder / "maps.npz", **{f"maps_{i}": np.asarray(a, dtype=np.float32)
                                                 for i, a in enumerate(maps)})
        cache.write_json(folder / "names.json", names)
        return {"n_maps": int(sum(len(r) for r in rows.values()))}

    folder = pipeline.store(cfg).get_or_make("gt_lrp", params, make, code=("forgetting_aus.explain.lrp",))
    names = cache.read_json(folder / "names.json")
    arrays = cache.read_npz(folder / "maps.npz")
    maps = {m: arrays[f"maps_{i}"] for i, m in enumerate(names)}

    def of(model: str, wanted: np.ndarray) -> np.ndarray:
        if len(wanted) == 0:
            return np.zeros((0, cfg.image_size, cfg.image_size), dtype=np.float32)
        return maps[model][np.searchsorted(rows[model], wanted)]

    out = {}
    for c in comparisons(controls=controls):
        target, baseline = chosen[c.name]
        if len(target) == 0:
            baseline = target
        d_target = lrp.difference_map(of(c.reference, target), of(c.other, target))
        d_baseline = lrp.difference_map(of(c.reference, baseline), of(c.other, baseline))
        out[c.name] = visual.au_ranking(d_target, test.landmarks[target], d_baseline, test.landmarks[baseline])
    return out


def lrp_flags(table: pd.DataFrame, *, alpha: float = ALPHA) -> list[int]:
    """AUs the LRP ranking flags: positive extra difference and Holm-adjusted p < alpha."""
    hit = table[(table["difference"] > 0) & (table["p_holm"] < alpha)]
    return [int(a) for a in hit["au"]]


def lrp_order(table: pd.DataFrame) -> list[int]:
    """AU codes in the ranking's order (largest extra difference first), unranked left out."""
    return [int(a) for a in table.dropna(subset=["difference"]).sort_values("difference", ascending=False)["au"]]


# =========================================================================== 5b. probes
#: Integer codes standing in for the control models in :func:`probing.fold_scores`.
_PROBE_CODES = {X_FREE: 100, SHAM: 101, NULL: 102}


def probe_tables(cfg: Config) -> dict[str, pd.DataFrame]:
    """Chapter 06's probe comparison for the controls (stratified folds, cached).

    The X-free fine-tune against its sham, and the second-seed FreezeB0 against the first.
    ``probe_sweep_repeats`` repetitions; AU5 on mouth-masked images, as in chapter 06.

    Returns
    -------
    dict
        ``"controls"``: :func:`probing.comparison_table` of X-free vs sham;
        ``"null"``: of the second-seed FreezeB0 vs FreezeB0. Holm over each table's AUs.
    """
    from . import probing

    data = pipeline.ckplus_data(cfg)
    labels = probing.au_labels(data.aus)
    variants = sorted({probing.variant_for(a) for a in labels})
    trained = {0: pipeline.pain_model(cfg, 0), _PROBE_CODES[X_FREE]: control_model(cfg, X_FREE),
               _PROBE_CODES[SHAM]: control_model(cfg, SHAM),
               _PROBE_CODES[NULL]: null_model(cfg)}
    features, keys = {}, {}
    for code, t in trained.items():
        for v in variants:
            features[(code, v)], keys[f"{code}-{v}"] = probing.cached_features(
                pipeline.store(cfg), model_path=t.model_path, model_key=t.key, images=data.images,
                landmarks=data.landmarks, variant=v)
    params = {"features": keys, "labels": np.asarray(data.aus), "n_repeats": cfg.probe_sweep_repeats,
              "C": cfg.probe_C, "seed": cfg.seed, "code": _source_hash(probe_tables)}

    def make(folder: Path) -> dict[str, Any]:
        scores = probing.fold_scores(features, labels, models=list(trained), groups=data.groups,
                                     folds=["stratified"], n_repeats=cfg.probe_sweep_repeats, C=cfg.probe_C,
                                     seed=cfg.seed, n_jobs=cfg.n_jobs)
        scores.to_csv(folder / "scores.csv", index=False)
        return {"rows": len(scores)}

    folder = pipeline.store(cfg).get_or_make("gt_probe_scores", params, make, code=("forgetting_aus.concepts",))
    scores = pd.read_csv(folder / "scores.csv")
    rename = {pipeline.model_name(code): name for name, code in _PROBE_CODES.items()}
    scores["model"] = scores["model"].replace(rename)
    return {"controls": probing.comparison_table(scores, models=[X_FREE], reference=SHAM),
            "null": probing.comparison_table(scores, models=[NULL], reference=pipeline.model_name(0))}


def probe_flags(table: pd.DataFrame, model: str, *, holm: bool = True, alpha: float = ALPHA) -> list[int]:
    """AUs the probe test flags for ``model``: negative difference, corrected-test p < alpha.

    ``holm=True`` uses the Holm-adjusted p (chapter 06's rule), else the per-AU p.
    """
    column = "corrected_t_p_holm" if holm else "corrected_t_p"
    part = table[(table["model"] == model) & (table["folds"] == "stratified")]
    hit = part[(part["mean_difference"] < 0) & (part[column] < alpha)]
    return [int(a) for a in facs.AU_CODES if a in set(hit["au"].astype(int))]


def probe_order(table: pd.DataFrame, model: str) -> list[int]:
    """AU codes by probe F1 difference ``model - reference``, most negative first."""
    part = table[(table["model"] == model) & (table["folds"] == "stratified")]
    return [int(a) for a in part.sort_values("mean_difference", kind="stable")["au"]]


# =========================================================================== 5c. scoring
def precision_at_k(ranking: Sequence[int], truth: Sequence[int], k: int) -> float:
    """Share of the top ``k`` of ``ranking`` that are among the top ``k`` of ``truth``.

    Parameters
    ----------
    ranking : sequence of AU codes, the method's order (most forgotten first)
    truth : sequence of AU codes, the ground-truth order (most forgotten first)
    k : int
    """
    if k < 1 or k > min(len(ranking), len(truth)):
        raise ValueError(f"k must lie in 1..{min(len(ranking), len(truth))} (the shorter ranking), got {k}")
    return len(set(list(ranking)[:k]) & set(list(truth)[:k])) / k


def permutation_p(ranking: Sequence[int], truth: Sequence[int], k: int, *, n_permutations: int = N_PERMUTATIONS,
                  seed: int) -> float:
    """One-sided permutation p-value of :func:`precision_at_k` (AU labels of ``ranking`` permuted).

    ``p = (1 + #{precision of a random order >= observed}) / (1 + n_permutations)``.
    """
    ranking = list(ranking)
    observed = precision_at_k(ranking, truth, k)
    top = set(list(truth)[:k])
    rng = np.random.default_rng(seed)
    hits = np.isin(np.asarray(ranking), list(top))
    draws = np.argsort(rng.random((n_permutations, len(ranking))), axis=1)[:, :k]
    permuted = hits[draws].sum(axis=1) / k
    return float((1 + np.sum(permuted >= observed - 1e-12)) / (1 + n_permutations))


def common_order(ranking: Sequence[int], truth: Sequence[int]) -> tuple[list[int], list[int]]:
    """Both orders restricted to the AUs both rank (the probe skips rare AUs, the logits AU43)."""
    shared = set(ranking) & set(truth)
    return [a for a in ranking if a in shared], [a for a in truth if a in shared]


def score_ranking(method: str, model: str, ranking: Sequence[int], truth: Sequence[int], *, k: int = TOP_K,
                  seed: int) -> dict[str, Any]:
    """Precision@k of one method's ranking against the truth, with its permutation p and chance."""
    r, t = common_order(ranking, truth)
    row = {"method": method, "model": model, "k": k, "n_aus": len(r),
           "method_top": ", ".join(map(au_label, r[:k])) or "nothing ranked",
           "true_top": ", ".join(map(au_label, (t if r else list(truth))[:k])),
           "precision": np.nan, "chance": np.nan, "p_permutation": np.nan}
    if len(r) <= k:  # nothing to score: the method ranked too few AUs (e.g. no target image)
        return row
    return row | {"precision": precision_at_k(r, t, k), "chance": k / len(r),
                  "p_permutation": permutation_p(r, t, k, seed=seed)}


def precision_table(truth: pd.DataFrame, *, lrp: Mapping[str, pd.DataFrame] | None, probe_sweep: pd.DataFrame | None,
                    k: int = TOP_K, seed: int) -> pd.DataFrame:
    """Precision@k of the LRP ranking (FreezeB0) and of the probe sweep (every FreezeB<k>).

    Parameters
    ----------
    truth : DataFrame
        :func:`forgotten_by_k` output (the ground truth).
    lrp : mapping comparison name -> ranking table, or None
    probe_sweep : :func:`probing.sweep` output, or None
    """
    rows = []
    b0 = pipeline.model_name(0)
    if lrp is not None and b0 in lrp:
        true_b0 = truth_ranking(truth[truth["model"] == b0])
        rows.append(score_ranking("LRP regions", b0, lrp_order(lrp[b0]), true_b0, k=k, seed=seed))
    if probe_sweep is not None:
        for kk in COMPARED_KS:
            name = pipeline.model_name(kk)
            rows.append(score_ranking("probe sweep", name, probe_order(probe_sweep, name),
                                      truth_ranking(truth[truth["model"] == name]), k=k, seed=seed))
    return pd.DataFrame(rows)


# =========================================================================== 6. summaries
def control_summary(truth_controls: Mapping[str, pd.DataFrame], lrp: Mapping[str, pd.DataFrame],
                    probes: Mapping[str, pd.DataFrame], *, control_au: int) -> pd.DataFrame:
    """The positive control, X-free against sham: what each measure says about AU X.

    Returns
    -------
    DataFrame, one row (``X-free vs sham``)
        ground truth ratio of AU X [interval], whether it is forgotten and its rank among
        the AUs (1 = most forgotten); LRP rank of X and its flag; probe difference of X,
        its rank and its flag; and the other AUs each measure flags.
    """
    name = au_label(control_au)
    model = X_FREE
    gt = truth_controls[model].loc[name]
    truth_order = truth_ranking(truth_controls[model])
    lrp_table = lrp[model]
    flags_lrp = lrp_flags(lrp_table)
    probe_part = probes["controls"][probes["controls"]["model"] == model].set_index("au")
    flags_probe = probe_flags(probes["controls"], model)
    probe_rank = probe_order(probes["controls"], model)
    rank = lrp_table.loc[name, "rank"]
    row = {
        "model": f"{model} vs {SHAM}",
        f"truth: {name} feature ratio [95 %]": f"{gt['effect']:.2f} [{gt['low']:.2f}, {gt['high']:.2f}]",
        f"truth: {name} forgotten": bool(gt["forgotten"]),
        f"truth: rank of {name}": _rank_text(control_au, truth_order),
        f"LRP: rank of {name}": "—" if pd.isna(rank) else f"{int(rank)} of {len(lrp_table)}",
        f"LRP: {name} flagged": control_au in flags_lrp,
        "LRP: flags": ", ".join(map(au_label, flags_lrp)) or "none",
        f"probe: {name} F1 diff": (f"{100 * probe_part.loc[control_au, 'mean_difference']:+.1f}"
                                   if control_au in probe_part.index else "not probed"),
        f"probe: rank of {name}": _rank_text(control_au, probe_rank),
        f"probe: {name} flagged": control_au in flags_probe,
        "probe: flags": ", ".join(map(au_label, flags_probe)) or "none",
    }
    return pd.DataFrame([row]).set_index("model")


def _rank_text(code: int, order: Sequence[int]) -> str:
    """"r of n" for AU ``code`` in a ranking (most forgotten first), "—" if not ranked."""
    return f"{list(order).index(code) + 1} of {len(order)}" if code in order else "—"


def null_summary(truth_null: pd.DataFrame, lrp: Mapping[str, pd.DataFrame], probes: Mapping[str, pd.DataFrame], *,
                 alpha: float = ALPHA) -> pd.DataFrame:
    """How many AUs each measure flags when two FreezeB0 differ only in their seed.

    Returns
    -------
    DataFrame, one row per measure: ``flags`` (count), ``of`` (AUs tested), ``expected``
    (alpha x tested without multiplicity correction, 0 to alpha with), ``which``.
    """
    gt_flags = [int(a) for a in truth_null.loc[truth_null["forgotten"], "au"]]
    gt_tested = int(truth_null["effect"].notna().sum())
    loo_flags = null_leave_one_out(truth_null)
    null_probe = probes["null"]
    tested_probe = int((null_probe["model"] == NULL).sum())
    rows = [
        {"measure": "truth: feature ratio interval < 1", "flags": len(gt_flags), "of": gt_tested,
         "expected if no change": f"≈ {(1 - LEVEL) / 2 * gt_tested:.1f} (one side of a {LEVEL:.0%} interval)",
         "which": gt_flags},
        {"measure": "truth: beyond seed noise (each AU held out)", "flags": len(loo_flags), "of": gt_tested,
         "expected if no change": f"≈ {(1 - LEVEL) / 2 * gt_tested:.1f} (one side of a {LEVEL:.0%} prediction interval)",
         "which": loo_flags},
        {"measure": "LRP regions (Holm)", "flags": len(lrp_flags(lrp[NULL], alpha=alpha)),
         "of": int(lrp[NULL]["difference"].notna().sum()), "expected if no change": f"any flag with prob. ≤ {alpha}",
         "which": lrp_flags(lrp[NULL], alpha=alpha)},
        {"measure": "probe, corrected t (per AU)", "flags": len(probe_flags(null_probe, NULL, holm=False)),
         "of": tested_probe, "expected if no change": f"≈ {alpha * tested_probe:.1f}",
         "which": probe_flags(null_probe, NULL, holm=False)},
        {"measure": "probe, corrected t (Holm)", "flags": len(probe_flags(null_probe, NULL)), "of": tested_probe,
         "expected if no change": f"any flag with prob. ≤ {alpha}", "which": probe_flags(null_probe, NULL)},
    ]
    out = pd.DataFrame(rows).set_index("measure")
    out["which"] = out["which"].map(lambda aus: ", ".join(map(au_label, aus)) or "none")
    return out


def _verdict_p(p: float, *, alpha: float = ALPHA) -> str:
    return "holds" if p < alpha else "inconclusive"


#: The AUs the paper finds FreezeB0 forgot (§5): AU5 (surprise) and AU14 (contempt).
PAPER_FORGOTTEN_AUS = (5, 14)


def paper_aus_claim(truth: pd.DataFrame, *, aus: Sequence[int] = PAPER_FORGOTTEN_AUS) -> Claim:
    """Did FreezeB0 truly forget the paper's AUs? The counterfactual truth, beyond seed noise.

    Rule: holds if every AU in ``aus`` is forgotten beyond seed noise
    (:func:`beyond_seed_noise`); fails if none has a ratio interval below 1; inconclusive
    otherwise.
    """
    b0 = truth[truth["model"] == pipeline.model_name(0)].set_index("au")
    beyond = [a for a in aus if bool(b0.loc[a, "forgotten_beyond_seed"])]
    below = [a for a in aus if bool(b0.loc[a, "forgotten"])]
    threshold = float(b0["seed_threshold"].iloc[0])
    verdict = "holds" if len(beyond) == len(aus) else "fails" if not below else "inconclusive"
    names = " and ".join(au_label(a) for a in aus)
    return Claim(
        "GT-paper-AUs-forgotten", PAPER, "§5, §6 (beyond the paper)",
        f"FreezeB0 truly forgot {names}: the counterfactual ground truth, beyond seed noise",
        "FreezeB0 forgot AU5 (surprise) and AU14 (contempt), read from LRP maps and probes",
        "; ".join(f"{au_label(a)} ratio {b0.loc[a, 'effect']:.2f} [{b0.loc[a, 'low']:.2f}, {b0.loc[a, 'high']:.2f}]"
                  for a in aus)
        + f"; seed threshold {threshold:.2f}; forgotten beyond seed noise: "
        + (", ".join(map(au_label, b0.index[b0["forgotten_beyond_seed"]])) or "none"),
        verdict,
        "ratio = FreezeB0 / FreezeB5 counterfactual feature sensitivity; forgotten beyond seed noise = 95 % pair "
        "bootstrap interval below 1 and ratio below exp(-t sigma), sigma the RMS log ratio of two FreezeB0 seeds; "
        "holds if all the paper's AUs pass, fails if none has an interval below 1")


def ground_truth_claims(precision: pd.DataFrame, controls: pd.DataFrame, null: pd.DataFrame, *, control_au: int,
                        truth: pd.DataFrame | None = None, alpha: float = ALPHA) -> list[Claim]:
    """The chapter's claims: the method against the ground truth and its controls.

    Rules
    -----
    - the paper's AUs (when ``truth`` comes through :func:`beyond_seed_noise`): see
      :func:`paper_aus_claim`.
    - recovery (LRP, probe for FreezeB0): holds if precision@k beats a random order with
      permutation p < alpha; fails if precision is 0; inconclusive otherwise.
    - positive control (X-free against sham): holds if both measures flag X; fails if
      neither does; inconclusive if one does, or if the counterfactual truth does not
      confirm that X was lost (the control itself failed).
    - null control: holds if the Holm-corrected measures flag nothing and the per-AU probe
      test flags at most ``2 * alpha * tested + 1`` AUs; fails otherwise.
    """
    out = [paper_aus_claim(truth)] if truth is not None and "forgotten_beyond_seed" in truth else []
    for method, claim_id in (("LRP regions", "GT-LRP-recovers"), ("probe sweep", "GT-probe-recovers")):
        part = precision[(precision["method"] == method) & (precision["model"] == pipeline.model_name(0))]
        if part.empty:
            continue
        r = part.iloc[0]
        verdict = ("inconclusive" if not np.isfinite(r["precision"]) else "fails" if r["precision"] == 0
                   else _verdict_p(r["p_permutation"], alpha=alpha))
        out.append(Claim(
            claim_id, PAPER, "§4.2-§4.3 (beyond the paper)",
            f"The {method} ranking recovers the AUs FreezeB0 truly forgot (precision@{int(r['k'])} above chance)",
            "the paper assumes its method finds the forgotten AUs",
            f"precision@{int(r['k'])} = {r['precision']:.2f} (chance {r['chance']:.2f}, permutation p = "
            f"{r['p_permutation']:.3g}); method top: {r['method_top']}; true top: {r['true_top']}",
            verdict,
            "truth: AUs ranked by 1 - (feature sensitivity of FreezeB0 / of FreezeB5) on counterfactual pairs; "
            f"holds if permutation p < {alpha}, fails if no true AU is in the method's top k"))
    name = au_label(control_au)
    x = controls.iloc[0]
    flagged = [bool(x[f"LRP: {name} flagged"]), bool(x[f"probe: {name} flagged"])]
    lost = bool(x[f"truth: {name} forgotten"])
    verdict = ("inconclusive" if not lost else "holds" if all(flagged) else "fails" if not any(flagged)
               else "inconclusive")
    out.append(Claim(
        "GT-positive-control", PAPER, "beyond the paper",
        f"The method flags {name} for a model whose block 5 learned again without {name}, against its sham",
        "—",
        f"truth: {name} ratio {x[f'truth: {name} feature ratio [95 %]']}, rank {x[f'truth: rank of {name}']}; "
        f"LRP {'flags' if flagged[0] else 'does not flag'} {name} (rank {x[f'LRP: rank of {name}']}); probe "
        f"{'flags' if flagged[1] else 'does not flag'} it ({x[f'probe: {name} F1 diff']} F1 points, rank "
        f"{x[f'probe: rank of {name}']})",
        verdict,
        "X-free vs sham: the same re-drawn block 5 fine-tuned on the same faces, with and without X; flag: LRP extra "
        "difference > 0 with Holm p < 0.05; probe F1 difference < 0 with corrected-t Holm p < 0.05; holds if both "
        "flag X, fails if neither does; inconclusive if one does, or whenever the counterfactual truth does not "
        "confirm that X was lost (the control failed)"))
    holm_flags = int(null.loc["LRP regions (Holm)", "flags"] + null.loc["probe, corrected t (Holm)", "flags"])
    per_au = null.loc["probe, corrected t (per AU)"]
    limit = 2 * alpha * int(per_au["of"]) + 1
    verdict = "holds" if holm_flags == 0 and per_au["flags"] <= limit else "fails"
    out.append(Claim(
        "GT-null-control", PAPER, "beyond the paper",
        "Two FreezeB0 that differ only in their seed: the method flags nothing beyond alpha",
        "—",
        "; ".join(f"{m}: {int(r['flags'])} of {int(r['of'])} ({r['which']})" for m, r in null.iterrows()),
        verdict,
        f"holds if the Holm-corrected LRP and probe tests flag no AU and the per-AU corrected probe test at most "
        f"2 alpha n + 1 = {limit:.1f}; the ground-truth row shows what seed alone does to the counterfactual measure"))
    return out
