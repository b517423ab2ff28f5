"""Profiles (``params/<profile>.yml``) loaded into one typed, frozen configuration.

A profile is a flat YAML mapping of knobs; ``inherit: <other profile>`` starts from
another profile and overrides some knobs. Every knob is a field of :class:`Config` with a
type and a one-line meaning, so a typo or a wrong type is an error that names the knob,
never a silently ignored value.

Notebooks list the knobs they use in their ``parameters`` cell; the runner injects the
profile's values for exactly those names, and the notebook calls
``load_config(profile, overrides=knobs_from(globals()))`` so that any knob set in the
notebook (e.g. while tweaking interactively) takes precedence over the profile.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_type_hints

import numpy as np
import yaml

#: Repository root (``src/forgetting_aus/config.py`` → three levels up).
REPO_ROOT = Path(__file__).resolve().parents[2]
PARAMS_DIR = REPO_ROOT / "params"


@dataclasses.dataclass(frozen=True)
class Config:
    """Every knob of the study, with its type and meaning.

    The fields have no defaults here: ``params/default.yml`` is the one source of every
    knob's default value (every other profile inherits from it), so the values cannot drift
    between this class, the profiles and the notebooks' parameters cells (a test checks
    that each parameters cell holds the default profile's values).
    """

    # --- run -------------------------------------------------------------------------
    profile: str  # name of the profile these values came from
    seed: int  # master seed: data generation, splits, initialisation, probes
    results_dir: str  # artifacts go to <results_dir>/<profile>/
    mixed_precision: bool  # train conv nets under mixed_bfloat16 (LRP stays float32)
    distribute: str  # auto: tf.distribute.MirroredStrategy over the GPUs when there are several; none; mirrored
    deterministic_ops: bool  # TensorFlow op determinism: reruns give the same bits (off: faster on some GPU kernels, not reproducible)
    # --- model -----------------------------------------------------------------------
    image_size: int  # model input side in pixels (paper: 224)
    width: float  # VGG16 channel multiplier (paper: 1.0 = 64..512 channels)
    head_units: int  # units of the fc1 layer of every output head (pinned, paper silent)
    dropout: float  # dropout rate after fc1
    imagenet_weights: bool  # initialise the emotion model from ImageNet (paper: True)
    keras_home: str | None  # folder whose models/ holds the ImageNet weights (null: $KERAS_HOME, else ~/.keras)
    smoke_weights: bool  # write random values in the Keras layout as the weights file into keras_home (smoke tests only)
    learning_rate: float  # SGD learning rate (paper: 0.01)
    momentum: float  # SGD momentum (paper silent)
    # --- datasets --------------------------------------------------------------------
    data_source: str  # "twins": the embedded synthetic twins; "real": the licensed releases at the roots below
    allow_cpu: bool  # run a "real" profile without a GPU (the preflight refuses otherwise)
    preflight: bool  # check datasets, weights, accelerator, disk and memory before chapter 01
    bad_images: str  # "fail": an unreadable image or impossible face box stops the run, naming it; "skip": counted with its path
    publishable_subjects: str  # comma-separated subject ids whose real faces figures may show (others: landmark outline)
    affectnet_root: str | None  # folder with training.csv, validation.csv, images
    unbc_root: str | None  # folder with Images/, Frame_Labels/, AAM_landmarks/
    ckplus_root: str | None  # folder with cohn-kanade-images/, FACS/, Emotion/, Landmarks/
    # --- synthetic twins --------------------------------------------------------------
    twin_image_size: int  # side of the rendered twin images in pixels
    twin_release_quirks: bool  # twins carry the releases' quirks (lists folder, header-less CSV, a truncated image, CK+ 0s)
    affectnet_balanced_twin: bool  # the AffectNet twin's training.csv has equal class counts, not AffectNet's imbalance
    affectnet_n_train: int  # images in the AffectNet twin's training.csv
    affectnet_test_per_class: int  # images per class in validation.csv (paper: 500)
    unbc_subjects: int  # subjects of the UNBC twin (paper: 25)
    unbc_sequences_per_subject: int  # sequences per subject of the UNBC twin
    unbc_frames_per_sequence: int  # frames per sequence of the UNBC twin
    ckplus_subjects: int  # subjects of the CK+ twin (real CK+: 123)
    ckplus_sequences_per_subject: int  # posed sequences per subject of the CK+ twin
    ckplus_frames_per_sequence: int  # frames per sequence, neutral to peak
    # --- protocols (paper §3.1) ------------------------------------------------------
    affectnet_val_fraction: float  # share of training.csv held out for model selection
    affectnet_val_rows: int | None  # exactly this many training.csv rows held out instead (paper: 14 382); None: the share
    unbc_test_subjects: int  # subjects whose frames form the pain test set
    unbc_n_pain: int  # selected pain frames (PSPI > 0)
    unbc_n_no_pain: int  # selected no-pain frames
    unbc_n_val: int  # of the selected frames, this many for validation
    visibility_identities: int  # identities per pool (train / held-out) of the AU visibility check
    visibility_faces_per_au: int  # single-AU faces per AU and pool in the visibility check
    # --- emotion model (paper §3.2 step 1) --------------------------------------------
    emotion_epochs: int  # epochs of emotion training
    emotion_batch_size: int  # batch size of emotion training
    emotion_gamma: float  # focal loss gamma (paper: 5)
    cb_beta: float | None  # class-balanced beta; None = scaled so n_max(1-beta) = cb_effective_scale
    cb_effective_scale: float  # n_max (1 - beta) of the paper (134415 x 2e-5)
    # --- pain transfer (paper §3.2 step 2) ---------------------------------------------
    pain_epochs: int  # epochs of each FreezeBk pain training
    pain_batch_size: int  # batch size of pain training
    pain_gamma: float  # focal loss gamma for pain (paper: 2)
    # --- re-training for forgetting (paper §4.1) -------------------------------------
    retrain_epochs: int  # epochs of each head re-training on cached features
    retrain_batch_size: int  # batch size of head re-training
    feature_dtype: str  # dtype of the cached block-5 features heads re-train on: float32, or float16 (half the disk and reads)
    retrain_seeds: int  # repetitions of each re-training with different seeds
    # --- explanations (paper §4.2) ---------------------------------------------------
    lrp_max_images: int  # most test images explained per model and class
    # --- concept probes (paper §4.3) -------------------------------------------------
    probe_repeats: int  # repetitions of 2-fold CV for the AU14 and AU5 tests (paper: 500)
    probe_sweep_repeats: int  # repetitions for the sweep over every AU x FreezeBk
    control_probe_repeats: int  # repetitions for chapter 08's control probes (X-free vs sham, second seed)
    probe_C: float  # linear SVM C, fixed in advance
    # --- parallel execution --------------------------------------------------------
    parallel_workers: int  # processes of the embarrassingly parallel loops: probe repetitions, twin rendering, world checks (-1: every core)
    training_workers: int  # re-trained heads fitted at once, each its own process (and, on a GPU host, its own GPU memory)
    parallel_backend: str  # joblib backend of those loops: loky (this machine), dask or ray (a cluster; README)
    dask_scheduler: str | None  # address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (None: a local cluster)
    # --- bootstrap ----------------------------------------------------------------
    n_bootstrap: int  # cluster-bootstrap resamples for confidence intervals
    # --- ground truth (beyond the paper) ---------------------------------------------
    gt_pairs_per_au: int  # counterfactual render pairs (AU on vs off) per action unit
    gt_control_au: int  # AU never rendered in the positive control's emotion training data
    gt_finetune_epochs: int  # epochs of the positive control's fine-tunes (X-free and sham)
    # --- Weitz et al. 2018: LRP rule variants ------------------------------------------
    weitz_pspi_min: float  # pain frames need PSPI >= this ("high PSPI")
    weitz_images_per_class: int  # images per class (pain, happy, disgust)
    weitz_folds: int  # subject-grouped cross-validation folds (Weitz: 5)
    weitz_trained_folds: int | None  # the first folds trained and scored (None: all; paper-smoke: 1)
    weitz_epochs: int  # fine-tuning epochs per fold
    weitz_heatmap_images: int  # pain images shown under every rule
    # --- Arabian et al. 2022: transfer vs. scratch -------------------------------------
    arabian_folds: int  # cross-validation folds on the OULU-CASIA stand-in (paper: 10)
    arabian_trained_folds: int | None  # the first folds trained and scored (None: all; paper-smoke: 1)
    arabian_epochs: int  # epochs per fold (paper: 150)
    arabian_batch_size: int  # mini-batch size (paper: 50)
    arabian_learning_rate: float  # SGD with momentum 0.9 (paper: 1e-4 over 150 epochs)
    arabian_oulu_subjects: int  # subjects of the OULU-CASIA stand-in (paper: 80)
    arabian_faces_subjects: int  # subjects of the FACES stand-in
    arabian_jaffe_subjects: int  # subjects of the JAFFE stand-in (paper: 10)
    arabian_images_per_subject_class: int  # images per subject and emotion
    arabian_scratch_initializer: str  # initialiser of "scratch" runs (paper: glorot_uniform)
    arabian_gate_bias: float  # initial logit of the SE/CBAM gates (0: the modules' own start, near 1/2; 3: open)

    def replace(self, **changes: Any) -> Config:
        """A copy with some knobs changed (validated like a profile)."""
        return _build({**dataclasses.asdict(self), **changes}, source="replace()")

    def synthetic_world(self) -> Config:
        """This run's knobs on the synthetic twins, whatever ``data_source`` says.

        Chapters 08-10 call it: 08 needs ground truth that only the synthetic world has,
        09 and 10 need datasets this project has no readers for (BioVid, OULU-CASIA, FACES,
        JAFFE). Their models are trained on the twins even under the paper profile, in the
        same run folder under other keys (the dataset enters every key). The paper's count
        of validation rows (``affectnet_val_rows``) is real AffectNet's, so on the twin the
        validation share ``affectnet_val_fraction`` applies instead.
        """
        if self.data_source == "twins":
            return self
        return self.replace(data_source="twins", affectnet_val_rows=None)

    def subset(self, names: list[str] | tuple[str, ...]) -> dict[str, Any]:
        """The values of the named knobs, e.g. the parameters an artifact depends on."""
        return {name: getattr(self, name) for name in names}

    def run_dir(self) -> Path:
        """``<results_dir>/<profile>/``, relative paths taken from the repository root."""
        root = Path(self.results_dir)
        if not root.is_absolute():
            root = REPO_ROOT / root
        return root / self.profile


FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Config))
#: Knobs that take one of a few values.
CHOICES: dict[str, tuple[Any, ...]] = {"data_source": ("twins", "real"), "bad_images": ("fail", "skip"),
                                       "parallel_backend": ("loky", "dask", "ray"),
                                       "feature_dtype": ("float32", "float16"), "distribute": ("auto", "none", "mirrored")}
#: Knobs that were renamed: old name -> what replaces it.
RENAMED: dict[str, str] = {"n_jobs": "parallel_workers (probe repetitions, rendering, checks) and training_workers "
                                     "(re-trained heads)"}
_TYPES = get_type_hints(Config)


def _check_type(name: str, value: Any, source: str) -> Any:
    expected = _TYPES[name]
    allowed = getattr(expected, "__args__", (expected,))
    if value is None and type(None) in allowed:
        return None
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    for kind in allowed:
        if kind is type(None):
            continue
        if kind is int and isinstance(value, bool):
            continue
        if isinstance(value, kind):
            return value
    names = " or ".join(getattr(k, "__name__", str(k)) for k in allowed)
    raise TypeError(f"{source}: knob '{name}' must be {names}, got {value!r} ({type(value).__name__})")


def _build(values: Mapping[str, Any], *, source: str) -> Config:
    missing = [k for k in FIELDS if k not in values]
    if missing:
        raise KeyError(f"{source}: knob(s) {missing} have no value; every profile inherits from params/default.yml, "
                       "which must set every knob (add them there, with a one-line comment)")
    unknown = [k for k in values if k not in FIELDS]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, FIELDS, n=1)
            if key in RENAMED:
                hints.append(f"'{key}' (renamed: use {RENAMED[key]})")
            else:
                hints.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise KeyError(f"{source}: unknown knob(s) {', '.join(hints)}; the knobs are the fields of forgetting_aus.config.Config")
    checked = {k: _check_type(k, v, source) for k, v in values.items()}
    for name, allowed in CHOICES.items():
        if checked[name] not in allowed:
            raise ValueError(f"{source}: knob '{name}' must be one of {allowed}, got {checked[name]!r}")
    return Config(**checked)


def profile_path(profile: str | os.PathLike) -> Path:
    """Path of a profile given by name (``params/<name>.yml``) or as a path."""
    path = Path(profile)
    if path.suffix in {".yml", ".yaml"}:
        return path
    return PARAMS_DIR / f"{profile}.yml"


def read_profile(profile: str | os.PathLike) -> dict[str, Any]:
    """The knobs of a profile as a plain dict, ``inherit:`` resolved (no validation)."""
    path = profile_path(profile)
    if not path.exists():
        available = sorted(p.stem for p in PARAMS_DIR.glob("*.yml"))
        raise FileNotFoundError(f"profile '{profile}' not found at {path}; available profiles: {available}")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise TypeError(f"{path}: a profile must be a mapping of knob: value, got {type(raw).__name__}")
    parent = raw.pop("inherit", None)
    values = read_profile(parent) if parent else {}
    values.update(raw)
    values["profile"] = path.stem
    return values


def load_config(profile: str | os.PathLike = "default", *, overrides: Mapping[str, Any] | None = None) -> Config:
    """Load a profile into a validated, frozen :class:`Config`.

    Parameters
    ----------
    profile : str or path
        Profile name (``params/<profile>.yml``) or path to a YAML file.
    overrides : mapping, optional
        Knob values that take precedence over the profile (e.g. from a notebook's
        parameters cell or ``make chapter SET="pain_epochs=5"``). ``profile`` is ignored.
    """
    values = read_profile(profile)
    for key, value in (overrides or {}).items():
        if key != "profile":
            values[key] = value
    return _build(values, source=str(profile_path(profile)))


def knobs_from(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The knobs defined in a namespace (a notebook's ``globals()``), for ``overrides``."""
    return {k: v for k, v in namespace.items() if k in FIELDS and k != "profile"}


