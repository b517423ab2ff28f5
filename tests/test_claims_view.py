"""The claims renderer: grouped by paper and chapter, verdicts as badges, text escaped and wrapped."""

import datetime
import html
import re

import pandas as pd
import pytest

from forgetting_aus import claims, claims_view


def _claim(claim_id, verdict="holds", *, paper="Prajod 2022", statement="x beats y"):
    return claims.Claim(claim_id, paper, "§5", statement, "0.9", "0.8", verdict, evidence="a test")


def _rows():
    rows = []
    for chapter, claim in [("03_pain", _claim("a")), ("04_forget", _claim("b", "fails")),
                           ("09_rules", _claim("c", "inconclusive", paper="Weitz 2018")),
                           ("03_pain", _claim("d"))]:
        rows.append({"chapter": chapter, **claims.dataclasses.asdict(claim)})
    return pd.DataFrame(rows)


def test_rows_are_grouped_by_paper_then_chapter_in_order_of_first_appearance():
    page = claims_view.render(_rows(), titles={"03_pain": "Transfer to pain"})
    order = re.findall(r'class="(claims-paper|claims-chapter)"><th[^>]*>(?:<a[^>]*>)?([^<]+)|data-claim-id="(\w)"', page)
    labels = [label or claim_id for _, label, claim_id in order]
    assert labels == ["Prajod 2022", "03 · Transfer to pain", "a", "d", "04 · forget", "b",
                      "Weitz 2018", "09 · rules", "c"]


def test_chapter_rows_link_to_the_chapter_pages():
    page = claims_view.render(_rows())
    assert 'href="03_pain.html"' in page and 'href="09_rules.html"' in page
    assert page.count('class="claims-chapter"') == 3


def test_every_claim_has_one_colour_coded_verdict_cell_first():
    page = claims_view.render(_rows())
    cells = re.findall(r'<tr class="claim-row"[^>]*><td class="claim-verdict"><span class="verdict-badge '
                       r'verdict-(\w+)"[^>]*>(\w+)</span>', page)
    assert cells == [("holds", "holds"), ("holds", "holds"), ("fails", "fails"), ("inconclusive", "inconclusive")]


def test_text_is_escaped_and_evidence_folded():
    rows = pd.DataFrame([claims.dataclasses.asdict(_claim("a", statement="p < 0.05 & <b>bold</b>"))])
    page = claims_view.render(rows)
    assert html.escape("p < 0.05 & <b>bold</b>") in page and "<b>bold</b>" not in page
    assert "<details" in page and "a test" in page
    assert "<details" not in claims_view.render(rows, evidence=False)


def test_a_chapter_table_has_no_chapter_rows_and_the_layout_is_fixed_to_the_column():
    page = claims.table([_claim("a"), _claim("b", "fails")])._repr_html_()
    assert 'class="claims-chapter"' not in page and page.count('class="claim-row"') == 2
    assert page.startswith('<table class="claims-table">') and '<col class="col-verdict">' in page


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="missing \\['verdict'\\]"):
        claims_view.render(_rows().drop(columns="verdict"))


def test_chapter_titles_come_from_the_first_heading(tmp_path):
    (tmp_path / "04_x.py").write_text('# %% [markdown]\n# # Measuring forgetting (§4.1)\n#\n# ## Not this\n')
    (tmp_path / "05_y.py").write_text("x = 1\n")
    titles = claims_view.chapter_titles(tmp_path)
    assert titles == {"04_x": "Measuring forgetting (§4.1)"}
    assert claims_view.chapter_label("04_x", titles) == "04 · Measuring forgetting (§4.1)"
    assert claims_view.chapter_label("05_y", titles) == "05 · y"


def test_stamp_names_commit_profile_date_and_run_time(tmp_path):
    runner_dir = tmp_path / ".runner"
    runner_dir.mkdir()
    for name, seconds in [("01_a", 100.0), ("02_b", 80.0), ("summary", 5.0)]:
        claims.write_json(runner_dir / f"{name}.json", {"seconds": seconds})
    assert claims_view.run_seconds(tmp_path) == 180.0
    now = datetime.datetime(2026, 12, 6, 5, 40, tzinfo=datetime.UTC)
    text = claims_view.stamp(repo=tmp_path, run_dir=tmp_path, profile="smoke", now=now)
    assert text == "commit unknown · profile smoke · 2026-12-06 05:40 UTC · chapters ran 3.0 min"


@pytest.mark.parametrize(("seconds", "text"), [(48, "48 s"), (750, "12.5 min"), (5760, "96.0 min"), (9000, "2.5 h")])
def test_duration_text(seconds, text):
    assert claims_view.duration_text(seconds) == text


def test_commit_of_this_repository_is_a_short_hash():
    assert re.fullmatch(r"[0-9a-f]{7,}(\+changes)?", claims_view.commit(claims_view.Path(__file__).parents[1]))


def test_a_claim_without_a_paper_value_gives_its_measurement_both_columns():
    rows = pd.DataFrame([claims.dataclasses.asdict(_claim("a")) | {"paper_value": "—", "this_run": "ratio 1.01"}])
    page = claims_view.render(rows)
    assert '<td class="claim-run" colspan="2"><span class="claim-no-paper">paper: none</span> ratio 1.01</td>' in page
    assert 'class="claim-paper"' not in page


def test_a_paper_row_carries_its_introduction():
    page = claims_view.render(_rows(), papers={"Weitz 2018": "a related study (chapter 09)"})
    assert '>Weitz 2018<span class="claims-paper-note">a related study (chapter 09)</span></th>' in page
    assert page.count("claims-paper-note") == 1


def test_every_paper_of_the_book_has_an_introduction():
    from forgetting_aus import paper_values

    assert set(paper_values.PAPER_NOTES) == {paper_values.PAPER, paper_values.WEITZ, paper_values.ARABIAN}
