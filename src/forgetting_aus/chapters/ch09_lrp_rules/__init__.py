"""Chapter 09 (Weitz et al. 2018): pain vs. happiness vs. disgust, explained with four LRP variants.

Weitz, Hassan, Schmid and Garbas fine-tuned VGG-Face on BioVid frames of pain (heat
stimulation, intensities 3 and 4), happiness and disgust, evaluated it with 5-fold
cross-validation (best fold: accuracy 0.67, Table 2; 28 % of happy images called pain,
Figure 1) and compared the heatmaps of LRP-Z, LRP-Epsilon, LRP-PresetAFlat and
LRP-PresetBFlat by eye (Figure 3). This package reproduces the study on the synthetic FACS
world and scores the rules against the ground-truth AU regions, which the paper could not.

Three modules: :mod:`.study` (the cached stages: data, folds, fine-tuning, LRP maps),
:mod:`.analysis` (relevance in the class-defining AU regions and in eyes, nose and mouth;
runtimes) and :mod:`.tables` (Table 2, the claims, the numbers the prose quotes).
"""

from forgetting_aus.chapters.ch09_lrp_rules import analysis, study, tables

__all__ = ["analysis", "study", "tables"]