def first_folds(cfg: Config, *, folds: str, trained: str) -> range:
    """The folds a cross-validated chapter trains and scores: the first ``cfg.<trained>`` of ``cfg.<folds>``.

    Parameters
    ----------
    cfg : Config
    folds, trained : str, keyword-only
        Names of the knobs holding the number of folds and the number trained (``None``:
        all), e.g. ``"weitz_folds"`` and ``"weitz_trained_folds"``.

    Returns
    -------
    range
        ``range(n)``; a value outside 1..``cfg.<folds>`` is an error naming the knob.
    """
    n_folds, n_trained = getattr(cfg, folds), getattr(cfg, trained)
    n = n_folds if n_trained is None else n_trained
    if not 1 <= n <= n_folds:
        raise ValueError(f"{trained} must lie in 1..{folds}={n_folds} (or null for all), got {n_trained}")
    return range(n)


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed Python, numpy and TensorFlow, and switch TF's op determinism on or off.

    The one seeding call of a chapter. ``keras.utils.set_random_seed`` seeds Python's
    ``random``, numpy's legacy global generator and TF. With ``deterministic`` (the
    ``deterministic_ops`` knob), TF runs only kernels that give the same bits on every
    rerun on the same hardware, and raises for ops that have none; without it, GPUs may
    pick faster nondeterministic kernels (atomics in reductions and convolution
    backprops), so reruns differ in their last bits and, through training, in their
    results. The switch is process-wide, so it is set either way: a worker process that
    ran a deterministic task before keeps no stale state.
    """
    random.seed(seed)
    np.random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover - TF is a hard dependency, but keep seeding usable
        return
    tf.keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    else:
        # TF 2.14 exports only the enabling half; the disabling half is its internal twin.
        from tensorflow.python.framework import config as tf_config

        tf_config.disable_op_determinism()
