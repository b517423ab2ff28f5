"""Tests of chapter 06: the forgotten-AU rule, the crop validation, the tables and the numbers the prose quotes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgetting_aus import concepts, facs, paper_values
from forgetting_aus.chapters import ch06_concept_embedding as ch06


# --------------------------------------------------------------------------- forgotten AUs
def _sweep_table():
    rows = []
    for au, diff, p_corr, p_naive in [(5, -0.04, 0.001, 1e-9), (14, -0.02, 0.2, 1e-6), (26, +0.05, 0.001, 1e-9),
                                      (4, -0.01, 0.04, 1e-3)]:
        rows.append({"folds": "stratified", "au": au, "model": "FreezeB0", "mean_difference": diff,
                     "corrected_t_p_holm": p_corr, "paired_t_p_holm": p_naive})
    rows.append({"folds": "stratified", "au": 14, "model": "FreezeB1", "mean_difference": -0.1,
                 "corrected_t_p_holm": 1e-5, "paired_t_p_holm": 1e-9})
    rows.append({"folds": "grouped", "au": 14, "model": "FreezeB0", "mean_difference": -0.1,
                 "corrected_t_p_holm": 1e-5, "paired_t_p_holm": 1e-9})
    return pd.DataFrame(rows)


def test_forgotten_aus_rule_negative_and_significant():
    table = _sweep_table()
    assert ch06.forgotten_aus(table) == [4, 5]  # AU26 significant but positive; AU14 not significant
    assert ch06.forgotten_aus(table, test="paired_t") == [4, 5, 14]
    assert ch06.forgotten_aus(table, folds="grouped") == [14]
    assert ch06.forgotten_aus(table, model="FreezeB1") == [14]
    assert ch06.forgotten_aus(table, alpha=0.01) == [5]
    with pytest.raises(ValueError, match="no rows for FreezeB3"):
        ch06.forgotten_aus(table, model="FreezeB3")
    with pytest.raises(ValueError, match="no 'dietterich_5x2cv_p_holm'"):
        ch06.forgotten_aus(table, test="dietterich_5x2cv")


def test_sweep_numbers_and_au_list():
    assert ch06.au_list([5, 14]) == "AU5, AU14" and ch06.au_list([]) == "none"
    numbers = ch06.sweep_numbers(_sweep_table(), n_repeats=50)
    assert numbers == {"forgotten": "AU4, AU5", "forgotten_grouped": "AU14", "forgotten_naive": "AU4, AU5, AU14",
                       "n_sweep_repeats": 50}


# --------------------------------------------------------------------------- the paper's tests
def _tests_table():
    rows = []
    for au, variant in ch06.PAPER_TESTS.items():
        for i, folds in enumerate(concepts.FOLD_SCHEMES):
            rows.append({"au": au, "variant": variant, "folds": folds, "mean_f1_a": 0.70 + au / 1000 + i / 100,
                         "mean_f1_b": 0.75, "mean_difference": -0.05, "n_repeats": 6, "paired_t_statistic": -3.0 - i,
                         "paired_t_p": 0.001 * (i + 1), "corrected_t_statistic": -1.0, "corrected_t_p": 0.2 + i / 10,
                         "dietterich_5x2cv_p": 0.3, "corrected_t_ci_low": -0.1, "corrected_t_ci_high": 0.01,
                         "paired_t_ci_low": -0.06, "paired_t_ci_high": -0.04})
    return pd.DataFrame(rows)


def test_paper_test_numbers_take_the_stratified_rows_and_the_paper_values():
    numbers = ch06.paper_test_numbers(_tests_table(), n_repeats=6)
    assert numbers["au14_f1_b0"] == pytest.approx(100 * 0.714) and numbers["au5_f1_b5"] == pytest.approx(75.0)
    assert numbers["au14_t"] == -3.0 and numbers["au14_p"] == "p = 0.001"  # stratified, not grouped
    assert numbers["au5_p_corrected"] == "p = 0.2" and numbers["au5_p_grouped"] == "p = 0.3"
    for au in ch06.PAPER_TESTS:
        paper = paper_values.PROBES[au]
        assert numbers[f"au{au}_paper_f1_b0"] == paper["mean_f1_FreezeB0"]
        assert numbers[f"au{au}_paper_f1_b5"] == paper["mean_f1_FreezeB5"]
        assert (numbers[f"au{au}_paper_t"], numbers[f"au{au}_paper_p"]) == (paper["t"], f"p = {paper['p']:.3g}")
    assert numbers["n_repeats"] == 6
    # The values the chapter's prose used to type in.
    assert (numbers["au14_paper_f1_b0"], numbers["au14_paper_f1_b5"], numbers["au14_paper_t"]) == (72.41, 74.13, -13.13)
    assert (numbers["au5_paper_f1_b0"], numbers["au5_paper_f1_b5"], numbers["au5_paper_t"]) == (83.87, 84.36, -9.33)


def test_paper_tests_display_puts_the_paper_beside_the_run():
    display = ch06.paper_tests_display(_tests_table())
    assert list(display["AU"]) == ["AU14", "AU14", "AU5 (mouth masked)", "AU5 (mouth masked)"]
    assert display.loc[0, "F1 B0 %"] == pytest.approx(71.4) and display.loc[0, "paper t"] == -13.13
    assert display.loc[0, "B0 - B5 [95 % CI, corrected] (F1 points)"] == "-5.00 [-10.00, +1.00]"


def _paired_scores(n_repeats: int = 3) -> pd.DataFrame:
    """Fold scores of FreezeB0 and FreezeB5 on AU14 and AU5 with known differences per repetition."""
    rows = []
    for au in ch06.PAPER_TESTS:
        for folds in concepts.FOLD_SCHEMES:
            for k in (0, 5):
                for rep in range(n_repeats):
                    for fold in (0, 1):
                        f1 = 0.5 + (0.1 * rep + 0.02 * fold if k == 0 else 0.0) + au / 100
                        rows.append({"au": au, "variant": ch06.PAPER_TESTS[au], "folds": folds, "k": k,
                                     "model": f"FreezeB{k}", "repeat": rep, "fold": fold, "f1": f1, "n_train": 10,
                                     "n_test": 10, "n_pos_test": 3})
    return pd.DataFrame(rows)


def test_per_repeat_and_repetition_differences():
    scores = _paired_scores()
    np.testing.assert_allclose(ch06.per_repeat_differences(scores, au=14, folds="grouped"), [0.01, 0.11, 0.21])
    tests = _tests_table()
    differences = ch06.repetition_differences(scores, tests)
    assert list(differences) == ["AU14 stratified", "AU14 grouped", "AU5 stratified", "AU5 grouped"]
    np.testing.assert_allclose(differences["AU5 stratified"], [0.01, 0.11, 0.21])


def test_paper_rows_of_a_sweep_are_the_paper_tests_probed_alone():
    """With as many sweep repetitions, the paper's tests are rows of the sweep: same folds, same scores."""
    rng = np.random.default_rng(1)
    n = 48
    y = {au: rng.permutation(np.arange(n) % 3 == 0).astype(int) for au in (1, 5, 14)}
    features = {(k, v): rng.normal(size=(n, 6)) + 0.8 * k * y[5][:, None] for k in (0, 3, 5)
                for v in ("full", "mouth_masked")}
    labels = {au: (np.arange(n), y[au]) for au in y}
    groups = np.repeat(np.arange(n // 4), 4)
    kwargs = dict(groups=groups, folds=["stratified", "grouped"], seed=0)
    sweep = concepts.fold_scores(features, labels, models=[0, 3, 5], n_repeats=4, **kwargs)
    alone = concepts.fold_scores(features, {au: labels[au] for au in (14, 5)}, models=[0, 5], n_repeats=3, **kwargs)
    pd.testing.assert_frame_equal(ch06.paper_rows(sweep, n_repeats=3), alone)
    with pytest.raises(ValueError, match="lack the paper's tests"):
        ch06.paper_rows(sweep, n_repeats=5)


def test_corrected_test_power_is_the_corrected_tests_threshold():
    """The smallest significant mean difference: t_crit * sqrt((1/J + n_test/n_train) var), at which p = alpha."""
    from scipy import stats as sps

    from forgetting_aus.stats import ALPHA, corrected_repeated_cv_t_test

    rng = np.random.default_rng(0)
    n = 60
    y = {14: rng.permutation(np.arange(n) % 3 == 0).astype(int), 5: rng.permutation(np.arange(n) % 2).astype(int)}
    features = {}
    for k, strength in ((0, 0.6), (5, 1.2)):
        for variant, au in (("full", 14), ("mouth_masked", 5)):
            x = rng.normal(size=(n, 8))
            x[:, 0] += strength * y[au]
            features[(k, variant)] = x
    labels = {au: (np.arange(n), y[au]) for au in (14, 5)}
    scores = concepts.fold_scores(features, labels, models=[0, 5], groups=np.arange(n), folds=["stratified"],
                                  n_repeats=6, seed=0)
    power = ch06.corrected_test_power(scores)
    assert power["n_folds"] == 2 and power["n_fold_scores"] == 12
    assert power["test_train_ratio"] == pytest.approx(1.0)
    assert power["variance_inflation"] == pytest.approx(1 + 12 * power["test_train_ratio"])
    for au in (14, 5):
        pair = concepts.paired_frame(scores, au=au, model_a="FreezeB0", model_b="FreezeB5", folds="stratified")
        d = (pair["f1_a"] - pair["f1_b"]).to_numpy()
        n_train, n_test = pair["n_train"].mean(), pair["n_test"].mean()
        threshold = sps.t.ppf(1 - ALPHA / 2, len(d) - 1) * np.sqrt((1 / len(d) + n_test / n_train) * d.var(ddof=1))
        assert power[f"au{au}_min_difference"] == pytest.approx(100 * threshold)
        assert power[f"au{au}_difference"] == pytest.approx(100 * d.mean())
        at_threshold = (d - d.mean() + threshold).reshape(-1, 2)  # same spread, mean at the threshold
        p = corrected_repeated_cv_t_test(at_threshold, n_train=n_train, n_test=n_test).p_value
        assert p == pytest.approx(ALPHA)


# --------------------------------------------------------------------------- crop validation
def test_crop_effect_by_hand():
    effect = ch06.crop_effect(0.8, 0.4, 0.25)  # chance 2 * 0.25 / 1.25 = 0.4
    assert effect["chance_f1"] == pytest.approx(0.4)
    assert effect["removed_share"] == pytest.approx(1.0) and effect["removed"]
    assert not ch06.crop_effect(0.8, 0.7, 0.25)["removed"]
    assert np.isnan(ch06.crop_effect(0.3, 0.2, 0.25)["removed_share"])


def _planted_crop_scores(n_repeats: int = 5):
    """AU26 lives in 'mouth' features that the mask replaces by noise; AU5 in 'eye' features it keeps.

    Scored as in :func:`ch06.mouth_crop_validation`: each AU on both image variants, in two
    :func:`concepts.fold_scores` calls with the same seed (hence the same folds).
    """
    rng = np.random.default_rng(0)
    n = 80
    y26 = (rng.random(n) < 0.35).astype(int)
    y5 = (rng.random(n) < 0.35).astype(int)
    eyes = rng.normal(size=(n, 4)) + 2.5 * y5[:, None]
    mouth = rng.normal(size=(n, 4)) + 2.5 * y26[:, None]
    features = {(5, "full"): np.hstack([eyes, mouth]), (5, "mouth_masked"): np.hstack([eyes, rng.normal(size=(n, 4))])}
    labels = {26: (np.arange(n), y26), 5: (np.arange(n), y5)}
    kwargs = dict(models=[5], groups=np.arange(n), folds=["stratified"], n_repeats=n_repeats, C=1.0, seed=0)
    scores = pd.concat([concepts.fold_scores(features, labels, variants={26: v, 5: v}, **kwargs)
                        for v in concepts.VARIANTS], ignore_index=True)
    return scores, {26: float(y26.mean()), 5: float(y5.mean())}


def test_crop_validation_on_planted_features():
    scores, prevalence = _planted_crop_scores()
    table = ch06.crop_validation(scores, prevalence, aus=(26, 5), ks=(5,))
    assert list(table["model"]) == ["FreezeB5", "FreezeB5"] and list(table["au"]) == ["AU26", "AU5"]
    rows = table.set_index("au")
    assert rows.loc["AU26", "f1_full"] > 0.8
    assert rows.loc["AU26", "removed"] and rows.loc["AU26", "corrected_p"] < 0.05
    assert not rows.loc["AU5", "removed"]
    assert rows.loc["AU5", "f1_cropped"] == pytest.approx(rows.loc["AU5", "f1_full"], abs=0.1)
    assert rows.loc["AU5", "chance_f1"] == pytest.approx(concepts.chance_f1(prevalence[5]))
    # f1_full is the mean fold score on the uncropped images.
    full = scores[(scores["au"] == 26) & (scores["variant"] == "full")]["f1"]
    assert rows.loc["AU26", "f1_full"] == pytest.approx(full.mean())
    assert ch06.crop_verdict(table) == "holds"
    assert ch06.crop_verdict(table.assign(removed=False)) == "fails"
    assert ch06.crop_verdict(table.assign(removed=True)) == "inconclusive"
    assert ch06.crop_verdict(table.assign(removed_share=np.nan)) == "inconclusive"
    with pytest.raises(ValueError, match="same folds for both variants"):
        ch06.crop_validation(scores[scores["variant"] == "full"], prevalence, aus=(26,), ks=(5,))


def test_crop_numbers_quote_the_reference():
    scores, prevalence = _planted_crop_scores()
    table = ch06.crop_validation(scores, prevalence, aus=(26, 5), ks=(5,))
    numbers = ch06.crop_numbers(pd.concat([table, table.assign(model="FreezeB0", f1_full=0.0)]))
    rows = table.set_index("au")
    assert numbers["val_AU26_f1_full"] == rows.loc["AU26", "f1_full"]  # FreezeB5's row, not FreezeB0's
    assert numbers["val_AU5_chance_f1"] == rows.loc["AU5", "chance_f1"]
    assert numbers["crop_verdict"] == "holds"
    assert len(numbers) == 2 * 3 + 1


# --------------------------------------------------------------------------- tables
def test_au_counts():
    labels = {5: (np.arange(4), np.array([1, 0, 0, 1])), 14: (np.arange(3), np.array([1, 1, 0]))}
    counts = ch06.au_counts(labels)
    assert list(counts.index) == ["present", "of images"] and list(counts.columns) == ["AU5", "AU14"]
    assert counts.loc["present", "AU5"] == 2 and counts.loc["of images", "AU14"] == 3


def test_sweep_display_marks():
    display = ch06.sweep_display(_sweep_table())
    assert display.loc["AU5", "FreezeB0"] == "-4.0*"  # corrected test after Holm
    assert display.loc["AU14", "FreezeB0"] == "-2.0(n)"  # naive test only
    assert display.loc["AU14", "FreezeB1"] == "-10.0*"
    assert list(display.columns) == ["FreezeB1", "FreezeB0"]


# --------------------------------------------------------------------------- claims
def test_probe_claims_verdicts():
    scores, prevalence = _planted_crop_scores()
    validation = ch06.crop_validation(scores, prevalence, aus=(26, 5), ks=(5,))
    claims = {c.claim_id: c for c in ch06.probe_claims(_tests_table(), validation, _sweep_table(),
                                                        scores=_au14_scores(0.7, 0.75))}
    assert list(claims) == ["P-AU14-paired-t", "P-AU14-corrected-t", "P-AU5-paired-t", "P-AU5-corrected-t",
                            "P-AU14-both-models-use", "P-crop-does-not-hinder",
                            "P-AU5-crop-removes-AU26", "P-sweep-forgotten-AUs"]
    assert claims["P-AU14-both-models-use"].verdict == "holds"  # 0.70 and 0.75 against chance 0.46
    assert claims["P-crop-does-not-hinder"].verdict == "holds"  # the planted crop keeps AU5
    assert claims["P-AU14-paired-t"].verdict == "holds"  # p = 0.001 with B0 < B5
    assert claims["P-AU14-corrected-t"].verdict == "inconclusive"  # p = 0.2
    assert "correlated repetitions" in claims["P-AU14-corrected-t"].evidence
    assert "t = -13.13" in claims["P-AU14-paired-t"].paper_value
    assert claims["P-AU5-crop-removes-AU26"].verdict == "holds"
    assert claims["P-sweep-forgotten-AUs"].verdict == "inconclusive"  # AU4, AU5 forgotten, not AU14
    assert claims["P-sweep-forgotten-AUs"].this_run == "forgotten by FreezeB0: AU4, AU5"


def _au14_scores(f1_b0: float, f1_b5: float, *, n_repeats: int = 10) -> pd.DataFrame:
    """Stratified fold scores of AU14 (30 of 100 images present) around the given F1s, +-0.02 by fold."""
    rows = [{"au": 14, "variant": "full", "folds": "stratified", "model": model, "repeat": r, "fold": fold,
             "f1": f1 + (0.02 if fold == 0 else -0.02) + 0.001 * r, "n_train": 50, "n_test": 50, "n_pos_test": 15}
            for model, f1 in (("FreezeB0", f1_b0), ("FreezeB5", f1_b5)) for r in range(n_repeats) for fold in (0, 1)]
    return pd.DataFrame(rows)


def test_above_chance_is_the_corrected_interval_of_the_margin_over_always_present():
    from forgetting_aus import stats

    scores = _au14_scores(0.7, 0.75)
    row = ch06.above_chance(scores, au=14, model="FreezeB0")
    chance = 2 * 0.3 / 1.3
    assert row["chance_f1"] == pytest.approx(chance) and row["n_repeats"] == 10
    part = scores[scores["model"] == "FreezeB0"].pivot(index="repeat", columns="fold", values="f1").to_numpy()
    reference = stats.corrected_repeated_cv_t_test(part - chance, n_train=50, n_test=50)
    assert row["low"] == pytest.approx(chance + reference.ci_low)
    assert row["mean_f1"] == pytest.approx(part.mean())
    with pytest.raises(ValueError, match="no stratified scores of AU5"):
        ch06.above_chance(scores, au=5, model="FreezeB0")


def test_both_use_and_crop_keeps_verdicts():
    above, at, below = ({"low": low, "high": low + 0.1, "chance_f1": 0.46} for low in (0.5, 0.42, 0.2))
    assert ch06.both_use_verdict([above, above]) == "holds"
    assert ch06.both_use_verdict([above, at]) == "inconclusive"
    assert ch06.both_use_verdict([above, below]) == "fails"
    table = pd.DataFrame({"model": ["FreezeB5", "FreezeB0"], "au": "AU5", "removed_share": [0.1, 0.2],
                          "removed": [False, False]})
    assert ch06.crop_keeps_verdict(table) == "holds"
    assert ch06.crop_keeps_verdict(table.assign(removed=[False, True])) == "fails"
    assert ch06.crop_keeps_verdict(table.assign(removed_share=[0.1, np.nan])) == "inconclusive"


def test_probe_labels_count_an_au_listed_with_intensity_zero_as_present():
    # CK+ lists some present AUs with intensity 0 (not coded): a label made from the
    # intensities would call them absent, the presence matrix does not.
    from forgetting_aus import pipeline

    aus = np.zeros((10, len(facs.AU_CODES)), dtype="float32")
    j = facs.AU_CODES.index(14)
    present = (aus > 0).astype("float32")
    present[:5, j] = 1.0  # listed, intensity 0
    split = pipeline.Split(images=np.zeros((10, 2, 2, 3), np.uint8), labels=np.zeros(10, np.int64),
                           landmarks=np.zeros((10, 68, 2), np.float32), groups=np.full(10, "s"), aus=aus,
                           present=present)
    rows, y = concepts.au_labels(split.present, min_per_class=4)[14]
    assert y.tolist() == [1] * 5 + [0] * 5
    assert 14 not in concepts.au_labels(split.aus, min_per_class=4)  # what the intensities alone would say
    derived = pipeline.Split(**{**split.__dict__, "present": None})
    np.testing.assert_array_equal(derived.present, (aus > 0).astype("float32"))
