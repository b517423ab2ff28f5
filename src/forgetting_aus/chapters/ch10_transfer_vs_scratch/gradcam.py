"""Chapter 10, Figures 1 and 2: Grad-CAM class maps against the regions of importance (DICE, IoU).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forgetting_aus.chapters.ch10_transfer_vs_scratch.study import SIX_EMOTIONS, StudyResults


def class_overlap(cams: np.ndarray, references: np.ndarray, *, reference_level: float = 0.5) -> pd.DataFrame:
    """DICE and IoU between thresholded class-average maps and the regions of importance.

    The reference of class ``c`` is ``references[c] >= reference_level`` (pixels inside
    the prototype regions of at least that share of the class's images). The Grad-CAM
    class average is thresholded to the same area: its pixels at or above its own
    ``1 - area`` quantile (``explain.overlap.threshold_map``), keeping only positive
    evidence.

    Parameters
    ----------
    cams : ndarray, shape (k, S, S)
        Class-average Grad-CAM maps (NaN rows: class absent, skipped).
    references : ndarray, shape (k, S, S)
        From :func:`reference_masks`.
    reference_level : float in (0, 1], keyword-only

    Returns
    -------
    DataFrame
        One row per class present in both: ``class`` (name), ``dice``, ``iou``,
        ``area`` (reference area / image area), ``dice_chance`` (= area, the expected
        DICE of a random mask of that area) and ``iou_chance`` (area / (2 - area)).
    """
    from forgetting_aus.explain import overlap

    cams = np.asarray(cams, dtype=np.float64)
    references = np.asarray(references, dtype=np.float64)
    if cams.shape != references.shape or cams.ndim != 3:
        raise ValueError(f"cams and references must both be (classes, S, S); got {cams.shape} and {references.shape}")
    if not 0.0 < reference_level <= 1.0:
        raise ValueError(f"reference_level must lie in (0, 1], got {reference_level}")
    rows = []
    for c in range(len(cams)):
        if np.isnan(cams[c]).all() or np.isnan(references[c]).all():
            continue
        reference = references[c] >= reference_level
        area = float(reference.mean())
        if area == 0.0:
            continue
        salient = overlap.threshold_map(cams[c], quantile=1.0 - area) & (cams[c] > 0)
        rows.append({"class": SIX_EMOTIONS[c] if len(cams) == len(SIX_EMOTIONS) else str(c),
                     "dice": overlap.dice(salient, reference), "iou": overlap.iou(salient, reference),
                     "area": area, "dice_chance": area, "iou_chance": area / (2.0 - area)})
    return pd.DataFrame(rows, columns=["class", "dice", "iou", "area", "dice_chance", "iou_chance"])


def gradcam_overlap(results: StudyResults, *, reference_level: float = 0.5) -> pd.DataFrame:
    """:func:`class_overlap` for every (model, scheme, fold, dataset) of the study.

    Returns
    -------
    DataFrame
        Columns ``model``, ``scheme``, ``fold``, ``dataset`` and those of
        :func:`class_overlap`, one row per class.
    """
    parts = []
    for (model_name, scheme, fold, dataset), cams in results.cams.items():
        table = class_overlap(cams, results.references[(fold, dataset)], reference_level=reference_level)
        table.insert(0, "dataset", dataset)
        table.insert(0, "fold", fold)
        table.insert(0, "scheme", scheme)
        table.insert(0, "model", model_name)
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


def overlap_summary(overlaps: pd.DataFrame) -> pd.DataFrame:
    """Mean over classes per fold (the paper's "mean across all classes"), then mean and SD over folds.

    Returns
    -------
    DataFrame indexed by (dataset, model, scheme)
        ``dice_mean``, ``dice_sd``, ``iou_mean``, ``iou_sd``, ``dice_chance``,
        ``iou_chance``, ``n_folds``.
    """
    per_fold = overlaps.groupby(["dataset", "model", "scheme", "fold"], sort=False)[
        ["dice", "iou", "dice_chance", "iou_chance"]].mean()
    grouped = per_fold.groupby(level=["dataset", "model", "scheme"], sort=False)
    out = pd.DataFrame({"dice_mean": grouped["dice"].mean(), "dice_sd": grouped["dice"].std(ddof=1),
                        "iou_mean": grouped["iou"].mean(), "iou_sd": grouped["iou"].std(ddof=1),
                        "dice_chance": grouped["dice_chance"].mean(), "iou_chance": grouped["iou_chance"].mean(),
                        "n_folds": grouped["dice"].size()})
    return out


def mean_class_maps(results: StudyResults, *, dataset: str, emotion: str) -> tuple[dict[tuple[str, str], np.ndarray],
                                                                                   np.ndarray]:
    """One class's Grad-CAM class averages, averaged over folds, and its region of importance.

    Returns
    -------
    maps : dict
        ``(model, scheme) -> (S, S)`` float32.
    reference : ndarray of float32, shape (S, S)
        The fold-averaged :func:`reference_masks` of that class.
    """
    c = SIX_EMOTIONS.index(emotion)
    grouped: dict[tuple[str, str], list[np.ndarray]] = {}
    for (model_name, scheme, _, name), cams in results.cams.items():
        if name == dataset:
            grouped.setdefault((model_name, scheme), []).append(cams[c])
    if not grouped:
        raise ValueError(f"no maps for dataset {dataset!r}; datasets: {sorted({k[3] for k in results.cams})}")
    maps = {key: np.mean(values, axis=0).astype(np.float32) for key, values in grouped.items()}
    reference = np.mean([ref[c] for (_, name), ref in results.references.items() if name == dataset], axis=0)
    return maps, reference.astype(np.float32)
