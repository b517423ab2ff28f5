"""Chapter 05 (visual analysis): selection, difference maps, region ranking, claims, figures.

No real LRP runs here (the worker is tested in test_explain_lrp.py): the maps are made by
hand; the function that calls the worker (shared with chapter 08) is
``explain.lrp.explain_rows``, tested with a fake ``explain`` in test_explain_lrp.py.
"""

import numpy as np
import pandas as pd
import pytest

from forgetting_aus import facs
from forgetting_aus.chapters import ch05_visual_analysis as ch05
from forgetting_aus.explain import lrp, regions
from forgetting_aus.plots import ch05_visual_analysis as plots05

SIZE = 32
CONTEMPT = facs.EMOTIONS.index("contempt")
SURPRISE = facs.EMOTIONS.index("surprise")


def _selection(target, baseline, *, emotion="contempt", k=0):
    target, baseline = np.asarray(target, dtype=np.int64), np.asarray(baseline, dtype=np.int64)
    return ch05.Selection(emotion=emotion, k=k, target=target, baseline=baseline,
                            n_target_available=len(target), n_baseline_available=len(baseline))


# --- selection ----------------------------------------------------------------------

def test_selection_by_hand():
    labels = np.array([CONTEMPT, CONTEMPT, CONTEMPT, CONTEMPT, SURPRISE, 0])
    y_b5 = np.array([CONTEMPT, CONTEMPT, 0, CONTEMPT, SURPRISE, 0])
    y_bk = np.array([0, CONTEMPT, 0, SURPRISE, 0, 0])
    s = ch05.select_images(labels, y_b5, y_bk, emotion="contempt", k=0, max_images=10, seed=0)
    # B5 right and Bk wrong, true class contempt: rows 0 and 3 (row 2: B5 wrong too).
    np.testing.assert_array_equal(s.target, [0, 3])
    np.testing.assert_array_equal(s.baseline, [1])  # both right
    assert (s.n_target_available, s.n_baseline_available) == (2, 1)
    s = ch05.select_images(labels, y_b5, y_bk, emotion="surprise", k=0, max_images=10, seed=0)
    np.testing.assert_array_equal(s.target, [4])  # a surprise image, not row 3 (true contempt)
    assert len(s.baseline) == 0


def test_selection_is_capped_reproducibly_and_independent_of_other_ks():
    rng = np.random.default_rng(1)
    labels = np.full(100, CONTEMPT)
    y_b5 = labels.copy()
    y_bk = np.where(rng.random(100) < 0.5, 0, CONTEMPT)
    a = ch05.select_images(labels, y_b5, y_bk, emotion="contempt", k=0, max_images=7, seed=3)
    b = ch05.select_images(labels, y_b5, y_bk, emotion="contempt", k=0, max_images=7, seed=3)
    c = ch05.select_images(labels, y_b5, y_bk, emotion="contempt", k=1, max_images=7, seed=3)
    assert len(a.target) == len(a.baseline) == 7
    assert a.n_target_available == int((y_bk != CONTEMPT).sum())
    np.testing.assert_array_equal(a.target, b.target)
    assert np.all(np.diff(a.target) > 0)  # sorted, unique
    assert set(a.target) <= set(np.flatnonzero(y_bk != CONTEMPT))
    assert set(a.baseline) <= set(np.flatnonzero(y_bk == CONTEMPT))
    assert not np.array_equal(a.target, c.target)  # k enters the seed


def test_selection_errors_and_empty():
    labels = np.zeros(4, dtype=int)
    s = ch05.select_images(labels, labels, labels, emotion="contempt", k=0, max_images=5, seed=0)
    assert s.empty and len(s.baseline) == 0
    with pytest.raises(ValueError, match="unknown emotion"):
        ch05.select_images(labels, labels, labels, emotion="pain", k=0, max_images=5, seed=0)
    with pytest.raises(ValueError, match="lrp_max_images"):
        ch05.select_images(labels, labels, labels, emotion="contempt", k=0, max_images=0, seed=0)
    with pytest.raises(ValueError, match="equal length"):
        ch05.select_images(labels, labels[:3], labels, emotion="contempt", k=0, max_images=5, seed=0)


