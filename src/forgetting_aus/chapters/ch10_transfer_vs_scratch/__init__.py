"""Chapter 10 (Arabian et al. 2022): transfer learning vs. training from scratch, with attention and Grad-CAM.

Four modules: :mod:`.study` (the cached stages only: data, folds, initialisations,
training runs; ``cache.CODE`` keys ``arabian_sets`` and ``arabian_fold`` by it),
:mod:`.gradcam` (Figures 1 and 2), :mod:`.domains` (how far apart the stand-ins are) and
:mod:`.tables` (set sizes, the paper's Table 2, this run's Table 2, learning curves,
drops on the unseen sets and the claims).

The paper trains VGG16, VGG16 + SE and VGG16 + CBAM (attention after conv blocks 2, 3
and 4) on OULU-CASIA with 10-fold cross-validation, once from ImageNet weights
("transfer") and once from Glorot initialisation ("scratch"), tests every fold's model
on FACES and JAFFE, and compares class-averaged Grad-CAM maps with DICE and IoU.

This package runs that protocol on the synthetic face world:

- :func:`six_emotion_sets`: three differently distributed six-emotion sets standing in
  for OULU-CASIA (training, k-fold CV), FACES (studio light, a wide age range, milder
  posing, no surprise class) and JAFFE (grayscale, low variance, mild posing), written
  once per profile by ``synth.write_six_emotion_set`` and cached.
- :func:`subject_folds` / :func:`fold_split`: subject-grouped folds; inside each
  training part a few subjects are held out to select the epoch, so the reported
  validation-fold accuracy is never the one the epoch was chosen on.
- :func:`initial_model`: the two initialisations. "transfer" copies the conv-block
  weights of the source model where layer names match (the emotion model of
  ``pipeline.emotion_model`` here, ImageNet when ``cfg.imagenet_weights``); attention
  layers and the head start fresh, from the same seed as the "scratch" twin, so the two
  schemes differ only in the convolutions' starting point.
- :func:`run_study`: every (model, scheme, fold), each a cached artifact (a killed run
  resumes): fold accuracies, predictions, class-averaged Grad-CAM maps.
- :func:`.tables.table2`, :func:`.gradcam.gradcam_overlap`, :func:`.gradcam.overlap_summary`,
  :func:`.tables.study_claims`:
  the paper's Table 2, Figures 1 and 2, and its claims.

The "regions of importance" the paper compares with are not defined there; here they are
explicit: for each class, the share of its images in which a pixel lies in the
landmark-derived region of one of the class's prototype action units
(``facs.EMOTION_PROTOTYPES``, ``explain.regions.au_masks``), thresholded at
``reference_level``. The Grad-CAM class average is thresholded to the same area (its
top pixels), so DICE and IoU measure placement, not blob size; a random mask of that
area scores DICE = area share on average (reported as chance).
"""

from forgetting_aus.chapters.ch10_transfer_vs_scratch import domains, gradcam, study, tables

__all__ = ["domains", "gradcam", "study", "tables"]
