"""The study's expensive stages, each cached by its inputs: what the chapters call.

Every stage takes the run's :class:`~forgetting_aus.config.Config`, computes its artifact
on a miss and reads it back on a hit (:class:`~forgetting_aus.cache.Store`), so a chapter
asks for "the pain models" and gets them, trained only if their knobs, their upstream
artifacts or their code changed. Upstream artifacts enter a stage's key through their own
keys, so a changed early knob invalidates everything downstream.

Stages, in order:

``twins`` → ``emotion_data``, ``pain_data``, ``ckplus_data`` → ``emotion_model`` →
``pain_model`` (k = 0..5) → ``retrained_head`` (k, seed) and ``probe_features``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from . import cache, datasets, facs, parallel
from . import config as config_module
from .config import Config

#: Models of the paper: FreezeB<k>, k = number of frozen conv blocks.
FREEZE_LEVELS: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
PAIN_CLASSES: tuple[str, ...] = ("no pain", "pain")
#: The reference every pain model is compared with: FreezeB5, whose conv blocks are the emotion model's.
REFERENCE_K = 5


def model_name(k: int) -> str:
    """``FreezeB<k>``, the paper's name of the pain model with ``k`` frozen blocks."""
    return f"FreezeB{k}"


def store(cfg: Config) -> cache.Store:
    return cache.Store(cfg.run_dir())


# --- data ------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Split:
    """Face crops of one split at the model's input size, with everything known about them.

    Attributes
    ----------
    images : uint8 (n, size, size, 3), memory-mapped read-only when read by :func:`load_split`
    labels : int64 (n,) class index (emotions: ``facs.EMOTIONS``; pain: 0 no pain, 1 pain;
        CK+: emotion index or -1 where unlabelled)
    landmarks : float32 (n, 68, 2) in crop pixel coordinates
    groups : str (n,) subject ids ("" where unknown)
    aus : float32 (n, 18) AU intensities in ``facs.AU_CODES`` order (NaN where unknown;
        0 is "absent or not coded": CK+ lists some present AUs with intensity 0)
    present : float32 (n, 18) AU presence, 1 / 0 / NaN where unknown
        (:func:`forgetting_aus.datasets.au_presence`): what every AU label is made from
    """

    images: np.ndarray
    labels: np.ndarray
    landmarks: np.ndarray
    groups: np.ndarray
    aus: np.ndarray
    present: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.present is None:  # no presence given: present where the intensity is > 0
            aus = np.asarray(self.aus, dtype="float32")
            object.__setattr__(self, "present", np.where(np.isnan(aus), np.nan, aus > 0).astype("float32"))

    def __len__(self) -> int:
        return len(self.labels)


def split_images_file(folder: Path, name: str) -> Path:
    """Where :func:`save_split` keeps a split's images: ``<folder>/<name>.images.npy``."""
    return Path(folder) / f"{name}.images.npy"


def save_split(folder: Path, name: str, split: Split) -> None:
    """Write a :class:`Split`: images to :func:`split_images_file`, the rest to ``<name>.npz``.

    The images sit in their own ``.npy`` so that :func:`load_split` can memory-map them
    (an ``.npz`` member is always read whole). Images that :func:`split_from_index`
    already decoded into that file are not written again. Atomic, no pickles.
    """
    target = split_images_file(folder, name)
    decoded_into = getattr(split.images, "filename", None)
    if decoded_into is None or Path(decoded_into).resolve() != target.resolve():
        cache.write_npy(target, split.images)
    cache.write_npz(folder / f"{name}.npz",
                    **{f.name: getattr(split, f.name) for f in dataclasses.fields(Split) if f.name != "images"})


def load_split(folder: Path, name: str) -> Split:
    """Read a :class:`Split` written by :func:`save_split`, its images memory-mapped (read-only).

    The images are read from disk as they are used, so a split of any size opens at once
    and takes memory only for what is touched.
    """
    arrays = cache.read_npz(folder / f"{name}.npz")
    return Split(images=np.load(split_images_file(folder, name), mmap_mode="r"), **arrays)


