"""FACS vocabulary shared by the whole study: action units, emotions, prototypes, PSPI.

Every module that speaks about action units or emotion classes imports its names from
here, so that the synthetic world, the dataset readers, the explanations and the book
agree on one order and one spelling.

The emotion prototypes follow the paper's Figure 6 (after Langner et al. 2010) as read in
``shared/design/DATA.md``; the pain action units are those of the Prkachin and Solomon
Pain Intensity (PSPI).
"""

from __future__ import annotations

import numpy as np

#: The 18 action units of the synthetic world, in the column order used everywhere.
AU_CODES: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26, 43)

#: Column names, e.g. ``"AU14"``.
AU_NAMES: tuple[str, ...] = tuple(f"AU{code}" for code in AU_CODES)

#: Short FACS descriptions, for tables and figure labels.
AU_DESCRIPTIONS: dict[int, str] = {
    1: "inner brow raise",
    2: "outer brow raise",
    4: "brow lower",
    5: "upper lid raise",
    6: "cheek raise",
    7: "lid tighten",
    9: "nose wrinkle",
    10: "upper lip raise",
    12: "lip corner pull",
    14: "dimple",
    15: "lip corner depress",
    17: "chin raise",
    20: "lip stretch",
    23: "lip tighten",
    24: "lip press",
    25: "lips part",
    26: "jaw drop",
    43: "eyes closed",
}

#: AffectNet's expression codes 0..7, which are also our class indices.
EMOTIONS: tuple[str, ...] = (
    "neutral",
    "happy",
    "sad",
    "surprise",
    "fear",
    "disgust",
    "anger",
    "contempt",
)

#: Prototype action units of each emotion (paper Figure 6, DATA.md's reading).
EMOTION_PROTOTYPES: dict[str, tuple[int, ...]] = {
    "neutral": (),
    "happy": (6, 12, 25),
    "sad": (1, 4, 15, 17),
    "surprise": (1, 2, 5, 26),
    "fear": (1, 2, 4, 5, 20, 25),
    "disgust": (9, 10, 25),
    "anger": (4, 5, 7, 17, 23, 24),
    "contempt": (14, 12),  # AU14 unilateral, with a slight unilateral AU12
}

#: Action units that enter the PSPI (Prkachin and Solomon): AU4 + max(AU6, AU7)
#: + max(AU9, AU10) + AU43.
PSPI_AUS: tuple[int, ...] = (4, 6, 7, 9, 10, 43)

#: CK+ emotion codes (Emotion/*_emotion.txt) mapped to our class names.
CKPLUS_EMOTIONS: dict[int, str] = {
    0: "neutral",
    1: "anger",
    2: "contempt",
    3: "disgust",
    4: "fear",
    5: "happy",
    6: "sad",
    7: "surprise",
}


def au_index(code: int) -> int:
    """Column of action unit ``code`` in an ``(n, 18)`` intensity array."""
    try:
        return AU_CODES.index(int(code))
    except ValueError:
        raise ValueError(f"AU{code} is not one of the study's action units {AU_NAMES}") from None


def pspi(au_intensities: np.ndarray) -> np.ndarray:
    """Prkachin and Solomon Pain Intensity of each row.

    Parameters
    ----------
    au_intensities : ndarray of shape (n, 18)
        Intensities 0-5 in ``AU_CODES`` order; AU43 is read as 0/1 (closed if > 0).

    Returns
    -------
    ndarray of shape (n,)
        PSPI = AU4 + max(AU6, AU7) + max(AU9, AU10) + AU43, in 0..16.
    """
    a = np.asarray(au_intensities, dtype=float)
    if a.ndim != 2 or a.shape[1] != len(AU_CODES):
        raise ValueError(f"expected AU intensities of shape (n, {len(AU_CODES)}), got {a.shape}")
    col = {code: a[:, au_index(code)] for code in PSPI_AUS}
    return (
        col[4]
        + np.maximum(col[6], col[7])
        + np.maximum(col[9], col[10])
        + (col[43] > 0).astype(float)
    )


def prototype_matrix() -> np.ndarray:
    """Boolean ``(8, 18)`` matrix: does emotion ``i`` use action unit ``j`` in its prototype."""
    m = np.zeros((len(EMOTIONS), len(AU_CODES)), dtype=bool)
    for i, emotion in enumerate(EMOTIONS):
        for code in EMOTION_PROTOTYPES[emotion]:
            m[i, au_index(code)] = True
    return m


def emotions_without_pspi_aus() -> list[str]:
    """Emotions whose prototype uses no PSPI action unit (the world's 'free to forget')."""
    return [e for e in EMOTIONS if EMOTION_PROTOTYPES[e] and not set(EMOTION_PROTOTYPES[e]) & set(PSPI_AUS)]