def test_rows_to_explain_shares_reference_rows_and_skips_empty_targets():
    sels = {("contempt", 0): _selection([1, 4], [2]), ("surprise", 0): _selection([], [7], emotion="surprise"),
            ("contempt", 1): _selection([4, 9], [3], k=1)}
    rows = ch05.rows_to_explain(sels)
    np.testing.assert_array_equal(rows[5], [1, 2, 3, 4, 9])
    np.testing.assert_array_equal(rows[0], [1, 2, 4])
    np.testing.assert_array_equal(rows[1], [3, 4, 9])
    assert ch05.rows_to_explain({("surprise", 0): _selection([], [7], emotion="surprise")}) == {}


def test_explained_maps_lookup():
    maps = ch05.ExplainedMaps(rows={5: np.array([2, 5, 9])}, maps={5: np.arange(3, dtype=np.float32)[:, None, None]
                                                                          * np.ones((1, 4, 4), np.float32)})
    np.testing.assert_array_equal(maps.of(5, np.array([9, 2]))[:, 0, 0], [2, 0])
    assert maps.of(5, np.array([], dtype=int)).shape == (0, 4, 4)
    assert maps.of(0, np.array([], dtype=int)).shape[0] == 0
    with pytest.raises(KeyError, match="not explained"):
        maps.of(5, np.array([3]))
    assert maps.n_maps == 3
    assert ch05.ExplainedMaps(rows={5: np.arange(4), 0: np.arange(2)}, maps={}).n_maps == 6
    with pytest.raises(KeyError, match="not explained"):
        maps.of(0, np.array([2]))


# --- difference maps -------------------------------------------------------------------

def test_difference_maps_use_shares_so_scaling_a_map_changes_nothing():
    rng = np.random.default_rng(0)
    r5 = rng.random((3, 8, 8)).astype(np.float32)
    rk = rng.random((3, 8, 8)).astype(np.float32)
    sel = _selection([0, 1, 2], [])
    base = ch05.difference_maps(ch05.ExplainedMaps(rows={5: np.arange(3), 0: np.arange(3)},
                                                       maps={5: r5, 0: rk}), sel)
    scaled = ch05.difference_maps(ch05.ExplainedMaps(rows={5: np.arange(3), 0: np.arange(3)},
                                                         maps={5: 7.5 * r5, 0: 0.01 * rk}), sel)
    np.testing.assert_allclose(base, scaled, atol=1e-6)
    np.testing.assert_allclose(base, r5 / r5.sum(axis=(1, 2), keepdims=True) - rk / rk.sum(axis=(1, 2), keepdims=True),
                               atol=1e-6)
    np.testing.assert_allclose(base.sum(axis=(1, 2)), 0, atol=1e-6)
    # a map with a non-positive total cannot be read as shares: NaN, not a flipped sign
    bad = ch05.difference_maps(ch05.ExplainedMaps(rows={5: np.arange(3), 0: np.arange(3)},
                                                      maps={5: r5, 0: -rk}), sel)
    assert np.isnan(bad).all()


def test_map_similarity():
    a = np.random.default_rng(0).random((2, 5, 5))
    r = ch05.map_similarity(a, np.stack([3 * a[0] + 1, -a[1]]))
    np.testing.assert_allclose(r, [1, -1])
    assert np.isnan(ch05.map_similarity(np.ones((1, 3, 3)), a[:1, :3, :3]))[0]


# --- AU regions ---------------------------------------------------------------------------

def _faces(n, rng):
    base = regions.template_landmarks(SIZE)
    return np.stack([base + rng.normal(0, 0.3, base.shape) for _ in range(n)])


def test_planted_blob_in_the_dimple_area_ranks_au14_first():
    rng = np.random.default_rng(0)
    lm_target, lm_baseline = _faces(12, rng), _faces(12, rng)
    noise = lambda n: rng.normal(0, 1e-4, (n, SIZE, SIZE))  # noqa: E731
    diff_target, diff_baseline = noise(12), noise(12)
    dimples = regions.au_masks(lm_target, SIZE, aus=[14])[14]
    diff_target = diff_target + 1e-2 * dimples  # FreezeB5 attends more to the dimples
    table = ch05.au_ranking(diff_target, lm_target, diff_baseline, lm_baseline)
    assert table.index[0] == "AU14" and table.loc["AU14", "rank"] == 1
    assert table.loc["AU14", "p_holm"] < 0.05
    verdict, reason = ch05.claim_verdict(table, 14)
    assert verdict == "holds", reason
    # the same blob on the baseline too: no extra attention on the target images
    table = ch05.au_ranking(diff_target, lm_target, diff_baseline + 1e-2 * regions.au_masks(lm_baseline, SIZE,
                                                                                                 aus=[14])[14],
                              lm_baseline)
    assert abs(table.loc["AU14", "difference"]) < 1e-3
    assert table.loc["AU14", "p_holm"] > 0.05


