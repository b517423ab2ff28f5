"""Preflight of a profile on the real datasets: every problem and its fix, before any long work.

``python -m forgetting_aus.preflight --profile paper`` (``make check PROFILE=paper``; the
runner calls it before chapter 01 of a profile with ``preflight: true`` or ``data_source:
real``) checks, in a few seconds and without reading any image:

- each dataset root is set and holds what the release ships (a quick read of the first
  rows of AffectNet's label list, UNBC's and CK+'s label folders); on the twins, the
  twins' folders (written first if missing), which are laid out as the releases ship;
- the ImageNet VGG16 weights file is present and is the file Keras publishes (its MD5,
  :data:`forgetting_aus.models.IMAGENET_WEIGHTS_MD5`); with ``smoke_weights`` (smoke
  profiles only) it is the random stand-in in the run folder's Keras home, said so;
- an accelerator is visible, unless the profile allows the CPU (``allow_cpu``);
- free disk and memory against the run's estimated needs (:func:`estimated_needs`).

It prints one report listing every problem with its fix and exits non-zero when there is
any, so a run on a GPU server fails in seconds, not hours. A profile with
``data_source: real`` never falls back to the synthetic twins.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import shutil
import sys
from pathlib import Path

from forgetting_aus import config as config_module
from forgetting_aus.config import Config

GIB = 1024 ** 3

#: What each dataset's root must hold (the release's own folders), by profile knob.
RELEASE_LAYOUT: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "affectnet_root": ("AffectNet", "FORGETTING_AUS_AFFECTNET", ("Manually_Annotated_Images",)),
    "unbc_root": ("UNBC-McMaster", "FORGETTING_AUS_UNBC", ("Images", "Frame_Labels/PSPI", "Frame_Labels/FACS",
                                                           "AAM_landmarks")),
    "ckplus_root": ("CK+", "FORGETTING_AUS_CKPLUS", ("cohn-kanade-images", "FACS", "Emotion", "Landmarks")),
}
#: Where AffectNet keeps its label lists: the release's folder, or beside the images.
AFFECTNET_LIST_FOLDERS: tuple[str, ...] = ("Manually_Annotated_file_lists", ".")

#: Images the paper's protocol reads from each release (published sizes: AffectNet's
#: emotion rows of both label lists, UNBC's frames, CK+'s peak frames).
PAPER_IMAGES: dict[str, int] = {"AffectNet": 287_651 + 4_000, "UNBC-McMaster": 48_398, "CK+": 593}


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing that would stop the run, and how to fix it."""

    what: str
    fix: str

    def __str__(self) -> str:
        return f"- {self.what}\n  fix: {self.fix}"


# --------------------------------------------------------------------------- datasets

def _configured_root(cfg: Config, knob: str) -> tuple[str | None, str]:
    """The root folder named by the environment variable or the profile, and where it came from."""
    _, env_var, _ = RELEASE_LAYOUT[knob]
    from_env = os.environ.get(env_var, "").strip()
    if from_env:
        return from_env, f"environment variable {env_var}"
    value = getattr(cfg, knob)
    return (None, "") if value is None else (str(value), f"profile knob '{knob}'")


#: The twin of each dataset root knob (``pipeline.dataset_root`` kinds).
TWIN_KINDS: dict[str, str] = {"affectnet_root": "affectnet", "unbc_root": "unbc", "ckplus_root": "ckplus"}


def check_dataset(cfg: Config, knob: str) -> list[Problem]:
    """Problems with one dataset root: unset, missing, or not laid out as the release ships."""
    name, env_var, folders = RELEASE_LAYOUT[knob]
    if cfg.data_source == "twins":  # the twin's folder, checked as the release's would be
        from forgetting_aus import pipeline

        chosen, source = str(pipeline.dataset_root(cfg, TWIN_KINDS[knob])[0]), "the synthetic twin"
    else:
        chosen, source = _configured_root(cfg, knob)
    set_it = (f"set '{knob}' in params/{cfg.profile}.yml or the environment variable {env_var} to the folder "
              f"holding {name} as the release ships (README: 'Running on the real datasets')")
    if chosen is None:
        return [Problem(f"{name}: no folder given (profile '{cfg.profile}' reads the real datasets, never "
                        "the synthetic twins)", set_it)]
    root = Path(chosen).expanduser()
    if not root.is_dir():
        return [Problem(f"{name}: {root} (from {source}) is not a folder", set_it)]
    problems = [Problem(f"{name}: {root / folder} is missing", _layout_fix(root, folder, knob))
                for folder in folders if not (root / folder).is_dir()]
    if knob == "affectnet_root":
        problems += _check_affectnet_lists(root, knob)
    return problems


def _layout_fix(root: Path, folder: str, knob: str) -> str:
    """The fix for a missing release folder: name the folder one level down if it is there."""
    nested = sorted(p.parent for p in root.glob(f"*/{folder}") if p.is_dir())
    if nested:
        return f"the folder is one level deeper, in {nested[0]}: set {knob} to {nested[0]}"
    return f"point {knob} at the folder that contains {folder}/ (the release's top folder)"


