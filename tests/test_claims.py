"""Claims are recorded per chapter, collected in order, and verdicts follow intervals."""

import pytest

from forgetting_aus import claims


def _claim(claim_id, verdict="holds"):
    return claims.Claim(claim_id, "Prajod 2022", "§5", "x beats y", "0.9", "0.8", verdict)


def test_record_and_collect(tmp_path):
    claims.record(tmp_path, "02_b", [_claim("b1")])
    claims.record(tmp_path, "01_a", [_claim("a1"), _claim("a2", "fails")])
    table = claims.collect(tmp_path)
    assert table["claim_id"].tolist() == ["a1", "a2", "b1"]
    assert table["verdict"].tolist() == ["holds", "fails", "holds"]


def test_rerecord_replaces(tmp_path):
    claims.record(tmp_path, "01_a", [_claim("a1")])
    claims.record(tmp_path, "01_a", [_claim("a9")])
    assert claims.collect(tmp_path)["claim_id"].tolist() == ["a9"]


def test_bad_verdict_and_duplicates_rejected(tmp_path):
    with pytest.raises(ValueError, match="verdict"):
        _claim("a", "maybe")
    with pytest.raises(ValueError, match="duplicate"):
        claims.record(tmp_path, "01", [_claim("a"), _claim("a")])


@pytest.mark.parametrize(
    ("low", "high", "greater", "expected"),
    [(0.1, 0.3, True, "holds"), (-0.3, -0.1, True, "fails"), (-0.1, 0.1, True, "inconclusive"),
     (-0.3, -0.1, False, "holds"), (0.1, 0.3, False, "fails")],
)
def test_verdict_from_interval(low, high, greater, expected):
    assert claims.verdict_from_interval(low, high, greater=greater) == expected


def test_empty_collect(tmp_path):
    assert claims.collect(tmp_path).empty


def test_verdict_counts_count_every_verdict_even_absent_ones(tmp_path):
    claims.record(tmp_path, "01_a", [_claim("a1"), _claim("a2", "fails"), _claim("a3")])
    assert claims.verdict_counts(claims.collect(tmp_path)) == {"claims": 3, "holds": 2, "fails": 1, "inconclusive": 0}


def test_chapter_table_renders_with_the_landing_pages_renderer():
    table = claims.table([_claim("a1"), _claim("a2", "fails")])
    assert table.to_frame()["verdict"].tolist() == ["holds", "fails"]
    assert table.to_frame().columns.tolist()[:4] == ["claim_id", "paper", "section", "statement"]
    assert 'class="claims-table"' in table._repr_html_() and "verdict-fails" in table._repr_html_()
    with_chapter = claims.table([_claim("a1")], chapter="04_x")
    assert 'href="04_x.html"' in with_chapter._repr_html_()


def test_the_landing_page_says_what_each_kind_of_run_rests_on():
    from forgetting_aus import claims

    twins = claims.data_statement(data_source="twins", smoke_weights=False, imagenet_weights=False)
    real = claims.data_statement(data_source="real", smoke_weights=False, imagenet_weights=True)
    smoke = claims.data_statement(data_source="twins", smoke_weights=True, imagenet_weights=True)
    assert "synthetic" in twins and "not the paper's data" in twins
    assert "licensed" in real and "08-10" in real
    assert "smoke test" in smoke and "random weights" in smoke


def test_learnability_floors_are_chance_plus_margin_and_floored_names_the_models():
    floors = claims.learnability_floors({"a": 0.9, "b": 0.3}, n_classes=4, margin=0.2)
    assert floors["floor"].tolist() == pytest.approx([0.45, 0.45]) and floors["met"].tolist() == [True, False]
    claim = claims.Claim("x", "P", "§1", "a beats b", "yes", "a 0.90 vs. b 0.30", "holds")
    assert claims.floored(claim, floors, compared=["a"]) is claim
    assert claims.floored(claim, None, compared=["a", "b"]) is claim
    made = claims.floored(claim, floors, compared=["a", "b"])
    assert made.verdict == "inconclusive"
    assert made.this_run == ("a 0.90 vs. b 0.30; not compared: b (0.30) below the learnability floor of 0.45 "
                             "validation macro recall")
    with pytest.raises(ValueError, match="at least 2 classes"):
        claims.learnability_floors({"a": 1.0}, n_classes=1, margin=0.2)