def test_claim_verdicts():
    def table(difference, rank, p_holm, n=10):
        rows = pd.DataFrame({"rank": [rank], "difference": [difference], "p_holm": [p_holm],
                             "n_target": [n], "n_baseline": [n]}, index=["AU14"])
        filler = pd.DataFrame({"rank": [1], "difference": [1.0], "p_holm": [0.5], "n_target": [n],
                               "n_baseline": [n]}, index=["AU1"])
        return pd.concat([filler, rows]) if rank != 1 else rows
    assert ch05.claim_verdict(table(0.1, 1, 0.5), 14)[0] == "holds"
    assert ch05.claim_verdict(table(0.1, 4, 0.01), 14)[0] == "holds"
    assert ch05.claim_verdict(table(0.1, 4, 0.2), 14)[0] == "inconclusive"
    assert ch05.claim_verdict(table(-0.1, 4, 0.9), 14)[0] == "fails"
    verdict, reason = ch05.claim_verdict(table(0.1, 1, 0.001, n=3), 14)
    assert verdict == "inconclusive" and "too few images" in reason


def test_empty_selections_flow_through_without_crashing():
    images = np.zeros((4, SIZE, SIZE, 3), dtype=np.uint8)
    landmarks = _faces(4, np.random.default_rng(0))
    sels = {("contempt", 0): _selection([], []), ("surprise", 0): _selection([], [1], emotion="surprise")}
    maps = ch05.ExplainedMaps(rows={}, maps={})
    rankings = ch05.au_rankings(sels, maps, landmarks)
    assert rankings[("contempt", 0)]["n_target"].eq(0).all()
    assert rankings[("contempt", 0)]["rank"].isna().all()
    summary = ch05.ranking_summary(rankings)
    assert list(summary["top AUs (this run)"]) == ["no target images"] * 2
    assert ch05.selection_table(sels)["explained (target)"].tolist() == [0, 0]
    assert ch05.similarity_table(sels, maps)["median r"].isna().all()
    claims = ch05.visual_claims(rankings)
    assert [c.verdict for c in claims] == ["inconclusive", "inconclusive"]
    assert all("too few images" in c.evidence for c in claims)
    head = ch05.headline(rankings, sels)
    assert head["contempt_rank"] == "not ranked" and head["contempt_n_target"] == 0
    assert ch05.figure3_example(images, sels, maps) is None
    examples = ch05.figure5_examples(images, landmarks, sels, maps)
    assert len(examples["contempt"]["images"]) == 0
    for fig in (plots05.figure3(None), plots05.figure5(examples),
                plots05.ranking_figure({e: rankings[(e, 0)] for e in ch05.STUDIED_EMOTIONS},
                                            paper_aus=ch05.STUDIED_EMOTIONS)):
        plots05.plt.close(fig)


def test_figures_with_maps():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (6, SIZE, SIZE, 3)).astype(np.uint8)
    landmarks = _faces(6, rng)
    rows = np.arange(6)
    maps = ch05.ExplainedMaps(rows={5: rows, 0: rows}, maps={5: rng.random((6, SIZE, SIZE)).astype(np.float32),
                                                               0: rng.random((6, SIZE, SIZE)).astype(np.float32)})
    sels = {("contempt", 0): _selection([0, 1, 2], [3, 4, 5]),
            ("surprise", 0): _selection([4], [5], emotion="surprise")}
    example = ch05.figure3_example(images, sels, maps)
    assert example["row"] == 0 and 0 <= example["reference"].min() and example["reference"].max() == 1
    examples = ch05.figure5_examples(images, landmarks, sels, maps, n_examples=2)
    assert examples["contempt"]["difference"].shape == (2, SIZE, SIZE)
    assert examples["contempt"]["au"] == 14 and examples["surprise"]["au"] == 5
    assert examples["surprise"]["au_mask"].any()
    expected = lrp.difference_map(maps.maps[5][:2], maps.maps[0][:2])  # signed, not rescaled per panel
    np.testing.assert_allclose(examples["contempt"]["difference"], expected)
    rankings = ch05.au_rankings(sels, maps, landmarks)
    assert rankings[("contempt", 0)]["n_target"].max() == 3
    for fig in (plots05.figure3(example), plots05.figure5(examples),
                plots05.ranking_figure({e: rankings[(e, 0)] for e in ch05.STUDIED_EMOTIONS},
                                            paper_aus=ch05.STUDIED_EMOTIONS)):
        plots05.plt.close(fig)


