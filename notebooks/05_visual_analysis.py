# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python (forgetting-aus)
#     language: python
#     name: forgetting-aus
# ---

# %% [markdown]
# # Visual analysis: where FreezeB5 looks and FreezeB0 does not (§4.2, Figures 3 and 5)
#
# Recall tells *that* FreezeB0 lost contempt and surprise, not *what* it stopped using.
# The paper therefore explains the re-trained emotion models of §4.1 with Layer-wise
# Relevance Propagation {cite}`montavon2019lrp` — the z-rule on dense layers, the
# z⁺-rule on convolutions, the softmax removed — on the test images that FreezeB5
# classifies correctly and FreezeB0 wrongly, for the image's true class. The two saliency
# maps, each scaled to [0, 1], "often appear indistinguishable to the human eye"
# (Figure 3), so the paper subtracts them, scales the difference to [0, 1] and lets a human
# observer read it in terms of action units: FreezeB5 attends more to the dimples (AU14)
# on contempt images and to the upper lids (AU5) on surprise images (Figure 5).
#
# **What is automated here, and why.** A reading by eye cannot be repeated or tested, so
# this chapter makes it a measurement. Each map is first divided by its total relevance,
# $D = R_5/\sum R_5 - R_0/\sum R_0$: a model with a larger logit spreads more relevance,
# and comparing raw maps would mistake confidence for attention (min-max scaling is kept
# for display only). Every AU gets a region of the face built from the image's 68
# landmarks (e.g. the dimple area beside the lip corners for AU14, the strip above the eye
# margins for AU5), scored as the positive part of $D$ summed over the region and divided
# by its area. The scores on the *target* images (FreezeB5 right, FreezeB0 wrong) are
# compared with those on *baseline* images of the same emotion that both models get
# right — the attention FreezeB5 has over FreezeB0 anyway — with a one-sided Mann-Whitney
# test per AU, Holm-corrected over the 18 AUs {cite}`holm1979simple`. The AUs are ranked by
# the difference of mean scores, target minus baseline. Only FreezeB0 is compared with
# FreezeB5, as in the paper: each further model costs a model load and an analyzer build
# in the LRP worker, which the chapter's time budget does not cover.

# %% tags=["parameters"]
profile = "default"  # params/<profile>.yml whose knobs this run uses
seed = 0  # master seed (subsampling of the explained images)
lrp_max_images = 200  # most target and most baseline images explained per emotion

# %%
from IPython.display import display
from myst_nb import glue

from forgetting_aus import claims, config, pipeline, table_view
from forgetting_aus.chapters import ch05_visual_analysis as ch05
from forgetting_aus.plots import ch05_visual_analysis as plots05
from forgetting_aus.plots import common

cfg = config.load_config(profile, overrides=config.knobs_from(globals()))
config.seed_everything(cfg.seed, deterministic=cfg.deterministic_ops)
table_view.use_compact_display()  # tables show counts as integers, other numbers to 3 digits

# %% [markdown]
# ## The explained images
#
# Test images per emotion: those FreezeB5 gets right and FreezeB0 wrong (the targets) and
# those both get right (the baseline), and how many of each were explained (at most
# `lrp_max_images`, drawn with the seed).

# %%
test = pipeline.emotion_data(cfg)["test"]
selected = ch05.selections(cfg)
maps = ch05.explained_maps(cfg, selected)
glue("n_maps", maps.n_maps, display=False)
ch05.selection_table(selected)

# %% [markdown]
# LRP explained {glue:text}`n_maps` maps in all: one per selected image and model (none
# when no image qualifies).
#
# ## Figure 3
#
# The figures show the synthetic faces as rendered. On the licensed datasets a face is
# shown only when its subject is listed in the `publishable_subjects` knob (AffectNet has
# no subject ids, so none of its faces); every other face is drawn as its landmark outline,
# under the same saliency.

# %%
faces = ch05.displayable_test_images(cfg)
fig = plots05.figure3(ch05.figure3_example(faces, selected, maps))
glue("fig3", fig, display=False)
common.close(fig)
similarity = ch05.similarity_table(selected, maps)
glue("contempt_median_r", ch05.median_similarity_text(similarity, "contempt"), display=False)

# %% [markdown]
# ```{glue:figure} fig3
# :name: fig-3
# Figure 3 regenerated: a contempt test image that FreezeB5 classifies correctly and
# FreezeB0 does not (the first such image of the test split), and the LRP maps of both
# models for *contempt*, each min-max scaled to [0, 1].
# Drawn by {py:func}`~forgetting_aus.plots.ch05_visual_analysis.figure3`.
# ```
#
# How alike the two models' raw maps are on all target images (Pearson correlation per
# image; the median on contempt images is {glue:text}`contempt_median_r`). The last two
# columns count target maps whose total relevance is not positive: the explained logit
# (the true class) is negative, which happens when a model is wrong. Such a map cannot be
# turned into shares, so its image drops out of the difference maps and the region scores
# below.