def _check_affectnet_lists(root: Path, knob: str) -> list[Problem]:
    """AffectNet's two label lists exist and their first row parses (header or not)."""
    problems = []
    for name in ("training.csv", "validation.csv"):
        found = [root / folder / name for folder in AFFECTNET_LIST_FOLDERS if (root / folder / name).is_file()]
        if not found:
            where = " or ".join(str(root / folder / name) for folder in AFFECTNET_LIST_FOLDERS)
            problems.append(Problem(f"AffectNet: label list {name} not found (looked for {where})",
                                    f"copy the release's Manually_Annotated_file_lists/ into {root}, or set "
                                    f"{knob} to the folder that holds it"))
            continue
        try:
            with open(found[0], encoding="utf-8", errors="strict") as handle:
                first = handle.readline()
        except (OSError, UnicodeDecodeError) as error:
            problems.append(Problem(f"AffectNet: {found[0]} cannot be read ({error})",
                                    "check the file's permissions and that it is the release's CSV"))
            continue
        if first.count(",") < 8:
            problems.append(Problem(f"AffectNet: {found[0]}: the first line has {first.count(',') + 1} fields, "
                                    "expected 9 or more (subDirectory_filePath, face box, landmarks, expression, "
                                    "valence, arousal)", "use the release's label list unchanged"))
    return problems


# --------------------------------------------------------------------------- weights

def file_md5(path: Path, *, chunk: int = 1 << 20) -> str:
    """MD5 of a file, read in 1 MiB chunks (the hash Keras publishes for its weights)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def check_weights(cfg: Config) -> list[Problem]:
    """The ImageNet VGG16 weights: present, and byte for byte the file Keras publishes.

    With ``smoke_weights`` the random stand-in is written (inside the run folder only) and
    accepted; no other profile accepts a file whose MD5 is not the published one.
    """
    if not cfg.imagenet_weights:
        return []
    from forgetting_aus import models, pipeline

    if cfg.smoke_weights:
        try:
            pipeline.imagenet_weights_file(cfg)
        except ValueError as error:
            return [Problem(str(error), "set keras_home to a folder under the run folder, e.g. "
                                        f"results/{cfg.profile}/keras")]
        return []
    path = models.imagenet_weights_path(must_exist=False, keras_home=pipeline.keras_home(cfg))
    fetch = ("on a machine with internet run  python -c \"from tensorflow import keras; "
             "keras.applications.VGG16(include_top=False)\"  and copy "
             f"~/.keras/models/{models.IMAGENET_WEIGHTS_FILE} to {path} (this project never downloads)")
    if not path.is_file():
        return [Problem(f"ImageNet VGG16 weights missing: {path}", fetch)]
    found = file_md5(path)
    if found != models.IMAGENET_WEIGHTS_MD5:
        return [Problem(f"ImageNet VGG16 weights at {path} are not the file Keras publishes: MD5 {found}, "
                        f"expected {models.IMAGENET_WEIGHTS_MD5}", "replace it with the published file: " + fetch)]
    return []


# --------------------------------------------------------------------------- machine

def accelerators() -> list[str]:
    """Names of the GPUs TensorFlow sees (empty on a CPU-only machine or build)."""
    import tensorflow as tf

    return [device.name for device in tf.config.list_physical_devices("GPU")]


def check_accelerator(cfg: Config, *, devices: list[str] | None = None) -> list[Problem]:
    """A GPU is visible, or the profile allows the CPU."""
    if cfg.allow_cpu:
        return []
    devices = accelerators() if devices is None else devices
    if devices:
        return []
    return [Problem("no GPU is visible to TensorFlow (this environment may have the CPU-only build)",
                    "on a GPU host install the CUDA build with `make env GPU=1` (pip install "
                    "'tensorflow[and-cuda]==2.14.1' in .venv) and check nvidia-smi; or run on the CPU anyway with "
                    "SET=\"allow_cpu=true\" (weeks, not hours)")]


#: Memory a run asks for, GiB, whatever the dataset's size: the data stream from memory-
#: mapped stores and cached features, so what is held is a model, its optimiser and a batch
#: or a chunk. About twice the largest peak of anonymous memory the scale bench
#: (``scripts/bench_scale.py``, README) measured at full width: 4.7 GiB, training at batch 16.
RUN_MEMORY_GIB = 10.0


def model_bytes(cfg: Config, num_classes: int = 8) -> int:
    """Bytes of one saved float32 VGG16 of this profile: conv blocks (14.7 M weights x width²) and the head."""
    features = (cfg.image_size // 32) ** 2 * 512 * cfg.width
    head = features * cfg.head_units + cfg.head_units ** 2 + cfg.head_units * num_classes
    return int(4 * (14_714_688 * cfg.width ** 2 + head))


def estimated_needs(cfg: Config) -> dict[str, float]:
    """Disk and memory the run needs with this code, in GiB (an estimate, stated plainly).

    Disk: the emotion, pain and CK+ crops as uint8 (``image_size² × 3`` bytes each); chapter
    04's cached ``block5_pool`` features (``(image_size/32)² × 512 × width`` values of
    ``feature_dtype``) of the emotion images in two orientations for each of the six
    FreezeBk, and those of chapter 08's null model, on disk beside them until its head is
    trained; the saved models (emotion, six pain, six re-trained, four of chapter 08's
    controls, one per Weitz fold). Memory: :data:`RUN_MEMORY_GIB`, which does not grow with
    the dataset.
    """
    n_emotion = PAPER_IMAGES["AffectNet"] if cfg.data_source == "real" else cfg.affectnet_n_train + 8 * cfg.affectnet_test_per_class
    n_pain = (PAPER_IMAGES["UNBC-McMaster"] if cfg.data_source == "real"
              else cfg.unbc_subjects * cfg.unbc_sequences_per_subject * cfg.unbc_frames_per_sequence)
    image_bytes = cfg.image_size ** 2 * 3
    value_bytes = 2 if cfg.feature_dtype == "float16" else 4
    feature_bytes = (cfg.image_size // 32) ** 2 * 512 * cfg.width * value_bytes
    images = (n_emotion + n_pain + PAPER_IMAGES["CK+"]) * image_bytes
    features = (6 + 1) * 2 * n_emotion * feature_bytes  # chapter 04's six models, chapter 08's null model
    saved_models = (1 + 6 + 6 + 4 + cfg.weitz_folds) * model_bytes(cfg)
    return {"disk": (images + features + saved_models) / GIB, "memory": RUN_MEMORY_GIB}


def _available_memory() -> float:
    """``MemAvailable`` of /proc/meminfo in GiB (inf where it cannot be read)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / GIB
    except OSError:
        pass
    return float("inf")


