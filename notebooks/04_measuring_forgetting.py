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
# # Measuring forgetting by re-training (§4.1, Figure 4)
#
# The paper says a model *forgot* an emotion when its recall drops after transfer
# learning. To measure it, every pain model's conv blocks are frozen — so the features
# learnt for pain stay intact — a new eight-way head is attached, and the head is trained
# on the emotion data with the same loss, optimiser and augmentation as the emotion model
# (figure 2 of the paper). The re-trained models are compared by per-class recall and by
# McNemar's test {cite}`mcnemar1947note,dietterich1998approximate`.
#
# **How this run does it.** With all conv blocks frozen, the conv features of each
# training image never change, so they are computed once — for both orientations, which
# keeps the flip augmentation exact — and each epoch trains only the head. That makes it
# cheap to repeat every re-training with several seeds, so Figure 4 shows the spread
# that the paper's single run could not. McNemar's test compares FreezeB5 with each
# FreezeB*k* class by class, on that class's test images: exact binomial when fewer than 25
# images are discordant, chi-square with continuity correction otherwise, Holm-corrected
# over the 8 classes × 5 comparisons {cite}`holm1979simple`.

# %% tags=["parameters"]
profile = "default"  # params/<profile>.yml whose knobs this run uses
seed = 0  # master seed
retrain_epochs = 30  # epochs of each head re-training
retrain_batch_size = 64  # batch size of the re-training
feature_dtype = "float32"  # of the cached block-5 features the heads train on (paper profile: float16)
retrain_seeds = 5  # repetitions of each re-training with different seeds

# %%
from IPython.display import display
from myst_nb import glue

from forgetting_aus import claims, config, table_view
from forgetting_aus.chapters import ch02_emotion_model as ch02
from forgetting_aus.chapters import ch04_measuring_forgetting as ch04
from forgetting_aus.plots import ch04_measuring_forgetting as plots04
from forgetting_aus.plots import common

cfg = config.load_config(profile, overrides=config.knobs_from(globals()))
config.seed_everything(cfg.seed, deterministic=cfg.deterministic_ops)
table_view.use_compact_display()  # tables show counts as integers, other numbers to 3 digits

# %% [markdown]
# ## Figure 4

# %%
recalls = ch04.retrained_recalls(cfg)
emotion_recall = ch02.emotion_model_summary(cfg)["recall"]
fig = plots04.figure4(recalls, reference=emotion_recall)
glue("fig4", fig, display=False)
common.close(fig)
glue("n_repetitions", int(recalls["repetition"].nunique()), display=False)

# %% [markdown]
# ```{glue:figure} fig4
# :name: fig-4
# Figure 4 regenerated: class-wise recall of the six pain models after re-training their
# output layers on emotions; bars are means over {glue:text}`n_repetitions` re-trainings,
# whiskers their range; black ticks mark the original emotion model.
# Drawn by {py:func}`~forgetting_aus.plots.ch04_measuring_forgetting.figure4`.
# ```
#
# Mean (and standard deviation) of each re-trained model's recall, per emotion:

# %%
ch04.recall_summary(recalls)

# %% [markdown]
# ## McNemar's test, FreezeB5 against each FreezeB*k*
#
# The paper's comparison, FreezeB5 against FreezeB0, class by class (the Holm correction
# runs over all the chapter's tests, every FreezeB*k* against FreezeB5, which the CSV
# lists):

# %%
mcnemar = ch04.mcnemar_table(cfg)
display(table_view.csv_download(ch04.mcnemar_display(mcnemar), filename="04_mcnemar.csv",
                                text="every McNemar test (CSV)"))
ch04.mcnemar_display(mcnemar, model="FreezeB0")

# %%
for name, value in (ch04.mcnemar_numbers(mcnemar) | ch04.breadth_numbers(recalls)).items():
    glue(name, value, display=False)
head_floors = ch04.head_floors(cfg)
forgetting_claims = ch04.forgetting_claims(cfg, recalls, mcnemar, floors=head_floors)
claims.record(cfg.run_dir(), "04_measuring_forgetting", forgetting_claims)
claims.table(forgetting_claims)

# %% [markdown]
# **Paper vs. this run.** The paper finds FreezeB5 and FreezeB0 differ in surprise recall
# with {glue:text}`paper_p_surprise` and in contempt recall with
# {glue:text}`paper_p_contempt`; here the same tests give
# {glue:text}`p_surprise` (Holm: {glue:text}`p_holm_surprise`) and
# {glue:text}`p_contempt` (Holm: {glue:text}`p_holm_contempt`). The claims
# table above gives the verdict on each of the paper's readings of Figure 4, and on each
# McNemar test twice: as the paper ran it (one test, uncorrected) and corrected for the 40
# tests of this chapter.
#
# Forgetting in this run is **{glue:text}`forgetting_pattern`**: {glue:text}`n_forgotten`
# of the 8 emotions lose recall from FreezeB5 to FreezeB0 beyond the spread of the
# re-training seeds (their 95 % intervals lie above 0): {glue:text}`forgotten_list`.
#
# ## Learnability floors
#
# These floors check that the synthetic world and the training are learnable enough for
# the comparisons to mean something; the table says whether each is met.

# %%
floors = ch04.learnability_floors(cfg, recalls=recalls)
ch04.check_floors(floors, profile=cfg.profile)
floors

# %% [markdown]
# Every claim above compares re-trained models; each must have learned its emotion task:
# validation macro recall (mean over the re-training repetitions) at least chance (one of
# eight) plus the margin of chapter 02. A claim comparing a model below its floor is
# inconclusive, with the reason.

# %%
head_floors
