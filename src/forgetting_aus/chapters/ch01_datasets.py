"""Chapter 01 (§3.1): the synthetic FACS world and its dataset twins, AU visibility, trivial baselines.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from forgetting_aus import (
    cache,
    datasets,
    facs,
    paper_values,
    parallel,
    pipeline,
    publication,
    synth,
)
from forgetting_aus.claims import Claim, verdict_from_interval
from forgetting_aus.config import Config
from forgetting_aus.paper_values import PAPER


def _faces(aus: np.ndarray, *, identity_ids: np.ndarray, seed: int, size: int, unilateral=None,
           nuisance_seed: int = 0, calm: bool = True) -> np.ndarray:
    """Render faces of given identities and AUs; ``calm`` fixes the nuisance to a frontal studio shot."""
    identities = synth.identities_from_ids(identity_ids, seed=seed)
    nuisance = synth.sample_nuisance(len(aus), np.random.default_rng(nuisance_seed), style="faces" if calm else "default")
    images, _ = synth.render_faces(identities, aus, nuisance, unilateral=unilateral, size=size, seed=seed)
    return images


def emotion_examples(*, per_class: int, seed: int, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` random faces of each emotion: images (8, per_class, size, size, 3), labels."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(facs.EMOTIONS)), per_class)
    aus, unilateral = synth.sample_emotion_aus(labels, rng)
    ids = synth.ID_RANGES["sampled"][0] + np.arange(len(labels))
    images = _faces(aus, identity_ids=ids, seed=seed, size=size, unilateral=unilateral, nuisance_seed=seed, calm=False)
    return images.reshape(len(facs.EMOTIONS), per_class, size, size, 3), labels


#: Intensities of the AU grid (:func:`au_intensity_examples`) and their column labels (FACS letters).
AU_GRID_INTENSITIES: tuple[int, ...] = (0, 1, 3, 5)
AU_GRID_LABELS: tuple[str, ...] = ("absent", "intensity 1 (A)", "intensity 3 (C)", "intensity 5 (E)")


def au_row_labels() -> list[str]:
    """Row labels of the AU grid, one per ``facs.AU_CODES``: "AU<code> <description>"."""
    return [f"AU{code} {facs.AU_DESCRIPTIONS[code]}" for code in facs.AU_CODES]


def au_intensity_examples(*, intensities=AU_GRID_INTENSITIES, seed: int, size: int = 96) -> np.ndarray:
    """Every AU at the given intensities on one identity and one nuisance: (18, len(intensities), size, size, 3)."""
    n_levels = len(intensities)
    aus = np.zeros((len(facs.AU_CODES) * n_levels, len(facs.AU_CODES)))
    for j in range(len(facs.AU_CODES)):
        aus[j * n_levels:(j + 1) * n_levels, j] = intensities
    ids = np.full(len(aus), synth.ID_RANGES["sampled"][0])
    nuisance = synth.sample_nuisance(1, np.random.default_rng(seed), style="faces")
    nuisance = nuisance.take(np.zeros(len(aus), dtype=int))
    images, _ = synth.render_faces(synth.identities_from_ids(ids, seed=seed), aus, nuisance, size=size, seed=seed)
    return images.reshape(len(facs.AU_CODES), n_levels, size, size, 3)


def pain_examples(cfg: Config, *, per_bin: int = 4) -> tuple[np.ndarray, list[str]]:
    """Test frames of the pain data by PSPI bin (0, 1-2, 3-5, 6+): images (4, per_bin, s, s, 3), bin labels.

    On the real data a frame of a subject not in ``publishable_subjects`` is drawn as its
    landmark outline (:func:`forgetting_aus.publication.displayable_faces`).
    """
    test = pipeline.pain_data(cfg)["test"]
    images = publication.displayable_faces(test.images, test.landmarks, test.groups, data_source=cfg.data_source,
                                              publishable=cfg.publishable_subjects)
    scores = pipeline.pain_test_meta(cfg)["pspi"]
    bins = [("PSPI 0", scores == 0), ("PSPI 1-2", (scores >= 1) & (scores <= 2)),
            ("PSPI 3-5", (scores >= 3) & (scores <= 5)), ("PSPI 6+", scores >= 6)]
    rng = np.random.default_rng(cfg.seed)
    size = test.images.shape[1]
    grid = np.zeros((len(bins), per_bin, size, size, 3), dtype=np.uint8)
    for b, (_, mask) in enumerate(bins):
        chosen = rng.permutation(np.flatnonzero(mask))[:per_bin]
        grid[b, :len(chosen)] = images[chosen]
    return grid, [name for name, _ in bins]


def imbalance_ratios(distribution: pd.DataFrame) -> dict[str, float]:
    """Largest over smallest class of the twin and of real AffectNet.

    Parameters
    ----------
    distribution : DataFrame
        :func:`class_distribution` (columns ``twin images`` and ``AffectNet images``).

    Returns
    -------
    dict
        ``twin_imbalance`` and ``real_imbalance`` (ratios >= 1).
    """
    return {"twin_imbalance": float(distribution["twin images"].max() / distribution["twin images"].min()),
            "real_imbalance": float(distribution["AffectNet images"].max() / distribution["AffectNet images"].min())}


def class_distribution(cfg: Config) -> pd.DataFrame:
    """Share of each emotion in the AffectNet twin's training split next to real AffectNet's."""
    data = pipeline.emotion_data(cfg)
    labels = np.concatenate([data["train"].labels, data["val"].labels])
    twin = np.bincount(labels, minlength=len(facs.EMOTIONS))
    real = np.array([paper_values.AFFECTNET_CLASS_COUNTS[e] for e in facs.EMOTIONS])
    return pd.DataFrame({"twin images": twin, "twin share": twin / twin.sum(),
                         "AffectNet images": real, "AffectNet share": real / real.sum()}, index=list(facs.EMOTIONS))


def dataset_sizes(cfg: Config) -> pd.DataFrame:
    """Sizes of this run's data sets beside the paper's real ones (§3.1)."""
    emotion, pain, ck = pipeline.emotion_data(cfg), pipeline.pain_data(cfg), pipeline.ckplus_data(cfg)
    unbc_index = datasets.read_unbc(pipeline.dataset_root(cfg, "unbc")[0])
    rows = [
        ("AffectNet images (train)", len(emotion["train"]), paper_values.DATASETS["AffectNet images (train)"]),
        ("AffectNet images (validation)", len(emotion["val"]), paper_values.DATASETS["AffectNet images (validation)"]),
        ("AffectNet test images (balanced)", len(emotion["test"]), paper_values.DATASETS["AffectNet test images (500 per class)"]),
        ("UNBC-McMaster frames", len(unbc_index), paper_values.DATASETS["UNBC-McMaster frames"]),
        ("UNBC-McMaster pain frames", int(unbc_index["label"].sum()), paper_values.DATASETS["UNBC-McMaster pain frames"]),
        ("UNBC selection (train + validation)", len(pain["train"]) + len(pain["val"]), paper_values.DATASETS["UNBC selection (train + validation)"]),
        ("UNBC test subjects", len(set(pain["test"].groups)), paper_values.DATASETS["UNBC test subjects"]),
        ("CK+ FACS-coded peak frames", len(ck), 593),
    ]
    return pd.DataFrame(rows, columns=["", "this run", "paper (real data)"]).set_index("")


def au_roles(cfg: Config) -> pd.DataFrame:
    """Role of every AU in the pain data, computed from the written FACS and PSPI files."""
    index = datasets.read_unbc(pipeline.dataset_root(cfg, "unbc")[0])
    return synth.au_roles_in_pain(index)


def ckplus_cooccurrence(cfg: Config) -> pd.DataFrame:
    """P(column AU coded | row AU coded) at the CK+ peaks, from the written FACS files.

    An AU listed with intensity 0 (present, intensity not coded) counts as present.
    """
    peaks = datasets.ckplus_peak_frames(datasets.read_ckplus(pipeline.dataset_root(cfg, "ckplus")[0]))
    presence = pd.DataFrame(datasets.au_presence(peaks), columns=list(facs.AU_NAMES))
    return synth.au_cooccurrence(presence)["conditional"]


def co_occurrence_share(presence: pd.DataFrame, *, given: str = "AU5", also: str = "AU26",
                        level: float = 0.95) -> dict[str, float | int]:
    """Share of the frames showing ``given`` that also show ``also``, with a Clopper-Pearson interval.

    Parameters
    ----------
    presence : DataFrame
        One row per frame, columns ``AU1 ... AU43`` (1 present, 0 absent).

    Returns
    -------
    dict
        ``n_given``, ``n_both`` (int), ``share``, ``low``, ``high`` (NaN when no frame shows ``given``).
    """
    from statsmodels.stats.proportion import proportion_confint

    with_given = presence[given] > 0
    n_given, n_both = int(with_given.sum()), int((with_given & (presence[also] > 0)).sum())
    if n_given == 0:
        return {"n_given": 0, "n_both": 0, "share": np.nan, "low": np.nan, "high": np.nan}
    low, high = proportion_confint(n_both, n_given, alpha=1 - level, method="beta")
    return {"n_given": n_given, "n_both": n_both, "share": n_both / n_given, "low": float(low), "high": float(high)}


def share_word(share: float) -> str:
    """A share of cases in words, for prose that must not overstate it.

    ``"nearly always"`` from 0.9, ``"mostly"`` above one half, ``"sometimes"`` from 0.1,
    ``"rarely"`` below.
    """
    if not np.isfinite(share) or not 0 <= share <= 1:
        raise ValueError(f"a share must lie in [0, 1], got {share}")
    return "nearly always" if share >= 0.9 else "mostly" if share > 0.5 else "sometimes" if share >= 0.1 else "rarely"


def ckplus_au5_with_au26(cfg: Config) -> dict[str, float | int]:
    """:func:`co_occurrence_share` of AU26 given AU5 at the CK+ peak frames, from the written FACS files."""
    peaks = datasets.ckplus_peak_frames(datasets.read_ckplus(pipeline.dataset_root(cfg, "ckplus")[0]))
    return co_occurrence_share(pd.DataFrame(datasets.au_presence(peaks), columns=list(facs.AU_NAMES)))


def dataset_claims(au5_with_au26: dict[str, float | int]) -> list[Claim]:
    """The paper's observation about CK+ (§5) as a predicate on the data this run reads."""
    share = au5_with_au26
    return [Claim(
        "D-CK-AU5-with-AU26", PAPER, "§5",
        "Most CK+ images that contain AU5 (upper lid raise) also contain AU26 (a wide open mouth)",
        "observed by inspecting the images ('most of them')",
        f"{share['n_both']} of {share['n_given']} AU5 peak frames ({share['share']:.0%}, 95 % interval "
        f"{share['low']:.0%}-{share['high']:.0%})",
        verdict_from_interval(share["low"], share["high"], threshold=0.5) if share["n_given"] else "inconclusive",
        "Clopper-Pearson interval of P(AU26 | AU5) at the CK+ peak frames (the probes' images); holds if it lies "
        "above one half, fails if below")]


