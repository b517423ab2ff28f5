"""Identities and nuisances of the synthetic FACS world, and their samplers.

Both are small frozen dataclasses of equally long numpy arrays (one entry per face), so
a batch of faces is rendered without per-face Python loops. Coordinates of the *canonical
face frame* are in face units: ``u`` to the image right, ``v`` downwards, origin near the
nose; the face ellipse is about 1.4 units wide and 2.2 units high.

Identity parameters are a pure function of ``(seed, identity id)`` (see
:func:`identities_from_ids`), so a subject looks the same in every image of every twin and
identity pools are kept disjoint simply by drawing ids from disjoint integer ranges
(:data:`ID_RANGES`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

#: Disjoint integer ranges of identity ids, one per twin / split / check. An id fully
#: determines a subject's face (together with the twin's seed), and the ranges never
#: overlap, so no person appears in two twins or two AffectNet splits.
ID_RANGES: dict[str, tuple[int, int]] = {
    "affectnet_train": (1_000_000, 1_999_999),
    "affectnet_validation": (2_000_000, 2_999_999),
    "unbc": (3_000_000, 3_999_999),
    "ckplus": (4_000_000, 4_999_999),
    "six_oulu": (5_000_000, 5_999_999),
    "six_faces": (6_000_000, 6_999_999),
    "six_jaffe": (7_000_000, 7_499_999),
    "six_default": (7_500_000, 7_999_999),
    "check_train": (8_000_000, 8_999_999),
    "check_heldout": (9_000_000, 9_999_999),
    "sampled": (10_000_000, 10_999_999),
}

IDENTITY_STYLES = ("default", "oulu", "faces", "jaffe")


@dataclass(frozen=True)
class NuisanceRanges:
    """How widely one nuisance style varies (see :func:`sample_nuisance`)."""

    rotation_sd_deg: float                  # sd of the in-plane rotation (clipped at 2.2 sd)
    scale_sd: float                         # sd of the face-size multiplier (clipped at 2 sd)
    shift_sd: float                         # sd of the translation, image fraction (2 sd)
    light_strength: tuple[float, float]     # uniform range of the directional light
    ambient: tuple[float, float]            # uniform range of the ambient light
    noise_sigma: tuple[float, float]        # uniform range of the sensor noise sd
    blur: tuple[float, float]               # uniform range of the blur passes
    clutter_opacity: tuple[float, float]    # uniform range of the background clutter


#: The nuisance styles as data: in-the-wild AffectNet (``default``), varied-pose Oulu,
#: UNBC webcam video, studio FACES and the low-variance grayscale JAFFE.
NUISANCE_RANGES: dict[str, NuisanceRanges] = {
    "default": NuisanceRanges(7.0, 0.06, 0.035, (0.25, 0.55), (0.55, 0.8), (0.0, 0.035), (0.0, 1.6), (0.2, 0.9)),
    "oulu": NuisanceRanges(9.0, 0.08, 0.045, (0.3, 0.75), (0.4, 0.75), (0.0, 0.05), (0.0, 2.0), (0.3, 1.0)),
    "faces": NuisanceRanges(3.0, 0.03, 0.02, (0.15, 0.3), (0.72, 0.85), (0.0, 0.01), (0.0, 0.5), (0.0, 0.1)),
    "jaffe": NuisanceRanges(2.5, 0.03, 0.015, (0.2, 0.35), (0.65, 0.8), (0.0, 0.015), (0.3, 1.0), (0.0, 0.15)),
    "unbc": NuisanceRanges(10.0, 0.07, 0.04, (0.3, 0.9), (0.25, 0.7), (0.01, 0.05), (0.3, 2.0), (0.1, 0.6)),
}

NUISANCE_STYLES: tuple[str, ...] = tuple(NUISANCE_RANGES)

#: Number of background clutter blobs per image.
N_CLUTTER = 5


def _check_style(style: str, allowed: tuple[str, ...], what: str) -> None:
    if style not in allowed:
        raise ValueError(f"unknown {what} style {style!r}; expected one of {allowed}")


class _Batch:
    """Mixin: length and row selection of a dataclass whose fields are arrays."""

    def __len__(self) -> int:
        return len(getattr(self, dataclasses.fields(self)[0].name))

    def take(self, index: np.ndarray):
        """Rows ``index`` (int array, slice or boolean mask) of every field."""
        return type(self)(**{f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)})

    @classmethod
    def concatenate(cls, parts: list):
        """Stack several batches row-wise."""
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                      for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class Identities(_Batch):
    """Stable per-subject face parameters (arrays of shape ``(n,)`` unless stated).

    Lengths are in canonical face units (see module docstring); colours are RGB in [0, 1].
    """

    ids: np.ndarray            # int64 identity id
    face_width: np.ndarray     # half width of the face ellipse
    forehead: np.ndarray       # upper half height of the face ellipse
    chin: np.ndarray           # lower half height (centre to chin)
    jaw_taper: np.ndarray      # 0 = oval, larger = narrower chin
    eye_spacing: np.ndarray    # half distance between eye centres
    eye_height: np.ndarray     # v of the eye centres
    eye_width: np.ndarray      # half width of an eye
    eye_open: np.ndarray       # upper-lid opening above the eye centre line
    iris_radius: np.ndarray
    iris_colour: np.ndarray    # (n, 3)
    brow_gap: np.ndarray       # brow height above the eye centre
    brow_thickness: np.ndarray
    brow_arch: np.ndarray
    brow_darkness: np.ndarray  # 0 = skin coloured, 1 = hair coloured
    nose_tip: np.ndarray       # v of the nose tip
    nose_width: np.ndarray     # half width of the nostril wings
    mouth_height: np.ndarray   # v of the mouth line
    mouth_width: np.ndarray    # half width of the mouth
    lip_upper: np.ndarray      # upper lip thickness
    lip_lower: np.ndarray      # lower lip thickness
    lip_colour: np.ndarray     # (n, 3)
    skin: np.ndarray           # (n, 3)
    hair_colour: np.ndarray    # (n, 3)
    hairline: np.ndarray       # hairline height as a fraction of ``forehead``
    hair_volume: np.ndarray    # how far hair extends beyond the skull
    bald: np.ndarray           # bool: hair on the sides only
    age: np.ndarray            # 0..1, depth of static (non-AU) wrinkles
    texture_phase: np.ndarray  # (n, 4) phases of the low-frequency skin blotches


@dataclass(frozen=True)
class Nuisance(_Batch):
    """Per-image nuisance parameters (arrays of shape ``(n,)`` unless stated)."""

    rotation_deg: np.ndarray     # in-plane rotation, degrees (positive = clockwise on screen)
    scale: np.ndarray            # face size multiplier (1 = face ~70 % of the image)
    shift: np.ndarray            # (n, 2) translation, fraction of the image side
    light_azimuth: np.ndarray    # radians, direction the light comes from in the image plane
    light_elevation: np.ndarray  # radians, 0 = grazing, pi/2 = frontal
    light_strength: np.ndarray   # directional share of the shading
    ambient: np.ndarray          # ambient share of the shading
    colour_cast: np.ndarray      # (n, 3) white-balance multipliers
    noise_sigma: np.ndarray      # sensor noise std, fraction of full scale
    blur: np.ndarray             # 0..2, number of [1 2 1] blur passes (fractional)
    background: np.ndarray       # (n, 3) base background colour
    bg_gradient: np.ndarray      # (n, 2) brightness gradient across the image
    clutter_centre: np.ndarray   # (n, N_CLUTTER, 2) in image fractions
    clutter_radius: np.ndarray   # (n, N_CLUTTER, 2) in image fractions
    clutter_colour: np.ndarray   # (n, N_CLUTTER, 3)
    clutter_opacity: np.ndarray  # (n, N_CLUTTER)
    stripes: np.ndarray          # (n, 4): amplitude, frequency, angle, phase of a stripe texture
    grayscale: np.ndarray        # bool: render gray (JAFFE-like)


def _one_identity(seed: int, identity_id: int, style: str) -> dict[str, np.ndarray]:
    """Parameters of one identity, a pure function of (seed, id, style)."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(identity_id)])
    u = rng.uniform
    p: dict[str, np.ndarray] = {}
    p["face_width"] = u(0.64, 0.78)
    p["forehead"] = u(1.0, 1.12)
    p["chin"] = u(0.92, 1.04)
    p["jaw_taper"] = u(0.08, 0.35)
    p["eye_spacing"] = u(0.27, 0.33)
    p["eye_height"] = u(-0.30, -0.22)
    p["eye_width"] = u(0.12, 0.145)
    p["eye_open"] = u(0.05, 0.065)
    p["iris_radius"] = u(0.065, 0.075)
    p["iris_colour"] = np.array([0.25, 0.17, 0.10]) * u(0.5, 1.3) + u(-0.05, 0.1, size=3)
    p["brow_gap"] = u(0.14, 0.19)
    p["brow_thickness"] = u(0.032, 0.055)
    p["brow_arch"] = u(0.0, 0.05)
    p["brow_darkness"] = u(0.55, 0.9)
    p["nose_tip"] = u(0.06, 0.14)
    p["nose_width"] = u(0.09, 0.125)
    p["mouth_height"] = u(0.40, 0.47)
    p["mouth_width"] = u(0.17, 0.22)
    p["lip_upper"] = u(0.025, 0.04)
    p["lip_lower"] = u(0.035, 0.055)
    tone = u(0.0, 1.0)  # light to dark skin
    skin = np.array([0.93, 0.78, 0.66]) * (1 - tone) + np.array([0.45, 0.30, 0.21]) * tone
    p["skin"] = np.clip(skin * u(0.95, 1.05, size=3), 0, 1)
    p["lip_colour"] = np.clip(p["skin"] * np.array([0.85, 0.55, 0.55]) * u(0.85, 1.05), 0, 1)
    hair_kind = rng.integers(0, 4)
    hair = [np.array([0.08, 0.06, 0.05]), np.array([0.30, 0.20, 0.12]),
            np.array([0.65, 0.50, 0.30]), np.array([0.55, 0.52, 0.50])][hair_kind]
    p["hair_colour"] = np.clip(hair * u(0.8, 1.2), 0, 1)
    p["hairline"] = u(0.55, 0.82)
    p["hair_volume"] = u(0.04, 0.2)
    p["bald"] = np.array(u() < 0.08)
    p["age"] = u(0.0, 0.4)
    p["texture_phase"] = u(0, 2 * np.pi, size=4)
    if style == "faces":
        # FACES spans young, middle-aged and older adults: deeper static wrinkles, more gray.
        p["age"] = u(0.0, 1.0)
        if p["age"] > 0.7:
            p["hair_colour"] = np.clip(np.array([0.6, 0.6, 0.6]) * u(0.8, 1.2), 0, 1)
    elif style == "jaffe":
        # JAFFE: ten Japanese women: narrower faces, dark hair, thin brows, light skin.
        p["face_width"] = u(0.62, 0.70)
        p["brow_thickness"] = u(0.025, 0.038)
        p["hair_colour"] = np.array([0.07, 0.06, 0.06]) * u(0.8, 1.2)
        p["hairline"] = u(0.45, 0.6)
        p["hair_volume"] = u(0.12, 0.22)
        p["bald"] = np.array(False)
        p["skin"] = np.array([0.92, 0.80, 0.70]) * u(0.95, 1.03)
        p["age"] = u(0.0, 0.2)
    elif style == "oulu":
        p["age"] = u(0.0, 0.3)
    return p