def check_resources(cfg: Config, *, free_disk: float | None = None, free_memory: float | None = None) -> list[Problem]:
    """Free disk under the results folder and available memory against :func:`estimated_needs`."""
    needs = estimated_needs(cfg)
    results = cfg.run_dir()
    existing = next(p for p in (results, *results.parents) if p.exists())
    free_disk = shutil.disk_usage(existing).free / GIB if free_disk is None else free_disk
    free_memory = _available_memory() if free_memory is None else free_memory
    problems = []
    if free_disk < needs["disk"]:
        problems.append(Problem(f"free disk under {existing}: {free_disk:.0f} GiB, the run needs about "
                                f"{needs['disk']:.0f} GiB", "free space there, or set results_dir to a larger disk"))
    if free_memory < needs["memory"]:
        problems.append(Problem(f"available memory: {free_memory:.0f} GiB, the run needs about {needs['memory']:.0f} GiB "
                                "(a full-width model, its optimiser and a batch, with room for TensorFlow)",
                                "use a host with more memory, or stop other jobs on this one"))
    return problems


# --------------------------------------------------------------------------- report

def wanted(cfg: Config) -> bool:
    """Whether the runner runs the preflight: asked by the profile, or always on the real datasets."""
    return cfg.preflight or cfg.data_source == "real"


def check(cfg: Config) -> list[Problem]:
    """Every problem that would stop a run of ``cfg`` (none for a profile that asks for no preflight)."""
    if not wanted(cfg):
        return []
    problems = [p for knob in RELEASE_LAYOUT for p in check_dataset(cfg, knob)]
    return problems + check_weights(cfg) + check_accelerator(cfg) + check_resources(cfg)


def report(cfg: Config, problems: list[Problem]) -> str:
    """The preflight's one report."""
    if not wanted(cfg):
        return f"preflight of profile '{cfg.profile}': it reads the synthetic twins, so there is nothing to check"
    if not problems:
        data = "the synthetic twins, laid out as the releases" if cfg.data_source == "twins" else "datasets"
        weights = ("random smoke weights in the Keras layout, not ImageNet's: this run's numbers mean nothing"
                   if cfg.imagenet_weights and cfg.smoke_weights else "weights")
        return f"preflight of profile '{cfg.profile}': ready ({data}, {weights}, accelerator, disk and memory)"
    lines = [f"preflight of profile '{cfg.profile}': {len(problems)} problem(s) to fix before the run can start:"]
    return "\n".join(lines + [str(p) for p in problems])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m forgetting_aus.preflight", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="paper", help="params/<profile>.yml (default: paper)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KNOB=VALUE")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the device check imports TensorFlow
    from forgetting_aus.runner import parse_overrides

    cfg = config_module.load_config(args.profile, overrides=parse_overrides(args.overrides))
    problems = check(cfg)
    print(report(cfg, problems), file=sys.stderr if problems else sys.stdout)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
