"""Tests of the synthetic FACS world (renderer, samplers, twins, checks); small and fast."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgetting_aus.facs import AU_CODES, AU_NAMES, EMOTIONS, PSPI_AUS, au_index, pspi
from forgetting_aus.synth import checks, expressions, twins
from forgetting_aus.synth.identity import (
    ID_RANGES,
    Nuisance,
    identities_from_ids,
    sample_identities,
    sample_nuisance,
)
from forgetting_aus.synth.render import render_faces, render_speed


def _calm(n: int) -> Nuisance:
    """Nuisance without rotation/shift/noise/blur, so pixels compare across AUs."""
    nu = sample_nuisance(n, np.random.default_rng(0), style="faces")
    fields = {f: getattr(nu, f) for f in nu.__dataclass_fields__}
    fields.update(rotation_deg=np.zeros(n, np.float32), scale=np.ones(n, np.float32),
                  shift=np.zeros((n, 2), np.float32), noise_sigma=np.zeros(n, np.float32),
                  blur=np.zeros(n, np.float32))
    return Nuisance(**fields).take(np.zeros(n, int))


def _single(code: int, value: float, n: int = 2) -> np.ndarray:
    aus = np.zeros((n, len(AU_CODES)))
    aus[1:, au_index(code)] = value  # row 0 stays neutral
    return aus


@pytest.fixture(scope="module")
def idn2():
    return identities_from_ids(np.array([10_000_001, 10_000_001]), seed=3)


def _render(idn, aus, unilateral=None, size=96):
    return render_faces(idn, aus, _calm(len(aus)), unilateral=unilateral, size=size, seed=0)


def test_same_seed_same_bytes_and_different_seed_differs():
    rng = np.random.default_rng(5)
    idn = sample_identities(6, rng)
    nu = sample_nuisance(6, rng)
    aus, uni = expressions.sample_emotion_aus(np.arange(6), rng)
    a1, l1 = render_faces(idn, aus, nu, unilateral=uni, size=64, seed=11)
    a2, l2 = render_faces(idn, aus, nu, unilateral=uni, size=64, seed=11)
    a3, _ = render_faces(idn, aus, nu, unilateral=uni, size=64, seed=12)
    assert a1.dtype == np.uint8 and a1.shape == (6, 64, 64, 3)
    assert l1.dtype == np.float32 and l1.shape == (6, 68, 2)
    assert a1.tobytes() == a2.tobytes() and l1.tobytes() == l2.tobytes()
    assert a1.tobytes() != a3.tobytes()


def test_identity_is_a_function_of_seed_and_id():
    a = identities_from_ids(np.array([5, 6, 5]), seed=1)
    b = identities_from_ids(np.array([5]), seed=1)
    assert a.face_width[0] == a.face_width[2] == b.face_width[0]
    assert a.face_width[0] != a.face_width[1]


def test_landmarks_move_with_their_aus(idn2):
    _, lm = _render(idn2, _single(26, 5))
    assert (lm[1, 6:11, 1] - lm[0, 6:11, 1] > 2).all(), "AU26 lowers jaw landmarks 6-10"
    _, lm = _render(idn2, _single(12, 5))
    assert lm[1, 48, 1] < lm[0, 48, 1] - 1 and lm[1, 54, 1] < lm[0, 54, 1] - 1
    width = lambda p: p[54, 0] - p[48, 0]  # noqa: E731
    assert width(lm[1]) > width(lm[0]) + 1, "AU12 widens the mouth"
    _, lm = _render(idn2, _single(43, 1))
    for up, low in ((37, 41), (38, 40), (43, 47), (44, 46)):
        assert abs(lm[1, low, 1] - lm[1, up, 1]) < 0.05
        assert lm[0, low, 1] - lm[0, up, 1] > 1
    _, lm = _render(idn2, _single(1, 5))
    assert (lm[1, [21, 22], 1] < lm[0, [21, 22], 1] - 1.5).all(), "AU1 raises inner brows"
    _, lm = _render(idn2, _single(4, 5))
    assert (lm[1, [21, 22], 1] > lm[0, [21, 22], 1] + 1).all()
    assert lm[1, 22, 0] - lm[1, 21, 0] < lm[0, 22, 0] - lm[0, 21, 0] - 1, "AU4 draws brows together"


def _change(img, code, value=5.0, unilateral=None, idn=None):
    im, lm = _render(idn, _single(code, value), unilateral=unilateral)
    diff = np.abs(im[1].astype(int) - im[0].astype(int)).sum(-1)
    return diff, lm[0]


@pytest.mark.parametrize("code, centre_points, radius", [
    (14, (48, 54), 14),        # dimples beside the lip corners
    (4, (21, 22, 27), 12),     # between the brows
    (17, (8, 57), 16),         # chin
    (9, (21, 22, 28, 30, 31, 35), 12),  # nose root, nostrils, inner brows
])
def test_au_changes_pixels_only_in_its_region(idn2, code, centre_points, radius):
    diff, lm = _change(None, code, idn=idn2)
    assert diff.sum() > 0
    yy, xx = np.mgrid[:96, :96]
    near = np.zeros((96, 96), bool)
    for p in centre_points:
        near |= np.hypot(xx - lm[p, 0], yy - lm[p, 1]) < radius
    assert diff[near].sum() / diff.sum() > 0.9


def test_unilateral_au14_changes_one_side_only(idn2):
    diff, lm = _change(None, 14, unilateral=np.array([0, 1]), idn=idn2)
    # The dimple lies lateral to the image-right lip corner; nothing changes lateral to the
    # image-left corner (the lips between the corners may bend a little).
    right = int(np.ceil(lm[54, 0])) + 1
    left = int(np.floor(lm[48, 0])) - 1
    assert diff[:, right:].sum() > 0
    assert diff[:, :left].sum() < 0.02 * diff[:, right:].sum()


def test_emotion_sampler_prototypes_and_exclusion():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(8), 200)
    aus, uni = expressions.sample_emotion_aus(labels, rng)
    assert aus.shape == (1600, 18) and (aus >= 0).all() and (aus <= 5).all()
    happy = aus[labels == EMOTIONS.index("happy")]
    assert (happy[:, au_index(12)] > 0).mean() > 0.8
    neutral = aus[labels == 0]
    assert neutral.max() <= 1.2
    contempt = labels == EMOTIONS.index("contempt")
    assert (uni[contempt] != 0).all() and (uni[~contempt] == 0).all()
    assert (aus[contempt, au_index(14)] >= 2).all()
    aus, _ = expressions.sample_emotion_aus(labels, rng, exclude_aus=(14, 5))
    assert (aus[:, [au_index(14), au_index(5)]] == 0).all()
    with pytest.raises(ValueError, match="emotion codes"):
        expressions.sample_emotion_aus([9], rng)


def test_pain_sequences_rates_and_roles():
    aus = expressions.sample_pain_sequences(100, 60, np.random.default_rng(1))
    flat = aus.reshape(-1, 18)
    assert np.array_equal(flat, np.rint(flat))
    share = (pspi(flat) > 0).mean()
    assert 0.1 < share < 0.25
    roles = checks.au_roles_in_pain(pd.DataFrame(flat, columns=AU_NAMES))
    for code in (5, 14):
        assert roles.loc[f"AU{code}", "role"] == "absent"
    for code in PSPI_AUS:
        assert roles.loc[f"AU{code}", "role"] == "pain-informative"
    for code in expressions.UNINFORMATIVE_PAIN_AUS:
        r = roles.loc[f"AU{code}"]
        assert r["role"] == "present-but-uninformative"
    # Pain frames come in runs (smooth episodes), not isolated frames.
    pain = pspi(flat).reshape(100, 60) > 0
    starts = (pain[:, 1:] & ~pain[:, :-1]).sum()
    assert pain.sum() / max(starts, 1) > 4


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_tiny_twins_are_reproducible_and_parse(tmp_path):
    kw = dict(n_subjects=2, sequences_per_subject=2, frames_per_sequence=6, image_size=48, seed=4)
    a = twins.write_unbc_twin(tmp_path / "u1", **kw)
    b = twins.write_unbc_twin(tmp_path / "u2", **kw)
    assert _tree_digest(a) == _tree_digest(b)
    imgs = sorted((a / "Images").rglob("*.png"))
    assert len(imgs) == 24
    subject, seq, name = imgs[0].relative_to(a / "Images").parts
    assert subject[3] == "-" and subject[:3] == subject[-3:] and seq.startswith(subject[4:])
    assert name == f"{seq}001.png"
    for img in imgs:
        stem = img.stem
        rel = img.parent.relative_to(a / "Images")
        written = float((a / "Frame_Labels/PSPI" / rel / f"{stem}_facs.txt").read_text())
        row = np.zeros((1, 18))
        for line in (a / "Frame_Labels/FACS" / rel / f"{stem}_facs.txt").read_text().splitlines():
            code, value = (float(x) for x in line.split())
            assert value > 0 and value == int(value)
            row[0, au_index(int(code))] = value
        assert pspi(row)[0] == written
        aam = (a / "AAM_landmarks" / rel / f"{stem}_aam.txt").read_text().splitlines()
        assert len(aam) == 66 and all(len(line.split()) == 2 for line in aam)

    ck = twins.write_ckplus_twin(tmp_path / "ck", n_subjects=2, sequences_per_subject=2,
                                 frames_per_sequence=3, image_size=48, seed=4)
    frames = sorted((ck / "cohn-kanade-images/S005/001").glob("*.png"))
    assert [f.name for f in frames] == [f"S005_001_{k:08d}.png" for k in (1, 2, 3)]
    lm = (ck / "Landmarks/S005/001/S005_001_00000002_landmarks.txt").read_text().splitlines()
    assert len(lm) == 68 and all(len(line.split()) == 2 for line in lm)
    facs = list((ck / "FACS").rglob("*_facs.txt"))
    assert len(facs) == 4 and all(f.name.endswith("_00000003_facs.txt") for f in facs)
    for f in facs:
        for line in f.read_text().splitlines():
            code, value = (float(x) for x in line.split())
            assert int(code) in AU_CODES and 0 < value <= 5
    for f in (ck / "Emotion").rglob("*_emotion.txt"):
        assert float(f.read_text()) in range(8)

    aff = twins.write_affectnet_twin(tmp_path / "aff", n_train=120, n_test_per_class=2,
                                     image_size=48, seed=4)
    train = pd.read_csv(aff / "training.csv")
    val = pd.read_csv(aff / "validation.csv")
    header = (aff / "training.csv").read_text().splitlines()[0]
    assert header == twins.AFFECTNET_HEADER
    assert (val["expression"].value_counts() == 2).all() and len(val) == 16
    assert set(train["expression"]) >= set(range(8)) and set(train["expression"]) <= set(range(11))
    lms = train["facial_landmarks"].iloc[0].split(";")
    assert len(lms) == 136
    assert (aff / "Manually_Annotated_Images" / train["subDirectory_filePath"].iloc[0]).is_file()
    # The dataset folder holds what the release holds; the truth sits beside it.
    assert sorted(p.name for p in aff.iterdir()) == ["Manually_Annotated_Images", "training.csv", "validation.csv"]
    side = pd.read_csv(twins.truth_root(aff) / twins.SIDECAR_NAME)
    assert list(side.columns) == ["subDirectory_filePath", "subject", *AU_NAMES, "unilateral"]
    assert set(side["subDirectory_filePath"]) == set(train["subDirectory_filePath"]) | set(
        val["subDirectory_filePath"])
    sub = side.set_index("subDirectory_filePath")["subject"]
    train_ids = set(sub[train["subDirectory_filePath"]])
    val_ids = set(sub[val["subDirectory_filePath"]])
    assert not train_ids & val_ids
    # Face box from the landmarks: the face fills most but not all of the image.
    assert 0.5 < train["face_width"].median() / 48 < 0.85


def test_class_counts_follow_affectnet_imbalance():
    counts = twins._class_counts(9000, None, twins.AFFECTNET_MIN_SHARE)
    assert counts.sum() == 9000 and counts.min() >= 200
    assert counts.max() / counts.min() >= 10
    order = np.argsort(-np.array(twins.AFFECTNET_COUNTS))
    assert (np.diff(counts[order]) <= 0).all()


def test_identity_ranges_are_disjoint():
    ranges = sorted(ID_RANGES.values())
    for (_lo1, hi1), (lo2, _hi2) in zip(ranges, ranges[1:], strict=False):
        assert hi1 < lo2


def test_ensure_twin_skips_unchanged_and_rewrites_changed(tmp_path):
    root = tmp_path / "six"
    kw = dict(n_subjects=1, images_per_subject_per_class=1, image_size=32, seed=0, style="jaffe")
    twins.ensure_twin("six_emotion", root, **kw)
    csv = root / "training.csv"
    first = csv.stat().st_mtime_ns
    os.utime(csv, ns=(first - 10**9, first - 10**9))
    twins.ensure_twin("six_emotion", root, **kw)
    assert csv.stat().st_mtime_ns == first - 10**9, "unchanged twin must not be rewritten"
    twins.ensure_twin("six_emotion", root, **{**kw, "seed": 1})
    assert csv.stat().st_mtime_ns != first - 10**9
    assert not list(tmp_path.glob(".six.*")), "no temporary folders left behind"
    df = pd.read_csv(csv)
    assert sorted(df["expression"]) == sorted(EMOTIONS.index(e) for e in
                                              ("anger", "disgust", "fear", "happy", "sad",
                                               "surprise"))
    with pytest.raises(ValueError, match="unknown twin kind"):
        twins.ensure_twin("nope", root)


def test_checks_cooccurrence_and_baselines():
    table = pd.DataFrame(np.zeros((4, 18)), columns=AU_NAMES)
    table.loc[[0, 1], "AU5"] = 3
    table.loc[[0], "AU26"] = 2
    co = checks.au_cooccurrence(table)
    assert co["counts"].loc["AU5", "AU26"] == 1
    assert co["conditional"].loc["AU5", "AU26"] == 0.5
    assert co["conditional"].loc["AU26", "AU5"] == 1.0
    rng = np.random.default_rng(0)
    n = 80
    idn = sample_identities(20, rng)
    labels = np.arange(n) % 2
    aus, uni = expressions.sample_emotion_aus(labels, rng)
    images, lms = render_faces(idn.take(np.arange(n) % 20), aus, sample_nuisance(n, rng),
                               unilateral=uni, size=48, seed=0)
    out = checks.trivial_baselines(images, labels, lms, np.arange(n) % 20, seed=0)
    for name in ("pixels_8x8", "region_means"):
        assert 0 <= out[name]["macro_f1"] <= 1
    whole = checks.baseline_features(images, lms, chunk_rows=n)
    assert whole["pixels_8x8"].shape == (n, 64) and whole["region_means"].shape == (n, 12)
    for chunk_rows in (1, 7):  # uneven chunks: the crops of a chunk depend on its own faces only
        chunked = checks.baseline_features(images, lms, chunk_rows=chunk_rows)
        for name in whole:
            np.testing.assert_array_equal(chunked[name], whole[name])
    with pytest.raises(ValueError, match="chunk_rows must be at least 1"):
        checks.baseline_features(images, lms, chunk_rows=0)


def test_every_au_is_visible_at_model_input_reduced_scale():
    """Every AU is detectable on held-out identities from the 64 px model-input crop.

    The bar (held-out F1 of "intensity >= 2 vs absent" >= 0.8 for every AU) belongs to
    ``checks.au_visibility()`` at its default scale (100 + 100 identities, 400 + 400 faces
    per AU, about a minute of CPU), which the book's data chapter computes and publishes.
    Here the same check runs at a reduced scale (30 + 30 identities, 160 + 160 faces per
    AU, ~25 s CPU), where a detector trained on 160 faces scores lower and the held-out
    F1 has a standard error of about 0.04 (~145 test faces): we assert every AU >= 0.7
    (the bar less ~2.5 standard errors) and the mean over AUs >= 0.85. The check is
    seeded, so this is deterministic; a renderer change that hides an AU fails it.
    """
    res = checks.au_visibility(size=64, n_identities=30, n_per_au=160, render_size=96, seed=0,
                               n_jobs=2)
    assert list(res.index) == list(AU_NAMES)
    assert (res["n_train"] == 160).all()
    weak = res.index[res["f1"] < 0.7].tolist()
    assert not weak, f"AUs not visible at 64 px: {res.loc[weak, 'f1'].round(3).to_dict()}"
    assert res["f1"].mean() >= 0.85


def test_au_visibility_does_not_depend_on_worker_count():
    kwargs = dict(size=32, n_identities=8, n_per_au=24, render_size=48, seed=3)
    pd.testing.assert_frame_equal(checks.au_visibility(**kwargs, n_jobs=1),
                                  checks.au_visibility(**kwargs, n_jobs=2))


def _identity_rows(ids, *, seed: int, style: str = "default") -> set[tuple]:
    """Identity parameter vectors (rounded) of ``ids``, as hashable rows."""
    idn = identities_from_ids(np.asarray(sorted(set(ids))), seed=seed, style=style)
    cols = [idn.face_width, idn.eye_spacing, idn.eye_width, idn.nose_tip, idn.mouth_width,
            idn.skin[:, 0], idn.skin[:, 2]]
    return {tuple(np.round(row, 6)) for row in np.stack(cols, axis=1)}


def test_identity_pools_are_disjoint_across_written_twins(tmp_path):
    seed = 2
    aff = twins.write_affectnet_twin(tmp_path / "aff", n_train=40, n_test_per_class=2,
                                     image_size=32, seed=seed)
    side = pd.read_csv(twins.truth_root(aff) / twins.SIDECAR_NAME)
    train_names = set(pd.read_csv(aff / "training.csv")["subDirectory_filePath"])
    is_train = side["subDirectory_filePath"].isin(train_names)
    pools = {"affectnet_train": (set(side.loc[is_train, "subject"]), "default"),
             "affectnet_validation": (set(side.loc[~is_train, "subject"]), "default")}
    unbc = twins.write_unbc_twin(tmp_path / "unbc", n_subjects=3, sequences_per_subject=1,
                                 frames_per_sequence=30, image_size=32, seed=seed)
    ck = twins.write_ckplus_twin(tmp_path / "ck", n_subjects=3, sequences_per_subject=1,
                                 frames_per_sequence=2, image_size=32, seed=seed)
    for name, root, folder in (("unbc", unbc, "Images"), ("ckplus", ck, "cohn-kanade-images")):
        assert not (root / twins.SUBJECTS_NAME).exists(), "the release has no subjects.csv"
        subjects = pd.read_csv(twins.truth_root(root) / twins.SUBJECTS_NAME)
        # Every written subject folder is listed, with one identity each.
        assert set(subjects["subject"]) == {p.name for p in (root / folder).iterdir()}
        assert subjects["identity_id"].is_unique
        pools[name] = (set(subjects["identity_id"]), "default")
    for style in ("oulu", "faces", "jaffe"):
        root = twins.write_six_emotion_set(tmp_path / style, n_subjects=3,
                                           images_per_subject_per_class=1, image_size=32,
                                           seed=seed, style=style)
        pools[f"six_{style}"] = (set(pd.read_csv(twins.truth_root(root) / twins.SIDECAR_NAME)["subject"]), style)
    names = sorted(pools)
    for i, a in enumerate(names):
        assert pools[a][0], f"no identities found in {a}"
        for b in names[i + 1:]:
            assert not pools[a][0] & pools[b][0], f"{a} and {b} share identity ids"
            # Not only the ids: no two pools contain the same face.
            rows_a = _identity_rows(list(pools[a][0]), seed=seed, style=pools[a][1])
            rows_b = _identity_rows(list(pools[b][0]), seed=seed, style=pools[b][1])
            assert not rows_a & rows_b, f"{a} and {b} share identity parameters"


def test_unbc_sequences_drift_smoothly_but_differ_between_sequences():
    rng = np.random.default_rng(0)
    base = sample_nuisance(2, rng, style="unbc")
    seqs = [twins._jitter(base.take(np.array([q])), 60, rng, drift=twins.DRIFT_WEBCAM)
            for q in range(2)]
    for nu in seqs:
        for name in ("rotation_deg", "light_azimuth", "blur"):
            x = getattr(nu, name)
            step = np.abs(np.diff(x, axis=0)).max()
            assert step < 0.5 * (x.max() - x.min()), f"{name} jumps between frames"
            assert x.std() > 0, f"{name} does not drift"
        assert (nu.blur >= 0).all() and (nu.blur <= 2).all()
        # Identity-independent fields that must not drift stay fixed within a sequence.
        assert np.ptp(nu.background, axis=0).max() == 0


def test_render_speed_returns_rate():
    assert render_speed(16, 32, 0) > 0


def test_bad_inputs_are_explained():
    idn = identities_from_ids(np.array([1, 2]), seed=0)
    with pytest.raises(ValueError, match="shape"):
        render_faces(idn, np.zeros((2, 17)), _calm(2))
    with pytest.raises(ValueError, match="unilateral"):
        render_faces(idn, np.zeros((2, 18)), _calm(2), unilateral=np.array([0, 2]))


def test_blur_matches_per_image_correlation():
    """The sparse blur equals a per-image separable 5-tap correlation with replicated edges."""
    from scipy import ndimage

    from forgetting_aus.synth.imaging import _BLUR_PASSES, _blur

    rng = np.random.default_rng(0)
    img = rng.random((3, 5, 12, 12), dtype=np.float32)
    amount = np.array([0.0, 0.4, 1.0, 1.7, 2.0])
    expected = img.copy()
    for i, a in enumerate(amount):
        blend = np.array([max(0, 1 - a), 1 - max(0, 1 - a) - max(0, a - 1), max(0, a - 1)])
        kernel = blend @ _BLUR_PASSES
        for axis in (-1, -2):
            expected[:, i] = ndimage.correlate1d(expected[:, i], kernel, axis=axis, mode="nearest")
    blurred = img.copy()
    _blur(blurred, amount)
    np.testing.assert_allclose(blurred, expected, atol=1e-6)
    np.testing.assert_array_equal(blurred[:, 0], img[:, 0])  # amount 0: untouched


def test_warp_matches_bilinear_interpolation():
    """The sparse warp matrix interpolates a linear ramp exactly (bilinear is exact on it)."""
    from forgetting_aus.synth.imaging import _bilinear_matrix

    rng = np.random.default_rng(1)
    n, h, w, size = 2, 7, 9, 5
    fu = rng.uniform(0, w - 1.001, (n, size, size)).astype(np.float32)
    fv = rng.uniform(0, h - 1.001, (n, size, size)).astype(np.float32)
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    plane = np.stack([0.5 * cols + 2 * rows + 10 * k for k in range(n)]).astype(np.float32)
    expected = 0.5 * fu + 2 * fv + 10 * np.arange(n)[:, None, None]
    warped = (_bilinear_matrix(fu.copy(), fv.copy(), h, w) @ plane.ravel()).reshape(n, size, size)
    np.testing.assert_allclose(warped, expected, atol=1e-4)


def test_sensor_noise_keeps_sd_and_gray_channels():
    from forgetting_aus.synth.imaging import _sensor_noise

    sigma = np.array([2.0, 5.0, 0.0, 8.0])
    gray = np.array([False, True, False, False])
    noise = _sensor_noise(np.random.default_rng(0), 4, 64, sigma, gray)
    assert noise.shape == (3, 4, 64, 64) and noise.dtype == np.float32
    np.testing.assert_allclose(noise.std(axis=(0, 2, 3)), sigma, rtol=0.02)
    # Centred: within 4 standard errors of zero.
    assert (np.abs(noise.mean(axis=(0, 2, 3))) <= 4 * sigma / np.sqrt(3 * 64 * 64)).all()
    np.testing.assert_array_equal(noise[1, 1], noise[0, 1])
    np.testing.assert_array_equal(noise[2, 1], noise[0, 1])
    # No correlation between neighbouring pixels (no tiling or smoothing).
    x = noise[0, 3]
    assert abs(np.corrcoef(x[:, 1:].ravel(), x[:, :-1].ravel())[0, 1]) < 0.03


def test_held_out_split_groups_by_subject_when_known_and_stratifies_when_not():
    labels = np.tile(np.arange(4), 30)
    subjects = np.repeat([f"s{i}" for i in range(20)], 6)
    train, test, how = checks.held_out_split(labels, subjects, seed=0)
    assert how == "subject" and not set(subjects[train]) & set(subjects[test])
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(labels)))
    # Without subject ids (real AffectNet): every class keeps its share on both sides.
    train, test, how = checks.held_out_split(labels, np.full(len(labels), ""), seed=0)
    assert how == "stratified rows (no subject ids)" and len(test) == 30
    assert np.ptp(np.bincount(labels[test])) <= 1
    # One unknown id is enough to make grouping impossible.
    partly = subjects.copy()
    partly[0] = ""
    assert checks.held_out_split(labels, partly, seed=0)[2] == "stratified rows (no subject ids)"


def test_ckplus_peaks_pose_au5_mostly_with_au26_and_leave_some_without():
    """DATA.md: AU5 mostly comes with AU26, as in real CK+, yet AU5-only peaks remain for the crop validation."""
    aus, _, _ = expressions.sample_ckplus_peaks(600, np.random.default_rng(0))  # the default twin's sequences
    au5, au26 = aus[:, au_index(5)] > 0, aus[:, au_index(26)] > 0
    assert (au5 & au26).sum() / au5.sum() > 0.6
    assert (au5 & ~au26).sum() >= 25