# %%
similarity

# %% [markdown]
# ## Figure 5

# %%
fig = plots05.figure5(ch05.figure5_examples(faces, test.landmarks, selected, maps))
glue("fig5", fig, display=False)
common.close(fig)

# %% [markdown]
# ```{glue:figure} fig5
# :name: fig-5
# Figure 5 regenerated: difference maps $D = R_5/\sum R_5 - R_0/\sum R_0$ of the first
# target images of contempt (top) and surprise (bottom), all on one colour scale centred on
# zero, in units of one pixel's share under a uniform map (D × pixels; red: FreezeB5 puts
# the larger share of its relevance there; blue: FreezeB0 does; the paper min-max scales
# each map instead, which hides the sign and the size). The black
# outline marks the region of the AU the paper names (AU14, dimples, for contempt; AU5,
# upper lids, for surprise). Where a model's total relevance is not positive, $D$ is
# undefined and the panel says so instead of showing a map.
# Drawn by {py:func}`~forgetting_aus.plots.ch05_visual_analysis.figure5`.
# ```
#
# ## The AU regions, ranked
#
# For each emotion, this run's top AUs beside the paper's human reading, and where the
# paper's AU lands (rank of 18, difference of mean positive $D$ per pixel, rank-biserial
# effect, Holm-adjusted one-sided p):

# %%
rankings = ch05.au_rankings(selected, maps, test.landmarks)
ch05.ranking_summary(rankings)

# %%
fig = plots05.ranking_figure(ch05.paper_rankings(rankings), paper_aus=ch05.STUDIED_EMOTIONS, k=ch05.PAPER_K)
glue("fig_au_ranking", fig, display=False)
common.close(fig)

# %% [markdown]
# ```{glue:figure} fig_au_ranking
# :name: fig-au-ranking
# Extra positive difference per AU region on the target images over the baseline images,
# FreezeB5 vs FreezeB0, in rank order; green: the AU the paper read from its Figure 5;
# \* a Holm-adjusted one-sided p < 0.05.
# Drawn by {py:func}`~forgetting_aus.plots.ch05_visual_analysis.ranking_figure`.
# ```
#
# The five top-ranked AU regions of each emotion (the full ranking of all 18 regions is in
# the CSV below):

# %%
ranking_table = ch05.rankings_table(rankings)
display(table_view.csv_download(ranking_table, filename="05_au_rankings.csv", text="every AU's ranking (CSV)"))
ch05.top_rankings(ranking_table, rows=5)

# %%
for name, value in ch05.headline(rankings, selected).items():
    glue(name, value, display=False)
visual_claims = ch05.visual_claims(rankings) + [ch05.indistinguishable_claim(similarity)]
claims.record(cfg.run_dir(), "05_visual_analysis", visual_claims)
claims.table(visual_claims)

# %% [markdown]
# **Paper vs. this run.** The paper's observer saw FreezeB5 attend more to the dimples
# (AU14) on contempt images and to the upper lids (AU5) on surprise images. Here,
# {glue:text}`contempt_n_target` contempt images right for FreezeB5 and wrong for FreezeB0
# were explained; {glue:text}`contempt_n_scored_target` of them have maps that read as
# shares under both models and enter the ranking, against
# {glue:text}`contempt_n_scored_baseline` of {glue:text}`contempt_n_baseline` baseline
# images. The region that gains most is {glue:text}`contempt_top`, and AU14 ranks
# {glue:text}`contempt_rank` (Holm {glue:text}`contempt_p_holm`). Of
# {glue:text}`surprise_n_target` surprise target images, {glue:text}`surprise_n_scored_target`
# enter the ranking (against {glue:text}`surprise_n_scored_baseline` of
# {glue:text}`surprise_n_baseline` baseline images); the top region is
# {glue:text}`surprise_top` and AU5 ranks {glue:text}`surprise_rank` (Holm
# {glue:text}`surprise_p_holm`). The similarity table counts fewer images again: r is
# defined only where neither map is constant. The claims table above gives the verdicts; a claim is
# inconclusive when fewer than five target or baseline images exist, since ranking 18
# regions on a handful of maps would be noise. Region scores only say *where* the
# difference lies: AU12 and AU15 share the lip corners and AU23 and AU24 the lips, and
# the dimple area borders the lip corners, so a neighbouring AU can take the credit.
