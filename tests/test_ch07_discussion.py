"""Tests of chapter 07: the forgotten AUs against the prototypes, the trade-off rule, the numbers the prose quotes."""

from __future__ import annotations

import pandas as pd
import pytest

from forgetting_aus.chapters import ch07_discussion as ch07


# --------------------------------------------------------------------------- Figure 6
def test_forgotten_prototype_check():
    assert ch07.forgotten_prototype_check([5, 14])["verdict"] == "holds"
    pain = ch07.forgotten_prototype_check([5, 4])
    assert pain["verdict"] == "fails" and pain["pain_aus"] == [4]
    assert ch07.forgotten_prototype_check([15])["outside"] == [15]
    assert ch07.forgotten_prototype_check([])["verdict"] == "inconclusive"
    assert "contempt" in ch07.forgotten_prototype_check([14])["users"][14]


def test_figure6_highlight_and_prototype_numbers():
    assert ch07.figure6_highlight([5, 14]) == {5: "forgotten by FreezeB0", 14: "forgotten by FreezeB0"}
    assert ch07.figure6_highlight([]) == {}
    numbers = ch07.prototype_numbers([5, 14])
    assert numbers["forgotten"] == "AU5, AU14" and numbers["forgotten_verdict"] == "holds"
    assert numbers["forgotten_users"].startswith("AU5: ") and "; AU14: " in numbers["forgotten_users"]
    assert "contempt" in numbers["forgotten_users"].split("; AU14: ")[1]
    assert ch07.prototype_numbers([]) == {"forgotten": "none", "forgotten_users": "no AU was found forgotten",
                                          "forgotten_verdict": "inconclusive"}


# --------------------------------------------------------------------------- trade-off rule
def _paper_like():
    # Paper's Table 1 pain recall and a Figure-4-like shape of surprise and contempt recall.
    return pd.DataFrame({"pain_recall": [0.54, 0.56, 0.69, 0.71, 0.71, 0.71],
                         "emotion": [0.60, 0.58, 0.55, 0.50, 0.35, 0.30]},
                        index=[f"FreezeB{k}" for k in (5, 4, 3, 2, 1, 0)])


def test_best_tradeoff_picks_b3_and_b2_on_paper_like_recalls():
    chosen = ch07.best_tradeoff(_paper_like())
    assert list(chosen.index[chosen["best"]]) == ["FreezeB3", "FreezeB2"]
    # Scaling by hand: B3 pain (0.69-0.54)/0.17, emotion (0.55-0.30)/0.30.
    assert chosen.loc["FreezeB3", "score"] == pytest.approx(min(0.15 / 0.17, 0.25 / 0.30))
    assert chosen.loc["FreezeB5", "score"] == 0 and chosen.loc["FreezeB0", "score"] == 0


def test_best_tradeoff_extremes_never_win_and_ties_are_kept():
    data = _paper_like()
    assert not ch07.best_tradeoff(data, n_best=1)["best"][["FreezeB5", "FreezeB0"]].any()
    tied = data.assign(pain_recall=0.7)  # all tie on pain: scaled to 1, emotion decides
    chosen = ch07.best_tradeoff(tied, n_best=1)
    assert list(chosen.index[chosen["best"]]) == ["FreezeB5"]
    flat = data.assign(pain_recall=0.7, emotion=0.5)
    assert ch07.best_tradeoff(flat)["best"].all()
    with pytest.raises(ValueError, match="n_best"):
        ch07.best_tradeoff(data, n_best=7)
    with pytest.raises(ValueError, match="missing values"):
        ch07.best_tradeoff(data.assign(emotion=[0.6, None, 0.5, 0.4, 0.3, 0.2]))


def _recalls(values: dict[str, dict[int, list[float]]]) -> pd.DataFrame:
    rows = []
    for emotion, per_model in values.items():
        for k, reps in per_model.items():
            rows += [{"model": f"FreezeB{k}", "frozen_blocks": k, "repetition": r, "emotion": emotion, "recall": v}
                     for r, v in enumerate(reps)]
    return pd.DataFrame(rows)


