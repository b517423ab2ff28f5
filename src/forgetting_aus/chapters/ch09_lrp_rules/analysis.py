"""Chapter 09, scoring the rules: relevance in the ground-truth AU regions, face parts, runtimes.

Each rule's maps (from :func:`.study.rule_maps`, explaining every scored image's true
class) are asked what share of their positive relevance falls in the ground-truth regions
of the AUs that define that class (:data:`CLASS_AUS`), against the share a uniform map
would put there (the regions' area fraction). Intervals resample whole subjects.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forgetting_aus import facs
from forgetting_aus.chapters.ch09_lrp_rules.study import (
    CLASS_NAMES,
    CLASSES,
    RULES,
    RuleMaps,
    rule_maps,
    three_class_data,
)
from forgetting_aus.config import Config

#: The AUs that define each class in this world: the PSPI AUs for pain, the prototypes
#: (paper's Figure 6, after Langner et al.) for happy and disgust.
CLASS_AUS: dict[str, tuple[int, ...]] = {
    "pain": tuple(facs.PSPI_AUS),
    "disgust": tuple(facs.EMOTION_PROTOTYPES["disgust"]),
    "happy": tuple(facs.EMOTION_PROTOTYPES["happy"]),
}



#: "The eyes, the nose and the mouth" as unions of named regions of
#: :func:`forgetting_aus.explain.regions.au_region_masks` (the nose: the band along the
#: bridge down to the tip, landmarks 27-30).
FACE_PARTS: dict[str, tuple[str, ...]] = {"eyes": ("eyes",), "nose": ("nose_bridge",), "mouth": ("mouth",)}



def rule_heatmaps(cfg: Config, *, maps: RuleMaps | None = None) -> dict[str, Any]:
    """What Weitz's Figure 3 shows: pain images, their labels and the four rules' maps.

    Returns
    -------
    dict
        ``images`` uint8 (k, S, S, 3), ``true`` and ``predicted`` (lists of class names),
        ``maps`` (dict rule -> float32 (k, S, S), explaining the predicted class), ``pspi``
        float32 (k,).
    """
    maps = maps if maps is not None else rule_maps(cfg)
    data = three_class_data(cfg)
    rows = maps.figure_index
    return {"images": data.split.images[rows], "true": [CLASS_NAMES[i] for i in data.split.labels[rows]],
            "predicted": [CLASS_NAMES[i] for i in maps.figure_targets], "maps": maps.figure_maps,
            "pspi": data.pspi[rows]}


def class_region_masks(landmarks: np.ndarray, labels: np.ndarray, *, size: int) -> np.ndarray:
    """Ground-truth mask of every image: the union of the regions of its class's AUs.

    Parameters
    ----------
    landmarks : float array of shape (n, 68, 2)
        ``(x, y)`` in the maps' pixel frame.
    labels : int array of shape (n,)
        Indices into :data:`CLASSES`; the AUs are :data:`CLASS_AUS`.
    size : int, keyword-only
        Side of the square maps in pixels.

    Returns
    -------
    bool array of shape (n, size, size)
    """
    from forgetting_aus.explain import regions

    labels = np.asarray(labels)
    out = np.zeros((len(labels), size, size), dtype=bool)
    for label, name in enumerate(CLASSES):
        rows = np.flatnonzero(labels == label)
        if len(rows):
            for mask in regions.au_masks(np.asarray(landmarks)[rows], size, aus=CLASS_AUS[name]).values():
                out[rows] |= mask
    return out


def face_part_masks(landmarks: np.ndarray, *, size: int) -> np.ndarray:
    """Union of the eyes, nose and mouth regions (:data:`FACE_PARTS`), bool (n, size, size)."""
    from forgetting_aus.explain import regions

    named = regions.au_region_masks(landmarks, size)
    out = np.zeros_like(named["eyes"])
    for names in FACE_PARTS.values():
        for name in names:
            out |= named[name]
    return out


def cluster_bootstrap_mean(values: np.ndarray, groups: np.ndarray, *, n_boot: int, seed: int,
                           level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` and a percentile interval that resamples whole subjects.

    Images of one subject are not independent, so each replicate draws as many subjects as
    there are, with replacement, and averages all their images. NaN values are dropped.

    Returns
    -------
    (mean, low, high) : tuple of float
        NaN when no finite value is left; ``low == high == mean`` with a single subject.
    """
    values, groups = np.asarray(values, dtype=float), np.asarray(groups).astype(str)
    keep = np.isfinite(values)
    values, groups = values[keep], groups[keep]
    if len(values) == 0:
        return (np.nan, np.nan, np.nan)
    names, inverse = np.unique(groups, return_inverse=True)
    sums = np.bincount(inverse, weights=values)
    counts = np.bincount(inverse).astype(float)
    mean = float(values.mean())
    if len(names) < 2:
        return (mean, mean, mean)
    draws = np.random.default_rng(seed).integers(0, len(names), size=(n_boot, len(names)))
    replicate = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(replicate, [alpha, 1 - alpha])
    return (mean, float(low), float(high))


