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
# # Datasets and the synthetic FACS world (§3.1)
#
# The paper trains an emotion model on AffectNet {cite}`mollahosseini2019affectnet`,
# transfers it to pain on the UNBC-McMaster shoulder pain archive {cite}`lucey2011painful`,
# and probes action units on CK+ {cite}`lucey2010extended`. All three are licensed and
# cannot be downloaded, so by default this book runs on a **synthetic FACS world**: faces
# rendered from action-unit (AU) intensities, written to disk as *twins* of the three
# datasets in their native formats and read back by the same readers that read the real
# data (the `paper` profile points them at the real folders).
#
# The world has a second use. In it we know which AUs drive each emotion — the
# prototypes of the paper's Figure 6, after {cite}`langner2010radboud` — and which drive
# pain, through the Prkachin and Solomon Pain Intensity {cite}`prkachin2008structure`:
#
# $$\mathrm{PSPI} = \mathrm{AU4} + \max(\mathrm{AU6}, \mathrm{AU7}) + \max(\mathrm{AU9}, \mathrm{AU10}) + \mathrm{AU43}.$$
#
# So we can check later whether the paper's method finds what pain training makes a
# network forget (chapter 8).

# %% tags=["parameters"]
profile = "default"  # params/<profile>.yml whose knobs this run uses
seed = 0  # master seed
image_size = 64  # model input side (px)
twin_image_size = 96  # side of the rendered twin images (px)
affectnet_n_train = 9000  # images in the AffectNet twin's training.csv
affectnet_test_per_class = 150  # test images per class
unbc_subjects = 25  # subjects of the UNBC twin
unbc_sequences_per_subject = 6  # sequences per subject
unbc_frames_per_sequence = 80  # frames per sequence
ckplus_subjects = 120  # subjects of the CK+ twin
ckplus_sequences_per_subject = 5  # posed sequences per subject
ckplus_frames_per_sequence = 4  # frames per sequence
visibility_identities = 60  # identities per pool of the AU visibility check
visibility_faces_per_au = 300  # single-AU faces per AU and pool
parallel_workers = 2  # processes of the parallel loops (probe repetitions, rendering, checks); -1: every core
parallel_backend = "loky"  # where they run: loky (this machine), dask or ray (a cluster; see README)

# %%
from myst_nb import glue

from forgetting_aus import claims, config, facs, pipeline, table_view
from forgetting_aus.chapters import ch01_datasets as ch01
from forgetting_aus.plots import ch01_datasets as plots01
from forgetting_aus.plots import common

cfg = config.load_config(profile, overrides=config.knobs_from(globals()))
config.seed_everything(cfg.seed, deterministic=cfg.deterministic_ops)
table_view.use_compact_display()  # tables show counts as integers, other numbers to 3 digits

# %% [markdown]
# ## The emotion prototypes and the pain action units

# %%
ch01.prototype_table()

# %%
glue("n_aus", len(facs.AU_CODES), display=False)
glue("emotions_without_pain_aus", " and ".join(facs.emotions_without_pspi_aus()), display=False)
fig = plots01.prototype_matrix_figure()
glue("fig_prototypes", fig, display=False)
common.close(fig)

# %% [markdown]
# ```{glue:figure} fig_prototypes
# :name: fig-prototypes
# Emotion prototypes (rows) over the world's action units (columns); red squares mark the
# PSPI action units.
# Drawn by {py:func}`~forgetting_aus.plots.ch01_datasets.prototype_matrix_figure`.
# ```
#
# The world has {glue:text}`n_aus` action units. Only {glue:text}`emotions_without_pain_aus`
# use no PSPI action unit at all, so this world predicts that they are what pain training
# leaves a network free to forget — the paper's finding. *Free to forget* is not
# *forgotten*, and a world that guaranteed the paper's result would prove nothing: whether
# a network forgets is measured in the chapters that follow.
#
# ## What the faces look like
#
# Each emotion sample draws its prototype's AUs at random intensities, drops one now and
# then and adds weak off-prototype AUs, so classes overlap as real expressions do. Pose,
# scale, position, light, noise, blur and background clutter vary.

