"""Tests of the dataset readers on tiny fixture trees in the native on-disk formats.

The fixture trees are written into ``tmp_path`` by the small ``write_*`` helpers of
``tests/fixtures_release.py`` (a few 16-64 px images each), so no binary fixture is committed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures_release import (  # tests/ is on sys.path under pytest
    AFFECTNET_HEADER,
    CKPLUS_SPEC,
    RELEASE_LISTS,
    affectnet_line,
    face_points,
    image_bytes,
    nest,
    write_affectnet,
    write_ckplus,
    write_png,
    write_points,
    write_sidecar,
    write_unbc,
)

from forgetting_aus.datasets import (
    AU_COLUMNS,
    LANDMARK_COLUMNS,
    PRESENCE_COLUMNS,
    PUBLISHED_COUNTS,
    DatasetFormatError,
    DatasetNotFoundError,
    FaceBoxError,
    ImageLoadError,
    ReadReport,
    SelectionCheckError,
    affectnet_splits,
    check_unbc_selection,
    ckplus_peak_frames,
    decode_rgb,
    format_counts,
    iter_faces,
    landmarks_66_to_68,
    landmarks_array,
    load_faces,
    loading_speed,
    probe_dataset,
    published_counts,
    read_affectnet,
    read_ckplus,
    read_unbc,
    resolve_root,
    unbc_protocol,
)
from forgetting_aus.facs import EMOTIONS


@pytest.fixture
def affectnet_root(tmp_path):
    return write_affectnet(tmp_path / "affectnet")


@pytest.fixture
def unbc_root(tmp_path):
    return write_unbc(tmp_path / "unbc", {
        "042-ll042": {"ll042t1aaaff": [0, 0, 2, 3, 0, 0]},
        "043-jh043": {"jh043t1aaaff": [0, 1, 0], "jh043t2aaaff": [0, 0]},
    })


@pytest.fixture
def ckplus_root(tmp_path):
    return write_ckplus(tmp_path / "ckplus", CKPLUS_SPEC)


# --------------------------------------------------------------------------- roots and reports


def test_resolve_root_env_overrides_profile(tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir()
    monkeypatch.setenv("FORGETTING_AUS_AFFECTNET", os.fspath(real))
    root = resolve_root(tmp_path / "elsewhere", dataset="AffectNet",
                        profile_key="affectnet_root", env_var="FORGETTING_AUS_AFFECTNET")
    assert root == real.absolute()


def test_resolve_root_missing_folder_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("FORGETTING_AUS_AFFECTNET", raising=False)
    missing = tmp_path / "no_such_folder"
    with pytest.raises(DatasetNotFoundError) as caught:
        resolve_root(missing, dataset="AffectNet", profile_key="affectnet_root",
                     env_var="FORGETTING_AUS_AFFECTNET")
    message = str(caught.value)
    for needle in (os.fspath(missing), "affectnet_root", "params/paper.yml",
                   "FORGETTING_AUS_AFFECTNET", "default profile needs none"):
        assert needle in message
    with pytest.raises(DatasetNotFoundError, match="No folder given for AffectNet"):
        resolve_root(None, dataset="AffectNet", profile_key="affectnet_root",
                     env_var="FORGETTING_AUS_AFFECTNET")


def test_read_report_summarises_skips():
    report = ReadReport(dataset="X")
    report.rows_read = 5
    for i in range(5):
        report.skip("image file missing", f"line {i}")
    text = str(report)
    assert "X: 5 rows read, 5 skipped" in text
    assert "skipped 5: image file missing" in text
    assert text.count("e.g.") == 3  # examples are capped


# --------------------------------------------------------------------------- AffectNet


def test_read_affectnet_columns_codes_and_splits(affectnet_root):
    report = ReadReport()
    index = read_affectnet(affectnet_root, report=report)
    assert len(index) == 7  # 8 rows, one code 9 excluded
    assert report.rows_read == 7
    assert report.skipped == {
        "expression 9 (Uncertain): no emotion label, excluded as in the paper": 1}
    assert "line 6" in str(report)  # header + 4 data rows before it
    assert index["split"].tolist() == ["train"] * 5 + ["test"] * 2
    assert index["label"].tolist() == [0, 1, 1, 2, 7, 0, 3]
    assert index["emotion"].tolist() == [EMOTIONS[c] for c in [0, 1, 1, 2, 7, 0, 3]]
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in index["path"])
    assert index["subject"].isna().all() and index[list(AU_COLUMNS)].isna().all().all()
    assert index[["face_x", "face_y", "face_width", "face_height"]].iloc[0].tolist() == [4, 4, 24, 24]
    np.testing.assert_allclose(landmarks_array(index)[0], face_points(), atol=0.006)
    assert landmarks_array(index).shape == (7, 68, 2)
    assert landmarks_array(index).dtype == np.float32


def test_affectnet_truth_is_joined_only_when_named(affectnet_root, tmp_path):
    index = read_affectnet(affectnet_root)
    rows = {rel: (f"id{i % 3}", {12: 2.5, 6: 1.0} if i % 2 else {}) for i, rel in
            enumerate(index["rel_path"])}
    truth = tmp_path / "truth"
    write_sidecar(truth, rows)
    # A sidecar inside the dataset folder is not the release's: never read unasked.
    write_sidecar(affectnet_root, rows)
    plain = read_affectnet(affectnet_root)
    assert plain["subject"].isna().all() and plain["AU12"].isna().all()
    joined = read_affectnet(affectnet_root, truth=truth)
    assert joined["subject"].tolist() == [rows[r][0] for r in joined["rel_path"]]
    assert joined["AU12"].tolist() == [rows[r][1].get(12, 0.0) for r in joined["rel_path"]]
    assert (joined["AU4"] == 0).all()
    del rows[index["rel_path"].iloc[2]]
    write_sidecar(truth, rows)
    with pytest.raises(DatasetFormatError, match=r"au_intensities.csv: expected a row for every "
                                                 r"image.*found none for '1/train2.png'"):
        read_affectnet(affectnet_root, truth=truth)
    with pytest.raises(DatasetFormatError, match=r"no ground truth at .*elsewhere.*read it without truth="):
        read_affectnet(affectnet_root, truth=tmp_path / "elsewhere")


def test_affectnet_wrong_header_names_missing_and_unexpected(tmp_path):
    header = AFFECTNET_HEADER.replace("expression", "emotion")
    root = write_affectnet(tmp_path / "a", header=header)
    with pytest.raises(DatasetFormatError,
                       match=r"training.csv, line 1: wrong CSV header.*missing: \['expression'\]; "
                             r"unexpected: \['emotion'\]"):
        read_affectnet(root)


def test_affectnet_unparsable_number(tmp_path):
    rows = [affectnet_line("1/a.png"), affectnet_line("1/b.png", box=("abc", 4, 24, 24))]
    root = write_affectnet(tmp_path / "a", training=rows)
    with pytest.raises(DatasetFormatError,
                       match=r"training.csv, line 3, column face_x: expected a number, found 'abc'"):
        read_affectnet(root)


def test_affectnet_unknown_expression_code(tmp_path):
    root = write_affectnet(tmp_path / "a", validation=[affectnet_line("2/a.png", code=12)])
    with pytest.raises(DatasetFormatError,
                       match=r"validation.csv, line 2, column expression: expected a code 0-7.*"
                             r"found '12'"):
        read_affectnet(root)


def test_affectnet_landmarks_with_wrong_number_of_points(tmp_path):
    short = ";".join(f"{v:.2f}" for v in face_points(67).ravel())
    root = write_affectnet(tmp_path / "a", training=[affectnet_line("1/a.png", landmarks=short)])
    with pytest.raises(DatasetFormatError,
                       match=r"training.csv, line 2, column facial_landmarks: expected 68 'x;y' "
                             r"pairs \(136 numbers.*found 134 numbers"):
        read_affectnet(root)
    bad = ";".join(["1.0"] * 135 + ["x"])
    root = write_affectnet(tmp_path / "b", training=[affectnet_line("1/a.png", landmarks=bad)])
    with pytest.raises(DatasetFormatError, match=r"facial_landmarks: expected a number, found 'x'"):
        read_affectnet(root)


@pytest.mark.parametrize(("rel", "message"), [
    ("../../etc/passwd.png", r"line 2, column subDirectory_filePath: path '../../etc/passwd.png' "
                             r"escapes the dataset root"),
    ("1/../../outside.png", r"escapes the dataset root"),
    ("/etc/passwd.png", r"found '/etc/passwd.png' \(absolute paths are refused"),
    ("C:\\images\\a.png", r"absolute paths are refused"),
])
def test_affectnet_paths_escaping_root_are_refused(tmp_path, rel, message):
    root = write_affectnet(tmp_path / "a", training=[affectnet_line(rel)], images=False)
    with pytest.raises(DatasetFormatError, match=message):
        read_affectnet(root)


def test_affectnet_missing_image_raises_or_is_counted(affectnet_root):
    (affectnet_root / "Manually_Annotated_Images" / "1" / "train1.png").unlink()
    with pytest.raises(DatasetFormatError,
                       match=r"training.csv, line 3: image .*train1.png does not exist"):
        read_affectnet(affectnet_root)
    report = ReadReport()
    index = read_affectnet(affectnet_root, report=report, on_missing="skip")
    assert len(index) == 6 and report.skipped["image file missing"] == 1
    assert "train1.png" in str(report)


def test_affectnet_missing_files_and_folders(tmp_path, affectnet_root):
    with pytest.raises(DatasetFormatError, match=r"expected the folder .*nowhere"):
        read_affectnet(tmp_path / "nowhere")
    (affectnet_root / "validation.csv").unlink()
    with pytest.raises(DatasetFormatError,
                       match=rf"expected the label list validation.csv at .*{RELEASE_LISTS}/"
                             r"validation.csv \(as the release ships\) or at .*affectnet/"
                             r"validation.csv \(as many copies keep it\), found neither"):
        read_affectnet(affectnet_root)


def _many_affectnet_rows(n_per_class: int) -> list[str]:
    return [affectnet_line(f"1/t{c}_{i}.png", code=c) for c in range(8) for i in range(n_per_class)]


def test_affectnet_splits_stratified_without_subjects(tmp_path):
    root = write_affectnet(tmp_path / "a", training=_many_affectnet_rows(10))
    index = read_affectnet(root)
    split = affectnet_splits(index, val_fraction=0.2, seed=3)
    assert (split.loc[split["source"] == "validation.csv", "split"] == "test").all()
    train_rows = split[split["source"] == "training.csv"]
    assert set(train_rows["split"]) == {"train", "val"}
    per_class = train_rows[train_rows["split"] == "val"].groupby("label").size()
    assert per_class.tolist() == [2] * 8  # exactly 20% of each class
    again = affectnet_splits(index, val_fraction=0.2, seed=3)
    assert again["split"].tolist() == split["split"].tolist()
    assert affectnet_splits(index, val_fraction=0.2, seed=4)["split"].tolist() != split["split"].tolist()


def test_affectnet_splits_hold_out_an_exact_count_by_largest_remainders(tmp_path):
    # 7 of 3+6+... rows: the classes' quotas are floored, the remainder goes to the largest fractions
    rows = [affectnet_line(f"1/t{c}_{i}.png", code=c) for c, n in ((0, 3), (1, 6), (2, 11)) for i in range(n)]
    index = read_affectnet(write_affectnet(tmp_path / "a", training=rows))
    split = affectnet_splits(index, val_fraction=0.5, seed=0, val_rows=7)
    held_out = split[split["split"] == "val"]
    assert len(held_out) == 7  # the paper's count, not a share: 14 382 of 287 651
    # quotas 7 * (3, 6, 11) / 20 = (1.05, 2.1, 3.85): floors (1, 2, 3) plus one for the largest remainder
    assert held_out.groupby("label").size().tolist() == [1, 2, 4]
    with pytest.raises(ValueError, match="val_rows must be between 1 and the 20 rows"):
        affectnet_splits(index, val_fraction=0.5, seed=0, val_rows=20)


def test_affectnet_splits_grouped_by_subject(tmp_path):
    root = write_affectnet(tmp_path / "a", training=_many_affectnet_rows(5))
    index = read_affectnet(root)
    write_sidecar(tmp_path / "truth", {rel: (f"p{i // 4}", {}) for i, rel in enumerate(index["rel_path"])})
    index = read_affectnet(root, truth=tmp_path / "truth")
    split = affectnet_splits(index, val_fraction=0.25, seed=0)
    train = set(split.loc[split["split"] == "train", "subject"])
    val = set(split.loc[split["split"] == "val", "subject"])
    assert train and val and not train & val
    n_training = int((split["source"] == "training.csv").sum())
    assert (split["split"] == "val").sum() >= 0.25 * n_training


# --------------------------------------------------------------------------- UNBC


def test_read_unbc_index(unbc_root):
    report = ReadReport()
    index = read_unbc(unbc_root, report=report)
    assert len(index) == 11 and report.rows_read == 11 and report.n_skipped == 0
    assert index["subject"].tolist()[:6] == ["042-ll042"] * 6
    assert index["sequence"].tolist()[6:] == ["jh043t1aaaff"] * 3 + ["jh043t2aaaff"] * 2
    first = index.iloc[:6]
    assert first["frame"].tolist() == [1, 2, 3, 4, 5, 6]
    assert first["pspi"].tolist() == [0, 0, 2, 3, 0, 0]
    assert first["label"].tolist() == [0, 0, 1, 1, 0, 0]
    assert first["AU4"].tolist() == [0, 0, 2, 3, 0, 0]
    assert (index[[c for c in AU_COLUMNS if c != "AU4"]] == 0).all().all()
    assert index["path"].iloc[2].endswith("Images/042-ll042/ll042t1aaaff/ll042t1aaaff003.png")
    marks = landmarks_array(index)
    assert marks.shape == (11, 68, 2)
    np.testing.assert_allclose(marks[0], landmarks_66_to_68(face_points(66)), atol=1e-5)
    assert report.notes == {}  # PSPI agrees with the FACS-coded AUs


def test_landmarks_66_to_68_reinserts_inner_mouth_corners():
    points = np.arange(132, dtype=float).reshape(66, 2) ** 1.1
    out = landmarks_66_to_68(points)
    assert out.shape == (68, 2)
    kept = [i for i in range(68) if i not in (60, 64)]
    np.testing.assert_array_equal(out[kept], points)  # the other 66 keep iBUG order
    centre = points[48:60].mean(axis=0)
    np.testing.assert_allclose(out[60], (points[48] + centre) / 2)
    np.testing.assert_allclose(out[64], (points[54] + centre) / 2)
    batch = landmarks_66_to_68(np.stack([points, points + 1]))
    np.testing.assert_allclose(batch[1], out + 1)


def test_unbc_frame_without_pspi_file(unbc_root):
    pspi_file = (unbc_root / "Frame_Labels/PSPI/042-ll042/ll042t1aaaff/ll042t1aaaff002_facs.txt")
    pspi_file.unlink()
    with pytest.raises(DatasetFormatError,
                       match=r"frame .*ll042t1aaaff002.png has no PSPI file: expected "
                             r".*PSPI/042-ll042/ll042t1aaaff/ll042t1aaaff002_facs.txt"):
        read_unbc(unbc_root)
    report = ReadReport()
    index = read_unbc(unbc_root, report=report, on_missing="skip")
    assert len(index) == 10 and report.skipped == {"PSPI file missing": 1}


def test_unbc_bad_files(unbc_root):
    rel = Path("042-ll042/ll042t1aaaff")
    aam = unbc_root / "AAM_landmarks" / rel / "ll042t1aaaff001_aam.txt"
    write_points(aam, face_points(68))
    with pytest.raises(DatasetFormatError,
                       match=r"ll042t1aaaff001_aam.txt: expected 66 landmark lines 'x y', found 68"):
        read_unbc(unbc_root)
    write_points(aam, face_points(66))
    pspi_file = unbc_root / "Frame_Labels/PSPI" / rel / "ll042t1aaaff003_facs.txt"
    pspi_file.write_text("   abc\n")
    with pytest.raises(DatasetFormatError,
                       match=r"ll042t1aaaff003_facs.txt, line 1: expected a number, found 'abc'"):
        read_unbc(unbc_root)
    pspi_file.write_text("   2.0\n")
    facs_file = unbc_root / "Frame_Labels/FACS" / rel / "ll042t1aaaff003_facs.txt"
    facs_file.write_text("4 2\n6\n")
    with pytest.raises(DatasetFormatError,
                       match=r"ll042t1aaaff003_facs.txt, line 2: expected 'AU intensity' \(two "
                             r"numbers\), found '6'"):
        read_unbc(unbc_root)


def test_unbc_missing_folder_and_stray_files(unbc_root):
    (unbc_root / "Images/042-ll042/ll042t1aaaff/Thumbs.db").write_text("x")
    report = ReadReport()
    assert len(read_unbc(unbc_root, report=report)) == 11
    assert report.skipped == {"not a frame image (expected <sequence><frame:03d>.png)": 1}
    os.rename(unbc_root / "AAM_landmarks", unbc_root / "landmarks")
    with pytest.raises(DatasetFormatError, match=r"expected the folder .*AAM_landmarks"):
        read_unbc(unbc_root)


ADVERSARIAL = {
    # exactly one pain frame, in the middle of no-pain frames
    "001-aa001": {"aa001t1": [0, 0, 0, 0, 1, 0, 0, 0, 0]},
    # long pain runs, few no-pain frames
    "002-bb002": {"bb002t1": [0] + [2] * 12 + [0], "bb002t2": [3] * 7},
    # its only no-pain frames are adjacent to each other
    "003-cc003": {"cc003t1": [1, 1, 1, 0, 0, 1, 1, 1]},
    "004-dd004": {"dd004t1": [0, 0, 1, 1, 0, 0, 0, 0], "dd004t2": [0, 0, 0]},
    "005-ee005": {"ee005t1": [0, 1, 0, 1, 0, 0]},
}


def _assert_no_consecutive(selected: pd.DataFrame) -> None:
    keys = set(zip(selected["sequence"], selected["frame"], strict=True))
    assert not any((seq, frame + 1) in keys for seq, frame in keys)


def test_unbc_protocol_adversarial_structure(tmp_path):
    index = read_unbc(write_unbc(tmp_path / "u", ADVERSARIAL))
    # Pain runs allow 1 + ceil(12/2) + ceil(7/2) + (2 + 2) + 1 = 16 frames, but 003-cc003
    # must give one up for its no-pain frame (4 touches 3, 5 touches 6): 15 is the maximum.
    split = unbc_protocol(index, test_subjects=["005-ee005"], n_pain=15, n_no_pain=10,
                          n_val=6, seed=0)
    counts = check_unbc_selection(split, n_pain=15, n_no_pain=10, n_val=6)
    assert counts["test_subjects"] == ["005-ee005"]
    assert counts["n_val_pain"] == round(6 * 15 / 25)
    chosen = split[split["split"].isin(["train", "val"])]
    _assert_no_consecutive(chosen)
    assert (split.loc[split["subject"] == "005-ee005", "split"] == "test").all()
    per_subject = chosen.groupby("subject")["label"].agg(["min", "max"])
    assert (per_subject["min"] == 0).all() and (per_subject["max"] == 1).all()
    assert len(per_subject) == 4
    single = chosen[chosen["subject"] == "001-aa001"]
    assert single.loc[single["label"] == 1, "frame"].tolist() == [5]
    assert set(chosen.loc[chosen["subject"] == "003-cc003", "frame"]) & {4, 5}


def test_unbc_protocol_is_deterministic(tmp_path):
    index = read_unbc(write_unbc(tmp_path / "u", ADVERSARIAL))
    runs = [unbc_protocol(index, test_subjects=1, n_pain=6, n_no_pain=8, n_val=4, seed=s)
            for s in (7, 7, 8)]
    assert runs[0]["split"].tolist() == runs[1]["split"].tolist()
    assert runs[0]["split"].tolist() != runs[2]["split"].tolist()
    for run in runs:
        check_unbc_selection(run, n_pain=6, n_no_pain=8, n_val=4)
        assert len(check_unbc_selection(run)["test_subjects"]) == 1


def test_unbc_protocol_infeasible_cases_say_why(tmp_path):
    index = read_unbc(write_unbc(tmp_path / "u", ADVERSARIAL))
    with pytest.raises(ValueError, match=r"asked for 16 pain frames with no two consecutive, but "
                                         r"only 15 could be selected.*at most 16 non-consecutive"):
        unbc_protocol(index, test_subjects=["005-ee005"], n_pain=16, n_no_pain=5, n_val=2, seed=0)
    with pytest.raises(ValueError, match=r"every one of the 4 non-test subjects needs at least one "
                                         r"pain frame, but only n_pain=3"):
        unbc_protocol(index, test_subjects=["005-ee005"], n_pain=3, n_no_pain=5, n_val=2, seed=0)
    lonely = read_unbc(write_unbc(tmp_path / "v", {
        "001-aa001": {"aa001t1": [0, 2, 0]},  # the pain frame touches both no-pain frames
        "002-bb002": {"bb002t1": [0, 0, 0]},  # no pain at all
        "003-cc003": {"cc003t1": [0, 1, 0, 0]},
    }))
    with pytest.raises(ValueError,
                       match=r"001-aa001: each of its 1 pain frames is next to all of its 2 "
                             r"no-pain frames; 002-bb002 has 0 pain and 3 no-pain frames"):
        unbc_protocol(lonely, test_subjects=[], n_pain=2, n_no_pain=2, n_val=0, seed=0)
    with pytest.raises(ValueError, match=r"test_subjects \['nobody'\] are not in the index"):
        unbc_protocol(lonely, test_subjects=["nobody"], seed=0)
    # Making the bad subjects test subjects leaves a feasible selection.
    ok = unbc_protocol(lonely, test_subjects=["001-aa001", "002-bb002"], n_pain=1, n_no_pain=1,
                       n_val=0, seed=0)
    assert check_unbc_selection(ok, n_pain=1, n_no_pain=1, n_val=0)["n_train"] == 2


def test_check_unbc_selection_catches_violations(tmp_path):
    index = read_unbc(write_unbc(tmp_path / "u", ADVERSARIAL))
    split = unbc_protocol(index, test_subjects=["005-ee005"], n_pain=6, n_no_pain=6, n_val=2,
                          seed=1)
    chosen = np.flatnonzero(split["split"].isin(["train", "val"]).to_numpy())
    bad = split.copy()
    row = chosen[0]
    neighbour = row + 1 if split["frame"].iloc[row] == 1 else row - 1
    bad.loc[neighbour, "split"] = "train"
    with pytest.raises(SelectionCheckError, match="are consecutive"):
        check_unbc_selection(bad)
    bad = split.copy()
    bad.loc[(bad["subject"] == "001-aa001") & (bad["label"] == 1), "split"] = "unused"
    with pytest.raises(SelectionCheckError, match=r"subject 001-aa001 has 0 pain"):
        check_unbc_selection(bad)
    with pytest.raises(SelectionCheckError, match=r"n_pain is 6, expected 7"):
        check_unbc_selection(split, n_pain=7)
    bad = split.copy()
    bad.loc[bad.index[0], "split"] = "test"
    with pytest.raises(SelectionCheckError, match=r"test subjects \['001-aa001'\] also have frames"):
        check_unbc_selection(bad)


# --------------------------------------------------------------------------- CK+


def test_read_ckplus_peaks_facs_and_emotions(ckplus_root):
    report = ReadReport()
    index = read_ckplus(ckplus_root, report=report)
    assert len(index) == 9 and index["is_peak"].sum() == 3
    assert index.loc[index["is_peak"], "frame"].tolist() == [3, 2, 4]
    non_peak = index[~index["is_peak"]]
    assert non_peak[list(AU_COLUMNS)].isna().all().all()
    assert non_peak["emotion"].isna().all()
    peaks = ckplus_peak_frames(index)
    assert peaks["emotion"].tolist()[0] == "surprise" and pd.isna(peaks["emotion"].iloc[1])
    assert peaks["emotion"].iloc[2] == "happy"
    assert peaks["label"].tolist()[0] == EMOTIONS.index("surprise")
    assert peaks.loc[0, ["AU1", "AU2", "AU5", "AU26", "AU4"]].tolist() == [2, 3, 1, 2, 0]
    assert peaks["facs_aus"].tolist() == ["1+2+5+26", "11+12+14", "6+12+25"]
    assert report.notes["AU11 coded but outside the study's AUs (ignored)"] == 1
    assert landmarks_array(index).shape == (9, 68, 2)


def test_probe_dataset(ckplus_root):
    index = read_ckplus(ckplus_root)
    peaks, y, groups = probe_dataset(index, 12)
    assert y.tolist() == [0, 1, 1] and groups.tolist() == ["S005", "S005", "S010"]
    assert len(peaks) == 3
    assert probe_dataset(index, 25)[1].tolist() == [0, 0, 0]  # listed with intensity 0
    assert probe_dataset(index, 25, positive="listed")[1].tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="AU11 is not one of the study's action units"):
        probe_dataset(index, 11)


def test_ckplus_bad_input(ckplus_root):
    rel = Path("S005/001")
    emotion_file = ckplus_root / "Emotion" / rel / "S005_001_00000003_emotion.txt"
    emotion_file.write_text("   9.0000000e+00\n")
    with pytest.raises(DatasetFormatError,
                       match=r"S005_001_00000003_emotion.txt, line 1: expected an emotion code 0-7"
                             r".*found 9"):
        read_ckplus(ckplus_root)
    emotion_file.write_text("   7.0000000e+00\n")
    stray = ckplus_root / "FACS" / rel / "S005_001_00000002_facs.txt"
    stray.write_text("1 1\n")
    with pytest.raises(DatasetFormatError,
                       match=r"S005_001_00000002_facs.txt labels a frame that is not the peak"):
        read_ckplus(ckplus_root)
    stray.unlink()
    write_points(ckplus_root / "Landmarks" / rel / "S005_001_00000002_landmarks.txt",
                 face_points(67))
    with pytest.raises(DatasetFormatError,
                       match=r"S005_001_00000002_landmarks.txt: expected 68 landmark lines"):
        read_ckplus(ckplus_root)
    (ckplus_root / "Landmarks" / rel / "S005_001_00000002_landmarks.txt").unlink()
    report = ReadReport()
    assert len(read_ckplus(ckplus_root, report=report, on_missing="skip")) == 8
    assert report.skipped == {"landmark file missing": 1}
    (ckplus_root / "FACS" / rel / "S005_001_00000003_facs.txt").write_text("1.0 x\n")
    with pytest.raises(DatasetFormatError,
                       match=r"S005_001_00000003_facs.txt, line 1: expected a number, found 'x'"):
        read_ckplus(ckplus_root, on_missing="skip")
    (ckplus_root / "FACS" / rel / "S005_001_00000003_facs.txt").unlink()
    with pytest.raises(DatasetFormatError, match=r"peak frame .*S005_001_00000003.png has no FACS "
                                                 r"file: expected .*S005_001_00000003_facs.txt"):
        read_ckplus(ckplus_root)
    report = ReadReport()
    index = read_ckplus(ckplus_root, report=report, on_missing="skip")
    assert report.skipped["FACS file of the peak frame missing (frame kept, AUs NaN)"] == 1
    assert len(ckplus_peak_frames(index)) == 2


def test_ckplus_missing_emotion_folder(ckplus_root):
    os.rename(ckplus_root / "Emotion", ckplus_root / "Emotions")
    with pytest.raises(DatasetFormatError, match=r"expected the folder .*Emotion \(emotion labels\)"):
        read_ckplus(ckplus_root)


# --------------------------------------------------------------------------- images


def _quadrant_image() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A 64 x 48 black image with a 20 x 16 box at (10, 20): red, green / blue, white."""
    image = np.zeros((48, 64, 3), dtype=np.uint8)
    x, y, w, h = 10, 20, 20, 16
    image[y:y + h // 2, x:x + w // 2] = (255, 0, 0)
    image[y:y + h // 2, x + w // 2:x + w] = (0, 255, 0)
    image[y + h // 2:y + h, x:x + w // 2] = (0, 0, 255)
    image[y + h // 2:y + h, x + w // 2:x + w] = (255, 255, 255)
    return image, (x, y, w, h)


def test_face_crop_lands_where_expected(tmp_path):
    image, box = _quadrant_image()
    root = tmp_path / "a"
    corner_marks = face_points()
    corner_marks[0] = (box[0], box[1])
    corner_marks[1] = (box[0] + box[2], box[1] + box[3])
    marks = ";".join(f"{v:.3f}" for v in corner_marks.ravel())
    write_affectnet(root, training=[affectnet_line("1/q.png", box=box, landmarks=marks)],
                    validation=[])
    write_png(root / "Manually_Annotated_Images/1/q.png", image)
    faces, landmarks = load_faces(read_affectnet(root), size=8)
    assert faces.shape == (1, 8, 8, 3) and faces.dtype == np.uint8
    face = faces[0].astype(int)
    # Bilinear downscaling blends across the quadrant borders; away from them (and at the
    # box's outer edge, where no black may leak in) the colours are exact.
    for rows, cols, colour in ((slice(0, 3), slice(0, 3), (255, 0, 0)),
                               (slice(0, 3), slice(5, 8), (0, 255, 0)),
                               (slice(5, 8), slice(0, 3), (0, 0, 255)),
                               (slice(5, 8), slice(5, 8), (255, 255, 255))):
        np.testing.assert_array_equal(face[rows, cols], np.broadcast_to(colour, (3, 3, 3)))
    assert (face.sum(axis=-1) > 200).all()  # nothing of the black background
    np.testing.assert_allclose(landmarks[0, 0], (0, 0))
    np.testing.assert_allclose(landmarks[0, 1], (8, 8))


def test_crop_outside_image_is_padded_with_edge_values(tmp_path):
    image = np.zeros((20, 20, 3), dtype=np.uint8)
    image[:, :, 0] = np.arange(20, dtype=np.uint8)[None, :] * 10  # red grows to the right
    root = tmp_path / "a"
    write_affectnet(root, training=[affectnet_line("1/e.png", box=(-10, 0, 20, 20))],
                    validation=[])
    write_png(root / "Manually_Annotated_Images/1/e.png", image)
    faces, _ = load_faces(read_affectnet(root), size=20)
    assert (faces[0, :, :10, 0] == 0).all()  # left half: the image's edge column repeated
    np.testing.assert_array_equal(faces[0, 5, 10:, 0], np.arange(10) * 10)


def test_grayscale_becomes_rgb_and_landmark_crop(ckplus_root):
    index = read_ckplus(ckplus_root)
    faces, landmarks = load_faces(index, size=16, crop="landmarks")
    assert faces.shape == (9, 16, 16, 3)
    assert (faces[..., 0] == faces[..., 1]).all() and (faces[..., 1] == faces[..., 2]).all()
    assert faces[0, 8, 8, 0] == 51  # the gray value written for frame 1
    # The landmark box is square around the points, so they land inside the crop.
    assert (landmarks > 0).all() and (landmarks < 16).all()
    same, _ = load_faces(index, size=16, crop="box")  # CK+'s box is the landmark box
    np.testing.assert_array_equal(same, faces)


def test_truncated_image_raises_or_is_skipped(unbc_root):
    index = read_unbc(unbc_root)
    broken = Path(index["path"].iloc[1])
    broken.write_bytes(broken.read_bytes()[:40])
    with pytest.raises(ImageLoadError, match=rf"cannot read image .*{broken.name}: expected a "
                                             r"complete PNG/JPEG file"):
        load_faces(index, size=8)
    report = ReadReport()
    faces, landmarks, loaded = load_faces(index, size=8, on_error="skip", report=report,
                                          return_mask=True, n_jobs=2)
    assert faces.shape == (10, 8, 8, 3) and landmarks.shape == (10, 68, 2)
    assert loaded.tolist() == [True, False] + [True] * 9
    assert report.skipped["unreadable or truncated image"] == 1 and report.rows_read == 10
    batches = list(iter_faces(index, size=8, batch_size=4, on_error="skip"))
    assert [len(rows) for _, _, rows in batches] == [3, 4, 3]
    assert broken.name not in "".join(batches[0][2]["path"])


def test_iter_faces_and_loading_speed(unbc_root):
    index = read_unbc(unbc_root)
    everything, _ = load_faces(index, size=12)
    streamed = np.concatenate([faces for faces, _, _ in iter_faces(index, size=12, batch_size=5)])
    np.testing.assert_array_equal(streamed, everything)
    assert loading_speed(index, size=12, n=15) > 0


def test_landmark_columns_layout(unbc_root):
    index = read_unbc(unbc_root)
    assert LANDMARK_COLUMNS[:3] == ("lm0_x", "lm0_y", "lm1_x") and len(LANDMARK_COLUMNS) == 136
    assert index["lm5_y"].iloc[0] == pytest.approx(landmarks_array(index)[0, 5, 1])


def test_affectnet_row_with_extra_field(tmp_path):
    rows = [affectnet_line("1/a.png"), affectnet_line("1/b.png") + ",surplus"]
    root = write_affectnet(tmp_path / "a", training=rows)
    with pytest.raises(DatasetFormatError,
                       match=r"training.csv: expected 9 comma-separated fields per line"):
        read_affectnet(root)


def test_reader_options_are_validated(unbc_root):
    with pytest.raises(ValueError, match="on_missing must be 'raise' or 'skip', got 'ignore'"):
        read_unbc(unbc_root, on_missing="ignore")
    with pytest.raises(ValueError, match="crop must be 'box' or 'landmarks', got 'eyes'"):
        load_faces(read_unbc(unbc_root), size=8, crop="eyes")


# --------------------------------------------------------------------------- releases as they ship


@pytest.mark.parametrize("lists_at", ["release", "root", "both"])
def test_affectnet_label_lists_where_the_release_or_a_copy_keeps_them(tmp_path, lists_at):
    root = write_affectnet(tmp_path / "a", lists_at=lists_at)
    if lists_at == "both":  # the root copy differs: prove the release location is read
        (root / "training.csv").write_text(AFFECTNET_HEADER + "\n")
    report = ReadReport()
    index = read_affectnet(root, report=report)
    assert index["label"].tolist() == [0, 1, 1, 2, 7, 0, 3]
    said = " ".join(report.info)
    expected = {"release": f"training.csv: read from {RELEASE_LISTS}/ (the release location)",
                "root": "training.csv: read beside the images at the root",
                "both": "read the release location"}[lists_at]
    assert expected in said and expected in str(report)


def test_affectnet_validation_without_header_line(tmp_path):
    headed = read_affectnet(write_affectnet(tmp_path / "a"))
    report = ReadReport()
    bare = read_affectnet(write_affectnet(tmp_path / "b", validation_header=False), report=report)
    same = [c for c in headed.columns if c not in ("path", "line")]
    pd.testing.assert_frame_equal(bare[same], headed[same])
    assert bare.loc[bare["source"] == "validation.csv", "line"].tolist() == [1, 2]
    assert any("validation.csv has no header line" in sentence for sentence in report.info)
    root = write_affectnet(tmp_path / "c", validation=[affectnet_line("2/a.png") + ",extra"],
                           validation_header=False)
    with pytest.raises(DatasetFormatError, match=r"validation.csv, line 1: the file has no header "
                                                 r"line.*9 fields.*found 10 fields"):
        read_affectnet(root)
    root = write_affectnet(tmp_path / "d", validation=[affectnet_line("2/a.png", code="x")],
                           validation_header=False)
    with pytest.raises(DatasetFormatError, match=r"validation.csv, line 1, column expression: "
                                                 r"expected a number, found 'x'"):
        read_affectnet(root)


def test_affectnet_mixed_case_extensions(tmp_path):
    rows = [affectnet_line(f"1/{name}") for name in ("a.jpg", "b.JPG", "c.png", "d.jpeg")]
    root = write_affectnet(tmp_path / "a", training=rows, validation=[], images=False)
    folder = root / "Manually_Annotated_Images" / "1"
    folder.mkdir(parents=True)
    for name in ("a.JPG", "b.JPG", "c.Png", "d.jpeg", "d.JPEG"):  # d: listed as is, used as is
        (folder / name).write_bytes(image_bytes("PNG" if "png" in name.lower() else "JPEG"))
    report = ReadReport()
    index = read_affectnet(root, report=report)
    assert [Path(p).name for p in index["path"]] == ["a.JPG", "b.JPG", "c.Png", "d.jpeg"]
    assert index["rel_path"].tolist() == ["1/a.jpg", "1/b.JPG", "1/c.png", "1/d.jpeg"]
    kind = "image found under a differently-cased extension (the file on disk was used)"
    assert report.notes == {kind: 2} and "listed a.jpg, found a.JPG" in str(report)
    assert load_faces(index, size=8)[0].shape == (4, 8, 8, 3)
    (folder / "a.JPG").rename(folder / "a.Jpg")  # two spellings would be a guess: missing
    (folder / "a.jpG").write_bytes(image_bytes("JPEG"))
    if len(list(folder.iterdir())) == 6:  # a case-sensitive file system
        with pytest.raises(DatasetFormatError, match=r"line 2: image .*a.jpg does not exist"):
            read_affectnet(root)


def test_affectnet_impossible_face_boxes_raise_or_are_skipped_with_paths(tmp_path):
    boxes = {"ok": (4, 4, 24, 24), "zero": (4, 4, 0, 24), "negative": (4, 4, 24, -3),
             "nan": ("nan", 4, 24, 24), "inf": (4, 4, "inf", 24), "left": (-30, 4, 24, 24)}
    rows = [affectnet_line(f"1/{name}.png", box=box) for name, box in boxes.items()]
    root = write_affectnet(tmp_path / "a", training=rows, validation=[])
    with pytest.raises(DatasetFormatError,
                       match=r"training.csv, line 3: expected a face box of finite numbers with "
                             r"positive width.*found face_x=4, face_y=4, face_width=0, "
                             r"face_height=24 \(width or height <= 0.*on_error='skip'"):
        read_affectnet(root)
    report = ReadReport()
    index = read_affectnet(root, report=report, on_error="skip")
    assert index["rel_path"].tolist() == ["1/ok.png"]
    assert report.skipped == {"impossible face box (width or height <= 0)": 2,
                              "impossible face box (a non-finite number)": 2,
                              "impossible face box (wholly left of or above the image)": 1}
    paths = report.skipped_paths["impossible face box (a non-finite number)"]
    assert [Path(p).name for p in paths] == ["nan.png", "inf.png"]
    assert "files (2): " in str(report) and "nan.png" in str(report)
    root = write_affectnet(tmp_path / "b", training=[affectnet_line("1/a.png", box=("x", 4, 2, 2))])
    with pytest.raises(DatasetFormatError, match=r"column face_x: expected a number, found 'x'"):
        read_affectnet(root, on_error="skip")  # text that is no number is a broken file


def test_face_box_outside_the_decoded_image(tmp_path):
    rows = [affectnet_line("1/in.png"), affectnet_line("1/out.png", box=(40, 4, 10, 10))]
    root = write_affectnet(tmp_path / "a", training=rows, validation=[])
    index = read_affectnet(root)  # 40 > 32 px: known only once the image is decoded
    with pytest.raises(FaceBoxError, match=r"^training.csv, line 3: face box of .*out.png: "
                                           r"expected a box that overlaps the 32 x 32 px image, "
                                           r"found x=40"):
        load_faces(index, size=8)
    report = ReadReport()
    faces, _, loaded = load_faces(index, size=8, on_error="skip", report=report, return_mask=True)
    assert loaded.tolist() == [True, False] and len(faces) == 1
    assert [Path(p).name for p in report.skipped_paths["face box outside the image"]] == ["out.png"]


@pytest.mark.parametrize("kind", ["PNG", "JPEG"])
@pytest.mark.parametrize("tolerant_pil", [False, True])
def test_truncated_images_are_detected(tmp_path, monkeypatch, kind, tolerant_pil):
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", tolerant_pil)  # set by some libraries
    data = image_bytes(kind)
    whole = tmp_path / f"whole.{kind.lower()}"
    whole.write_bytes(data + b"\x00trailing bytes after the end marker")
    assert decode_rgb(str(whole)).shape == (32, 32, 3)
    for keep in (len(data) // 2, len(data) - 12, len(data) - 2, len(data) - 1):
        cut = tmp_path / f"cut{keep}.{kind.lower()}"
        cut.write_bytes(data[:keep])
        with pytest.raises(ImageLoadError, match=rf"cannot read image .*{cut.name}: expected a "
                                                 r"complete .*(truncated|unreadable)"):
            decode_rgb(str(cut))


def test_complete_jpeg_variants_are_not_taken_for_truncated(tmp_path, monkeypatch):
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # only our check can tell
    main = image_bytes("JPEG", progressive=True)
    exif = b"Exif\x00\x00" + image_bytes("JPEG", size=8)  # an embedded thumbnail, EOI and all
    whole = main[:2] + b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif + main[2:]
    path = tmp_path / "p.jpg"
    path.write_bytes(whole)
    assert decode_rgb(str(path)).shape == (32, 32, 3)
    path.write_bytes(whole[:-200])  # the thumbnail's EOI must not pass for the image's
    with pytest.raises(ImageLoadError, match=r"no EOI marker"):
        decode_rgb(str(path))


def test_unreadable_images_are_skipped_with_their_paths(unbc_root):
    index = read_unbc(unbc_root)
    for i in (1, 4):
        broken = Path(index["path"].iloc[i])
        broken.write_bytes(broken.read_bytes()[:-12])  # no IEND: PIL alone would accept it
    report = ReadReport()
    faces, _ = load_faces(index, size=8, on_error="skip", report=report)
    assert len(faces) == 9
    assert report.skipped_paths["unreadable or truncated image"] == [index["path"].iloc[1],
                                                                     index["path"].iloc[4]]


@pytest.mark.parametrize(("dataset", "key"), [("affectnet", "affectnet_root"),
                                              ("unbc", "unbc_root"), ("ckplus", "ckplus_root")])
def test_extra_folder_level_is_named_with_the_fix(tmp_path, request, dataset, key):
    root = request.getfixturevalue(f"{dataset}_root")
    reader = {"affectnet": read_affectnet, "unbc": read_unbc, "ckplus": read_ckplus}[dataset]
    (root / "__MACOSX").mkdir()  # unzip debris is never taken for the data
    inner = nest(root, "Extracted")
    with pytest.raises(DatasetFormatError) as caught:
        reader(root)
    message = str(caught.value)
    assert f"expected the folder {root}/" in message
    assert f"found {inner}/" in message and "one folder deeper" in message
    assert f"Set {key} to {inner} (in params/paper.yml" in message
    assert len(reader(inner)) > 0  # and it reads once the root is set
    with pytest.raises(DatasetFormatError, match=rf"one folder higher.*Set {key} to {inner} "):
        reader(next(p for p in sorted(inner.iterdir()) if p.is_dir()))


def test_one_misplaced_folder_is_to_be_moved(ckplus_root):
    (ckplus_root / "Emotion_labels").mkdir()
    (ckplus_root / "Emotion").rename(ckplus_root / "Emotion_labels" / "Emotion")
    with pytest.raises(DatasetFormatError,
                       match=rf"expected the folder {ckplus_root}/Emotion \(emotion labels\), "
                             rf"found nothing there; found {ckplus_root}/Emotion_labels/Emotion "
                             rf"one folder deeper.*Move {ckplus_root}/Emotion_labels/Emotion to "
                             rf"{ckplus_root}/Emotion\."):
        read_ckplus(ckplus_root)


def test_ckplus_au_listed_with_intensity_zero_is_present(ckplus_root):
    report = ReadReport()
    index = read_ckplus(ckplus_root, report=report)
    assert list(index.columns[-len(PRESENCE_COLUMNS):]) == list(PRESENCE_COLUMNS)
    assert PRESENCE_COLUMNS[0] == "AU1_present" and len(PRESENCE_COLUMNS) == len(AU_COLUMNS)
    peaks = ckplus_peak_frames(index)
    assert peaks["AU25"].tolist() == [0, 0, 0]  # intensities keep their meaning ...
    assert peaks["AU25_present"].tolist() == [False, False, True]  # ... presence is right
    assert peaks["AU12_present"].tolist() == [False, True, True]
    assert peaks["AU4_present"].tolist() == [False, False, False]
    assert index.loc[~index["is_peak"], list(PRESENCE_COLUMNS)].isna().all().all()
    assert str(index["AU25_present"].dtype) == "boolean"
    zero = [kind for kind in report.notes if kind.startswith("AU listed with intensity 0")]
    assert len(zero) == 1 and report.notes[zero[0]] == 1
    assert "S010_004_00000004_facs.txt, line 3: AU25" in str(report)


def test_read_reports_state_counts_beside_the_release(unbc_root, ckplus_root, affectnet_root):
    from forgetting_aus import paper_values

    for name, read in (("AffectNet", paper_values.DATASETS["AffectNet images (train)"]
                        + paper_values.DATASETS["AffectNet images (validation)"]),
                       ("UNBC-McMaster", paper_values.DATASETS["UNBC-McMaster frames"])):
        assert read in published_counts(name).values()  # the paper's numbers agree
    unbc = ReadReport()
    read_unbc(unbc_root, report=unbc)
    assert format_counts(unbc).splitlines() == [
        "frames: read 11 (release: 48 398)", "pain frames (PSPI > 0): read 3 (release: 8 369)",
        "subjects: read 2 (release: 25)", "sequences: read 3 (release: 200)"]
    ck = ReadReport()
    read_ckplus(ckplus_root, report=ck)
    assert "  sequences: read 3 (release: 593)" in str(ck)
    assert "sequences with an emotion label: read 2 (release: 327)" in str(ck)
    affectnet = ReadReport()
    read_affectnet(affectnet_root, report=affectnet)
    assert ("manually annotated images (both label lists): read 8 (release: 420 299)"
            in str(affectnet))
    assert ("validation.csv emotion rows (codes 0-7; the paper's test set): read 2 "
            "(release: 4 000)") in str(affectnet)
    assert PUBLISHED_COUNTS["CK+"]["subjects"] == 123
    with pytest.raises(KeyError, match="no published counts for 'FER2013'"):
        published_counts("FER2013")


def test_au_presence_counts_ckplus_aus_listed_with_intensity_zero_as_present():
    from forgetting_aus.datasets import au_presence
    from forgetting_aus.facs import AU_CODES

    index = pd.DataFrame({f"AU{code}": [0.0, 2.0, np.nan] for code in AU_CODES})
    for code in AU_CODES:
        index[f"AU{code}_present"] = pd.array([code == 5, True, pd.NA], dtype="boolean")
    presence = au_presence(index)
    j5 = AU_CODES.index(5)
    # row 0: AU5 listed with intensity 0 -> present; every other AU unlisted -> absent
    assert presence[0, j5] == 1 and presence[0].sum() == 1
    assert (presence[1] == 1).all() and np.isnan(presence[2]).all()
    # without presence columns (AffectNet's sidecar, the twins): present where intensity > 0
    from_intensities = au_presence(index[[f"AU{code}" for code in AU_CODES]])
    assert from_intensities[0].sum() == 0 and (from_intensities[1] == 1).all() and np.isnan(from_intensities[2]).all()
