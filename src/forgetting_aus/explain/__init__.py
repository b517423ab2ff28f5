"""Explanations: LRP saliency and difference maps, AU regions, Grad-CAM, overlaps.

- :mod:`.lrp`: LRP through iNNvestigate in a fresh graph-mode subprocess
  (:func:`lrp_maps`, :func:`lrp_maps_many`), the paper's rule map :data:`PAPER_RULES`
  (z for Dense, z+ for Conv2D), Weitz et al.'s variants in :data:`LRP_METHODS`, and map
  post-processing (:func:`normalize_for_display`, :func:`normalize_by_total`,
  :func:`difference_map`).
- :mod:`.regions`: AU regions from 68 landmarks, region scores, AU ranking, relevance
  share in masks, and the mouth removal of the AU5 probe.
- :mod:`.gradcam`: Grad-CAM in eager mode and class-average maps (Arabian et al. 2022).
- :mod:`.overlap`: thresholding, DICE and IoU.

Importing this package does not import TensorFlow; the functions that need it import it
when called.
"""

from forgetting_aus.explain.gradcam import class_average_maps, grad_cam
from forgetting_aus.explain.lrp import (
    LRP_METHODS,
    PAPER_RULES,
    LRPJob,
    difference_map,
    explain_rows,
    load_model_graph_mode,
    lrp_maps,
    lrp_maps_in_graph_mode,
    lrp_maps_many,
    lrp_speed,
    normalize_by_total,
    normalize_for_display,
    resolve_method,
    rule_conditions,
)
from forgetting_aus.explain.overlap import dice, iou, threshold_map
from forgetting_aus.explain.regions import (
    AU_TO_REGIONS,
    REGION_NAMES,
    au_masks,
    au_region_masks,
    mouth_crop,
    mouth_cut_rows,
    rank_aus,
    region_scores,
    relevance_share_in_masks,
    template_landmarks,
)

__all__ = [
    "AU_TO_REGIONS",
    "LRP_METHODS",
    "PAPER_RULES",
    "REGION_NAMES",
    "LRPJob",
    "au_masks",
    "au_region_masks",
    "class_average_maps",
    "dice",
    "difference_map",
    "explain_rows",
    "grad_cam",
    "iou",
    "load_model_graph_mode",
    "lrp_maps",
    "lrp_maps_in_graph_mode",
    "lrp_maps_many",
    "lrp_speed",
    "mouth_crop",
    "mouth_cut_rows",
    "normalize_by_total",
    "normalize_for_display",
    "rank_aus",
    "region_scores",
    "relevance_share_in_masks",
    "resolve_method",
    "rule_conditions",
    "template_landmarks",
    "threshold_map",
]
