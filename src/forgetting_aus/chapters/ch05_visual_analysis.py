"""Chapter 05, §4.2 Visual analysis: which face regions FreezeB5 uses more than FreezeB<k>.

The paper explains the re-trained emotion models of §4.1 with LRP (z-rule on dense
layers, z+ on convolutions), on the emotion test images that FreezeB5 classifies
correctly and FreezeB<k> wrongly, and reads the difference of the two saliency maps by eye:
FreezeB5 attends more to the dimples (AU14) on *contempt* images and to the upper lids
(AU5) on *surprise* images. This module makes that reading reproducible:

1. :func:`select_images` / :func:`selections`: per studied emotion and per k, the *target*
   images (true class = the emotion, FreezeB5 right, FreezeB<k> wrong) and the *baseline*
   images (true class = the emotion, both right), each capped at ``lrp_max_images``.
2. :func:`explained_maps`: LRP maps of the true class, for every model and image needed,
   in one worker process (:func:`forgetting_aus.explain.lrp.explain_rows`, which chapter
   08 shares), cached in the artifact store (stage ``visual_lrp``) keyed by the model
   keys and the selected rows.
3. :func:`difference_maps`: ``D = R5/sum(R5) - Rk/sum(Rk)`` (shares of each model's
   explanation, so a larger logit does not look like more attention); Figure 3 min-max
   scales its saliency maps for display (:func:`forgetting_aus.explain.normalize_for_display`),
   Figure 5 draws ``D`` signed, on one scale centred on zero.
4. :func:`au_rankings`: per AU region, the mean positive ``D`` per pixel on the target
   images against the baseline images (:func:`forgetting_aus.explain.rank_aus`,
   one-sided Mann-Whitney, Holm over the AUs): the automated "visual inspection".
5. :func:`visual_claims`: the paper's two readings as claims.

Test rows are indices into ``pipeline.emotion_data(cfg)["test"]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgetting_aus import cache, facs, pipeline, publication, stats, table_view
from forgetting_aus.claims import Claim
from forgetting_aus.config import Config
from forgetting_aus.explain import lrp, regions
from forgetting_aus.paper_values import PAPER
from forgetting_aus.pipeline import REFERENCE_K
from forgetting_aus.stats import ALPHA

#: Emotions the paper analyses and the AU its human observer read from the difference maps.
STUDIED_EMOTIONS: dict[str, int] = {"contempt": 14, "surprise": 5}


#: The paper's comparison model, FreezeB0.
PAPER_K = 0


#: Models compared with FreezeB5 by default. Every extra k costs one model load and one
#: analyzer build (~20 s on 2 cores), so k = 1..4 are opt-in (``ks=`` of the functions).
DEFAULT_KS: tuple[int, ...] = (PAPER_K,)


#: Fewer target or baseline images than this and no verdict is drawn: a ranking of 18
#: regions from a handful of maps is noise.
MIN_IMAGES = 5


#: The paper's explanation method (z for Dense, z+ for Conv2D).
METHOD = "paper"


def emotion_index(emotion: str) -> int:
    """Index of ``emotion`` in ``facs.EMOTIONS`` (with a helpful error)."""
    if emotion not in facs.EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {facs.EMOTIONS}")
    return facs.EMOTIONS.index(emotion)


@dataclasses.dataclass(frozen=True)
class Selection:
    """Test images of one emotion for the comparison FreezeB5 vs FreezeB<k>.

    Attributes
    ----------
    emotion : str
    k : int
        The compared model FreezeB<k>.
    target : int64 (n_t,)
        Sorted test rows: true class ``emotion``, FreezeB5 right, FreezeB<k> wrong.
    baseline : int64 (n_b,)
        Sorted test rows: true class ``emotion``, both models right.
    n_target_available, n_baseline_available : int
        Qualifying images before the ``max_images`` cap.
    """

    emotion: str
    k: int
    target: np.ndarray
    baseline: np.ndarray
    n_target_available: int
    n_baseline_available: int

    @property
    def empty(self) -> bool:
        """True when there is no target image to explain."""
        return len(self.target) == 0


def _cap(candidates: np.ndarray, max_images: int, rng: np.random.Generator) -> np.ndarray:
    chosen = candidates if len(candidates) <= max_images else rng.choice(candidates, size=max_images, replace=False)
    return np.sort(chosen).astype(np.int64)


def select_images(labels: np.ndarray, y_reference: np.ndarray, y_other: np.ndarray, *, emotion: str, k: int,
                  max_images: int, seed: int) -> Selection:
    """Target and baseline images of one emotion (paper §4.2).

    Parameters
    ----------
    labels : int array of shape (n,)
        True emotion indices (``facs.EMOTIONS`` order) of the test images.
    y_reference, y_other : int arrays of shape (n,)
        Predictions of FreezeB5 and of FreezeB<k>.
    emotion : str, keyword-only
    k : int, keyword-only
        Which FreezeB<k> ``y_other`` belongs to (recorded, and part of the sampling seed).
    max_images : int, keyword-only
        Cap on each of target and baseline; larger sets are subsampled without replacement.
    seed : int, keyword-only
        The subsample depends on ``(seed, k, emotion)`` only, so adding another k or
        emotion does not change this selection.

    Returns
    -------
    Selection
    """
    labels, y_reference, y_other = (np.asarray(a) for a in (labels, y_reference, y_other))
    if not labels.shape == y_reference.shape == y_other.shape or labels.ndim != 1:
        raise ValueError(f"labels and both predictions must be 1-d of equal length, got shapes "
                         f"{labels.shape}, {y_reference.shape}, {y_other.shape}")
    if max_images < 1:
        raise ValueError(f"max_images must be a positive number of images, got {max_images}; set lrp_max_images >= 1")
    cls = emotion_index(emotion)
    of_class = labels == cls
    reference_right = y_reference == cls
    other_right = y_other == cls
    target = np.flatnonzero(of_class & reference_right & ~other_right)
    baseline = np.flatnonzero(of_class & reference_right & other_right)
    rng = np.random.default_rng([int(seed), int(k), cls])
    return Selection(emotion=emotion, k=int(k), target=_cap(target, max_images, rng),
                     baseline=_cap(baseline, max_images, rng), n_target_available=len(target),
                     n_baseline_available=len(baseline))


def selections(cfg: Config, *, ks: Iterable[int] = DEFAULT_KS,
               emotions: Iterable[str] = tuple(STUDIED_EMOTIONS)) -> dict[tuple[str, int], Selection]:
    """:func:`select_images` for every studied emotion and k, from the cached predictions.

    Uses the re-trained models of repetition 0 (the ones saved with their conv blocks).

    Returns
    -------
    dict (emotion, k) -> Selection
    """
    ks = _check_ks(ks)
    labels = pipeline.emotion_data(cfg)["test"].labels
    y_reference = pipeline.retrained_model(cfg, REFERENCE_K, 0).predictions()["y_pred"]
    out = {}
    for k in ks:
        y_other = pipeline.retrained_model(cfg, k, 0).predictions()["y_pred"]
        for emotion in emotions:
            out[(emotion, k)] = select_images(labels, y_reference, y_other, emotion=emotion, k=k,
                                              max_images=cfg.lrp_max_images, seed=cfg.seed)
    return out


def _check_ks(ks: Iterable[int]) -> tuple[int, ...]:
    ks = tuple(int(k) for k in ks)
    bad = [k for k in ks if k not in pipeline.FREEZE_LEVELS or k == REFERENCE_K]
    if bad or not ks:
        raise ValueError(f"ks must be a non-empty subset of {pipeline.FREEZE_LEVELS[:-1]} (compared with "
                         f"FreezeB{REFERENCE_K}), got {ks}")
    return ks


def selection_table(sels: Mapping[tuple[str, int], Selection]) -> pd.DataFrame:
    """Counts of qualifying and explained images per emotion and model (one row each)."""
    rows = [{"emotion": s.emotion, "compared with": pipeline.model_name(s.k),
             "B5 right, Bk wrong": s.n_target_available, "explained (target)": len(s.target),
             "both right": s.n_baseline_available, "explained (baseline)": len(s.baseline)}
            for s in sels.values()]
    columns = ["emotion", "compared with", "B5 right, Bk wrong", "explained (target)", "both right",
               "explained (baseline)"]
    return pd.DataFrame(rows, columns=columns)


@dataclasses.dataclass(frozen=True)
class ExplainedMaps:
    """LRP maps of the true class for the test rows each model needs.

    Attributes
    ----------
    rows : dict k -> int64 (n_k,)
        Sorted test rows explained for FreezeB<k> (k = 5 included).
    maps : dict k -> float32 (n_k, S, S)
        Signed relevance of the true class's pre-softmax logit, summed over channels.
    seconds : float
        Wall time of the LRP worker (0 when nothing needed explaining).
    """

    rows: dict[int, np.ndarray]
    maps: dict[int, np.ndarray]
    seconds: float = 0.0

    @property
    def n_maps(self) -> int:
        """Maps computed, over all models (an image explained for two models counts twice)."""
        return int(sum(len(rows) for rows in self.rows.values()))

    def of(self, k: int, rows: np.ndarray) -> np.ndarray:
        """Maps of FreezeB<k> for ``rows`` (in the order given), float32 (len(rows), S, S)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            shape = self.maps[k].shape[1:] if k in self.maps else (0, 0)
            return np.zeros((0, *shape), dtype=np.float32)
        have = self.rows.get(k, np.zeros(0, dtype=np.int64))
        position = np.minimum(np.searchsorted(have, rows), max(len(have) - 1, 0))
        found = have[position] == rows if len(have) else np.zeros(len(rows), dtype=bool)
        if not found.all():
            raise KeyError(f"FreezeB{k} was not explained on test rows {rows[~found][:10].tolist()}; "
                           "pass the same selections to explained_maps as to this lookup")
        return self.maps[k][position]


