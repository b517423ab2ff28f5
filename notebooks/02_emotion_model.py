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
import numpy as np
import pandas as pd
from myst_nb import glue

from forgetting_aus import analysis, config, facs, pipeline, plots, world

cfg = config.load_config(profile, overrides=config.knobs_from(globals()))
config.seed_everything(cfg.seed)

# %% [markdown]
# ## Training
#
# The run's settings (the knobs this chapter depends on):

# %%
pd.Series(cfg.subset(["image_size", "width", "head_units", "dropout", "learning_rate", "momentum",
                      "emotion_epochs", "emotion_batch_size", "emotion_gamma", "mixed_precision"]), name="value").to_frame()

# %%
data = pipeline.emotion_data(cfg)
counts = pd.Series(np.bincount(data["train"].labels, minlength=8), index=facs.EMOTIONS, name="training images")
beta = pipeline.class_balance_beta(cfg, counts.to_numpy())
summary = analysis.emotion_model_summary(cfg)
weights = pd.Series(summary["history"]["class_weights"], index=facs.EMOTIONS, name="class weight")
pd.concat([counts, weights.round(3)], axis=1)

# %%
glue("beta", beta, display=False)
glue("n_train", len(data["train"]), display=False)
glue("n_val", len(data["val"]), display=False)
glue("n_test", len(data["test"]), display=False)
fig = plots.training_curves(summary["history"], title="Emotion model")
glue("fig_emotion_curves", fig, display=False)
plots.close(fig)

# %% [markdown]
# The model trained on {glue:text}`n_train` images, selected its epoch on
# {glue:text}`n_val` validation images, with $\beta =$ {glue:text}`beta:.5f`.
#
# ```{glue:figure} fig_emotion_curves
# :name: fig-emotion-curves
# Training of the emotion model: focal loss per epoch (left) and validation macro recall
# (right); the dashed line marks the selected epoch.
# ```
#
# ## Test performance
#
# The test split is balanced, like AffectNet's 500 images per class.

# %%
glue("emotion_macro_recall", summary["macro_recall"], display=False)
baselines = world.trivial_baselines(cfg)
recall_of = baselines.set_index(["task", "baseline"])["macro_recall"]
glue("emotion_baseline_pixels", float(recall_of[("emotion (8 classes)", "pixels_8x8")]), display=False)
glue("emotion_baseline_regions", float(recall_of[("emotion (8 classes)", "region_means")]), display=False)
hardness = analysis.world_hardness(baselines, summary["macro_recall"], task="emotion")
glue("emotion_margin", hardness["margin"], display=False)
glue("hard_enough_margin", analysis.HARD_ENOUGH_MARGIN, display=False)
glue("emotion_world_verdict", hardness["verdict"], display=False)
glue("emotion_accuracy", summary["accuracy"], display=False)
fig = plots.per_class_recall_figure(summary["recall"], title="Emotion model: recall per class")
glue("fig_emotion_recall", fig, display=False)
plots.close(fig)
fig = plots.confusion_figure(summary["confusion"], title="Emotion model: confusion (rows: true class)")
glue("fig_emotion_confusion", fig, display=False)
plots.close(fig)

# %% [markdown]
# On {glue:text}`n_test` balanced test images the emotion model reaches a macro recall of
# {glue:text}`emotion_macro_recall:.3f` (accuracy {glue:text}`emotion_accuracy:.3f`; chance
# is 0.125).
#
# ```{glue:figure} fig_emotion_recall
# :name: fig-emotion-recall
# Recall of each emotion on the balanced test set.
# ```
#
# ```{glue:figure} fig_emotion_confusion
# :name: fig-emotion-confusion
# Confusion matrix of the emotion model, each row normalised by the true class's size.
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