def identities_from_ids(ids: np.ndarray, *, seed: int, style: str = "default") -> Identities:
    """Identity parameters of the given ids, deterministically from ``seed``.

    Parameters
    ----------
    ids : array-like of int, shape (n,)
        Identity ids (see :data:`ID_RANGES`); equal ids give equal faces.
    seed : int, keyword-only
        Seed of the world; the same (seed, id) always gives the same face.
    style : {"default", "oulu", "faces", "jaffe"}, keyword-only
        Identity distribution (FACES: wide age range; JAFFE: a narrower population).

    Returns
    -------
    Identities
    """
    _check_style(style, IDENTITY_STYLES, "identity")
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    rows = [_one_identity(seed, i, style) for i in ids]
    fields = {f.name for f in dataclasses.fields(Identities)} - {"ids"}
    out = {name: np.array([r[name] for r in rows]) if rows else np.zeros(0) for name in fields}
    for name in ("iris_colour", "lip_colour", "skin", "hair_colour"):
        out[name] = out[name].reshape(len(ids), 3).astype(np.float32)
    out["texture_phase"] = out["texture_phase"].reshape(len(ids), 4).astype(np.float32)
    out["bald"] = out["bald"].astype(bool)
    for name in fields - {"iris_colour", "lip_colour", "skin", "hair_colour", "texture_phase",
                          "bald"}:
        out[name] = out[name].astype(np.float32)
    return Identities(ids=ids, **out)


