# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python (forgetting-aus)
#     language: python
#     name: forgetting-aus
# ---

# %% [markdown]
# # Datasets and the synthetic FACS world (§3.1)
#
# The paper trains an emotion model on AffectNet {cite}`mollahosseini2019affectnet`,
# transfers it to pain on UNBC-McMaster {cite}`lucey2011painful`, and probes action units
# on CK+ {cite}`lucey2010extended`. All three are licensed, so this book runs by default on
# a synthetic world in which faces are rendered from FACS action-unit intensities.
#
# In that world we know which action units (AUs) drive each emotion — the prototypes of
# the paper's Figure 6, after {cite}`langner2010radboud` — and which drive pain, through the
# Prkachin and Solomon Pain Intensity {cite}`prkachin2008structure`:
#
# $$\mathrm{PSPI} = \mathrm{AU4} + \max(\mathrm{AU6}, \mathrm{AU7}) + \max(\mathrm{AU9}, \mathrm{AU10}) + \mathrm{AU43}.$$

# %% tags=["parameters"]
profile = "default"  # params/<profile>.yml whose knobs this run uses
seed = 0  # master seed

# %%
import matplotlib.pyplot as plt
from myst_nb import glue

from forgetting_aus import config, facs, plots

cfg = config.load_config(profile, overrides=config.knobs_from(globals()))
config.seed_everything(cfg.seed)

# %% [markdown]
# ## The emotion prototypes and the pain action units
#
# The table the whole study turns on: which AUs each emotion's prototype uses, and which
# AUs enter the PSPI.

# %%
prototypes = plots.prototype_table()
prototypes

# %%
emotions_without_pain_aus = facs.emotions_without_pspi_aus()
glue("n_aus", len(facs.AU_CODES), display=False)
glue("emotions_without_pain_aus", " and ".join(emotions_without_pain_aus), display=False)

# %% [markdown]
# The world has {glue:text}`n_aus` action units. Only {glue:text}`emotions_without_pain_aus`
# use no PSPI action unit at all, so this world predicts that they are what pain training
# makes a network free to forget — the paper's finding. Free to forget is not forgotten:
# later chapters measure it.

# %%
fig = plots.prototype_matrix_figure()
glue("fig_prototypes", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_prototypes
# :name: fig-prototypes
# Emotion prototypes (rows) over action units (columns); PSPI action units are marked.
# ```