def split_from_index(index, *, size: int, crop: str, label_column: str = "label", on_error: str = "raise",
                     report: datasets.ReadReport | None = None, return_index: bool = False,
                     images_file: Path | None = None, n_jobs: int = 1, progress: str | None = None):
    """Load the face crops of a reader's index at ``size`` px into a :class:`Split`.

    ``crop`` is ``"box"`` (AffectNet's face box) or ``"landmarks"`` (a box from the 68
    landmarks, for UNBC and CK+); unknown labels become -1, unknown AUs NaN. With
    ``on_error="skip"`` an unreadable or truncated image, or a face box outside its image,
    is left out and counted with its path in ``report``; with ``return_index=True`` the
    rows kept are returned too, so that per-row metadata stays aligned. With
    ``images_file`` (:func:`split_images_file`) the crops are decoded straight into that
    memory-mapped ``.npy``, ``n_jobs`` threads at a time, so the images never sit in
    memory; ``progress`` names a progress bar.
    """
    out = None
    if images_file is not None:
        out = np.lib.format.open_memmap(images_file, mode="w+", dtype=np.uint8, shape=(len(index), size, size, 3))
    images, landmarks, loaded = datasets.load_faces(index, size=size, crop=crop, on_error=on_error, report=report,
                                                    return_mask=True, out=out, n_jobs=n_jobs, progress=progress)
    if out is not None:
        out.flush()
        del out, images
        # A skipped image leaves rows at the end of the file: the file is cut to the rows loaded.
        images = cache.trim_npy(images_file, int(loaded.sum()))
    index = index[loaded].reset_index(drop=True)
    labels = index[label_column].fillna(-1).astype("int64").to_numpy() if label_column in index else np.full(len(index), -1)
    groups = index["subject"].fillna("").astype(str).to_numpy() if "subject" in index else np.full(len(index), "")
    aus = index.reindex(columns=list(facs.AU_NAMES)).to_numpy(dtype="float32")
    split = Split(images=images, labels=labels, landmarks=landmarks.astype("float32"), groups=groups.astype(str), aus=aus,
                  present=datasets.au_presence(index))
    return (split, index) if return_index else split


def _bad_images(cfg: Config) -> str:
    """``on_error`` of the readers and the image loader, from the ``bad_images`` knob."""
    return "skip" if cfg.bad_images == "skip" else "raise"


def _report_info(report: datasets.ReadReport) -> dict[str, Any]:
    """A read report as it goes into a data artifact's manifest: the text and the skips with their paths."""
    return {"text": str(report), "skipped": dict(report.skipped), "skipped_paths": dict(report.skipped_paths)}


def data_key(cfg: Config, which: str) -> str:
    """Key of a data stage's artifact ("emotion", "pain" or "ckplus"), for downstream keys."""
    folders = {"emotion": _emotion_data_folder, "pain": _pain_data_folder, "ckplus": _ckplus_data_folder}
    if which not in folders:
        raise ValueError(f"which must be one of {sorted(folders)}, got {which!r}")
    return folders[which](cfg).name


def twin_kwargs(cfg: Config, kind: str) -> dict[str, Any]:
    """Knobs of one synthetic twin (what its files depend on)."""
    common = {"image_size": cfg.twin_image_size, "seed": cfg.seed}
    quirks = {"release_quirks": True} if cfg.twin_release_quirks else {}  # absent when off: keys stay as they were
    if kind == "affectnet":
        balanced = {"class_proportions": [1.0] * len(facs.EMOTIONS)} if cfg.affectnet_balanced_twin else {}
        return {**common, "n_train": cfg.affectnet_n_train, "n_test_per_class": cfg.affectnet_test_per_class,
                **balanced, **quirks}
    if kind == "unbc":
        return {**common, "n_subjects": cfg.unbc_subjects, "sequences_per_subject": cfg.unbc_sequences_per_subject,
                "frames_per_sequence": cfg.unbc_frames_per_sequence}
    if kind == "ckplus":
        return {**common, "n_subjects": cfg.ckplus_subjects, "sequences_per_subject": cfg.ckplus_sequences_per_subject,
                "frames_per_sequence": cfg.ckplus_frames_per_sequence, **quirks}
    raise ValueError(f"unknown twin '{kind}'; expected affectnet, unbc or ckplus")


#: Reader dataset name of each twin kind (the keys of ``datasets.release.ROOT_KNOBS``).
_DATASET_NAMES = {"affectnet": "AffectNet", "unbc": "UNBC-McMaster", "ckplus": "CK+"}


