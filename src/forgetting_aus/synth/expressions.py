"""Action-unit samplers: emotion expressions, pain sequences, posed CK+ peaks.

All samplers take an explicit ``numpy.random.Generator`` and return AU intensity arrays in
``facs.AU_CODES`` order (0-5; AU43 0/1).
"""

from __future__ import annotations

import numpy as np

from ..facs import AU_CODES, EMOTION_PROTOTYPES, EMOTIONS, PSPI_AUS, au_index

N_AUS = len(AU_CODES)

#: Probability that a prototype AU is left out of an emotion sample (never all of them,
#: never contempt's AU14).
DROP_PROBABILITY = 0.12
#: Probability of each off-prototype AU in an emotion sample, and its intensity range.
OFF_PROTOTYPE_PROBABILITY = 0.05
OFF_PROTOTYPE_INTENSITY = (0.5, 2.0)
#: Neutral faces: each AU with this probability at a low intensity.
NEUTRAL_NOISE = (0.12, (0.2, 1.2))

#: "Present but uninformative" AUs of the pain world: frame-level base rate of each,
#: produced by smooth episodes that are independent of the pain episodes. Patients talk
#: (AU25, AU26) and smile (AU12); now and then they raise the chin (AU17) or stretch the
#: lips (AU20). Every other non-PSPI AU (1, 2, 5, 14, 15, 23, 24) is absent.
UNINFORMATIVE_PAIN_AUS: dict[int, float] = {12: 0.12, 25: 0.18, 26: 0.08, 17: 0.04, 20: 0.03}
#: Target share of frames with PSPI > 0 (UNBC: 8369 of 48398, about one in six).
PAIN_FRAME_SHARE = 1 / 6


