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
# This page is executed last. It collects every claim the chapters tested — each claim
# of the paper as a predicate on this run's artifacts — with the paper's value, this
# run's value and a verdict: **holds**, **fails**, or **inconclusive** given the spread
# across seeds or the test's uncertainty.

# %% tags=["parameters"]
profile = "default"  # params/<profile>.yml whose knobs this run uses

# %%
from myst_nb import glue

from forgetting_aus import claims, config

cfg = config.load_config(profile, overrides=config.knobs_from(globals()))
table = claims.collect(cfg.run_dir())
for name, count in claims.verdict_counts(table).items():
    glue(f"n_{name}", count, display=False)
glue("profile_name", cfg.profile, display=False)
glue("data_statement", claims.data_statement(data_source=cfg.data_source, smoke_weights=cfg.smoke_weights,
                                             imagenet_weights=cfg.imagenet_weights), display=False)

# %% [markdown]
# ## The claims table
#
# **What this run rests on:** {glue:text}`data_statement`.
#
# This run (profile {glue:text}`profile_name`) tested {glue:text}`n_claims` claims:
# {glue:text}`n_holds` hold, {glue:text}`n_fails` fail and {glue:text}`n_inconclusive` are
# inconclusive.

# %%
table[["chapter", "paper", "section", "statement", "paper_value", "this_run", "verdict", "evidence"]].style.hide(axis="index")
