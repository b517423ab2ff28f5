"""Tests of forgetting_aus.explain.regions: AU regions, scores, ranking, mouth removal."""

from __future__ import annotations

import numpy as np
import pytest

from forgetting_aus.explain import regions
from forgetting_aus.facs import AU_CODES

SIZE = 48


def _face(size: int = SIZE, scale: float = 1.0, offset=(0.0, 0.0)) -> np.ndarray:
    return regions.template_landmarks(size) * scale + np.asarray(offset)


def _centroid(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    return np.array([cols.mean(), rows.mean()])  # (x, y)


def test_every_au_and_region_is_non_empty_inside_the_image():
    aus = regions.au_masks(_face(), SIZE)
    assert set(aus) == set(AU_CODES)
    for code, mask in aus.items():
        assert mask.shape == (1, SIZE, SIZE) and mask.dtype == bool
        assert 0 < mask.sum() < 0.2 * SIZE**2, f"AU{code} region has {mask.sum()} pixels"
    named = regions.au_region_masks(_face(), SIZE)
    assert tuple(named) == regions.REGION_NAMES
    assert all(m.any() for m in named.values())
    assert set().union(*regions.AU_TO_REGIONS.values()) <= set(regions.REGION_NAMES)


def test_regions_sit_where_the_anatomy_is():
    r = {k: v[0] for k, v in regions.au_region_masks(_face(), SIZE).items()}
    y = {k: _centroid(m)[1] for k, m in r.items()}
    assert y["forehead_centre"] < y["inner_brows"] < y["upper_lids"] < y["lower_lids"]
    assert y["lower_lids"] < y["cheeks"] < y["upper_lip"] < y["lips"] < y["chin"]
    lm = _face()
    mouth_width = lm[54, 0] - lm[48, 0]
    dimple_x = np.nonzero(r["dimple_area"])[1]
    # Dimples lie lateral to the lip corners, the inner brows medial to the outer brows.
    assert dimple_x.min() < lm[48, 0] and dimple_x.max() > lm[54, 0]
    assert np.abs(np.nonzero(r["dimple_area"])[1] - SIZE / 2).mean() > mouth_width / 2
    inner = np.abs(np.nonzero(r["inner_brows"])[1] - SIZE / 2).mean()
    outer = np.abs(np.nonzero(r["outer_brows"])[1] - SIZE / 2).mean()
    assert inner < outer


def test_regions_move_with_the_landmarks():
    size = 64
    base = _face(48, offset=(6, 6))
    dx, dy = 5, 3
    before = regions.au_region_masks(base, size)
    after = regions.au_region_masks(base + np.array([dx, dy]), size)
    for name in regions.REGION_NAMES:
        b, a = before[name][0], after[name][0]
        assert not b[-dy:].any() and not b[:, -dx:].any()  # nothing clipped by the shift
        assert a.sum() == b.sum()
        mismatch = np.logical_xor(a[dy:, dx:], b[:-dy, :-dx]).sum()
        assert mismatch <= 0.02 * b.sum(), name  # allow boundary pixels to round differently


def test_regions_scale_with_the_face_and_batch_independently():
    small = regions.au_masks(_face(40, offset=(12, 12)), 64)
    big = regions.au_masks(_face(64), 64)
    both = regions.au_masks(np.stack([_face(40, offset=(12, 12)), _face(64)]), 64)
    for code in AU_CODES:
        np.testing.assert_array_equal(both[code][0], small[code][0])
        np.testing.assert_array_equal(both[code][1], big[code][0])
        ratio = big[code].sum() / small[code].sum()
        assert 1.8 < ratio < 3.6, f"AU{code}: area ratio {ratio} for a 1.6x larger face"


def test_landmark_validation():
    with pytest.raises(ValueError, match=r"\(n, 68, 2\)"):
        regions.au_region_masks(np.zeros((66, 2)), SIZE)
    bad = _face()
    bad[10, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        regions.au_masks(bad, SIZE)


def test_region_scores_by_hand():
    maps = np.zeros((2, 4, 4))
    maps[0, 0, :2] = [2.0, -1.0]  # negative relevance is ignored
    maps[0, 1, 0] = 4.0
    maps[1] = -1.0
    mask = np.zeros((4, 4), dtype=bool)
    mask[:2, :2] = True  # 4 pixels
    empty = np.zeros((2, 4, 4), dtype=bool)
    table = regions.region_scores(maps, {"box": mask, "none": empty})
    assert list(table.columns) == ["box", "none"]
    assert table.loc[0, "box"] == pytest.approx((2.0 + 4.0) / 4)
    assert table.loc[1, "box"] == 0.0
    assert table["none"].isna().all()
    with pytest.raises(ValueError, match="mask 'bad'"):
        regions.region_scores(maps, {"bad": np.zeros((3, 4, 4), dtype=bool)})


def test_rank_aus_finds_the_planted_au():
    rng = np.random.default_rng(0)
    n = 10
    land_t = np.stack([_face() + rng.normal(0, 0.5, (68, 2)) for _ in range(n)])
    land_b = np.stack([_face() + rng.normal(0, 0.5, (68, 2)) for _ in range(n)])
    noise = lambda: rng.normal(0, 1e-4, (n, SIZE, SIZE))  # noqa: E731
    target = noise()
    target[regions.au_masks(land_t, SIZE, aus=[14])[14]] += 1e-3  # extra attention on dimples
    table = regions.rank_aus(target, land_t, noise(), land_b)
    assert table.index[0] == "AU14"
    assert list(table.columns[:5]) == ["au", "description", "mean_target", "mean_baseline",
                                       "difference"]
    top = table.loc["AU14"]
    assert top["difference"] == pytest.approx(top["mean_target"] - top["mean_baseline"])
    assert top["rank_biserial"] == 1.0 and top["p_value"] < 1e-3
    assert top["p_holm"] >= top["p_value"]
    assert (table["n_target"] == n).all() and (table["n_baseline"] == n).all()
    # AUs far from the dimples show no effect.
    assert table.loc["AU1", "p_value"] > 0.01


def test_holm_adjustment_by_hand():
    p = np.array([0.01, 0.04, np.nan, 0.03])
    np.testing.assert_allclose(regions._holm(p), [0.03, 0.06, np.nan, 0.06])


def test_relevance_share_in_masks_by_hand():
    maps = np.zeros((2, 4, 4))
    maps[0, 0, 0] = 3.0
    maps[0, 3, 3] = 1.0
    maps[0, 2, 2] = -5.0  # negative relevance is not part of the share
    mask_a = np.zeros((4, 4), dtype=bool)
    mask_a[0, 0] = True
    mask_b = np.zeros((4, 4), dtype=bool)
    mask_b[0, :2] = True  # overlaps mask_a: the union counts once
    table = regions.relevance_share_in_masks(maps, {"a": mask_a, "b": mask_b})
    assert table.loc[0, "share"] == pytest.approx(0.75)
    assert table.loc[0, "uniform_baseline"] == pytest.approx(2 / 16)
    assert table.loc[0, "excess"] == pytest.approx(0.75 - 2 / 16)
    assert np.isnan(table.loc[1, "share"])  # no positive relevance at all
    # A uniform map gets exactly its area fraction.
    uniform = regions.relevance_share_in_masks(np.ones((1, 4, 4)), [mask_b])
    assert uniform.loc[0, "share"] == pytest.approx(uniform.loc[0, "uniform_baseline"])


def _images(n: int = 2, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(3).random((n, size, size, 3)).astype(np.float32)


def test_mouth_cut_lies_between_nose_and_lips():
    lm = _face()
    cut = regions.mouth_cut_rows(lm)[0]
    assert lm[33, 1] < cut < lm[48:68, 1].min()
    assert cut > lm[36:48, 1].max()


def test_mouth_mask_changes_only_the_rows_below_the_cut():
    images = _images()
    lm = np.stack([_face(), _face(offset=(0, -4))])
    out = regions.mouth_crop(images, lm)
    cut = regions.mouth_cut_rows(lm)
    rows = np.arange(SIZE)
    for k in range(2):
        below = rows > cut[k]
        np.testing.assert_array_equal(out[k, ~below], images[k, ~below])
        assert (out[k, below] != images[k, below]).any(axis=-1).all()
        # Filled with one colour: the mean face colour above the cut.
        filled_pixels = out[k, below].reshape(-1, 3)
        kept_pixels = images[k, ~below].reshape(-1, 3)
        assert np.ptp(filled_pixels, axis=0).max() == 0
        assert np.all(filled_pixels[0] > kept_pixels.min(axis=0))
        assert np.all(filled_pixels[0] < kept_pixels.max(axis=0))
    assert out.dtype == np.float32 and out.shape == images.shape
    filled = regions.mouth_crop(images, lm, fill=[0.0, 0.5, 1.0])
    np.testing.assert_array_equal(filled[0, rows > cut[0]].reshape(-1, 3)[0], [0.0, 0.5, 1.0])


def test_mouth_crop_mode_keeps_only_the_upper_face():
    lm = _face()[None]
    cut = regions.mouth_cut_rows(lm)[0]
    images = np.zeros((1, SIZE, SIZE, 1), dtype=np.float32)
    images[0, np.arange(SIZE) > cut] = 100.0  # the mouth part is marked
    images[0, : int(cut) + 1, :, 0] = np.linspace(0, 1, int(cut) + 1)[:, None]
    out = regions.mouth_crop(images, lm, mode="crop")
    assert out.shape == images.shape
    assert out.max() <= 1.0  # no pixel of the mouth part survives
    assert out[0, 0, 0, 0] == pytest.approx(0.0) and out[0, -1, 0, 0] == pytest.approx(1.0)
    assert np.all(np.diff(out[0, :, 0, 0]) >= 0)  # stretched, order kept
    with pytest.raises(ValueError, match="mode"):
        regions.mouth_crop(images, lm, mode="blur")