def rows_to_explain(sels: Mapping[tuple[str, int], Selection]) -> dict[int, np.ndarray]:
    """Test rows each model must explain: FreezeB5 every selected row, FreezeB<k> its own.

    Selections without target images are skipped (their baseline would rank nothing).

    Returns
    -------
    dict k -> sorted unique int64 rows; models with nothing to explain are left out.
    """
    needed: dict[int, list[np.ndarray]] = {}
    for s in sels.values():
        if s.empty:  # baselines alone rank nothing: skip their cost
            continue
        for k in (REFERENCE_K, s.k):
            needed.setdefault(k, []).extend([s.target, s.baseline])
    out = {k: np.unique(np.concatenate(parts)).astype(np.int64) for k, parts in needed.items()}
    return {k: rows for k, rows in sorted(out.items()) if len(rows)}


def explained_maps(cfg: Config, sels: Mapping[tuple[str, int], Selection], *,
                   explain: Callable | None = None) -> ExplainedMaps:
    """LRP maps for every selection, computed once and cached (stage ``visual_lrp``).

    The key holds the models' artifact keys (which encode the data, the training and the
    upstream models) and the selected rows, so a rerun with the same selection is a hit.
    """
    import time

    rows = rows_to_explain(sels)
    if not rows:
        return ExplainedMaps(rows={}, maps={}, seconds=0.0)
    trained = {k: pipeline.retrained_model(cfg, k, 0) for k in rows}
    params = {"models": {str(k): t.key for k, t in trained.items()}, "rows": {str(k): r for k, r in rows.items()},
              "method": METHOD, "explained_class": "true"}

    def make(folder: Path) -> dict[str, Any]:
        test = pipeline.emotion_data(cfg)["test"]
        started = time.perf_counter()
        maps = lrp.explain_rows({k: t.model_path for k, t in trained.items()}, test.images, test.labels, rows,
                                method=METHOD, explain=explain)
        seconds = time.perf_counter() - started
        cache.write_npz(folder / "maps.npz", **{f"rows_{k}": rows[k] for k in rows},
                        **{f"maps_{k}": maps[k] for k in rows})
        cache.write_json(folder / "timing.json", {"seconds": seconds})
        return {"n_maps": int(sum(len(r) for r in rows.values())), "seconds": round(seconds, 2)}

    folder = pipeline.store(cfg).get_or_make("visual_lrp", params, make)
    arrays = cache.read_npz(folder / "maps.npz")
    seconds = float(cache.read_json(folder / "timing.json")["seconds"])
    return ExplainedMaps(rows={k: arrays[f"rows_{k}"] for k in rows}, maps={k: arrays[f"maps_{k}"] for k in rows},
                         seconds=seconds)