# %%
images, _ = ch01.emotion_examples(per_class=6, seed=cfg.seed, size=cfg.twin_image_size)
fig = common.image_grid(images, row_labels=list(facs.EMOTIONS))
glue("fig_emotion_faces", fig, display=False)
common.close(fig)
grid = ch01.au_intensity_examples(seed=cfg.seed, size=cfg.twin_image_size)
fig = common.image_grid(grid, row_labels=ch01.au_row_labels(), col_labels=list(ch01.AU_GRID_LABELS), cell=1.2)
glue("fig_au_faces", fig, display=False)
common.close(fig)

# %% [markdown]
# ```{glue:figure} fig_emotion_faces
# :name: fig-emotion-faces
# Six random faces of each emotion, with the AffectNet twin's nuisance.
# Drawn by {py:func}`~forgetting_aus.plots.common.image_grid`.
# ```
#
# ```{glue:figure} fig_au_faces
# :name: fig-au-faces
# Every action unit on one identity under one studio nuisance, from absent to intensity 5.
# Drawn by {py:func}`~forgetting_aus.plots.common.image_grid`.
# ```
#
# ## The twins
#
# The sizes of this run's data sets beside the real ones, and the AffectNet twin's
# imbalance beside AffectNet's (the three twins are rendered, written in their native
# formats and read back side by side, one per core):

# %%
pipeline.prepare_data(cfg)
ch01.dataset_sizes(cfg)

# %%
distribution = ch01.class_distribution(cfg)
fig = plots01.class_distribution_figure(distribution)
glue("fig_class_distribution", fig, display=False)
common.close(fig)
for name, value in ch01.imbalance_ratios(distribution).items():
    glue(name, value, display=False)
distribution

# %% [markdown]
# ```{glue:figure} fig_class_distribution
# :name: fig-class-distribution
# Share of each emotion among the training images: real AffectNet (grey) and its twin (blue).
# Drawn by {py:func}`~forgetting_aus.plots.ch01_datasets.class_distribution_figure`.
# ```
#
# The twin keeps AffectNet's order of class sizes with a ratio of
# {glue:text}`twin_imbalance:.0f` between its largest and smallest class (AffectNet:
# {glue:text}`real_imbalance:.0f`); the smallest classes keep enough images to be learnt.
# Pain frames come from smooth AU trajectories: episodes that rise and fall over
# consecutive frames.

# %%
frames, bins = ch01.pain_examples(cfg)
fig = common.image_grid(frames, row_labels=bins)
glue("fig_pain_faces", fig, display=False)
common.close(fig)

# %% [markdown]
# ```{glue:figure} fig_pain_faces
# :name: fig-pain-faces
# Test frames of the UNBC twin (face crops at the model's input size) by PSPI.
# Drawn by {py:func}`~forgetting_aus.plots.common.image_grid`.
# ```
#
# Chapter 10 (a related study) needs three more sets, six-emotion stand-ins for
# OULU-CASIA {cite}`zhao2011oulu`, FACES {cite}`ebner2010faces` and JAFFE
# {cite}`lyons1998jaffe`. Their models are trained on the first and tested on the other
# two, so the stand-ins shift as the real sets do: disjoint people; FACES's studio
# portraits span a wide age range and have no surprise; JAFFE's are grey-scale studio
# portraits of a few women; and both pose more mildly than OULU-CASIA (JAFFE's mild
# expressions are often rated as ambiguous; FACES's older faces are read less accurately),
# which here scales the expression's action units down. Chapter 10 measures the shift.

# %%
ch01.stand_in_styles()

