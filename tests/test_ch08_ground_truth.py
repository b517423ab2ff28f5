"""Tests of chapter 08's ground truth: counterfactual pairs, the rule, the scores, the controls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgetting_aus import facs
from forgetting_aus.chapters import ch08_ground_truth as ch08

SIZE = 32


@pytest.fixture(scope="module")
def design():
    return ch08.pairs.sample_pair_design(4, seed=3)


@pytest.fixture(scope="module")
def pairs(design):
    return ch08.pairs.render_pairs(design, render_size=48, image_size=SIZE, seed=3)


# --------------------------------------------------------------------------- pairs
def test_design_pairs_differ_only_in_the_au(design):
    for j, code in enumerate(facs.AU_CODES):
        on = design.on_aus(j)
        off = design.base_aus[design.rows[j]]
        assert np.all(off[:, j] == 0), f"AU{code} must be off in its base faces"
        others = [i for i in range(len(facs.AU_CODES)) if i != j]
        np.testing.assert_array_equal(on[:, others], off[:, others])
        low = 1.0 if code == 43 else ch08.pairs.ON_INTENSITY[0]
        assert np.all(on[:, j] >= low)
    # AU14 is one-sided, so its base must have no AU12 trace either.
    assert np.all(design.base_aus[design.rows[facs.au_index(14)], facs.au_index(12)] == 0)
    assert set(np.unique(design.side[facs.au_index(14)])) <= {-1, 1}


def test_design_tops_up_rare_zero_traces():
    design = ch08.pairs.sample_pair_design(30, seed=0)
    assert design.rows.shape == (18, 30)
    for j in range(18):
        assert len(np.unique(design.rows[j])) == 30


def test_rendering_an_au_off_twice_gives_identical_images(design, pairs):
    again = ch08.pairs.render_pairs(design, render_size=48, image_size=SIZE, seed=3)
    np.testing.assert_array_equal(pairs.off, again.off)
    np.testing.assert_array_equal(pairs.on, again.on)


def test_pairs_differ_where_the_au_acts(pairs):
    assert pairs.on.shape == (18, 4, SIZE, SIZE, 3) and pairs.on.dtype == np.uint8
    for code in (4, 12, 26):
        on, off = pairs.pair(code, 0)
        changed = np.abs(on.astype(int) - off.astype(int)).sum(axis=-1) > 12
        assert changed.any(), f"AU{code} at intensity >= 3 must change the face"
        # The background corners are untouched: same identity, pose, light and noise.
        for corner in (changed[:4, :4], changed[:4, -4:]):
            assert not corner.any()


def test_sensor_noise_is_per_face():
    sigma = np.array([0.02, 0.0, 0.03])
    a = ch08.pairs.sensor_noise(3, 8, sigma, seed=1)
    b = ch08.pairs.sensor_noise(3, 8, sigma, seed=1)
    np.testing.assert_array_equal(a, b)
    assert np.all(a[1] == 0)
    # Face 2's noise does not depend on how many faces are drawn.
    np.testing.assert_array_equal(ch08.pairs.sensor_noise(2, 8, sigma[:2], seed=1), a[:2])
    assert abs(a[2].std() / 255 - 0.03) < 0.01


# --------------------------------------------------------------------------- measures
def test_feature_distances_and_scale():
    f_off = np.array([[0.0, 0.0], [3.0, 4.0]])
    f_on = np.zeros((18, 2, 2))
    f_on[:, 0] = [1.0, 0.0]
    rows = np.tile([0, 1], (18, 1))
    d = ch08.truth.feature_distances(f_on, f_off, rows)
    np.testing.assert_allclose(d[:, 0], 1.0)
    np.testing.assert_allclose(d[:, 1], 5.0)
    assert ch08.truth.typical_distance(f_off, seed=0) == pytest.approx(5.0)


def test_logit_changes_average_the_emotions_using_the_au():
    z_off = np.zeros((1, 8))
    z_on = np.zeros((18, 1, 8))
    z_on[:, 0] = np.arange(8)
    rows = np.zeros((18, 1), dtype=int)
    out = ch08.truth.logit_changes(z_on, z_off, rows)
    users = [facs.EMOTIONS.index(e) for e in ch08.pairs.emotions_using(5)]
    assert out[facs.au_index(5), 0] == pytest.approx(np.mean(users))
    assert np.isnan(out[facs.au_index(43), 0])  # no prototype uses AU43


# --------------------------------------------------------------------------- the rule
def test_forgotten_rule_on_hand_made_sensitivities():
    rng = np.random.default_rng(0)
    reference = 1.0 + 0.05 * rng.standard_normal((18, 200))
    other = reference.copy()
    other[facs.au_index(14)] *= 0.5  # clearly forgotten
    other[facs.au_index(5)] *= 1.5  # clearly gained
    table = ch08.truth.compare_sensitivity(reference, other, kind="ratio", n_bootstrap=200, seed=0)
    assert table.loc["AU14", "effect"] == pytest.approx(0.5, rel=1e-6)
    assert table.loc["AU14", "forgotten"] and not table.loc["AU14", "gained"]
    assert table.loc["AU5", "gained"] and not table.loc["AU5", "forgotten"]
    unchanged = table.drop(index=["AU14", "AU5"])
    assert not unchanged["forgotten"].any() and not unchanged["gained"].any()
    assert ch08.truth.truth_ranking(table.assign(model="m"))[0] == 14
    diff = ch08.truth.compare_sensitivity(reference, other - 1, kind="difference", n_bootstrap=200, seed=0)
    assert diff.loc["AU14", "forgotten"]


def test_forgotten_rule_rejects_bad_input():
    with pytest.raises(ValueError, match="kind"):
        ch08.truth.compare_sensitivity(np.ones((18, 3)), np.ones((18, 3)), kind="log", n_bootstrap=5, seed=0)
    with pytest.raises(ValueError, match="one shape"):
        ch08.truth.compare_sensitivity(np.ones((18, 3)), np.ones((18, 4)), kind="ratio", n_bootstrap=5, seed=0)


def _ratio_table(log_ratios, *, forgotten=None) -> pd.DataFrame:
    """A compare_sensitivity-shaped table with the given log ratios (interval below 1 iff ratio < 1)."""
    effect = np.exp(np.asarray(log_ratios, dtype=float))
    codes = list(facs.AU_CODES[: len(effect)])
    table = pd.DataFrame({"au": codes, "effect": effect, "low": effect * 0.9, "high": effect * 1.1},
                         index=pd.Index([f"AU{a}" for a in codes], name="au_name"))
    table["forgotten"] = effect < 1 if forgotten is None else forgotten
    table["gained"] = effect > 1
    table["forgetting"] = 1 - effect
    return table


def test_seed_noise_and_threshold_by_hand():
    from scipy import stats

    null = _ratio_table([0.1, -0.2, 0.2, np.nan])
    sigma = ch08.truth.seed_noise(null)
    assert sigma == pytest.approx(np.sqrt((0.01 + 0.04 + 0.04) / 3))
    assert ch08.truth.seed_threshold(sigma, 3) == pytest.approx(np.exp(-stats.t.ppf(0.975, 3) * sigma))
    assert ch08.truth.seed_threshold(0.0, 3) == 1.0
    with pytest.raises(ValueError, match="sigma"):
        ch08.truth.seed_threshold(-0.1, 3)
    with pytest.raises(ValueError, match="at least 2"):
        ch08.truth.seed_noise(_ratio_table([0.1]))


def test_beyond_seed_noise_keeps_only_changes_larger_than_a_seed_makes():
    null = _ratio_table(0.05 * np.array([1, -1] * 9))   # seed noise: log ratios +-0.05
    table = _ratio_table([np.log(0.5), np.log(0.97), np.log(2.0)] + [0.0] * 15)
    out = ch08.truth.beyond_seed_noise(table, null)
    threshold = out["seed_threshold"].iloc[0]
    assert 0.5 < threshold < 0.97
    assert out.loc["AU1", "forgotten_beyond_seed"]          # ratio 0.5: far beyond
    assert out.loc["AU2", "forgotten"] and not out.loc["AU2", "forgotten_beyond_seed"]  # 0.97: within
    assert out.loc["AU4", "gained_beyond_seed"] and not out.loc["AU4", "forgotten_beyond_seed"]
    # The interval rule still applies: a small ratio with an interval across 1 is not forgotten.
    loose = ch08.truth.beyond_seed_noise(table.assign(forgotten=False), null)
    assert not loose["forgotten_beyond_seed"].any()


def test_null_leave_one_out_flags_at_the_nominal_rate():
    # With exchangeable normal seed noise and the held-out AU's own threshold, a held-out log
    # ratio over its RMS-of-others is Student-t with 17 df: one-sided 2.5 % flags.
    rng = np.random.default_rng(0)
    flags = [len(ch08.truth.null_leave_one_out(_ratio_table(0.2 * rng.standard_normal(18)))) for _ in range(1000)]
    assert np.mean(flags) / 18 == pytest.approx(0.025, abs=0.005)
    outlier = _ratio_table([np.log(0.3)] + [0.05 * (-1) ** i for i in range(17)])
    assert ch08.truth.null_leave_one_out(outlier) == [1]


def test_paper_aus_claim_verdicts():
    def truth(log5, log14, forgotten=None):
        logs = np.zeros(18)
        logs[facs.au_index(5)], logs[facs.au_index(14)] = log5, log14
        part = _ratio_table(logs, forgotten=forgotten).reset_index().assign(model="FreezeB0")
        return ch08.truth.beyond_seed_noise(part, _ratio_table(0.05 * np.array([1, -1] * 9)))

    assert ch08.verdicts.paper_aus_claim(truth(np.log(0.5), np.log(0.6))).verdict == "holds"
    assert ch08.verdicts.paper_aus_claim(truth(np.log(0.5), np.log(0.99))).verdict == "inconclusive"
    assert ch08.verdicts.paper_aus_claim(truth(0.1, 0.2)).verdict == "fails"
    assert "AU5 ratio 0.50" in ch08.verdicts.paper_aus_claim(truth(np.log(0.5), np.log(0.6))).this_run


# --------------------------------------------------------------------------- scores
def test_set_precision_by_hand_with_the_exact_hypergeometric_p():
    from scipy import stats

    ranking = [14, 5, 1, 2, 26, 9]
    row = ch08.methods.set_precision(ranking, [5, 14, 26, 43], 3)  # AU43 is not ranked: it does not count
    assert row["precision"] == pytest.approx(2 / 3) and row["chance"] == 0.5
    assert row["p_precision"] == pytest.approx(stats.hypergeom(6, 3, 3).sf(1))  # P(at least 2 of 3 hits)
    assert ch08.methods.set_precision(ranking, [], 3) == {"precision": 0.0, "chance": 0.0, "p_precision": 1.0}
    with pytest.raises(ValueError, match="k must lie"):
        ch08.methods.set_precision([1, 2], [1], 3)
    with pytest.raises(ValueError, match="twice"):
        ch08.methods.set_precision([1, 2, 1], [1], 2)


def test_set_precision_p_is_what_random_orders_give():
    rng = np.random.default_rng(0)
    aus, forgotten = list(facs.AU_CODES), list(facs.AU_CODES)[::3]
    observed = ch08.methods.set_precision(forgotten + [a for a in aus if a not in forgotten], forgotten, 3)
    shuffled = [ch08.methods.set_precision(list(rng.permutation(aus)), forgotten, 3)["precision"]
                for _ in range(4000)]
    assert np.mean(np.array(shuffled) >= observed["precision"]) == pytest.approx(observed["p_precision"], abs=0.01)
    assert np.mean(shuffled) == pytest.approx(observed["chance"], abs=0.02)


def test_rank_agreement_perfect_reversed_and_random():
    aus = list(facs.AU_CODES)
    perfect = ch08.methods.rank_agreement(aus, aus, n_resamples=2000, seed=0)
    assert perfect["spearman"] == pytest.approx(1.0) and perfect["p_spearman"] < 0.001
    reversed_ = ch08.methods.rank_agreement(aus[::-1], aus, n_resamples=2000, seed=0)
    assert reversed_["spearman"] == pytest.approx(-1.0) and reversed_["p_spearman"] == 1.0
    shuffled = list(np.random.default_rng(3).permutation(aus))
    random_order = ch08.methods.rank_agreement(shuffled, aus, n_resamples=2000, seed=0)
    from scipy import stats

    assert random_order["spearman"] == pytest.approx(stats.spearmanr(
        np.arange(18), [aus.index(a) for a in shuffled]).statistic)
    assert np.isnan(ch08.methods.rank_agreement([1, 2], [1, 2], seed=0)["spearman"])


def test_recovery_verdict_holds_for_a_perfect_ranking_and_not_for_a_random_one():
    aus = list(facs.AU_CODES)
    verdicts = ch08.verdicts
    perfect = ch08.methods.rank_agreement(aus, aus, n_resamples=2000, seed=0)
    assert verdicts.recovery_verdict(perfect["spearman"], perfect["p_spearman"]) == "holds"
    for seed in range(5):
        shuffled = list(np.random.default_rng(seed).permutation(aus))
        agreement = ch08.methods.rank_agreement(shuffled, aus, n_resamples=2000, seed=0)
        if agreement["p_spearman"] >= 0.05:  # what a random order gives 95 % of the time
            assert verdicts.recovery_verdict(agreement["spearman"], agreement["p_spearman"]) != "holds"
    reversed_ = ch08.methods.rank_agreement(aus[::-1], aus, n_resamples=2000, seed=0)
    assert verdicts.recovery_verdict(reversed_["spearman"], reversed_["p_spearman"]) == "fails"
    assert verdicts.recovery_verdict(np.nan, np.nan) == "inconclusive"


def test_score_ranking_restricts_to_common_aus_and_handles_too_few():
    row = ch08.methods.score_ranking("m", "B0", [14, 5, 1, 2], [1, 14, 5, 9, 2], forgotten=[1, 9], k=2, seed=0)
    assert row["n_aus"] == 4 and row["n_forgotten"] == 1  # AU9 is not ranked by the method
    assert row["precision"] == 0.0 and row["chance"] == 0.25
    assert row["spearman"] == pytest.approx(0.4)  # orders 14 5 1 2 against 1 14 5 2, by hand: 1 - 6*6/60
    empty = ch08.methods.score_ranking("m", "B0", [], [1, 2, 3, 4], forgotten=[1], k=3, seed=0)
    assert np.isnan(empty["precision"]) and np.isnan(empty["spearman"]) and empty["method_top"] == "nothing ranked"


def test_precision_display_names_every_column_for_the_reader_with_its_k():
    rows = [ch08.methods.score_ranking("LRP regions", "FreezeB0", [14, 5, 1, 2, 9], [1, 14, 5, 9, 2], forgotten=[1, 9],
                                       k=2, seed=0)]
    shown = ch08.methods.precision_display(pd.DataFrame(rows))
    assert list(shown.columns[4:6]) == ["method's top 2", "truth's top 2"] and "precision@2" in shown.columns
    assert all("_" not in name for name in shown.columns)
    assert shown["precision@2"].iloc[0] == rows[0]["precision"]


def test_precision_table_needs_the_truth_beyond_seed_noise():
    truth = _ratio_table(np.zeros(18)).assign(model="FreezeB0")
    with pytest.raises(ValueError, match="beyond_seed_noise"):
        ch08.methods.precision_table(truth, lrp=None, probe_sweep=None, seed=0)


def test_matched_selection_matches_the_class_mix():
    labels = np.array([0] * 10 + [1] * 10)
    y_ref = labels.copy()
    y_other = labels.copy()
    y_other[[0, 1, 10]] = 7  # three targets: two of class 0, one of class 1
    target, baseline = ch08.methods.matched_selection(labels, y_ref, y_other, max_images=50, seed=0)
    np.testing.assert_array_equal(target, [0, 1, 10])
    assert sorted(labels[baseline].tolist()) == [0, 0, 1]
    assert not set(baseline) & set(target)


def test_flags_and_orders():
    table = pd.DataFrame({"au": [5, 14, 1], "difference": [0.3, 0.2, np.nan], "p_holm": [0.01, 0.2, np.nan]},
                         index=["AU5", "AU14", "AU1"])
    assert ch08.methods.lrp_flags(table) == [5]
    assert ch08.methods.lrp_order(table) == [5, 14]
    probe = pd.DataFrame({"au": [5, 14, 1], "model": "m", "folds": "stratified",
                          "mean_difference": [-0.1, -0.2, 0.1], "corrected_t_p": [0.01, 0.04, 0.001],
                          "corrected_t_p_holm": [0.03, 0.08, 0.003]})
    assert ch08.methods.probe_flags(probe, "m") == [5]
    assert ch08.methods.probe_flags(probe, "m", holm=False) == [5, 14]
    assert ch08.methods.probe_order(probe, "m") == [14, 5, 1]


def test_positive_control_summary_and_verdicts():
    logs = np.zeros(18)
    logs[facs.au_index(9)], logs[facs.au_index(5)] = np.log(0.7), np.log(0.9)
    seed_pair = np.log(np.linspace(0.8, 1.2, 18))  # what two seeds do: a seed threshold near 0.79
    truth = {ch08.controls.X_FREE: _ratio_table(logs), ch08.controls.NULL: _ratio_table(seed_pair)}
    names = [f"AU{a}" for a in facs.AU_CODES]

    def summary(lrp_p, probe_p, truth_table=truth):
        lrp = pd.DataFrame({"au": list(facs.AU_CODES), "difference": np.linspace(1, 0, 18),
                            "p_holm": 1.0, "rank": np.arange(1, 19)}, index=names)
        lrp.loc["AU9", ["difference", "p_holm"]] = [2.0, lrp_p]
        probe = pd.DataFrame({"au": list(facs.AU_CODES), "model": ch08.controls.X_FREE, "folds": "stratified",
                              "mean_difference": -np.linspace(0.1, 0, 18), "corrected_t_p": 0.5,
                              "corrected_t_p_holm": 1.0})
        probe.loc[probe["au"] == 9, ["mean_difference", "corrected_t_p_holm"]] = [-0.3, probe_p]
        return ch08.verdicts.control_summary(truth_table, {ch08.controls.X_FREE: lrp}, {"controls": probe}, control_au=9)

    table = summary(0.01, 0.01)
    assert table.index.tolist() == [f"{ch08.controls.X_FREE} vs {ch08.controls.SHAM}"]
    assert table.iloc[0]["truth: rank of AU9"] == "1 of 18"
    assert table.iloc[0]["probe: rank of AU9"] == "1 of 18"

    def verdict(table):
        null = pd.DataFrame({"flags": [0, 0, 0], "of": [18, 18, 18], "which": ["none"] * 3},
                            index=["LRP regions (Holm)", "probe, corrected t (Holm)", "probe, corrected t (per AU)"])
        claims = ch08.verdicts.ground_truth_claims(pd.DataFrame(columns=["method", "model"]), table, null, control_au=9)
        return next(c.verdict for c in claims if c.claim_id == "GT-positive-control")

    assert verdict(summary(0.01, 0.01)) == "holds"
    assert verdict(summary(0.01, 0.5)) == "inconclusive"
    assert verdict(summary(0.5, 0.5)) == "fails"
    kept = {**truth, ch08.controls.X_FREE: _ratio_table(np.zeros(18))}  # the control failed: X not lost
    assert verdict(summary(0.01, 0.01, kept)) == "inconclusive"
    # X lost (interval below 1) but within what a seed alone does: the control did not bite
    within = np.zeros(18)
    within[facs.au_index(9)] = np.log(0.9)
    mild = {**truth, ch08.controls.X_FREE: _ratio_table(within)}
    table = summary(0.01, 0.01, mild)
    assert table.iloc[0]["truth: AU9 forgotten"] and not table.iloc[0]["truth: AU9 forgotten beyond seed noise"]
    assert verdict(table) == "inconclusive"


# --------------------------------------------------------------------------- controls
def test_control_data_really_lacks_au_x():
    data = ch08.controls.render_control_data(24, control_au=9, render_size=48, image_size=SIZE, seed=1)
    j = facs.au_index(9)
    assert np.all(data["aus_x_free"][:, j] == 0)
    assert (data["aus_sham"][:, j] > 0).any()
    others = [i for i in range(18) if i != j]
    np.testing.assert_array_equal(data["aus_x_free"][:, others], data["aus_sham"][:, others])
    assert np.bincount(data["labels"], minlength=8).min() == 3  # balanced classes
    # Faces without AU9 in the sham data render identically in both versions.
    same = data["aus_sham"][:, j] == 0
    np.testing.assert_array_equal(data["x_free"][same], data["sham"][same])
    assert not np.array_equal(data["x_free"][~same], data["sham"][~same])


def test_world_prediction_is_surprise_and_contempt():
    prediction = ch08.pairs.world_prediction()
    assert set(prediction["emotions"]) == {"surprise", "contempt"}
    assert set(prediction["aus"]) == {1, 2, 5, 26, 12, 14}
    assert not set(prediction["aus"]) & set(facs.PSPI_AUS)


# --------------------------------------------------------------------------- what the notebook glues
def test_pairs_counts_and_labels(pairs):
    assert pairs.pairs_per_au == pairs.rows.shape[1] and pairs.n_base == len(pairs.off)
    assert ch08.pairs.au_labels([5, 14]) == "AU5, AU14" and ch08.pairs.au_labels([]) == ""
    assert set(ch08.pairs.EXAMPLE_AUS) <= set(facs.AU_CODES)


def test_comparisons_live_with_the_lrp_method():
    names = [c.name for c in ch08.methods.comparisons()]
    assert names == ["FreezeB0", ch08.controls.X_FREE, ch08.controls.NULL]
    paper = ch08.methods.comparisons(controls=False)
    assert [(c.reference, c.other) for c in paper] == [("FreezeB5", "FreezeB0")]


def test_check_and_control_headlines():
    head = ch08.verdicts.check_headline({"n": 40, "sham_share": 0.25, "x_users": []})
    assert head == {"control_n": 40, "control_sham_share": 25.0, "control_users": "no emotion"}
    assert ch08.verdicts.check_headline({"n": 4, "sham_share": 1, "x_users": ["fear", "anger"]})["control_users"] == \
        "fear, anger"
    row = {"truth: AU9 feature ratio [95 %]": "0.70 [0.6, 0.8]", "truth: rank of AU9": "1 of 18",
           "LRP: rank of AU9": "—", "probe: rank of AU9": "3 of 17"}
    controls = pd.DataFrame([row], index=pd.Index([f"{ch08.controls.X_FREE} vs {ch08.controls.SHAM}"], name="model"))
    assert ch08.verdicts.control_headline(controls, control_au=9) == {
        "x_truth": "0.70 [0.6, 0.8]", "x_truth_rank": "1 of 18", "x_lrp_rank": "—", "x_probe_rank": "3 of 17"}


def test_null_headline_reads_rows_by_name():
    null = pd.DataFrame({"flags": [4, 1], "which": ["AU1, AU2, AU4, AU5", "AU5"]},
                        index=[ch08.verdicts.NULL_SEED_ROW, ch08.verdicts.NULL_TRUTH_ROW])  # order does not matter
    assert ch08.verdicts.null_headline(null) == {"null_truth_flags": 1, "null_seed_flags": 4,
                                                 "null_seed_which": "AU1, AU2, AU4, AU5"}


def test_precision_headline_with_and_without_a_method():
    precision = pd.DataFrame({"method": ["LRP regions", "probe sweep", "probe sweep"],
                              "model": ["FreezeB0", "FreezeB0", "FreezeB1"], "precision": [1 / 3, 2 / 3, 0.0],
                              "spearman": [0.1, 0.6, -0.2], "p_spearman": [0.4, 0.05, 1.0],
                              "method_top": ["AU5, AU1, AU2", "AU14", "AU9"], "chance": [0.2, 0.25, 0.25],
                              "n_forgotten": [4, 5, 5]})
    head = ch08.verdicts.precision_headline(precision)
    assert head["lrp_precision"] == "0.33" and head["probe_p"] == "p = 0.05" and head["probe_top"] == "AU14"
    assert head["probe_spearman"] == "0.60"
    assert head["chance"] == "0.20" and head["n_forgotten"] == 4  # the first row's
    only_probe = ch08.verdicts.precision_headline(precision[precision["method"] == "probe sweep"])
    assert only_probe["lrp_precision"] == "n/a" and only_probe["lrp_top"] == "not scored"
    assert only_probe["lrp_p"] == "p = n/a" and only_probe["lrp_spearman"] == "n/a"
    assert only_probe["chance"] == "0.25"


def test_truth_and_paper_aus_headlines():
    logs = np.zeros(18)
    logs[facs.au_index(5)] = np.log(0.5)
    null = _ratio_table(np.linspace(-0.05, 0.05, 18))
    truth = ch08.truth.beyond_seed_noise(_ratio_table(logs).reset_index().assign(model="FreezeB0"), null)
    summary = pd.DataFrame([{"forgotten (features)": "AU5", "forgotten beyond seed noise": "AU5",
                             "gained beyond seed noise": "none", "top 3 (features)": "AU5, AU1, AU2",
                             "top 3 (logits)": "AU14, AU5, AU1", "top 3 predicted": "3 of 3"}],
                           index=pd.Index(["FreezeB0"], name="model"))
    head = ch08.verdicts.truth_headline(truth, null, summary)
    assert head["seed_sigma"] == ch08.truth.seed_noise(null)
    assert head["seed_threshold"] == float(truth["seed_threshold"].iloc[0])
    assert head["b0_top"] == "AU5, AU1, AU2" and head["b0_top_predicted"] == "3 of 3"
    assert head["pspi_aus"] == ", ".join(f"AU{a}" for a in facs.PSPI_AUS)
    claim = ch08.verdicts.paper_aus_claim(truth)
    assert ch08.verdicts.paper_aus_headline([claim]) == {"paper_aus_truth": claim.this_run,
                                                         "paper_aus_verdict": claim.verdict}
    with pytest.raises(ValueError, match="GT-paper-AUs-forgotten"):
        ch08.verdicts.paper_aus_headline([])


def test_family_pair_outputs_equal_one_model_at_a_time(tmp_path):
    """FreezeB<k>'s pair outputs made together (shared conv blocks run once) are the
    artifacts pair_outputs reads, with the values one model alone gives, bit for bit."""
    from fixtures_models import freeze_family

    from forgetting_aus import cache, config, models, pipeline

    cfg = config.load_config("smoke", overrides={"results_dir": str(tmp_path / "run")})
    family = {}
    for k, model in freeze_family((0, 2, 5), num_classes=8).items():
        models.save_model(model, tmp_path / f"FreezeB{k}" / "model.keras")
        family[k] = pipeline.Trained(tmp_path / f"FreezeB{k}")
    rng = np.random.default_rng(0)
    truth = ch08.truth
    pairs = truth.CounterfactualPairs(
        off=rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8),
        on=rng.integers(0, 256, (18, 2, 32, 32, 3), dtype=np.uint8), rows=rng.integers(0, 3, (18, 2)),
        intensity=np.ones((18, 2)), off_landmarks=np.zeros((3, 68, 2), np.float32), base_aus=np.zeros((3, 18)))
    truth._make_family_outputs(cfg, family, "pairs-key", pairs)
    for k, trained in family.items():
        alone = truth._features_and_logits(trained.model_path, pairs, with_logits=True)
        made = truth.pair_outputs(cfg, f"FreezeB{k}", trained, "pairs-key", pairs, with_logits=True)
        assert sorted(made) == sorted(alone)
        for name in alone:
            np.testing.assert_array_equal(made[name], alone[name])
    assert len(list((cfg.run_dir() / "gt_pair_outputs").glob("*/" + cache.MANIFEST))) == 3


def test_null_head_streams_its_features_through_disk_and_deletes_them(tmp_path):
    """The same head, bit for bit, as fit_head on features held in memory (the path it replaced)."""
    from types import SimpleNamespace

    from fixtures_models import freeze_family

    from forgetting_aus import config, models, pipeline, training

    cfg = config.load_config("smoke", overrides={"results_dir": str(tmp_path)})
    base = models.conv_base(freeze_family([0])[0])
    rng = np.random.default_rng(0)
    data = {name: SimpleNamespace(images=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), labels=np.arange(n) % 8)
            for name, n in (("train", 48), ("val", 16))}
    head = ch08.controls.streamed_null_head(cfg, base, data, scratch=tmp_path / "features")
    assert not (tmp_path / "features").exists(), "the features are deleted once the head is trained"

    images = data["train"].images
    loss, _ = pipeline.emotion_loss(cfg, data["train"].labels)
    reference = training.fit_head(
        training.extract_features(base, images), training.extract_features(base, images, flip=True),
        data["train"].labels, training.extract_features(base, data["val"].images), data["val"].labels,
        num_classes=8, loss=loss, epochs=cfg.retrain_epochs, batch_size=cfg.retrain_batch_size,
        learning_rate=cfg.learning_rate, momentum=cfg.momentum, head_units=cfg.head_units, dropout=cfg.dropout,
        seed=cfg.seed + ch08.controls.NULL_SEED_OFFSET + 1000, select_by="macro_recall", progress=False)
    for streamed, in_memory in zip(head.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(streamed, in_memory)


def test_controls_whose_models_did_not_learn_are_not_judged():
    floors = ch08.verdicts.control_floors({ch08.controls.X_FREE: 0.9, ch08.controls.SHAM: 0.2,
                                           ch08.controls.NULL: 0.8})
    assert floors.loc[ch08.controls.SHAM, "floor"] == pytest.approx(1 / 8 + 0.2)  # eight emotions
    assert floors.loc[ch08.controls.NULL, "floor"] == pytest.approx(1 / 2 + 0.2)  # pain or not
    assert floors["met"].tolist() == [True, False, True]
    row = {"truth: AU9 forgotten beyond seed noise": True, "LRP: AU9 flagged": True, "probe: AU9 flagged": True,
           "truth: AU9 feature ratio [95 %]": "0.5 [0.4, 0.6]", "truth: rank of AU9": "1 of 18",
           "truth: seed threshold": "0.80", "LRP: rank of AU9": "1 of 18", "probe: AU9 F1 diff": "-30.0",
           "probe: rank of AU9": "1 of 18"}
    controls = pd.DataFrame([row], index=[f"{ch08.controls.X_FREE} vs {ch08.controls.SHAM}"])
    null = pd.DataFrame({"flags": [0, 0, 0], "of": [18, 18, 18], "which": ["none"] * 3},
                        index=["LRP regions (Holm)", "probe, corrected t (Holm)", "probe, corrected t (per AU)"])

    def verdicts(floors):
        found = ch08.verdicts.ground_truth_claims(pd.DataFrame(columns=["method", "model"]), controls, null,
                                                  control_au=9, floors=floors)
        return {c.claim_id: c for c in found}

    judged = verdicts(None)
    assert judged["GT-positive-control"].verdict == "holds" and judged["GT-null-control"].verdict == "holds"
    floored = verdicts(floors)
    assert floored["GT-positive-control"].verdict == "inconclusive"
    assert "sham below its learnability floor" in floored["GT-positive-control"].this_run
    assert floored["GT-null-control"].verdict == "holds"  # the null pair learned
