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
# # The emotion model (§3.2, step 1)
#
# The paper trains a VGG16 {cite}`simonyan2014vgg`, initialised from ImageNet, on
# AffectNet's eight emotions with horizontal-flip augmentation and a class-balanced focal
# loss: the focal loss of {cite}`lin2017focal`
#
# $$\mathrm{FL} = (1 - p_t)^{\gamma}\, \mathrm{CE}, \qquad \gamma = 5, \tag{1}$$
#
# weighted per class as {cite}`cui2019classbalanced` propose,
#
# $$w_c = \frac{1 - \beta}{1 - \beta^{n_c}}, \qquad \beta = 0.99998. \tag{2}$$
#
# **What this run changes, and why.** No weights can be downloaded, so the default profile
# trains from scratch (He initialisation: a plain VGG16 without batch normalisation rarely
# trains from Glorot initialisation), at 64 px and 1/8 of VGG16's width, on the AffectNet
# twin. The paper's $\beta$ is tied to AffectNet's class sizes: $n_\max(1-\beta) \approx 2.7$
# for its 134 415 happy faces. On twin-sized classes $\beta = 0.99998$ would be plain inverse
# frequency, so $\beta$ is scaled to keep $n_\max(1-\beta)$ at the paper's value; the
# weights are normalised to sum to the number of classes, as Cui et al. do (eq. 2 taken
# literally gives weights near $10^{-4}$, which at learning rate 0.01 barely trains). The
# output layers, which the paper does not specify, are pinned: Flatten → Dense (ReLU) →
# Dropout → Dense → softmax. SGD with momentum; the epoch with the best validation macro
# recall is kept (never plain accuracy on an imbalanced split).

# %% tags=["parameters"]
profile = "default"  # params/<profile>.yml whose knobs this run uses
seed = 0  # master seed
image_size = 64  # model input side (px)
width = 0.125  # VGG16 channel multiplier
head_units = 256  # units of fc1
dropout = 0.5  # dropout after fc1
learning_rate = 0.01  # SGD learning rate
momentum = 0.9  # SGD momentum
emotion_epochs = 20  # training epochs
emotion_batch_size = 64  # batch size
emotion_gamma = 5.0  # focal loss gamma
cb_beta = None  # class-balanced beta (None: scaled to the paper's n_max (1 - beta))
cb_effective_scale = 2.69  # n_max (1 - beta) of the paper

# %%
import pandas as pd
from myst_nb import glue

from forgetting_aus import config, table_view
from forgetting_aus.chapters import ch01_datasets as ch01
from forgetting_aus.chapters import ch02_emotion_model as ch02
from forgetting_aus.plots import ch02_emotion_model as plots02
from forgetting_aus.plots import common

cfg = config.load_config(profile, overrides=config.knobs_from(globals()))
config.seed_everything(cfg.seed, deterministic=cfg.deterministic_ops)
table_view.use_compact_display()  # tables show counts as integers, other numbers to 3 digits

# %% [markdown]
# ## Training
#
# The run's settings (the knobs this chapter depends on):

# %%
pd.Series(cfg.subset(["image_size", "width", "head_units", "dropout", "learning_rate", "momentum",
                      "emotion_epochs", "emotion_batch_size", "emotion_gamma", "mixed_precision"]), name="value").to_frame()

# %%
training = ch02.training_set(cfg)
summary = ch02.emotion_model_summary(cfg)
ch02.class_weights_table(training["counts"], summary["history"])

# %%
for name in ("beta", "n_train", "n_val", "n_test", "validation_split"):
    glue(name, training[name], display=False)
fig = plots02.training_curves(summary["history"], title="Emotion model")
glue("fig_emotion_curves", fig, display=False)
common.close(fig)

# %% [markdown]
# The model trained on {glue:text}`n_train` images, selected its epoch on
# {glue:text}`n_val` validation images held out of `training.csv` as
# {glue:text}`validation_split`, with $\beta =$ {glue:text}`beta:.5f`.
#
# ```{glue:figure} fig_emotion_curves
# :name: fig-emotion-curves
# Training of the emotion model: focal loss per epoch (left) and validation macro recall
# (right); the dashed line marks the selected epoch.
# Drawn by {py:func}`~forgetting_aus.plots.ch02_emotion_model.training_curves`.
# ```
#
# ## Test performance
#
# The test split is balanced, like AffectNet's 500 images per class.

# %%
for name, value in ch02.headline_numbers(summary, ch01.trivial_baselines(cfg)).items():
    glue(name, value, display=False)
fig = plots02.per_class_recall_figure(summary["recall"], title="Emotion model: recall per class")
glue("fig_emotion_recall", fig, display=False)
common.close(fig)
fig = common.confusion_figure(summary["confusion_counts"], normalize=True,
                             title="Emotion model: confusion (rows: true class)")
glue("fig_emotion_confusion", fig, display=False)
common.close(fig)

# %% [markdown]
# On {glue:text}`n_test` balanced test images the emotion model reaches a macro recall of
# {glue:text}`emotion_macro_recall:.3f` (accuracy {glue:text}`emotion_accuracy:.3f`; chance
# is 0.125).
#
# ```{glue:figure} fig_emotion_recall
# :name: fig-emotion-recall
# Recall of each emotion on the balanced test set.
# Drawn by {py:func}`~forgetting_aus.plots.ch02_emotion_model.per_class_recall_figure`.
# ```
#
# ```{glue:figure} fig_emotion_confusion
# :name: fig-emotion-confusion
# Confusion matrix of the emotion model, each row normalised by the true class's size.
# Drawn by {py:func}`~forgetting_aus.plots.common.confusion_figure`.
# ```
#
# **Against the trivial baselines of chapter 1.** Logistic regression on 8×8 pixels
# reaches a macro recall of {glue:text}`emotion_baseline_pixels:.3f` on the emotion
# twin (region means: {glue:text}`emotion_baseline_regions:.3f`), so the CNN's margin over
# the better trivial classifier is {glue:text}`emotion_margin:.3f` (the bar this book sets:
# {glue:text}`hard_enough_margin:.2f`). The CNN is {glue:text}`emotion_world_verdict`.
#
# **Paper vs. this run.** The paper reports no test numbers for its emotion model; its
# Figure 4 shows the re-trained FreezeB5, which shares this model's features (chapter 4).
# This run's model is the source of every pain model that follows.