def dataset_root(cfg: Config, kind: str) -> tuple[Path, dict[str, Any]]:
    """Root folder of a dataset and the parameters that identify its content.

    ``cfg.data_source`` decides, never the presence of a folder: with ``"real"`` the
    release's root (profile knob or environment variable) must be given and exist, else
    the run stops with the fix; the synthetic twins never stand in for a real dataset.
    With ``"twins"`` the synthetic twin is written once, as a cached artifact keyed by its
    knobs and by the renderer's code (a changed renderer regenerates the twins).
    """
    from forgetting_aus import synth
    from forgetting_aus.datasets.release import ROOT_KNOBS

    name = _DATASET_NAMES[kind]
    if cfg.data_source == "real":
        knob, env_var = ROOT_KNOBS[name]
        root = datasets.resolve_root(getattr(cfg, knob), dataset=name, profile_key=knob, env_var=env_var)
        return root, {"real_root": str(root)}
    kwargs = twin_kwargs(cfg, kind)
    writer = {"affectnet": synth.write_affectnet_twin, "unbc": synth.write_unbc_twin,
              "ckplus": synth.write_ckplus_twin}[kind]
    folder = store(cfg).get_or_make(f"twin_{kind}", kwargs, lambda out: writer(out / "data", **kwargs))
    key = folder.name
    return folder / "data", {"twin": kind, "key": key}


def twin_truth(cfg: Config, kind: str) -> Path:
    """Ground-truth folder of a synthetic twin (subject ids; AffectNet's AU intensities).

    Only the parts that check the synthetic world read it, by name; the study's stages
    read a twin exactly as they read a release (:func:`dataset_root`).

    Raises
    ------
    ValueError
        If ``cfg`` reads the real datasets, which have no such truth (the message says to
        pass :meth:`Config.synthetic_world`).
    """
    from forgetting_aus import synth

    if cfg.data_source != "twins":
        raise ValueError(f"the {_DATASET_NAMES[kind]} ground truth exists only for the synthetic twins, but this "
                         f"run reads data_source={cfg.data_source!r}; pass cfg.synthetic_world()")
    return synth.truth_root(dataset_root(cfg, kind)[0])


def emotion_data(cfg: Config) -> dict[str, Split]:
    """AffectNet (or its twin) cropped to the model input: train, val and test splits."""
    folder = _emotion_data_folder(cfg)
    return {name: load_split(folder, name) for name in ("train", "val", "test")}


def emotion_labels(cfg: Config) -> dict[str, np.ndarray]:
    """The emotion class index of every image of :func:`emotion_data`'s splits, without reading the images."""
    folder = _emotion_data_folder(cfg)
    return {name: cache.read_npz(folder / f"{name}.npz", names=["labels"])["labels"] for name in ("train", "val", "test")}


def _emotion_data_folder(cfg: Config) -> Path:
    root, identity = dataset_root(cfg, "affectnet")
    params = {"dataset": identity, "image_size": cfg.image_size, "val_fraction": cfg.affectnet_val_fraction,
              "val_rows": cfg.affectnet_val_rows, "bad_images": cfg.bad_images, "seed": cfg.seed}

    def make(folder: Path) -> dict[str, Any]:
        on_error = _bad_images(cfg)
        report = datasets.ReadReport(dataset="AffectNet")
        index = datasets.read_affectnet(root, report=report, on_missing=on_error, on_error=on_error)
        index = datasets.affectnet_splits(index, val_fraction=cfg.affectnet_val_fraction, seed=cfg.seed,
                                          val_rows=cfg.affectnet_val_rows)
        images = datasets.ReadReport(dataset="AffectNet images")
        sizes = {}
        for name in ("train", "val", "test"):
            part = index[index["split"] == name].reset_index(drop=True)
            split = split_from_index(part, size=cfg.image_size, crop="box", on_error=on_error, report=images,
                                     images_file=split_images_file(folder, name),
                                     # threads (joblib's n_jobs: -1 is every core); every crop is
                                     # the same whatever their number, so they are not in the key
                                     n_jobs=cfg.parallel_workers, progress=f"AffectNet {name} images")
            save_split(folder, name, split)
            sizes[name] = len(split)
        return {"sizes": sizes, "read_report": _report_info(report), "image_report": _report_info(images)}

    return store(cfg).get_or_make("emotion_data", params, make)


def pain_data(cfg: Config) -> dict[str, Split]:
    """UNBC-McMaster (or its twin) with the paper's protocol: 900/100 selection, test subjects."""
    folder = _pain_data_folder(cfg)
    return {name: load_split(folder, name) for name in ("train", "val", "test")}


def pain_test_meta(cfg: Config) -> dict[str, np.ndarray]:
    """PSPI and sequence id of every pain test frame (for sequence-level bootstraps)."""
    return cache.read_npz(_pain_data_folder(cfg) / "test_meta.npz")


