"""Chapter 08, part 2: the counterfactual truth -- sensitivities, the forgotten-AU rule and the seed threshold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgetting_aus import cache, facs, pipeline
from forgetting_aus.chapters.ch08_ground_truth.controls import (
    NULL,
    SHAM,
    X_FREE,
    control_model,
    null_retrained,
)
from forgetting_aus.chapters.ch08_ground_truth.pairs import (
    CounterfactualPairs,
    au_label,
    emotions_using,
    pairs_folder,
    world_prediction,
)
from forgetting_aus.config import Config
from forgetting_aus.pipeline import REFERENCE_K

#: The models whose forgetting is measured, each against FreezeB5: FreezeB<k>, k in COMPARED_KS.
COMPARED_KS: tuple[int, ...] = (0, 1, 2, 3, 4)


#: Confidence of the bootstrap intervals and of the seed threshold's prediction interval.
LEVEL = 0.95


#: Truth and methods are compared on their top k AUs (the paper names two; three leaves room for a tie).
TOP_K = 3


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


def _outputs(model, maps: Mapping[str, np.ndarray], n_aus: int, *, with_logits: bool) -> dict[str, np.ndarray]:
    """Flattened ``block5_pool`` maps of the "off" and "on" images (and the head's logits)."""
    import tensorflow as tf

    out = {}
    for name, block5 in maps.items():
        out[f"features_{name}"] = block5.reshape(len(block5), -1).astype(np.float32)
        if with_logits:
            head = tf.keras.Model(model.get_layer("flatten").input, model.get_layer("predictions").output)
            out[f"logits_{name}"] = head.predict(block5, batch_size=512, verbose=0).astype(np.float32)
    out["features_on"] = out["features_on"].reshape(n_aus, -1, out["features_on"].shape[-1])
    if with_logits:
        out["logits_on"] = out["logits_on"].reshape(n_aus, -1, out["logits_on"].shape[-1])
    return out


def _pair_images(pairs: CounterfactualPairs) -> dict[str, np.ndarray]:
    """The network inputs of the "off" images and of every "on" image (AU-major)."""
    from forgetting_aus import models

    return {"off": models.preprocess(pairs.off),
            "on": models.preprocess(pairs.on.reshape(-1, *pairs.on.shape[2:]))}


def _features_and_logits(model_path: Path, pairs: CounterfactualPairs, *, with_logits: bool
                         ) -> dict[str, np.ndarray]:
    """``block5_pool`` features (and head logits) of every on and off image."""
    from forgetting_aus import models

    model = models.load_model(model_path)
    base = models.conv_base(model)
    maps = {name: base.predict(images, batch_size=256, verbose=0) for name, images in _pair_images(pairs).items()}
    return _outputs(model, maps, pairs.rows.shape[0], with_logits=with_logits)


def _pair_params(trained: pipeline.Trained, pairs_key: str, with_logits: bool) -> dict[str, Any]:
    return {"model": trained.key, "pairs": pairs_key, "logits": with_logits}


def pair_outputs(cfg: Config, name: str, trained: pipeline.Trained, pairs_key: str, pairs: CounterfactualPairs, *,
                 with_logits: bool) -> dict[str, np.ndarray]:
    """Cached :func:`_features_and_logits` of one model (stage ``gt_pair_outputs``)."""

    def make(folder: Path) -> dict[str, Any]:
        cache.write_npz(folder / "outputs.npz", **_features_and_logits(trained.model_path, pairs,
                                                                         with_logits=with_logits))
        return {"model": name}

    folder = pipeline.store(cfg).get_or_make("gt_pair_outputs", _pair_params(trained, pairs_key, with_logits), make)
    return cache.read_npz(folder / "outputs.npz")


def _make_family_outputs(cfg: Config, family: Mapping[int, pipeline.Trained], pairs_key: str,
                         pairs: CounterfactualPairs) -> None:
    """Make the missing :func:`pair_outputs` (with logits) of the FreezeB<k> family together.

    Their conv blocks are the pain models', so FreezeB<k> shares its first k with FreezeB5:
    each shared block runs once (:mod:`forgetting_aus.shared_blocks`); same artifacts and
    values as one model at a time (the features are tested equal bit for bit).
    """
    from forgetting_aus import models, shared_blocks

    store = pipeline.store(cfg)
    missing = [k for k, trained in family.items()
               if not store.has("gt_pair_outputs", store.key("gt_pair_outputs", _pair_params(trained, pairs_key, True)))]
    if not missing:
        return
    reference = max(family)
    networks = {k: models.load_model(family[k].model_path) for k in sorted(set(missing) | {reference})}
    maps = {name: shared_blocks.shared_block_features(networks, images, reference=reference, batch_size=256)
            for name, images in _pair_images(pairs).items()}
    for k in missing:
        outputs = _outputs(networks[k], {name: maps[name][k] for name in maps}, pairs.rows.shape[0], with_logits=True)

        def make(folder: Path, outputs=outputs, k=k) -> dict[str, Any]:
            cache.write_npz(folder / "outputs.npz", **outputs)
            return {"model": pipeline.model_name(k)}

        store.get_or_make("gt_pair_outputs", _pair_params(family[k], pairs_key, True), make)


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
    folder = pairs_folder(cfg)
    pairs, key = CounterfactualPairs(**cache.read_npz(folder / "pairs.npz")), folder.name
    sources: dict[str, tuple[pipeline.Trained, bool]] = {}
    for k in pipeline.FREEZE_LEVELS:
        sources[pipeline.model_name(k)] = (pipeline.retrained_model(cfg, k, 0), True)
    if controls:
        sources[X_FREE] = (control_model(cfg, X_FREE), False)
        sources[SHAM] = (control_model(cfg, SHAM), False)
        sources[NULL] = (null_retrained(cfg), True)
    _make_family_outputs(cfg, {k: pipeline.retrained_model(cfg, k, 0) for k in pipeline.FREEZE_LEVELS}, key, pairs)
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
