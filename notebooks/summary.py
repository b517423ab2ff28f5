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
# # Do deep neural networks forget facial action units?
#
# A reproducible companion to {cite}`prajod2022forgetting`, which trains a VGG16 emotion
# model, transfers it to pain recognition with 0 to 5 convolution blocks frozen, measures
# what the pain models forget about emotions, explains it with LRP
# {cite}`montavon2019lrp` and tests the explanations with action-unit concept probes
# {cite}`kim2018tcav`. Every table, figure and number in this book was computed by the run
# that built it; nothing is typed in. `make book` reruns everything.
#
# This page collects every claim the chapters tested: each claim of a paper, tested on
# this run's models and data, with what the paper reports, what this run measured and a
# verdict.

# %% tags=["parameters", "remove-cell"]
profile = "default"  # params/<profile>.yml whose knobs this run uses

# %% tags=["remove-input"]
from myst_nb import glue

from forgetting_aus import claims, claims_view, config, paper_values

cfg = config.load_config(profile, overrides=config.knobs_from(globals()))
table = claims.collect(cfg.run_dir())
for name, count in claims.verdict_counts(table).items():
    glue(f"n_{name}", count, display=False)
glue("profile_name", cfg.profile, display=False)
glue("data_statement", claims.data_statement(data_source=cfg.data_source, smoke_weights=cfg.smoke_weights,
                                             imagenet_weights=cfg.imagenet_weights), display=False)
glue("run_stamp", claims_view.stamp(repo=config.REPO_ROOT, run_dir=cfg.run_dir(), profile=cfg.profile),
     display=False)

# %% [markdown]
# :::{admonition} What this run rests on
# :class: important
#
# {glue:text}`data_statement`.
# :::
#
# **Reading a verdict.**
# <span class="verdict-badge verdict-holds">holds</span>: the claim is true in this run,
# beyond its uncertainty (the spread across seeds or folds, an interval, a test);
# <span class="verdict-badge verdict-fails">fails</span>: it is false, beyond it;
# <span class="verdict-badge verdict-inconclusive">inconclusive</span>: the uncertainty
# straddles the claim. Each chapter ends with its own claims in the same form; a chapter's
# title in the table opens it.
#
# ## The claims table
#
# This run (profile {glue:text}`profile_name`) tested {glue:text}`n_claims` claims:
# {glue:text}`n_holds` hold, {glue:text}`n_fails` fail and {glue:text}`n_inconclusive` are
# inconclusive.
#
# *Run: {glue:text}`run_stamp`.*

# %% tags=["remove-input"]
claims_view.ClaimsTable(table, titles=claims_view.chapter_titles(config.REPO_ROOT / "notebooks"),
                        papers=paper_values.PAPER_NOTES)