def _pain_data_folder(cfg: Config) -> Path:
    root, identity = dataset_root(cfg, "unbc")
    params = {"dataset": identity, "image_size": cfg.image_size, "test_subjects": cfg.unbc_test_subjects,
              "n_pain": cfg.unbc_n_pain, "n_no_pain": cfg.unbc_n_no_pain, "n_val": cfg.unbc_n_val,
              "bad_images": cfg.bad_images, "seed": cfg.seed}

    def make(folder: Path) -> dict[str, Any]:
        on_error = _bad_images(cfg)
        report = datasets.ReadReport(dataset="UNBC-McMaster")
        index = datasets.read_unbc(root, report=report, on_missing=on_error)
        index = datasets.unbc_protocol(index, test_subjects=cfg.unbc_test_subjects, n_pain=cfg.unbc_n_pain,
                                       n_no_pain=cfg.unbc_n_no_pain, n_val=cfg.unbc_n_val, seed=cfg.seed)
        checks = datasets.check_unbc_selection(index, n_pain=cfg.unbc_n_pain, n_no_pain=cfg.unbc_n_no_pain, n_val=cfg.unbc_n_val)
        images = datasets.ReadReport(dataset="UNBC-McMaster images")
        sizes, kept = {}, {}
        for name in ("train", "val", "test"):
            part = index[index["split"] == name].reset_index(drop=True)
            split, kept[name] = split_from_index(part, size=cfg.image_size, crop="landmarks", on_error=on_error,
                                                 report=images, return_index=True,
                                                 images_file=split_images_file(folder, name))
            save_split(folder, name, split)
            sizes[name] = len(split)
        test = kept["test"]
        cache.write_npz(folder / "test_meta.npz", pspi=test["pspi"].to_numpy(dtype="float32"),
                        sequence=np.asarray(test["sequence"].astype(str).to_numpy(), dtype=str))
        return {"sizes": sizes, "selection_checks": {k: v for k, v in checks.items() if isinstance(v, (int, float, str, bool))},
                "read_report": _report_info(report), "image_report": _report_info(images)}

    return store(cfg).get_or_make("pain_data", params, make)


def ckplus_data(cfg: Config) -> Split:
    """CK+ (or its twin) peak frames: the probe data set (AUs coded at the peak)."""
    return load_split(_ckplus_data_folder(cfg), "peaks")


def _ckplus_data_folder(cfg: Config) -> Path:
    root, identity = dataset_root(cfg, "ckplus")
    params = {"dataset": identity, "image_size": cfg.image_size, "bad_images": cfg.bad_images}

    def make(folder: Path) -> dict[str, Any]:
        on_error = _bad_images(cfg)
        report = datasets.ReadReport(dataset="CK+")
        index = datasets.read_ckplus(root, report=report, on_missing=on_error)
        peaks = datasets.ckplus_peak_frames(index).reset_index(drop=True)
        images = datasets.ReadReport(dataset="CK+ images")
        split = split_from_index(peaks, size=cfg.image_size, crop="landmarks", on_error=on_error, report=images,
                                 images_file=split_images_file(folder, "peaks"))
        save_split(folder, "peaks", split)
        return {"n_peaks": len(split), "read_report": _report_info(report), "image_report": _report_info(images)}

    return store(cfg).get_or_make("ckplus_data", params, make)


def prepare_data(cfg: Config, *, n_jobs: int | None = None) -> dict[str, str]:
    """Make the three data stages (and the twins under them) in parallel processes.

    Rendering and writing the twins, then decoding and cropping them, is single-threaded
    numpy and PIL work, so the emotion data and the pain plus CK+ data are made side by
    side on two cores (each twin's bytes depend only on its knobs, never on the worker).
    Everything is cached: a second call returns at once.

    Parameters
    ----------
    n_jobs : int, optional
        Worker processes (default ``cfg.n_jobs``); 1 makes the stages in this process.

    Returns
    -------
    dict
        ``{"emotion": key, "pain": key, "ckplus": key}``, the data stages' artifact keys.
    """
    from joblib import Parallel, delayed

    order = ("emotion", "pain", "ckplus")  # largest first; CK+ goes to the first free worker
    n_jobs = parallel.worker_count(cfg.parallel_workers if n_jobs is None else n_jobs)
    if n_jobs == 1:
        keys = [data_key(cfg, which) for which in order]
    else:
        # On this machine, whatever parallel_backend says: the stages write the data folders here.
        keys = Parallel(n_jobs=min(n_jobs, len(order)), backend="loky")(
            delayed(data_key)(cfg, which) for which in order)
    return dict(zip(order, keys, strict=True))