def _emotion_code(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.dtype.kind in "US":
        unknown = sorted(set(labels) - set(EMOTIONS))
        if unknown:
            raise ValueError(f"unknown emotion labels {unknown}; expected names from {EMOTIONS}")
        return np.array([EMOTIONS.index(x) for x in labels], dtype=int)
    codes = labels.astype(int)
    if codes.size and (codes.min() < 0 or codes.max() >= len(EMOTIONS)):
        raise ValueError(f"emotion codes must be 0..{len(EMOTIONS) - 1} (facs.EMOTIONS order), "
                         f"got values in [{codes.min()}, {codes.max()}]")
    return codes


def sample_emotion_aus(labels, rng: np.random.Generator, *,
                       exclude_aus=(), posed_intensity: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """AU intensities of expressions of the given emotions.

    Each prototype AU (``facs.EMOTION_PROTOTYPES``) gets an intensity uniform in 1.5-5,
    is dropped with probability :data:`DROP_PROBABILITY` (at least one survives), and
    every other AU appears with probability :data:`OFF_PROTOTYPE_PROBABILITY` at a weak
    intensity, so classes overlap. Neutral has only low-intensity noise. Contempt is a
    unilateral AU14 (2-5) with a slight AU12 (0.5-1.5) on the same side.

    Parameters
    ----------
    labels : array-like of shape (n,)
        Emotion codes 0-7 (``facs.EMOTIONS`` order) or names.
    rng : numpy.random.Generator
    exclude_aus : iterable of int, keyword-only
        AU codes forced to 0 in every sample (a positive control: an AU the world never
        shows cannot be learned).
    posed_intensity : float, keyword-only
        Multiplier of the prototype AUs' intensities (contempt's included): how strongly a
        set's actors pose (1: the AffectNet and OULU-CASIA twins; below 1: milder posing,
        see ``twins.POSED_INTENSITY``). Off-prototype AUs and neutral noise keep their
        intensities, so milder posing makes the classes overlap more.

    Returns
    -------
    aus : ndarray of shape (n, 18), float64
        Intensities rounded to 0.01 (so written sidecars reproduce them exactly); AU43 0/1.
    unilateral : ndarray of shape (n,), int8
        -1/+1 for contempt (side of AU12/AU14), else 0.
    """
    if not 0 < posed_intensity <= 1:
        raise ValueError(f"posed_intensity must be in (0, 1] (a share of the full posed intensity), "
                         f"got {posed_intensity}")
    codes = _emotion_code(labels)
    n = len(codes)
    aus = np.zeros((n, N_AUS))
    unilateral = np.zeros(n, dtype=np.int8)
    # Random draws in fixed shapes first, so results do not depend on label order.
    proto_int = rng.uniform(1.5, 5.0, (n, N_AUS)) * posed_intensity
    drop = rng.random((n, N_AUS)) < DROP_PROBABILITY
    off = rng.random((n, N_AUS)) < OFF_PROTOTYPE_PROBABILITY
    off_int = rng.uniform(*OFF_PROTOTYPE_INTENSITY, (n, N_AUS))
    neutral_on = rng.random((n, N_AUS)) < NEUTRAL_NOISE[0]
    neutral_int = rng.uniform(*NEUTRAL_NOISE[1], (n, N_AUS))
    keep_one = rng.integers(0, 6, n)
    side = np.where(rng.random(n) < 0.5, -1, 1).astype(np.int8)
    slight12 = rng.uniform(0.5, 1.5, n)
    for k, emotion in enumerate(EMOTIONS):
        rows = np.flatnonzero(codes == k)
        if rows.size == 0:
            continue
        proto = [au_index(c) for c in EMOTION_PROTOTYPES[emotion]]
        if emotion == "neutral":
            aus[rows] = np.where(neutral_on[rows], neutral_int[rows], 0.0)
            continue
        mask = np.zeros(N_AUS, bool)
        mask[proto] = True
        on = mask[None, :] & ~drop[rows]
        # Never drop every prototype AU: keep one chosen at random.
        survivor = np.asarray(proto)[keep_one[rows] % len(proto)]
        on[np.arange(rows.size), survivor] = True
        vals = np.where(on, proto_int[rows], 0.0)
        vals = np.where(~mask[None, :] & off[rows], off_int[rows], vals)
        if emotion == "contempt":
            vals[:, au_index(14)] = np.maximum(proto_int[rows, au_index(14)], 2.0 * posed_intensity)
            vals[:, au_index(12)] = slight12[rows]
            unilateral[rows] = side[rows]
        aus[rows] = vals
    aus[:, au_index(43)] = (aus[:, au_index(43)] >= 1.0).astype(float)
    for code in exclude_aus:
        aus[:, au_index(code)] = 0.0
    return np.round(aus, 2), unilateral


def _episodes(n_seq: int, n_frames: int, rate: float, rng: np.random.Generator,
              *, duration=(8, 26)) -> np.ndarray:
    """Smooth 0..1 envelopes (raised cosines) covering about ``rate`` of the frames."""
    env = np.zeros((n_seq, n_frames))
    mean_len = 0.5 * (duration[0] + duration[1]) * 0.75  # frames above rounding threshold
    expected = rate * n_frames / mean_len
    counts = rng.poisson(expected, n_seq)
    frames = np.arange(n_frames)
    for s in range(n_seq):
        for _ in range(counts[s]):
            length = rng.integers(duration[0], duration[1] + 1)
            start = rng.integers(-length // 3, n_frames - length // 2)
            phase = (frames - start) / length
            bump = np.where((phase >= 0) & (phase <= 1), 0.5 - 0.5 * np.cos(2 * np.pi * phase), 0)
            env[s] = np.maximum(env[s], bump)
    return env


def sample_pain_sequences(n_sequences: int, n_frames: int, rng: np.random.Generator, *,
                          pain_share: float = PAIN_FRAME_SHARE,
                          uninformative: dict[int, float] | None = None) -> np.ndarray:
    """Frame-by-frame integer AU intensities of UNBC-like pain sequences.

    Pain episodes rise and fall smoothly over consecutive frames; in each episode every
    PSPI AU follows the episode envelope up to its own peak: AU4 (60 %), AU6 and/or AU7
    (90 %), AU9 and/or AU10 (50 %), AU43 near the peak (35 %). Independently of pain, the
    AUs of :data:`UNINFORMATIVE_PAIN_AUS` come and go in their own episodes at those
    frame-level base rates. All other AUs are 0.

    Parameters
    ----------
    n_sequences, n_frames : int
    rng : numpy.random.Generator
    pain_share : float, keyword-only
        Target share of frames with PSPI > 0.
    uninformative : dict, keyword-only
        AU code -> frame base rate; defaults to :data:`UNINFORMATIVE_PAIN_AUS`.

    Returns
    -------
    ndarray of shape (n_sequences, n_frames, 18), float64
        Integer intensities 0-5 (AU43 0/1).
    """
    uninformative = UNINFORMATIVE_PAIN_AUS if uninformative is None else uninformative
    aus = np.zeros((n_sequences, n_frames, N_AUS))
    # Episodes: draw one envelope per sequence, each episode with its own AU peaks.
    env = np.zeros((n_sequences, n_frames))
    peaks = np.zeros((n_sequences, n_frames, N_AUS))
    mean_len = 17 * 0.68
    frames = np.arange(n_frames)
    counts = rng.poisson(pain_share * n_frames / mean_len, n_sequences)
    for s in range(n_sequences):
        for _ in range(counts[s]):
            length = int(rng.integers(8, 27))
            start = int(rng.integers(-length // 3, n_frames - length // 2))
            phase = (frames - start) / length
            bump = np.where((phase >= 0) & (phase <= 1), 0.5 - 0.5 * np.cos(2 * np.pi * phase), 0)
            p = np.zeros(N_AUS)
            level = rng.uniform(1.5, 5.0)
            if rng.random() < 0.6:
                p[au_index(4)] = level * rng.uniform(0.6, 1.0)
            which = rng.integers(0, 3)  # 6 only, 7 only, both
            if rng.random() < 0.9 or not p.any():
                if which in (0, 2):
                    p[au_index(6)] = level * rng.uniform(0.6, 1.0)
                if which in (1, 2):
                    p[au_index(7)] = level * rng.uniform(0.6, 1.0)
            if rng.random() < 0.5:
                p[au_index(rng.choice([9, 10]))] = level * rng.uniform(0.5, 1.0)
            blink = rng.random() < 0.35
            better = bump > env[s]
            env[s] = np.where(better, bump, env[s])
            peaks[s] = np.where(better[:, None], p[None, :], peaks[s])
            if blink:
                closed = (bump > 0.8) & better
                aus[s, closed, au_index(43)] = 1.0
    for code in PSPI_AUS:
        if code == 43:
            continue
        j = au_index(code)
        aus[:, :, j] = np.clip(np.rint(peaks[:, :, j] * env), 0, 5)
    for code, rate in uninformative.items():
        j = au_index(code)
        e = _episodes(n_sequences, n_frames, rate, rng)
        level = rng.uniform(1.5, 4.5, (n_sequences, 1))
        aus[:, :, j] = np.clip(np.rint(e * level), 0, 5)
    # Talking: an open jaw (AU26) comes with parted lips (AU25).
    j25, j26 = au_index(25), au_index(26)
    aus[:, :, j25] = np.where(aus[:, :, j26] > 0, np.maximum(aus[:, :, j25], 1), aus[:, :, j25])
    return aus


#: Posed CK+ expressions: the prototype AUs plus the co-occurrences posers produce. As in
#: real CK+, where the paper finds most AU5 images also show a dropped jaw (§5), AU5 comes
#: mostly with AU26: surprise and fear pose both (fear with its mouth open, AU26 with
#: AU25), anger raises the lids in about half its poses and keeps the jaw closed, which
#: with the single-AU poses leaves AU5-without-AU26 peaks for the crop validation
#: (chapter 01 measures the share, chapter 06 uses them).
CKPLUS_POSED: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    # emotion: (always, often)
    "surprise": ((1, 2, 5, 26), (25,)),
    "fear": ((1, 2, 4, 5, 20, 25, 26), ()),
    "happy": ((6, 12, 25), (26,)),
    "sad": ((1, 4, 15, 17), ()),
    "disgust": ((9, 10, 25), (17, 4)),
    "anger": ((4, 7, 17, 23, 24), (5,)),
    "contempt": ((14, 12), ()),
}


def sample_ckplus_peaks(n: int, rng: np.random.Generator, *,
                        emotion_share: float = 0.6, label_share: float = 0.85):
    """Peak-frame AUs of CK+-like posed sequences.

    A share ``emotion_share`` of sequences pose an emotion (:data:`CKPLUS_POSED`:
    prototype AUs, each dropped with probability 0.1, plus the usual co-occurring AUs),
    of which ``label_share`` carry an emotion label. The other sequences pose one target
    AU, chosen greedily as the AU with the fewest positives so far (so every AU gets
    positives), plus 0-2 random AUs; AU5 is posed with AU26 in 70 % of them.

    Returns
    -------
    aus : ndarray of shape (n, 18), integer intensities 1-5 where present (AU43 0/1)
    unilateral : ndarray of shape (n,), int8
    emotion : ndarray of shape (n,), int, index into ``facs.EMOTIONS`` or -1 (no label)
    """
    aus = np.zeros((n, N_AUS))
    unilateral = np.zeros(n, np.int8)
    emotion = np.full(n, -1)
    counts = np.zeros(N_AUS)
    names = list(CKPLUS_POSED)
    for i in range(n):
        if rng.random() < emotion_share:
            name = names[rng.integers(len(names))]
            always, often = CKPLUS_POSED[name]
            present = [c for c in always if rng.random() > 0.1] or [always[0]]
            present += [c for c in often if rng.random() < 0.5]
            for c in present:
                aus[i, au_index(c)] = rng.integers(2, 6)
            if name == "contempt":
                aus[i, au_index(14)] = rng.integers(3, 6)
                aus[i, au_index(12)] = 1
                unilateral[i] = rng.choice([-1, 1])
            if rng.random() < label_share:
                emotion[i] = EMOTIONS.index(name)
        else:
            target = int(np.flatnonzero(counts == counts.min())[rng.integers((counts == counts.min()).sum())])
            present = [AU_CODES[target]]
            extra = rng.choice(N_AUS, size=rng.integers(0, 3), replace=False)
            present += [AU_CODES[j] for j in extra]
            if 5 in present and rng.random() < 0.7:
                present.append(26)
            for c in set(present):
                aus[i, au_index(c)] = rng.integers(1, 6)
        aus[i, au_index(43)] = float(aus[i, au_index(43)] > 0)
        counts += aus[i] > 0
    return aus, unilateral, emotion