def visibility(cfg: Config) -> pd.DataFrame:
    """AU visibility check at the model's input size (cached): held-out F1 per AU."""
    n_identities, n_per_au = cfg.visibility_identities, cfg.visibility_faces_per_au
    params = {"size": cfg.image_size, "render_size": cfg.twin_image_size, "seed": cfg.seed,
              "n_identities": n_identities, "n_per_au": n_per_au}

    def make(folder: Path) -> dict:
        started = time.time()
        with parallel.backend(cfg) as workers:
            table = synth.au_visibility(size=cfg.image_size, render_size=cfg.twin_image_size, seed=cfg.seed,
                                        n_identities=n_identities, n_per_au=n_per_au, n_jobs=workers)
        cache.write_csv(folder / "visibility.csv", table)
        return {"seconds": time.time() - started}

    folder = pipeline.store(cfg).get_or_make("au_visibility", params, make)
    return pd.read_csv(folder / "visibility.csv", index_col=0)


#: The visibility bar, set before looking: an AU whose held-out detector F1 at the model's
#: input size stays below it is one the networks can hardly learn at this resolution.
VISIBILITY_F1_BAR = 0.8


def visibility_numbers(visibility_table: pd.DataFrame, *, bar: float = VISIBILITY_F1_BAR) -> dict[str, float | int | str]:
    """How many AUs pass the visibility bar, and the least visible one.

    Parameters
    ----------
    visibility_table : DataFrame
        :func:`visibility`: indexed by AU name, column ``f1`` (held-out F1 in [0, 1]).
    bar : float, keyword-only
        An AU is visible when its F1 is at least ``bar``.

    Returns
    -------
    dict
        ``visibility_bar`` (float), ``n_visible`` (int), ``min_visibility`` (float) and
        ``least_visible`` (str, the AU's name).
    """
    f1 = visibility_table["f1"]
    return {"visibility_bar": float(bar), "n_visible": int((f1 >= bar).sum()), "min_visibility": float(f1.min()),
            "least_visible": str(f1.idxmin())}