# --- models ----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Trained:
    """A trained model's artifact: the saved float32 model, its history and test predictions.

    Attributes
    ----------
    folder : Path
        The artifact folder (``model.keras``, ``history.json``, ``predictions.npz``).
    key : str
        The artifact key, which downstream stages include in theirs.
    """

    folder: Path

    @property
    def key(self) -> str:
        return self.folder.name

    @property
    def model_path(self) -> Path:
        return self.folder / "model.keras"

    def history(self) -> dict[str, Any]:
        return cache.read_json(self.folder / "history.json")

    def predictions(self) -> dict[str, np.ndarray]:
        """``y_pred`` (n,) and ``probabilities`` (n, classes) on the test split."""
        return cache.read_npz(self.folder / "predictions.npz")

    def load(self):
        from . import models

        return models.load_model(self.model_path)

    def load_read_only(self):
        """The model, shared with every other read-only user in this process.

        For callers that only read it or copy from it (:func:`models.with_new_head`,
        :func:`models.conv_base`, :func:`models.assemble`, feature extraction): never
        train, re-initialise or freeze the result. The last six models loaded this way
        are kept (~3 GB at full width), so the six FreezeB<k> of a chapter, or the
        emotion model its six pain models start from, are read from disk once.
        """
        return _read_only_model(str(self.model_path))


@functools.lru_cache(maxsize=6)
def _read_only_model(path: str):
    from . import models

    # An artifact's folder is named by its key, so one path always holds the same model.
    return models.load_model(path)


def _model_knobs(cfg: Config) -> dict[str, Any]:
    return cfg.subset(["image_size", "width", "head_units", "dropout", "learning_rate", "momentum", "mixed_precision", "seed"])


def class_balance_beta(cfg: Config, counts: np.ndarray) -> float:
    """The class-balanced beta: the profile's, or scaled so n_max (1 - beta) = the paper's."""
    from . import losses

    if cfg.cb_beta is not None:
        return float(cfg.cb_beta)
    return float(losses.beta_for_dataset(int(np.max(counts)), effective_scale=cfg.cb_effective_scale))


def emotion_loss(cfg: Config, labels: np.ndarray):
    """Class-balanced focal loss (eqs. 1-2) for the emotion training labels."""
    from . import losses

    counts = np.bincount(labels, minlength=len(facs.EMOTIONS))
    weights = losses.class_balanced_weights(counts, beta=class_balance_beta(cfg, counts))
    return losses.focal_loss(gamma=cfg.emotion_gamma, class_weights=weights), weights