def difference_maps(maps: ExplainedMaps, selection: Selection, *, which: str = "target") -> np.ndarray:
    """``D = R5/sum(R5) - Rk/sum(Rk)`` on the target (or baseline) images of a selection.

    Returns
    -------
    float32 (n, S, S)
        Positive where FreezeB5 puts a larger share of its relevance. Maps whose total
        relevance is <= 0 cannot be read as shares and come back all-NaN (region scores
        skip them).
    """
    if which not in ("target", "baseline"):
        raise ValueError(f"which must be 'target' or 'baseline', got {which!r}")
    rows = getattr(selection, which)
    return lrp.difference_map(maps.of(REFERENCE_K, rows), maps.of(selection.k, rows))


#: Two maps of the same face whose Pearson correlation reaches this count as indistinguishable
#: to the eye: at 0.9 one map leaves under a fifth of the other's variance unexplained. A
#: convention fixed before the run, not a perceptual measurement.
INDISTINGUISHABLE_R = 0.9


def map_similarity(maps_a: np.ndarray, maps_b: np.ndarray) -> np.ndarray:
    """Pearson correlation of two models' maps, per image ("indistinguishable to the eye").

    Parameters
    ----------
    maps_a, maps_b : float (n, S, S)

    Returns
    -------
    float64 (n,)
        NaN where a map is constant.
    """
    if np.shape(maps_a) != np.shape(maps_b) or np.ndim(maps_a) != 3:
        raise ValueError(f"maps must have equal shapes (n, S, S), got {np.shape(maps_a)} and {np.shape(maps_b)}")
    n, height, width = np.shape(maps_a)
    a = np.asarray(maps_a, dtype=np.float64).reshape(n, height * width)
    b = np.asarray(maps_b, dtype=np.float64).reshape(n, height * width)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norm = np.sqrt((a**2).sum(axis=1) * (b**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, (a * b).sum(axis=1) / np.where(norm > 0, norm, 1), np.nan)


def similarity_table(sels: Mapping[tuple[str, int], Selection], maps: ExplainedMaps) -> pd.DataFrame:
    """How alike FreezeB5's and FreezeB<k>'s raw maps are on the target images, and how
    many of them cannot be read as shares.

    Returns
    -------
    DataFrame, one row per (emotion, k)
        ``explained`` target images; ``median r`` and ``min r`` (Pearson correlation per
        image, :func:`map_similarity`; NaN without images); ``with r``: images whose two
        maps are both non-constant, so r is defined; ``B5 total <= 0`` and
        ``Bk total <= 0``: target maps whose total relevance is not positive (the explained
        logit is negative, typical when the model is wrong), which the difference maps
        and the region scores must leave out.
    """
    rows = []
    for (emotion, k), s in sels.items():
        reference = maps.of(REFERENCE_K, s.target) if not s.empty else np.zeros((0, 1, 1))
        other = maps.of(k, s.target) if not s.empty else np.zeros((0, 1, 1))
        r = map_similarity(reference, other)
        finite = r[np.isfinite(r)]
        rows.append({"emotion": emotion, "compared with": pipeline.model_name(k), "explained": len(s.target),
                     "median r": float(np.median(finite)) if len(finite) else np.nan,
                     "min r": float(finite.min()) if len(finite) else np.nan,
                     "with r": len(finite), f"r >= {INDISTINGUISHABLE_R}": int((finite >= INDISTINGUISHABLE_R).sum()),
                     "B5 total <= 0": int((reference.sum(axis=(1, 2)) <= 0).sum()),
                     "Bk total <= 0": int((other.sum(axis=(1, 2)) <= 0).sum())})
    return pd.DataFrame(rows, columns=["emotion", "compared with", "explained", "median r", "min r", "with r",
                                       f"r >= {INDISTINGUISHABLE_R}", "B5 total <= 0", "Bk total <= 0"])


def indistinguishable_claim(table: pd.DataFrame, *, k: int = PAPER_K, level: float = 0.95) -> Claim:
    """§4.2's "the two saliency maps often appear indistinguishable", on :func:`similarity_table`.

    Pools the target images of every emotion for FreezeB5 against FreezeB<k>: the share
    whose maps correlate at :data:`INDISTINGUISHABLE_R` or more, with a Clopper-Pearson
    interval; "often" is read as "in at least half of the images".
    """
    from statsmodels.stats.proportion import proportion_confint

    part = table[table["compared with"] == pipeline.model_name(k)]
    n, alike = int(part["with r"].sum()), int(part[f"r >= {INDISTINGUISHABLE_R}"].sum())
    if n:
        low, high = proportion_confint(alike, n, alpha=1 - level, method="beta")
        verdict = "holds" if low >= 0.5 else "fails" if high < 0.5 else "inconclusive"
        measured = (f"{alike} of {n} target images ({alike / n:.0%}, 95 % interval {low:.0%}-{high:.0%}) have maps "
                    f"correlating at r >= {INDISTINGUISHABLE_R}; median r by emotion: "
                    + ", ".join(f"{e} {r:.2f}" for e, r in zip(part["emotion"], part["median r"], strict=True)))
    else:
        verdict, measured = "inconclusive", "no target image"
    return Claim(
        "P-maps-indistinguishable", PAPER, "§4.2, Figure 3",
        f"For the same image and class, the saliency maps of FreezeB5 and {pipeline.model_name(k)} often appear "
        "indistinguishable to the human eye",
        "seen by eye (Figure 3)", measured, verdict,
        f"maps of the explained class on the target images of chapter 05 (B5 right, B{k} wrong); indistinguishable: "
        f"Pearson r >= {INDISTINGUISHABLE_R}; holds if the Clopper-Pearson interval of their share lies at or above "
        "one half, fails if below")


def median_similarity(table: pd.DataFrame, emotion: str) -> float:
    """The ``median r`` of :func:`similarity_table` for ``emotion`` (NaN without target images)."""
    return float(table.set_index("emotion").loc[emotion, "median r"])


def median_similarity_text(table: pd.DataFrame, emotion: str) -> str:
    """:func:`median_similarity` for the prose: ``"0.70"``, or why there is none."""
    r = median_similarity(table, emotion)
    return f"{r:.2f}" if np.isfinite(r) else f"undefined (no {emotion} target image has two maps to correlate)"


def au_ranking(diff_target: np.ndarray, landmarks_target: np.ndarray, diff_baseline: np.ndarray,
               landmarks_baseline: np.ndarray) -> pd.DataFrame:
    """AUs ranked by extra positive ``D`` per pixel on target vs. baseline images.

    A thin wrapper of :func:`forgetting_aus.explain.rank_aus` with the one-sided test
    (target > baseline) and a 1-based ``rank`` column; empty inputs give NaN statistics
    and ``n_target`` / ``n_baseline`` of 0 instead of an error.

    Parameters
    ----------
    diff_target, diff_baseline : float (n, S, S)
        Difference maps :func:`difference_maps`.
    landmarks_target, landmarks_baseline : float (n, 68, 2)
        ``(x, y)`` in the maps' pixel frame.

    Returns
    -------
    DataFrame indexed by AU name, sorted by ``difference`` (descending, NaN last).
    """
    size = _map_size(diff_target, diff_baseline)
    target = np.asarray(diff_target, dtype=np.float64).reshape(-1, size, size)
    baseline = np.asarray(diff_baseline, dtype=np.float64).reshape(-1, size, size)
    with np.errstate(invalid="ignore"):
        table = regions.rank_aus(target, np.asarray(landmarks_target).reshape(-1, 68, 2), baseline,
                                 np.asarray(landmarks_baseline).reshape(-1, 68, 2), alternative="greater")
    table = table.sort_values("difference", ascending=False, na_position="last")
    # Rank only the AUs with a score; all-NaN rows (no images) get no rank.
    ranks = np.where(np.isfinite(table["difference"].to_numpy(dtype=float)), np.arange(1, len(table) + 1), np.nan)
    table.insert(0, "rank", pd.array(ranks, dtype="Int64"))
    return table


def _map_size(*arrays: np.ndarray) -> int:
    for arr in arrays:
        if np.ndim(arr) == 3 and np.shape(arr)[1] > 0:
            return int(np.shape(arr)[1])
    return 1  # every input is empty: any square size works


def au_rankings(sels: Mapping[tuple[str, int], Selection], maps: ExplainedMaps,
                landmarks: np.ndarray) -> dict[tuple[str, int], pd.DataFrame]:
    """:func:`au_ranking` for every selection.

    Parameters
    ----------
    landmarks : float (n_test, 68, 2)
        Landmarks of all test images, in crop pixels (``Split.landmarks``).
    """
    landmarks = np.asarray(landmarks)
    out = {}
    for key, s in sels.items():
        if s.empty:  # nothing to compare; its baseline was not explained
            s = dataclasses.replace(s, baseline=s.target)
        out[key] = au_ranking(difference_maps(maps, s, which="target"), landmarks[s.target],
                              difference_maps(maps, s, which="baseline"), landmarks[s.baseline])
    return out


def paper_rankings(rankings: Mapping[tuple[str, int], pd.DataFrame], *,
                   k: int = PAPER_K) -> dict[str, pd.DataFrame]:
    """The rankings of the paper's comparison (FreezeB5 vs FreezeB<k>), by studied emotion."""
    return {emotion: rankings[(emotion, k)] for emotion in STUDIED_EMOTIONS}


def rankings_table(rankings: Mapping[tuple[str, int], pd.DataFrame], *, k: int = PAPER_K) -> pd.DataFrame:
    """:func:`paper_rankings` stacked into one table, indexed by (emotion, AU name)."""
    return pd.concat(paper_rankings(rankings, k=k), names=["emotion"])


#: The columns of :func:`rankings_table` the chapter shows (the CSV download has them all), as it names them.
RANKING_SUMMARY_COLUMNS = {"rank": "rank", "description": "region", "difference": "extra D per pixel",
                           "rank_biserial": "rank-biserial", "p_holm": "p (Holm)", "n_target": "target maps",
                           "n_baseline": "baseline maps"}


def top_rankings(ranking_table: pd.DataFrame, *, rows: int = 5) -> pd.DataFrame:
    """The first ``rows`` AUs of each emotion's ranking, in :data:`RANKING_SUMMARY_COLUMNS`.

    Parameters
    ----------
    ranking_table : DataFrame
        :func:`rankings_table` (index emotion, AU name; in rank order per emotion).
    rows : int, keyword-only
        AUs kept per emotion.
    """
    return table_view.head_per_group(ranking_table, rows=rows)[list(RANKING_SUMMARY_COLUMNS)].rename(
        columns=RANKING_SUMMARY_COLUMNS)


def _paper_au_row(table: pd.DataFrame, au: int) -> pd.Series:
    return table.loc[f"AU{au}"]


def _missing(table: pd.DataFrame) -> str:
    first = table.iloc[0]
    return "no target images" if int(first["n_target"]) == 0 else "no baseline images"


def ranking_summary(rankings: Mapping[tuple[str, int], pd.DataFrame], *, top: int = 3) -> pd.DataFrame:
    """One row per (emotion, k): the top AUs of this run beside the paper's human reading.

    Columns: emotion, compared with, paper (human reading), top AUs (this run),
    rank of the paper's AU (of 18), its difference in mean positive D per pixel,
    rank-biserial effect, Holm-adjusted one-sided p, and the target and baseline maps
    scored (explained maps whose total relevance is positive under both models).
    """
    rows = []
    for (emotion, k), table in rankings.items():
        au = STUDIED_EMOTIONS.get(emotion)
        ranked = table.dropna(subset=["difference"])
        row = {"emotion": emotion, "compared with": pipeline.model_name(k),
               "paper (human reading)": f"AU{au}" if au else "—",
               "top AUs (this run)": ", ".join(ranked.index[:top]) if len(ranked) else _missing(table)}
        if au is not None:
            paper_row = _paper_au_row(table, au)
            row |= {"rank of paper's AU": paper_row["rank"],
                    "difference": paper_row["difference"], "rank-biserial": paper_row["rank_biserial"],
                    "p (Holm)": paper_row["p_holm"]}
        first = table.iloc[0]
        row |= {"scored target maps": int(first["n_target"]), "scored baseline maps": int(first["n_baseline"])}
        rows.append(row)
    return pd.DataFrame(rows)


def displayable_test_images(cfg: Config) -> np.ndarray:
    """The emotion test images as Figures 3 and 5 may show them, uint8 (n, S, S, 3).

    Synthetic faces as they are; on the real data, faces of subjects not listed in
    ``publishable_subjects`` (every AffectNet face: it has no subject ids) become their
    landmark outline, over which the saliency is drawn.
    """
    test = pipeline.emotion_data(cfg)["test"]
    images = publication.displayable_faces(test.images, test.landmarks, test.groups, data_source=cfg.data_source,
                                              publishable=cfg.publishable_subjects)
    return images


def figure3_example(images: np.ndarray, sels: Mapping[tuple[str, int], Selection], maps: ExplainedMaps, *,
                    emotion: str = "contempt", k: int = PAPER_K) -> dict[str, Any] | None:
    """The paper's Figure 3: one target image and both models' maps scaled to [0, 1].

    The first target image (lowest test row) is shown: chosen by position, not by look.

    Returns
    -------
    dict or None
        ``image`` uint8 (S, S, 3), ``row`` int, ``emotion``, ``k``, ``reference`` and
        ``other`` float32 (S, S) display-normalised maps; None when no image qualifies.
    """
    s = sels.get((emotion, k))
    if s is None or s.empty:
        return None
    row = s.target[:1]
    return {"image": np.asarray(images)[row[0]], "row": int(row[0]), "emotion": emotion, "k": k,
            "reference": lrp.normalize_for_display(maps.of(REFERENCE_K, row))[0],
            "other": lrp.normalize_for_display(maps.of(k, row))[0]}


def figure5_examples(images: np.ndarray, landmarks: np.ndarray, sels: Mapping[tuple[str, int], Selection],
                     maps: ExplainedMaps, *, k: int = PAPER_K, n_examples: int = 3,
                     emotions: Sequence[str] = tuple(STUDIED_EMOTIONS)) -> dict[str, dict[str, Any]]:
    """The paper's Figure 5: difference maps of a few target images per emotion.

    Returns
    -------
    dict emotion -> dict
        ``images`` uint8 (m, S, S, 3), ``rows`` int64 (m,), ``difference`` float32
        (m, S, S) the signed D of :func:`difference_maps`, not rescaled, so panels share one
        scale (all-NaN where a model's total relevance is <= 0, so its map cannot be read
        as shares), ``au`` int (the paper's AU) and ``au_mask`` bool
        (m, S, S), its region; m = min(n_examples, target images), possibly 0.
    """
    out = {}
    for emotion in emotions:
        s = sels.get((emotion, k))
        rows = s.target[:n_examples] if s is not None else np.zeros(0, dtype=np.int64)
        au = STUDIED_EMOTIONS[emotion]
        size = np.shape(images)[1]
        if len(rows):
            difference = lrp.difference_map(maps.of(REFERENCE_K, rows), maps.of(k, rows))
            mask = regions.au_masks(np.asarray(landmarks)[rows], size, aus=[au])[au]
        else:
            difference = np.zeros((0, size, size), dtype=np.float32)
            mask = np.zeros((0, size, size), dtype=bool)
        out[emotion] = {"images": np.asarray(images)[rows], "rows": rows, "difference": difference,
                        "au": au, "au_mask": mask, "k": k}
    return out


def claim_verdict(table: pd.DataFrame, au: int, *, min_images: int = MIN_IMAGES,
                  alpha: float = ALPHA) -> tuple[str, str]:
    """Verdict on "FreezeB5 attends more to AU<au> than FreezeB<k>" from a ranking table.

    - inconclusive when fewer than ``min_images`` target or baseline maps were scored;
    - holds when the AU's difference is positive and it ranks first, or its one-sided
      Holm-adjusted p is below ``alpha``;
    - inconclusive when the difference is positive otherwise;
    - fails when the difference is zero or negative.

    Returns
    -------
    (verdict, reason) : (str, str)
    """
    row = _paper_au_row(table, au)
    n_t, n_b = int(row["n_target"]), int(row["n_baseline"])
    if n_t < min_images or n_b < min_images:
        return "inconclusive", (f"too few images for a test: {n_t} target and {n_b} baseline maps "
                                f"(at least {min_images} each needed)")
    difference, p_holm = float(row["difference"]), float(row["p_holm"])
    if not np.isfinite(difference) or difference <= 0:
        return "fails", (f"AU{au} gets no extra positive difference on the target images "
                         f"(rank {_rank_text(row, len(table))})")
    rank = int(row["rank"])
    if rank == 1 or p_holm < alpha:
        return "holds", f"AU{au} ranks {rank} of {len(table)}, Holm {stats.p_equation(p_holm)}"
    return "inconclusive", f"AU{au} difference positive but ranks {rank} of {len(table)}, Holm {stats.p_equation(p_holm)}"


def _rank_text(row: pd.Series, n_aus: int) -> str:
    return "not ranked" if pd.isna(row["rank"]) else f"{int(row['rank'])} of {n_aus}"


def _describe(table: pd.DataFrame, au: int) -> str:
    row = _paper_au_row(table, au)
    if int(row["n_target"]) == 0:
        return "no target images (FreezeB5 right, FreezeB0 wrong) in this run"
    if not np.isfinite(row["difference"]):
        return f"{int(row['n_target'])} target images but no baseline image (both right) to compare with"
    top = table.dropna(subset=["difference"]).index[:3]
    return (f"AU{au} rank {_rank_text(row, len(table))} (top: {', '.join(top)}), difference "
            f"{row['difference']:.3g} per pixel, r_rb = {row['rank_biserial']:.2f}, Holm {stats.p_equation(row['p_holm'])}, "
            f"n = {int(row['n_target'])} target / {int(row['n_baseline'])} baseline")


def visual_claims(rankings: Mapping[tuple[str, int], pd.DataFrame], *, k: int = PAPER_K) -> list[Claim]:
    """The paper's two readings of Figure 5 (§5) as claims on this run's AU rankings."""
    statements = {
        "contempt": ("P-5-contempt-AU14", "For contempt, FreezeB5 pays more attention to the dimples (AU14) "
                     "than FreezeB0", "dimples (AU14) visibly more attended by FreezeB5 (human reading, fig. 5)"),
        "surprise": ("P-5-surprise-AU5", "For surprise, FreezeB5 focuses more on AU5 (upper lid raise) than FreezeB0",
                     "upper lids (AU5) visibly more attended by FreezeB5 (human reading, fig. 5)"),
    }
    out = []
    for emotion, (claim_id, statement, paper_value) in statements.items():
        table = rankings.get((emotion, k))
        if table is None:
            raise KeyError(f"no ranking for ({emotion!r}, {k}); compute au_rankings with k={k} among ks")
        au = STUDIED_EMOTIONS[emotion]
        verdict, reason = claim_verdict(table, au)
        out.append(Claim(claim_id=claim_id, paper=PAPER, section="§4.2, §5, Figure 5", statement=statement,
                         paper_value=paper_value, this_run=_describe(table, au), verdict=verdict,
                         evidence=("mean positive D = R5/ΣR5 − R0/ΣR0 per pixel of each AU region, target images "
                                   "(B5 right, B0 wrong) vs. both-right baseline, one-sided Mann-Whitney, "
                                   f"Holm over 18 AUs; {reason}")))
    return out


def headline(rankings: Mapping[tuple[str, int], pd.DataFrame], sels: Mapping[tuple[str, int], Selection], *,
             k: int = PAPER_K) -> dict[str, Any]:
    """Values the chapter's "paper vs. this run" paragraph glues, per studied emotion.

    Returns
    -------
    dict
        ``<emotion>_n_target`` and ``<emotion>_n_baseline`` (int, images explained),
        ``<emotion>_n_scored_target`` and ``<emotion>_n_scored_baseline`` (int, of those,
        maps that read as shares under both models and enter the ranking),
        ``<emotion>_top`` (str, the first-ranked AU or "none"), ``<emotion>_rank`` (str,
        e.g. "3 of 18", or "not ranked"), ``<emotion>_p_holm`` (str, as
        :func:`forgetting_aus.stats.p_equation` writes it: "p = 0.0312").
    """
    out: dict[str, Any] = {}
    for emotion, au in STUDIED_EMOTIONS.items():
        table, s = rankings[(emotion, k)], sels[(emotion, k)]
        row = _paper_au_row(table, au)
        ranked = table.dropna(subset=["difference"])
        out[f"{emotion}_n_target"] = int(len(s.target))
        out[f"{emotion}_n_baseline"] = int(len(s.baseline))
        out[f"{emotion}_n_scored_target"] = int(row["n_target"])
        out[f"{emotion}_n_scored_baseline"] = int(row["n_baseline"])
        out[f"{emotion}_top"] = str(ranked.index[0]) if len(ranked) else "none"
        out[f"{emotion}_rank"] = _rank_text(row, len(table))
        out[f"{emotion}_p_holm"] = stats.p_equation(row["p_holm"])
    return out