# %% [markdown]
# ## The role of every AU in the pain data
#
# Computed from the written FACS files: pain-informative AUs define PSPI; others occur in
# the pain data at realistic base rates but carry no information about pain (patients
# talk and smile); the rest never occur.

# %%
roles = ch01.au_roles(cfg)
roles

# %% [markdown]
# The CK+ twin's posed peaks are meant to co-occur as real posed expressions do: in real
# CK+, the paper observes, most images with AU5 (upper lid raise) also show AU26 (jaw
# drop), which is why it crops the mouth for its AU5 probe. The conditional
# co-occurrence, P(column AU coded | row AU coded), from the written files:

# %%
cooccurrence = ch01.ckplus_cooccurrence(cfg)
fig = common.matrix_figure(cooccurrence, title="CK+ twin: P(column AU | row AU) at the peak frames",
                          label="conditional probability", vmin=0, vmax=1)
glue("fig_cooccurrence", fig, display=False)
common.close(fig)
au5_with_au26 = ch01.ckplus_au5_with_au26(cfg)
glue("p_au26_given_au5", au5_with_au26["share"], display=False)
glue("au5_with_au26_word", ch01.share_word(au5_with_au26["share"]), display=False)
data_claims = ch01.dataset_claims(au5_with_au26)
claims.record(cfg.run_dir(), "01_datasets", data_claims)

# %% [markdown]
# ```{glue:figure} fig_cooccurrence
# :name: fig-cooccurrence
# AU co-occurrence at the CK+ twin's peak frames: P(column | row).
# Drawn by {py:func}`~forgetting_aus.plots.common.matrix_figure`.
# ```
#
# In the CK+ twin, AU5 comes with AU26 {glue:text}`au5_with_au26_word`: P(AU26 | AU5) =
# {glue:text}`p_au26_given_au5:.2f`. The claims table tests the paper's observation on
# the data this run reads:

# %%
claims.table(data_claims)

# %% [markdown]
# ## Is every AU visible at the model's input size?
#
# For every AU, a small detector (logistic regression on HOG features of the face crop at
# the model's input size) is trained on single-AU renders — so co-occurring AUs cannot
# help — of one pool of identities and tested on held-out identities, separating
# intensity ≥ 2 from absent. The bar is F1 ≥ {glue:text}`visibility_bar:.1f` for every AU.

# %%
visibility = ch01.visibility(cfg)
for name, value in ch01.visibility_numbers(visibility).items():
    glue(name, value, display=False)
visibility.T

# %% [markdown]
# {glue:text}`n_visible` of {glue:text}`n_aus` AUs pass the bar; the least visible is
# {glue:text}`least_visible` (F1 {glue:text}`min_visibility:.2f`). An AU below the bar is
# one the networks can hardly learn at this resolution, which the probe chapters keep in
# mind.
#
# ## Is the world hard enough?
#
# Two trivial baselines — logistic regression on 8×8 downsampled pixels, and on the mean
# intensities of fixed face regions — on held-out parts of the training data: whole
# subjects for the pain data, stratified rows for the emotion data, because AffectNet ships
# without subject ids and the twin is read as it ships (column `held_out_by`).
# The renderer draws AU textures as local relief (a furrow darkens its line and the skin
# beside it catches more light; a bulge the other way round), as skin folds look, so that
# a region's mean brightness does not give an expression away:

# %%
baselines = ch01.trivial_baselines(cfg)
for name, value in ch01.baseline_numbers(baselines).items():
    glue(name, value, display=False)
baselines

# %% [markdown]
# On emotions the baselines reach a macro recall of
# {glue:text}`baseline_emotion_pixels_8x8:.2f` (pixels) and
# {glue:text}`baseline_emotion_region_means:.2f` (regions); on pain
# {glue:text}`baseline_pain_pixels_8x8:.2f` and {glue:text}`baseline_pain_region_means:.2f`.
# The CNNs of the next chapters must do far better for the study to mean anything
# (chapter 2 and 3 report them).