def test_figure5_says_an_all_nan_difference_is_undefined():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 255, (3, SIZE, SIZE, 3)).astype(np.uint8)
    landmarks = _faces(3, rng)
    rows = np.arange(3)
    reference = rng.random((3, SIZE, SIZE)).astype(np.float32)
    reference[1] = -reference[1]  # total relevance < 0: the shares, and D, are undefined
    maps = ch05.ExplainedMaps(rows={5: rows, 0: rows}, maps={5: reference, 0: rng.random((3, SIZE, SIZE)).astype(np.float32)})
    sels = {("contempt", 0): _selection([0, 1, 2], []), ("surprise", 0): _selection([], [], emotion="surprise")}
    examples = ch05.figure5_examples(images, landmarks, sels, maps)
    difference = examples["contempt"]["difference"]
    assert np.isnan(difference[1]).all()  # undefined, and drawn as such
    assert np.isfinite(difference[[0, 2]]).all()
    fig = plots05.figure5(examples)
    panels = fig.axes[:6]  # contempt row: image, map, image, map, image, map
    notes = [[t.get_text() for t in ax.texts] for ax in panels]
    assert notes[3] == [plots05.UNDEFINED_NOTE] and "undefined" in plots05.UNDEFINED_NOTE
    assert notes[1] == [] and notes[5] == []  # defined maps are drawn, without the note
    assert not panels[3].images and panels[1].images
    plots05.plt.close(fig)


def test_ranking_helpers_for_the_notebook():
    table = pd.DataFrame({"difference": [0.2, 0.1]}, index=["AU14", "AU5"])
    rankings = {("contempt", 0): table, ("surprise", 0): table * 2, ("contempt", 1): table * 3}
    picked = ch05.paper_rankings(rankings)
    assert list(picked) == list(ch05.STUDIED_EMOTIONS) and picked["surprise"] is rankings[("surprise", 0)]
    stacked = ch05.rankings_table(rankings)
    assert stacked.index.names == ["emotion", None]
    assert stacked.loc[("surprise", "AU14"), "difference"] == 0.4
    similarity = pd.DataFrame({"emotion": ["contempt", "surprise"], "median r": [0.9, np.nan]})
    assert ch05.median_similarity(similarity, "contempt") == 0.9
    assert np.isnan(ch05.median_similarity(similarity, "surprise"))
    assert ch05.median_similarity_text(similarity, "contempt") == "0.90"
    assert ch05.median_similarity_text(similarity, "surprise").startswith("undefined (no surprise target image")


def test_indistinguishable_claim_counts_maps_at_the_threshold():
    from statsmodels.stats.proportion import proportion_confint

    column = f"r >= {ch05.INDISTINGUISHABLE_R}"

    def table(alike, n):
        return pd.DataFrame({"emotion": ["contempt", "surprise"], "compared with": "FreezeB0", "n": n,
                             "with r": n, column: alike, "median r": [0.95, 0.5]})

    claim = ch05.indistinguishable_claim(table([38, 40], [40, 40]))
    assert claim.verdict == "holds" and "78 of 80" in claim.this_run
    assert ch05.indistinguishable_claim(table([5, 3], [40, 40])).verdict == "fails"
    low, _ = proportion_confint(44, 80, alpha=0.05, method="beta")
    assert low < 0.5 and ch05.indistinguishable_claim(table([22, 22], [40, 40])).verdict == "inconclusive"
    assert ch05.indistinguishable_claim(table([0, 0], [0, 0])).verdict == "inconclusive"


def test_similarity_counts_maps_at_the_threshold():
    rng = np.random.default_rng(0)
    a = rng.random((4, 8, 8))
    b = a.copy()
    b[2:] = rng.random((2, 8, 8))  # two alike pairs, two unrelated
    r = ch05.map_similarity(a, b)
    assert (r[:2] == pytest.approx(1.0)) and (r[2:] < ch05.INDISTINGUISHABLE_R).all()


