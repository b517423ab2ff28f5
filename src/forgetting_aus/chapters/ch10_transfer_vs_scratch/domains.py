"""Chapter 10, the stand-ins' domain shift: can a simple classifier tell the sets apart?

The real OULU-CASIA, FACES and JAFFE differ in who was filmed and how (the stand-ins'
styles: ``synth.twins.POSED_INTENSITY`` and ``synth.identity.NUISANCE_RANGES``). A domain
classifier measures how far apart two stand-ins are in their pixels: a standardised
logistic regression on small thumbnails, cross-validated with subject-grouped folds, so
it must tell unseen people's images apart. Accuracy 0.5 means the sets are
indistinguishable to it; near 1, every image gives its set away. Its accuracy says the
sets differ, not that a model trained on one fails on the other: chapter 10 measures that
drop separately (``tables.dataset_drops``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from statsmodels.stats.proportion import proportion_confint

from forgetting_aus.chapters.ch10_transfer_vs_scratch.study import DATASETS

#: Side of the thumbnails the domain classifier sees (16 x 16 x 3 = 768 features).
THUMBNAIL_PIXELS = 16
#: Subject-grouped folds of the domain classifier's cross-validation.
DOMAIN_FOLDS = 5


def thumbnails(images: np.ndarray, *, pixels: int = THUMBNAIL_PIXELS) -> np.ndarray:
    """Block-averaged thumbnails, flattened.

    Parameters
    ----------
    images : ndarray of shape (n, S, S, 3), uint8
        ``S`` at least ``pixels``; the last ``S mod pixels`` rows and columns are dropped.
    pixels : int, keyword-only
        Side of the thumbnail.

    Returns
    -------
    ndarray of shape (n, pixels * pixels * 3), float32 in [0, 1]
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] < pixels or images.shape[2] < pixels:
        raise ValueError(f"thumbnails: need images of shape (n, S, S, channels) with S >= {pixels}, "
                         f"got {images.shape}")
    block = images.shape[1] // pixels
    cropped = images[:, :block * pixels, :block * pixels].astype(np.float32) / 255.0
    n, channels = len(images), images.shape[3]
    pooled = cropped.reshape(n, pixels, block, pixels, block, channels).mean(axis=(2, 4))
    return pooled.reshape(n, -1)


def domain_separability(images_a: np.ndarray, groups_a: np.ndarray, images_b: np.ndarray,
                        groups_b: np.ndarray, *, seed: int, n_splits: int = DOMAIN_FOLDS,
                        pixels: int = THUMBNAIL_PIXELS) -> dict[str, Any]:
    """Cross-validated accuracy of telling set A's images from set B's.

    The larger set is subsampled (without replacement) to the smaller one's size, so
    chance is one half. Folds are grouped by subject: every test image shows a person the
    classifier never saw.

    Parameters
    ----------
    images_a, images_b : ndarray of shape (n_a, S, S, 3) and (n_b, S, S, 3), uint8
    groups_a, groups_b : ndarray of shape (n_a,) and (n_b,)
        Subject ids; the two sets' subjects must differ.
    seed : int, keyword-only
        Of the subsampling and the fold shuffle.
    n_splits : int, keyword-only
    pixels : int, keyword-only
        Of :func:`thumbnails`.

    Returns
    -------
    dict
        ``accuracy`` (share of images assigned to their own set), ``low`` and ``high``
        (95 % Clopper-Pearson interval), ``n_images`` (both sets together), ``chance`` (0.5).
    """
    groups_a, groups_b = np.asarray(groups_a), np.asarray(groups_b)
    if len(images_a) != len(groups_a) or len(images_b) != len(groups_b):
        raise ValueError("domain_separability: every image needs its subject id (groups has another length)")
    if np.intersect1d(groups_a, groups_b).size:
        raise ValueError("domain_separability: the two sets share subject ids; the folds could not keep "
                         "people apart")
    rng = np.random.default_rng(seed)
    n = min(len(images_a), len(images_b))
    rows_a = np.sort(rng.choice(len(images_a), n, replace=False))
    rows_b = np.sort(rng.choice(len(images_b), n, replace=False))
    x = np.concatenate([thumbnails(images_a[rows_a], pixels=pixels), thumbnails(images_b[rows_b], pixels=pixels)])
    y = np.repeat([0, 1], n)
    groups = np.concatenate([groups_a[rows_a], groups_b[rows_b]])
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    predicted = cross_val_predict(classifier, x, y, groups=groups, cv=folds)
    correct = int((predicted == y).sum())
    low, high = proportion_confint(correct, len(y), alpha=0.05, method="beta")
    return {"accuracy": correct / len(y), "low": float(low), "high": float(high), "n_images": len(y),
            "chance": 0.5}


def domain_table(sets: dict[str, Any], *, reference: str = "oulu", seed: int) -> pd.DataFrame:
    """:func:`domain_separability` of the reference stand-in against every other one.

    Parameters
    ----------
    sets : mapping key -> pipeline.Split
        As ``study.six_emotion_sets`` (display names from ``study.DATASETS``).
    reference : str, keyword-only
        Key of the training set.
    seed : int, keyword-only

    Returns
    -------
    DataFrame indexed by "<reference> vs. <other>"
        ``accuracy``, ``low``, ``high`` (shares), ``n_images``, ``chance``.
    """
    names = {key: name for key, (name, *_rest) in DATASETS.items()}
    rows = {}
    for key, split in sets.items():
        if key == reference:
            continue
        base = sets[reference]
        rows[f"{names[reference]} vs. {names[key]}"] = domain_separability(
            base.images, base.groups, split.images, split.groups, seed=seed)
    return pd.DataFrame.from_dict(rows, orient="index")