def sample_identities(n: int, rng: np.random.Generator, *, style: str = "default",
                      id_range: str = "sampled") -> Identities:
    """Draw ``n`` distinct random identities.

    The ids are drawn without replacement from ``ID_RANGES[id_range]`` and the face
    parameters are derived from them with a seed drawn from ``rng``.

    Returns
    -------
    Identities
    """
    lo, hi = ID_RANGES[id_range]
    ids = lo + rng.choice(hi - lo + 1, size=n, replace=False)
    seed = int(rng.integers(0, 2**31 - 1))
    return identities_from_ids(np.sort(ids), seed=seed, style=style)


def sample_nuisance(n: int, rng: np.random.Generator, *, style: str = "default") -> Nuisance:
    """Draw ``n`` independent nuisance settings.

    Styles: ``"default"`` (AffectNet-like in-the-wild variety), ``"oulu"`` (more varied
    pose and strong, often one-sided light), ``"faces"`` (studio: plain background,
    frontal soft light, sharp), ``"jaffe"`` (grayscale, low variance, plain background),
    ``"unbc"`` (webcam video of patients: head motion, uneven and varying room light,
    white-balance drift, webcam blur and noise, a moderately busy room behind; frames of
    a sequence drift smoothly around one such draw, see ``twins.write_unbc_twin``).

    Returns
    -------
    Nuisance
    """
    _check_style(style, NUISANCE_STYLES, "nuisance")
    u = rng.uniform
    k = N_CLUTTER
    ranges = NUISANCE_RANGES[style]
    rot, scale_sd, shift_sd = ranges.rotation_sd_deg, ranges.scale_sd, ranges.shift_sd
    light, amb, noise = ranges.light_strength, ranges.ambient, ranges.noise_sigma
    blur, clutter = ranges.blur, ranges.clutter_opacity
    nuis = Nuisance(
        rotation_deg=np.clip(rng.normal(0, rot, n), -2.2 * rot, 2.2 * rot),
        scale=np.clip(rng.normal(1.0, scale_sd, n), 1 - 2 * scale_sd, 1 + 2 * scale_sd),
        shift=np.clip(rng.normal(0, shift_sd, (n, 2)), -2 * shift_sd, 2 * shift_sd),
        light_azimuth=u(-np.pi, np.pi, n),
        light_elevation=(u(1.1, 1.5, n) if style == "faces"
                         # a room lamp or window to one side of the patient
                         else u(0.25, 1.0, n) if style == "unbc" else u(0.5, 1.3, n)),
        light_strength=u(*light, n),
        ambient=u(*amb, n),
        colour_cast=(u(0.85, 1.15, (n, 3)) if style == "unbc"
                     else u(0.9, 1.1, (n, 3)) if style in ("default", "oulu")
                     else u(0.97, 1.03, (n, 3))),
        noise_sigma=u(*noise, n),
        blur=u(*blur, n),
        background=u(0.1, 0.9, (n, 3)) if style in ("default", "oulu", "unbc")
        else np.repeat(u(0.55, 0.8, (n, 1)), 3, axis=1),
        bg_gradient=u(-0.25, 0.25, (n, 2)),
        clutter_centre=u(0, 1, (n, k, 2)),
        clutter_radius=u(0.05, 0.3, (n, k, 2)),
        clutter_colour=u(0, 1, (n, k, 3)),
        clutter_opacity=u(*clutter, (n, k)),
        stripes=np.stack([u(*clutter, n) * 0.25, u(3, 12, n), u(0, np.pi, n), u(0, 2 * np.pi, n)],
                         axis=1),
        grayscale=np.full(n, style == "jaffe"),
    )
    return Nuisance(**{f.name: (getattr(nuis, f.name).astype(np.float32)
                                if f.name != "grayscale" else getattr(nuis, f.name))
                       for f in dataclasses.fields(Nuisance)})