def _concatenate(*splits: pipeline.Split) -> pipeline.Split:
    return pipeline.Split(**{name: np.concatenate([getattr(s, name) for s in splits])
                             for name in ("images", "labels", "landmarks", "groups", "aus")})


def trivial_baselines(cfg: Config) -> pd.DataFrame:
    """Held-out macro recall and F1 of two trivial classifiers on the emotion and pain data.

    Logistic regression on 8x8 downsampled grey pixels, and on mean intensities of fixed
    face regions, trained and tested on held-out parts of the data the CNNs train on (the
    emotion training split; the pain selection of 21 subjects): subject-disjoint where the
    data have subject ids (UNBC), stratified rows where they have none (AffectNet, as it
    ships); column ``held_out_by`` says which. Cached: chapters 2 and 3 compare their CNNs
    with it.
    """
    params = {"emotion_data": pipeline.data_key(cfg, "emotion"), "pain_data": pipeline.data_key(cfg, "pain"),
              "seed": cfg.seed}

    def make(folder: Path) -> dict:
        rows = []
        emotion, pain = pipeline.emotion_data(cfg), pipeline.pain_data(cfg)
        for task, data in (("emotion (8 classes)", emotion["train"]),
                           ("pain (2 classes)", _concatenate(pain["train"], pain["val"]))):
            scores = synth.trivial_baselines(data.images, data.labels, data.landmarks, data.groups, seed=cfg.seed)
            for name in ("pixels_8x8", "region_means"):
                rows.append({"task": task, "baseline": name, "chance": scores["chance"], **scores[name],
                             "n_train": scores["n_train"], "n_test": scores["n_test"],
                             "held_out_by": scores["held_out_by"]})
        cache.write_csv(folder / "baselines.csv", pd.DataFrame(rows))
        return {}

    folder = pipeline.store(cfg).get_or_make("trivial_baselines", params, make)
    return pd.read_csv(folder / "baselines.csv", index_col=0)