def _predict(model, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    from . import models

    return model.predict(models.preprocess(images), batch_size=batch_size, verbose=0)


def save_trained(folder: Path, model, history: dict[str, Any], test: Split) -> dict[str, Any]:
    """Write a trained classifier's artifact files, the layout :class:`Trained` reads.

    Every model stage ends with it (the pipeline's and chapter 08's control models).

    Parameters
    ----------
    folder : Path
        The artifact's (temporary) folder, from :meth:`cache.Store.get_or_make`.
    model : keras.Model
        The float32 classifier (softmax output).
    history : dict
        JSON-able training history (``{}`` when there is none).
    test : Split
        The test split whose predictions are stored.

    Returns
    -------
    dict
        ``best_epoch`` and ``best_score`` of the history (None when absent), for the manifest.

    Files written: ``model.keras``, ``history.json`` and ``predictions.npz`` (``y_pred``
    int64 (n,), ``probabilities`` float32 (n, classes)).
    """
    from . import models

    models.save_model(model, folder / "model.keras")
    cache.write_json(folder / "history.json", history)
    probabilities = _predict(model, test.images)
    cache.write_npz(folder / "predictions.npz", y_pred=probabilities.argmax(axis=1), probabilities=probabilities)
    return {"best_epoch": history.get("best_epoch"), "best_score": history.get("best_score")}


def checkpoint_folder(cfg: Config, stage: str, params: dict[str, Any]) -> Path:
    """Checkpoint folder of a training run: survives a killed run, so training resumes.

    ``stage`` may carry a run suffix (``pain_model_3``, ``weitz_fold_1``): the folder is
    named by it, the key by the stage without it.
    """
    return cfg.run_dir() / "checkpoints" / stage / store(cfg).key(stage.rstrip("_0123456789"), params)


def _stored_model_params(cfg: Config, params: dict[str, Any], *, replicas: int) -> dict[str, Any]:
    """The key parameters :func:`stored_model` stores a training stage under."""
    if replicas > 1:
        params = {**params, "replicas": replicas}
    return {**params, **_determinism_mark(cfg)}


def stored_model_is_cached(cfg: Config, stage: str, params: dict[str, Any]) -> bool:
    """Whether :func:`stored_model` would read ``stage`` with ``params`` from the store instead of training."""
    from . import distribute

    replicas = distribute.strategy_for(cfg.distribute).num_replicas_in_sync
    key = store(cfg).key(stage, _stored_model_params(cfg, params, replicas=replicas))
    return store(cfg).has(stage, key)


def stored_model(cfg: Config, stage: str, params: dict[str, Any], make, *, checkpoints: Path | None = None) -> Path:
    """``store(cfg).get_or_make(stage, params, make)`` for a training stage, on the ``distribute`` knob's devices.

    ``make`` runs in the scope of :func:`forgetting_aus.distribute.strategy_for`'s strategy: on several GPUs
    the model it builds trains under ``MirroredStrategy``, and the number of replicas
    enters the key (a model trained on N replicas is not the one-device model, only
    alike); on one device nothing changes, key included. Likewise a model trained with
    ``deterministic_ops: false`` is marked in its key. Per-epoch checkpoints exist so
    that a killed run resumes; once the model is stored (its manifest written) they serve
    nothing, and at full width a run leaves ~1.4 GB (about 60 runs in chapter 10), so
    they are deleted. A run killed before the manifest keeps them and resumes.

    Returns
    -------
    Path
        The artifact folder.
    """
    from . import distribute

    strategy = distribute.strategy_for(cfg.distribute)
    replicas = strategy.num_replicas_in_sync
    params = _stored_model_params(cfg, params, replicas=replicas)

    def make_on_replicas(folder: Path) -> dict[str, Any]:
        with distribute.entered(strategy):
            if replicas > 1:
                print(f"{stage}: training on {distribute.describe(strategy)}", file=sys.stderr, flush=True)
            return make(folder)

    folder = store(cfg).get_or_make(stage, params, make_on_replicas)
    if checkpoints is None:
        return folder
    if checkpoints.exists():
        shutil.rmtree(checkpoints)
    with contextlib.suppress(OSError):  # the run's folder, once no other key's checkpoints are in it
        checkpoints.parent.rmdir()
    return folder


def keras_home(cfg: Config) -> Path | None:
    """The ``keras_home`` knob as a path (relative to the repository, as ``results_dir``), or None."""
    if cfg.keras_home is None:
        return None
    home = Path(cfg.keras_home).expanduser()
    return home if home.is_absolute() else config_module.REPO_ROOT / home


def imagenet_weights_file(cfg: Config) -> Path:
    """The ImageNet VGG16 weights file this run loads (``keras_home``, else Keras' own home).

    With ``smoke_weights`` the file is written first, random values in the exact Keras
    layout (:func:`models.write_random_imagenet_layout`), and only into a ``keras_home``
    inside the run folder: a smoke test must never write into the user's Keras home.
    """
    from . import models

    home = keras_home(cfg)
    if not cfg.smoke_weights:
        return models.imagenet_weights_path(keras_home=home)
    if home is None or not home.resolve().is_relative_to(cfg.run_dir().resolve()):
        raise ValueError(f"smoke_weights writes random weights into keras_home, which must lie inside the run folder "
                         f"{cfg.run_dir()} (never the user's Keras home); got keras_home={cfg.keras_home!r}")
    path = models.imagenet_weights_path(must_exist=False, keras_home=home)
    if not path.is_file():
        models.write_random_imagenet_layout(path, seed=cfg.seed)
    return path


def emotion_model(cfg: Config) -> Trained:
    """§3.2 step 1: VGG16 trained on the emotion data with the class-balanced focal loss."""
    params = {"data": _emotion_data_folder(cfg).name, **_model_knobs(cfg), "imagenet_weights": cfg.imagenet_weights,
              "smoke_weights": cfg.smoke_weights,
              **cfg.subset(["emotion_epochs", "emotion_batch_size", "emotion_gamma", "cb_beta", "cb_effective_scale"])}

    def make(folder: Path) -> dict[str, Any]:
        from . import models, training

        data = emotion_data(cfg)
        loss, weights = emotion_loss(cfg, data["train"].labels)
        model = models.build_vgg16(len(facs.EMOTIONS), input_size=cfg.image_size, width=cfg.width,
                                   head_units=cfg.head_units, dropout=cfg.dropout,
                                   weights=imagenet_weights_file(cfg) if cfg.imagenet_weights else None, seed=cfg.seed)
        history = training.fit_classifier(
            model, (data["train"].images, data["train"].labels), (data["val"].images, data["val"].labels),
            loss=loss, epochs=cfg.emotion_epochs, batch_size=cfg.emotion_batch_size, learning_rate=cfg.learning_rate,
            momentum=cfg.momentum, augment="flip", select_by="macro_recall", seed=cfg.seed,
            checkpoint_dir=checkpoints, mixed_precision=cfg.mixed_precision)
        model = history.pop("model", model)
        history["class_weights"] = np.asarray(weights).tolist()
        return save_trained(folder, model, history, data["test"])

    checkpoints = checkpoint_folder(cfg, "emotion_model", params)
    return Trained(stored_model(cfg, "emotion_model", params, make, checkpoints=checkpoints))


def pain_model(cfg: Config, k: int) -> Trained:
    """§3.2 step 2: FreezeB<k>, the emotion model's first ``k`` conv blocks frozen, trained on pain."""
    if k not in FREEZE_LEVELS:
        raise ValueError(f"k must be one of {FREEZE_LEVELS} (frozen conv blocks), got {k}")
    source = emotion_model(cfg)
    params = {"data": _pain_data_folder(cfg).name, "emotion_model": source.key, "frozen_blocks": k, **_model_knobs(cfg),
              **cfg.subset(["pain_epochs", "pain_batch_size", "pain_gamma"])}

    def make(folder: Path) -> dict[str, Any]:
        from . import losses, models, training

        data = pain_data(cfg)
        model = models.with_new_head(source.load_read_only(), len(PAIN_CLASSES), head_units=cfg.head_units,
                                     dropout=cfg.dropout, seed=cfg.seed + 100 + k)
        models.freeze_blocks(model, k)
        history = training.fit_classifier(
            model, (data["train"].images, data["train"].labels), (data["val"].images, data["val"].labels),
            loss=losses.focal_loss(gamma=cfg.pain_gamma), epochs=cfg.pain_epochs, batch_size=cfg.pain_batch_size,
            learning_rate=cfg.learning_rate, momentum=cfg.momentum, augment="pain", select_by="macro_recall",
            seed=cfg.seed + k, checkpoint_dir=checkpoints, mixed_precision=cfg.mixed_precision)
        model = history.pop("model", model)
        return save_trained(folder, model, history, data["test"])

    checkpoints = checkpoint_folder(cfg, f"pain_model_{k}", params)
    return Trained(stored_model(cfg, "pain_model", params, make, checkpoints=checkpoints))


def pain_models(cfg: Config) -> dict[int, Trained]:
    """All six pain models FreezeB0..FreezeB5."""
    return {k: pain_model(cfg, k) for k in FREEZE_LEVELS}


# --- re-training for forgetting (§4.1) ---------------------------------------------

#: The emotion data's parts whose frozen features the re-training reads.
FEATURE_SPLITS: tuple[str, ...] = ("train", "train_flipped", "val", "test")


def _emotion_features_folder(cfg: Config) -> Path:
    """``block5_pool`` features of the emotion data through every FreezeB<k>'s conv blocks.

    One artifact for the six models, ``FreezeB<k>_<split>.npy`` for each split of
    :data:`FEATURE_SPLITS`: the models share their first k blocks with FreezeB5 (the
    emotion model's), so each batch goes once through those and each model continues
    from there (:mod:`forgetting_aus.shared_blocks`; a third fewer multiply-adds at
    224 px), written to disk batch by batch. Both orientations of the training images
    are cached, so the flip augmentation of the re-training stays exact while the frozen
    networks run once instead of every epoch.
    """
    sources = pain_models(cfg)
    params = {"data": _emotion_data_folder(cfg).name, "pain_models": {str(k): t.key for k, t in sources.items()},
              "dtype": cfg.feature_dtype}

    def make(folder: Path) -> dict[str, Any]:
        from . import shared_blocks

        data = emotion_data(cfg)
        networks = {k: trained.load_read_only() for k, trained in sources.items()}
        reference = max(FREEZE_LEVELS)  # FreezeB5: the emotion model's conv blocks, all five
        shared = {k: shared_blocks.leading_shared_blocks(model, networks[reference]) for k, model in networks.items()}
        for split in FEATURE_SPLITS:
            images = data["train" if split == "train_flipped" else split].images
            shared_blocks.shared_block_features(
                networks, images, reference=reference, flip=split == "train_flipped",
                out={k: folder / f"FreezeB{k}_{split}.npy" for k in networks}, dtype=cfg.feature_dtype,
                progress=f"FreezeB0-5 features, {split}")
        return {"shared_blocks": {f"FreezeB{k}": depth for k, depth in shared.items()}}

    return store(cfg).get_or_make("emotion_features", params, make)


def _emotion_features(folder: Path, k: int) -> dict[str, np.ndarray]:
    """FreezeB<k>'s arrays of :func:`_emotion_features_folder`, split -> (n, h, w, c), memory-mapped.

    Of dtype ``feature_dtype`` (the head trainer computes in float32 whatever it is).
    Mapped, not read: at the paper's scale one model's training features are ~27 GB per
    orientation, and the head trainer reads them a chunk of batches at a time.
    """
    return {split: np.load(folder / f"FreezeB{k}_{split}.npy", mmap_mode="r") for split in FEATURE_SPLITS}


def _retrained_params(cfg: Config, features_folder: Path, source: Trained, repetition: int) -> dict[str, Any]:
    return {"features": features_folder.name, "pain_model": source.key, "repetition": repetition,
            **cfg.subset(["head_units", "dropout", "learning_rate", "momentum", "seed", "retrain_epochs",
                          "retrain_batch_size", "emotion_gamma", "cb_beta", "cb_effective_scale"]),
            **_determinism_mark(cfg)}


def _determinism_mark(cfg: Config) -> dict[str, Any]:
    """``{"nondeterministic_ops": True}`` for a model trained without op determinism, else ``{}``.

    Such a model differs from rerun to rerun, so its key says so; the deterministic
    (default) keys stay as they were.
    """
    return {} if cfg.deterministic_ops else {"nondeterministic_ops": True}


def _retrained_is_cached(cfg: Config, k: int, repetition: int) -> bool:
    params = _retrained_params(cfg, _emotion_features_folder(cfg), pain_model(cfg, k), repetition)
    return store(cfg).has("retrained_model", store(cfg).key("retrained_model", params))


def retrained_model(cfg: Config, k: int, repetition: int = 0) -> Trained:
    """FreezeB<k>'s conv blocks, all frozen, with a new 8-way head re-trained on emotions.

    The same loss, optimiser and (flip) augmentation as the emotion model; repetition
    ``r`` changes only the head's initialisation and data order (seed + r). Every
    repetition stores its test predictions and its training history; the full model
    (conv blocks + head) is saved for repetition 0, the one the explanations use.
    """
    source = pain_model(cfg, k)
    features_folder = _emotion_features_folder(cfg)
    params = _retrained_params(cfg, features_folder, source, repetition)

    def make(folder: Path) -> dict[str, Any]:
        from . import models, training

        labels = emotion_labels(cfg)
        features = _emotion_features(features_folder, k)
        loss, _ = emotion_loss(cfg, labels["train"])
        head = training.fit_head(
            features["train"], features["train_flipped"], labels["train"], features["val"], labels["val"],
            num_classes=len(facs.EMOTIONS), loss=loss, epochs=cfg.retrain_epochs, batch_size=cfg.retrain_batch_size,
            learning_rate=cfg.learning_rate, momentum=cfg.momentum, head_units=cfg.head_units, dropout=cfg.dropout,
            seed=cfg.seed + 1000 * (repetition + 1) + k, select_by="macro_recall", progress=False)
        probabilities = training.predict_batches(head, features["test"], batch_size=512)
        cache.write_npz(folder / "predictions.npz", y_pred=probabilities.argmax(axis=1), probabilities=probabilities)
        # Chapter 04's learnability floors read the validation recall of every repetition.
        cache.write_json(folder / "history.json", {key: value for key, value in head.fit_history.items()
                                                   if key != "model"})
        if repetition == 0:
            model = training.assemble(models.conv_base(source.load_read_only()), head)
            models.save_model(model, folder / "model.keras")
        return {}

    return Trained(store(cfg).get_or_make("retrained_model", params, make))


def _retrain_job(cfg: Config, k: int, repetition: int) -> str:
    from .config import seed_everything

    seed_everything(cfg.seed, deterministic=cfg.deterministic_ops)
    return retrained_model(cfg, k, repetition).key


def retrained_models(cfg: Config, *, n_jobs: int | None = None) -> dict[tuple[int, int], Trained]:
    """Every re-trained emotion model: ``(k, repetition) -> Trained``.

    The missing ones are fitted in ``n_jobs`` worker processes (default ``cfg.n_jobs``):
    a head fit on cached features is a long chain of tiny steps, bound by per-step
    overhead rather than arithmetic, so two processes fit about twice as many heads as
    one. Each fit depends only on its seed, so the result does not depend on the workers.
    """
    pairs = [(k, r) for k in FREEZE_LEVELS for r in range(cfg.retrain_seeds)]
    n_jobs = cfg.training_workers if n_jobs is None else n_jobs
    # Features are made first, for all six models, in this process (the check makes them).
    missing = [(k, r) for k, r in pairs if not _retrained_is_cached(cfg, k, r)]
    if n_jobs > 1 and len(missing) > 1:
        from joblib import Parallel, delayed

        # Training stays on this machine (its accelerators), whatever parallel_backend says.
        Parallel(n_jobs=n_jobs, backend="loky")(delayed(_retrain_job)(cfg, k, r) for k, r in missing)
    return {(k, r): retrained_model(cfg, k, r) for k, r in pairs}