def test_figure5_draws_signed_maps_on_one_scale_centred_on_zero():
    size = 4
    first = np.zeros((size, size))
    first[0, 0], first[0, 1] = 0.5 / size**2, -0.5 / size**2
    second = np.full((size, size), -2.0 / size**2)
    second[1:, :] = 2.0 / size**2
    examples = {e: {"images": np.zeros((1, size, size, 3), dtype=np.uint8), "rows": np.array([0]),
                    "difference": d[None].astype(np.float32), "au": au, "au_mask": np.zeros((1, size, size), bool),
                    "k": 0}
                for e, d, au in (("contempt", first, 14), ("surprise", second, 5))}
    by_hand = np.percentile(np.abs(np.concatenate([first.ravel(), second.ravel()])) * size**2,
                            plots05.DIFFERENCE_PERCENTILE)
    assert plots05.difference_limit(examples) == pytest.approx(by_hand)
    fig = plots05.figure5(examples)
    drawn = [image for ax in fig.axes for image in ax.images if image.get_cmap().name == plots05.DIFFERENCE_CMAP]
    assert len(drawn) == 2
    for image in drawn:
        assert image.get_clim() == pytest.approx((-by_hand, by_hand))  # one scale, zero in the middle
    np.testing.assert_allclose(drawn[1].get_array(), second * size**2)  # signed, not min-max scaled
    plots05.plt.close(fig)


def test_figure5_limit_falls_back_to_one_without_a_finite_difference():
    examples = {"contempt": {"difference": np.full((1, 3, 3), np.nan, dtype=np.float32)},
                "surprise": {"difference": np.zeros((0, 3, 3), dtype=np.float32)}}
    assert plots05.difference_limit(examples) == 1.0


def test_top_rankings_keep_the_first_rows_per_emotion_in_the_shown_columns():
    def ranking(offset: float) -> pd.DataFrame:
        names = [f"AU{code}" for code in facs.AU_CODES]
        return pd.DataFrame({"rank": range(1, len(names) + 1), "au": facs.AU_CODES, "description": "region",
                             "mean_target": 0.0, "mean_baseline": 0.0, "difference": offset + np.arange(len(names)),
                             "rank_biserial": 0.1, "u_statistic": 1.0, "p_value": 0.5, "p_holm": 1.0,
                             "n_target": 7, "n_baseline": 9}, index=pd.Index(names, name="au_name"))

    table = pd.concat({"contempt": ranking(0.0), "surprise": ranking(100.0)}, names=["emotion"])
    top = ch05.top_rankings(table, rows=3)
    assert list(top.columns) == list(ch05.RANKING_SUMMARY_COLUMNS.values())
    assert top.index.get_level_values("emotion").tolist() == ["contempt"] * 3 + ["surprise"] * 3
    assert top["extra D per pixel"].tolist() == [0.0, 1.0, 2.0, 100.0, 101.0, 102.0]


def test_figure5_titles_and_colour_bar_label_stay_apart_and_inside_the_figure():
    rng = np.random.default_rng(3)
    size = 16
    examples = {e: {"images": rng.integers(0, 255, (3, size, size, 3)).astype(np.uint8),
                    "rows": np.array([16, 123, 1480]), "difference": (rng.random((3, size, size)) - 0.5) / size**2,
                    "au": au, "au_mask": np.zeros((3, size, size), bool), "k": 0}
                for e, au in (("contempt", 14), ("surprise", 5))}
    fig = plots05.figure5(examples)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    titles = [ax.title.get_window_extent(renderer) for ax in fig.axes if ax.get_title()]
    assert len(titles) == 12
    for i, box in enumerate(titles):
        assert not any(box.overlaps(other) for other in titles[i + 1:])
    figure_box = fig.bbox
    label = fig.axes[-1].yaxis.label.get_window_extent(renderer)  # the colour bar's
    assert figure_box.x0 <= label.x0 and label.x1 <= figure_box.x1 and label.y0 >= figure_box.y0
    plots05.plt.close(fig)


def test_ranking_figure_moves_the_power_of_ten_into_the_axis_label():
    table = pd.DataFrame({"difference": [3.1e-5, -1.2e-5], "p_holm": [0.01, 0.5]}, index=["AU14", "AU12"])
    fig = plots05.ranking_figure({"contempt": table}, paper_aus={"contempt": 14})
    fig.canvas.draw()
    ax = fig.axes[0]
    assert ax.xaxis.get_offset_text().get_text() == "" and "×1e-5" in ax.get_xlabel()
    assert [bar.get_width() for bar in ax.patches] == pytest.approx([3.1, -1.2])
    plots05.plt.close(fig)