def baseline_numbers(baselines: pd.DataFrame) -> dict[str, float]:
    """Held-out macro recall of every trivial baseline, by glue name.

    Parameters
    ----------
    baselines : DataFrame
        :func:`trivial_baselines` (columns ``task``, ``baseline``, ``macro_recall``).

    Returns
    -------
    dict
        ``baseline_<first word of the task>_<baseline>`` -> macro recall, e.g.
        ``baseline_emotion_pixels_8x8``, ``baseline_pain_region_means``.
    """
    return {f"baseline_{row['task'].split()[0]}_{row['baseline']}": float(row["macro_recall"])
            for _, row in baselines.iterrows()}


def prototype_table() -> pd.DataFrame:
    """Emotion prototypes as a table: rows AUs, columns emotions, "●" where used.

    Mirrors the layout of the paper's Figure 6, with a column marking the PSPI AUs.
    """
    rows = {}
    for code in facs.AU_CODES:
        name = f"AU{code} – {facs.AU_DESCRIPTIONS[code]}"
        rows[name] = {e: ("●" if code in facs.EMOTION_PROTOTYPES[e] else "") for e in facs.EMOTIONS if e != "neutral"}
        rows[name]["PSPI AU"] = "■" if code in facs.PSPI_AUS else ""
    return pd.DataFrame.from_dict(rows, orient="index")


def stand_in_styles() -> pd.DataFrame:
    """How the six-emotion stand-ins of chapter 10 differ, read from the world's style tables.

    Returns
    -------
    DataFrame indexed by OULU-CASIA, FACES, JAFFE
        ``posed intensity`` (multiplier of the prototype AUs, ``synth.POSED_INTENSITY``),
        ``grey scale``, ``head rotation SD (deg)``, ``ambient light``, ``directional light``
        and ``background clutter`` (ranges of ``synth.identity.NUISANCE_RANGES``).
    """
    from forgetting_aus.synth.identity import NUISANCE_RANGES

    def span(bounds: tuple[float, float]) -> str:
        return f"{bounds[0]:.2f}-{bounds[1]:.2f}"

    rows = {}
    for style, name in (("oulu", "OULU-CASIA"), ("faces", "FACES"), ("jaffe", "JAFFE")):
        ranges = NUISANCE_RANGES[style]
        rows[name] = {"posed intensity": synth.POSED_INTENSITY[style], "grey scale": style == "jaffe",
                      "head rotation SD (deg)": ranges.rotation_sd_deg, "ambient light": span(ranges.ambient),
                      "directional light": span(ranges.light_strength),
                      "background clutter": span(ranges.clutter_opacity)}
    return pd.DataFrame.from_dict(rows, orient="index")