def _example():
    ks = (5, 4, 3, 2, 1, 0)
    surprise = {k: [0.8 - 0.1 * (5 - k), 0.8 - 0.1 * (5 - k) + 0.01] for k in ks}
    contempt = {k: [0.5 - 0.05 * (5 - k)] * 2 for k in ks}
    recalls = _recalls({"surprise": surprise, "contempt": contempt, "happy": {k: [0.9, 0.9] for k in ks}})
    index = pd.MultiIndex.from_tuples([(f"FreezeB{k}", s) for k in ks for s in ("estimate", "low", "high")])
    pain = {5: 0.54, 4: 0.56, 3: 0.69, 2: 0.71, 1: 0.71, 0: 0.71}
    with_ci = pd.DataFrame({("Recall", "pain"): [pain[k] + d for k in ks for d in (0, -0.1, 0.1)]}, index=index)
    return ch07.tradeoff_frame(with_ci, recalls), recalls


def test_tradeoff_frame_stability_and_worst_models():
    data, recalls = _example()
    assert list(data.index) == [f"FreezeB{k}" for k in (5, 4, 3, 2, 1, 0)]
    assert data.loc["FreezeB0", "surprise"] == pytest.approx(0.305)
    assert data.loc["FreezeB3", "pain_low"] == pytest.approx(0.59)
    assert data.loc["FreezeB2", "emotion"] == pytest.approx((0.505 + 0.35) / 2)
    chosen = ch07.best_tradeoff(data)
    stability = ch07.tradeoff_stability(data, recalls)
    assert len(stability) == 2
    worst = ch07.worst_for_emotions(recalls)
    assert worst["surprise"]["worst"] == ["FreezeB0", "FreezeB1"] and worst["surprise"]["share_b0_b1"] == 1.0
    claims = ch07.discussion_claims(data, chosen, stability, recalls, [5, 14])
    verdicts = {c.claim_id: c.verdict for c in claims}
    assert verdicts["D-B0-B1-worst-surprise-contempt"] == "holds"
    assert verdicts["D-forgotten-AUs-not-pain"] == "holds"
    # By hand: scaled emotion 1, .8, .6, .4, .2, 0 and scaled pain 0, .12, .88, 1, 1, 1 for B5..B0.
    assert list(chosen.index[chosen["best"]]) == ["FreezeB3", "FreezeB2"]
    assert set(stability["best"]) == {"FreezeB3, FreezeB2"}
    assert verdicts["D-best-tradeoff-B3-B2"] == "holds"


def test_tradeoff_numbers_and_display():
    data, recalls = _example()
    chosen = ch07.best_tradeoff(data)
    assert ch07.tradeoff_numbers(chosen, recalls) == {"best_models": "FreezeB3 and FreezeB2", "n_repetitions": 2}
    display = ch07.tradeoff_display(chosen.assign(extra=1.23456))
    assert list(display.columns) == list(ch07.TRADEOFF_COLUMNS.values())
    assert display.loc["FreezeB0", "surprise recall"] == data.loc["FreezeB0", "surprise"]


def test_figure7_legend_covers_no_model_and_best_marks_differ_from_every_line():
    from matplotlib.patches import Ellipse

    from forgetting_aus.plots import ch07_discussion as plots07

    models = [f"FreezeB{k}" for k in range(5, -1, -1)]
    data = pd.DataFrame({"pain_recall": [0.5, 0.6, 0.7, 0.8, 0.85, 0.9], "surprise": [0.9, 0.85, 0.8, 0.6, 0.4, 0.3],
                         "contempt": [0.8, 0.8, 0.7, 0.5, 0.4, 0.2]}, index=models)
    data = data.assign(pain_low=data["pain_recall"] - 0.05, pain_high=data["pain_recall"] + 0.05,
                       surprise_sd=0.02, contempt_sd=0.02, emotion=(data["surprise"] + data["contempt"]) / 2)
    chosen = ch07.best_tradeoff(data)
    fig = plots07.figure7(chosen)
    fig.canvas.draw()
    ax = fig.axes[0]
    legend_box = ax.get_legend().get_window_extent()
    assert not legend_box.overlaps(ax.get_window_extent())  # outside the plotting area
    ellipses = [p for p in ax.patches if isinstance(p, Ellipse)]
    assert len(ellipses) == int(chosen["best"].sum()) >= 1
    assert plots07.BEST_COLOUR not in plots07.LINE_COLOURS.values()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels.count("best trade-off by the rule") == 1
    plots07.plt.close(fig)