def rule_region_scores(cfg: Config, *, maps: RuleMaps | None = None) -> pd.DataFrame:
    """Per image and rule: share of positive relevance in the class's AU regions.

    Returns
    -------
    DataFrame, one row per (rule, scored image)
        ``rule``, ``image`` (row of the data set), ``class`` (Table 2 name), ``subject``,
        ``share`` (positive relevance inside / all positive relevance, NaN for a map
        without positive relevance), ``uniform_baseline`` (area fraction of the regions)
        and ``excess`` (share - baseline), from
        :func:`forgetting_aus.explain.regions.relevance_share_in_masks`.
    """
    from forgetting_aus.explain import regions

    maps = maps if maps is not None else rule_maps(cfg)
    data = three_class_data(cfg)
    rows = maps.score_index
    masks = class_region_masks(data.split.landmarks[rows], data.split.labels[rows], size=cfg.image_size)
    parts = []
    for rule in RULES:
        shares = regions.relevance_share_in_masks(maps.score_maps[rule], [masks]).reset_index(drop=True)
        shares.insert(0, "rule", rule)
        shares.insert(1, "image", rows)
        shares.insert(2, "class", np.asarray(CLASS_NAMES)[data.split.labels[rows]])
        shares.insert(3, "subject", data.split.groups[rows])
        parts.append(shares)
    return pd.concat(parts, ignore_index=True)


def summarize_region_scores(scores: pd.DataFrame, *, n_boot: int, seed: int) -> pd.DataFrame:
    """Mean share, baseline and excess per rule and class (and over all classes).

    Parameters
    ----------
    scores : DataFrame
        From :func:`rule_region_scores` (or :func:`face_part_scores`).
    n_boot, seed : int, keyword-only
        Subject-cluster bootstrap of the mean excess (:func:`cluster_bootstrap_mean`).

    Returns
    -------
    DataFrame indexed by (``rule``, ``class``; class "all" pools the classes)
        ``share``, ``uniform_baseline``, ``excess`` (means over images), ``excess_low``,
        ``excess_high`` (95 % interval), ``above_baseline`` (fraction of images whose share
        exceeds their baseline) and ``n`` (images with a finite share).
    """
    rows = []
    for rule in scores["rule"].unique():
        of_rule = scores[scores["rule"] == rule]
        for name in [*[c for c in CLASS_NAMES if c in set(of_rule["class"])], "all"]:
            part = of_rule if name == "all" else of_rule[of_rule["class"] == name]
            finite = part[np.isfinite(part["share"].to_numpy(dtype=float))]
            mean, low, high = cluster_bootstrap_mean(part["excess"].to_numpy(), part["subject"].to_numpy(),
                                                     n_boot=n_boot, seed=seed)
            rows.append({"rule": rule, "class": name, "share": finite["share"].mean(),
                         "uniform_baseline": finite["uniform_baseline"].mean(), "excess": mean,
                         "excess_low": low, "excess_high": high,
                         "above_baseline": float((finite["share"] > finite["uniform_baseline"]).mean())
                         if len(finite) else np.nan, "n": int(len(finite))})
    return pd.DataFrame(rows).set_index(["rule", "class"])


def face_part_scores(cfg: Config, *, rule: str = "LRP-PresetAFlat", maps: RuleMaps | None = None) -> pd.DataFrame:
    """Per scored image: share of ``rule``'s positive relevance in eyes + nose + mouth.

    Same columns as :func:`rule_region_scores`; the regions are :data:`FACE_PARTS`.
    """
    from forgetting_aus.explain import regions

    maps = maps if maps is not None else rule_maps(cfg)
    data = three_class_data(cfg)
    rows = maps.score_index
    masks = face_part_masks(data.split.landmarks[rows], size=cfg.image_size)
    shares = regions.relevance_share_in_masks(maps.score_maps[rule], [masks]).reset_index(drop=True)
    shares.insert(0, "rule", rule)
    shares.insert(1, "image", rows)
    shares.insert(2, "class", np.asarray(CLASS_NAMES)[data.split.labels[rows]])
    shares.insert(3, "subject", data.split.groups[rows])
    return shares


def rule_runtimes(maps: RuleMaps) -> pd.DataFrame:
    """Maps per second of every rule, measured in this run (one worker, analysis only)."""
    n = len(maps.score_index)
    return pd.DataFrame({"maps": [n] * len(RULES), "seconds": [maps.seconds[r] for r in RULES],
                         "maps_per_second": [n / max(maps.seconds[r], 1e-12) for r in RULES]},
                        index=pd.Index(list(RULES), name="rule"))


def shared_class_aus() -> dict[tuple[str, str], str]:
    """The AUs two classes share (from :data:`CLASS_AUS`), e.g. ``("pain", "happy") -> "AU6"``.

    Returns
    -------
    dict (class a, class b) -> str
        Shared AUs joined by " and " ("none" when they share none), for every ordered pair
        of distinct classes.
    """
    out = {}
    for a in CLASSES:
        for b in CLASSES:
            if a != b:
                shared = sorted(set(CLASS_AUS[a]) & set(CLASS_AUS[b]))
                out[(a, b)] = " and ".join(f"AU{code}" for code in shared) or "none"
    return out
