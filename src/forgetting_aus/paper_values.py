"""What the papers report, as printed, to show beside this run's numbers.

These are references, never results: every number of this run is computed by the
pipeline. Values are copied from ``shared/papers/`` (Prajod et al. 2022 Table 1, §5 text;
Weitz et al. 2018 Table 2; Arabian et al. 2022 Table 2). Claims the papers make only
through figures are not turned into numbers here; the chapters test them in the
qualitative form the text states.
"""

from __future__ import annotations

import pandas as pd

#: How the claims table names the main paper.
PAPER = "Prajod 2022"
#: How the claims table names the two related studies (chapters 09 and 10).
WEITZ = "Weitz 2018"
ARABIAN = "Arabian 2022"
#: What each paper is, for a reader meeting its claims on the landing page.
PAPER_NOTES = {
    PAPER: "Prajod et al. 2022, the paper this book reproduces (chapters 01-07), and the ground-truth "
           "check of its method (chapter 08)",
    WEITZ: "Weitz et al. 2018, a related study: a VGG16 tells pain from happiness and disgust, explained with "
           "four LRP rule variants (chapter 09)",
    ARABIAN: "Arabian et al. 2022, a related study: transfer learning against training from scratch with "
             "SE and CBAM attention, explained with Grad-CAM (chapter 10)",
}

#: Prajod et al. 2022, Table 1: rows FreezeB5..FreezeB0; (metric, class) columns.
TABLE1_ROWS = {
    "FreezeB5": [0.92, 0.87, 0.90, 0.99, 0.54, 0.76, 0.95, 0.66, 0.81, 0.92],
    "FreezeB4": [0.93, 0.90, 0.92, 0.99, 0.56, 0.78, 0.96, 0.69, 0.83, 0.92],
    "FreezeB3": [0.95, 0.85, 0.90, 0.98, 0.69, 0.83, 0.96, 0.76, 0.86, 0.93],
    "FreezeB2": [0.95, 0.75, 0.85, 0.96, 0.71, 0.84, 0.95, 0.73, 0.84, 0.92],
    "FreezeB1": [0.95, 0.72, 0.83, 0.95, 0.71, 0.83, 0.95, 0.72, 0.83, 0.91],
    "FreezeB0": [0.95, 0.72, 0.83, 0.95, 0.71, 0.83, 0.95, 0.71, 0.83, 0.91],
}


def table1() -> pd.DataFrame:
    """The paper's Table 1 with the same columns as :func:`evaluation.table1`."""
    columns = pd.MultiIndex.from_tuples(
        [(metric, cls) for metric in ("Precision", "Recall", "F1-score") for cls in ("no pain", "pain", "Avg.")]
        + [("Accuracy", "")])
    return pd.DataFrame.from_dict(TABLE1_ROWS, orient="index", columns=columns)


#: §5: McNemar FreezeB5 vs FreezeB0 on the re-trained emotion models.
MCNEMAR_P = {"surprise": 1.56e-4, "contempt": 8.19e-18}

#: §5: concept probes FreezeB0 vs FreezeB5 (mean F1 in %, paired t-test over 500 repetitions).
PROBES = {
    14: {"mean_f1_FreezeB0": 72.41, "mean_f1_FreezeB5": 74.13, "t": -13.13, "p": 4.88e-34},
    5: {"mean_f1_FreezeB0": 83.87, "mean_f1_FreezeB5": 84.36, "t": -9.33, "p": 3.49e-19},
}

#: §3.1: dataset sizes of the real data.
DATASETS = {
    "AffectNet images (train)": 273269,
    "AffectNet images (validation)": 14382,
    "AffectNet test images (500 per class)": 4000,
    "UNBC-McMaster frames": 48398,
    "UNBC-McMaster pain frames": 8369,
    "UNBC-McMaster no-pain frames": 40029,
    "UNBC selection (train + validation)": 1000,
    "UNBC test subjects": 4,
}

#: AffectNet's manually annotated images per class (Mollahosseini et al. 2019).
AFFECTNET_CLASS_COUNTS = {"neutral": 74874, "happy": 134415, "sad": 25459, "surprise": 14090,
                          "fear": 6378, "disgust": 3803, "anger": 24882, "contempt": 3750}

#: Weitz et al. 2018, Table 2 (best fold): precision, recall, F1, #images.
WEITZ_TABLE2 = {
    "pain": [0.62, 0.69, 0.66, 4692],
    "disgust": [0.70, 0.73, 0.71, 4815],
    "happiness": [0.67, 0.57, 0.62, 4815],
    "Average/Total": [0.67, 0.66, 0.66, 14322],
}
WEITZ_BEST_FOLD_ACCURACY = 0.67
WEITZ_HAPPY_AS_PAIN = 0.28

#: Arabian et al. 2022, Table 2: mean ± SD accuracy (%) per dataset, scheme and model.
ARABIAN_TABLE2 = {
    ("OULU-CASIA", "transfer"): {"SE": (99.11, 0.42), "CBAM": (99.27, 0.16), "Base": (99.49, 0.17)},
    ("OULU-CASIA", "scratch"): {"SE": (98.39, 0.27), "CBAM": (98.60, 0.34), "Base": (98.96, 0.24)},
    ("FACES", "transfer"): {"SE": (42.84, 6.40), "CBAM": (47.82, 7.98), "Base": (43.93, 5.47)},
    ("FACES", "scratch"): {"SE": (52.43, 3.87), "CBAM": (50.24, 6.74), "Base": (54.75, 4.43)},
    ("JAFFE", "transfer"): {"SE": (26.33, 5.59), "CBAM": (30.06, 6.23), "Base": (32.94, 4.82)},
    ("JAFFE", "scratch"): {"SE": (30.44, 1.41), "CBAM": (33.56, 4.26), "Base": (29.72, 6.84)},
}
