"""Scale bench: does memory grow with the dataset on the paper's data path? (issue 15)

Runs the paper-shaped path (224 px, full-width VGG16, the paper-smoke profile's twins read
as releases) on AffectNet twins of growing size and measures, per stage and size, the peak
anonymous memory of the stage's process (``RssAnon`` of /proc, polled every 20 ms; the
file-backed pages of the memory-mapped stores, ``RssFile``, are reported beside it) and the
bytes it wrote to disk. Each stage runs in a fresh process:

- ``twin``: the synthetic AffectNet twin written as the release ships (not on the paper's
  path, which reads the release: measured so that ``data`` measures decoding alone);
- ``data``: every image decoded, cropped and resized into the memory-mapped store (chapter 01);
- ``training``: the full-width emotion model's streaming training path on the store, for
  :data:`STEPS` batches (chapter 02; the whole epoch differs only in time);
- ``features``: block-5 features of FreezeB5 and of a network sharing no block with it into
  memory-mapped ``.npy`` files sized for every image, both orientations, the first
  :data:`STEPS` batches computed (chapter 04);
- ``heads``: a 4096-unit head trained to completion on those features (float16, the paper
  profile's dtype), under a cap of :data:`HEAD_CAP_GIB` GiB of memory (a cgroup; chapter 04).

Writes ``bench/scale.json`` and prints a table; the growth per 1 000 images is the slope of a
least-squares line through the three sizes, and the projection to AffectNet's size
(:data:`AFFECTNET_IMAGES`) extends that line. Usage: ``python scripts/bench_scale.py``
(about 20 minutes on the 2-core machine), or ``--sizes 500 1000`` for a quick look.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Images of the AffectNet twin at each size (training and validation; the test split is tiny).
SIZES = (1000, 2000, 4000)
#: Batches of the full-width network per stage where a stage runs one (16 images each).
STEPS = 20
#: Validation images of every size (a whole number of batches, within the STEPS cut).
VALIDATION_IMAGES = 160
#: Memory cap of the head-training stage, GiB (the issue's 4 GiB).
HEAD_CAP_GIB = 4
#: Images whose features the paper's chapter 04 caches: AffectNet's training split in two
#: orientations, its validation rows and its test set (273 269 x 2 + 14 382 + 4 000).
AFFECTNET_IMAGES = 273_269 + 14_382 + 4_000
STAGES = ("twin", "data", "training", "features", "heads")
MIB = 1024 ** 2


def _config(workdir: Path, images: int):
    from forgetting_aus import config

    return config.load_config("paper-smoke", overrides={
        "results_dir": str(workdir), "affectnet_n_train": images, "affectnet_balanced_twin": False,
        "affectnet_val_fraction": VALIDATION_IMAGES / images, "retrain_epochs": 2})


def _networks(cfg):
    """FreezeB5 (the emotion model's conv blocks) and a network sharing none of its blocks, full width."""
    from forgetting_aus import models

    build = dict(input_size=cfg.image_size, width=cfg.width, head_units=cfg.head_units, dropout=cfg.dropout)
    return {5: models.build_vgg16(8, seed=0, **build), 0: models.build_vgg16(8, seed=1, **build)}


def run_stage(stage: str, workdir: Path, images: int) -> dict:
    """One stage in this process (the child the parent measures)."""
    import numpy as np

    from forgetting_aus import config, losses, pipeline, shared_blocks, training

    cfg = _config(workdir, images)
    config.seed_everything(cfg.seed)
    features_dir = workdir / "features"
    if stage == "twin":
        return {"root": str(pipeline.dataset_root(cfg, "affectnet")[0])}
    if stage == "data":
        data = pipeline.emotion_data(cfg)
        return {"train_images": len(data["train"]), "val_images": len(data["val"])}
    data = pipeline.emotion_data(cfg)
    original = training._raw_batches
    # Only the first STEPS batches are computed: the streaming path, its index arrays and
    # its output files are those of the whole dataset, the arithmetic is bounded.
    training._raw_batches = lambda *args, **kwargs: original(*args, **kwargs).take(STEPS)
    training.IN_MEMORY_LIMIT_BYTES = 0  # the paper's arrays exceed it; here they are forced onto that path
    if stage == "training":
        model = _networks(cfg)[5]
        history = training.fit_classifier(model, (data["train"].images, data["train"].labels),
                                          (data["val"].images, data["val"].labels),
                                          loss=losses.focal_loss(gamma=cfg.emotion_gamma), epochs=1,
                                          batch_size=cfg.emotion_batch_size, learning_rate=cfg.learning_rate,
                                          momentum=cfg.momentum, augment="flip", seed=cfg.seed, progress=False)
        return {"loss": history["loss"][0]}
    if stage == "features":
        networks = _networks(cfg)
        features_dir.mkdir(exist_ok=True)
        for split in ("train", "train_flipped", "val"):
            images_of_split = data["train" if split == "train_flipped" else split].images
            shared_blocks.shared_block_features(
                networks, images_of_split, reference=5, flip=split == "train_flipped", batch_size=16,
                out={k: features_dir / f"FreezeB{k}_{split}.npy" for k in networks}, dtype=cfg.feature_dtype)
        return {"dtype": cfg.feature_dtype}
    features = {split: np.load(features_dir / f"FreezeB0_{split}.npy", mmap_mode="r")
                for split in ("train", "train_flipped", "val")}
    training._raw_batches = original
    head = training.fit_head(features["train"], features["train_flipped"], data["train"].labels, features["val"],
                             data["val"].labels, num_classes=8, loss=losses.focal_loss(gamma=cfg.emotion_gamma),
                             epochs=cfg.retrain_epochs, batch_size=cfg.retrain_batch_size,
                             learning_rate=cfg.learning_rate, momentum=cfg.momentum, head_units=cfg.head_units,
                             dropout=cfg.dropout, seed=cfg.seed, progress=False)
    return {"epochs": len(head.fit_history["loss"]), "dtype": str(features["train"].dtype)}


def _memory_of(pid: int) -> tuple[int, int]:
    """(RssAnon, RssFile) of a process in bytes, (0, 0) once it has gone."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("RssAnon:", "RssFile:")):
                name, amount, _ = line.split()
                values[name] = int(amount) * 1024
    except (OSError, ValueError):
        return 0, 0
    return values.get("RssAnon:", 0), values.get("RssFile:", 0)


def _disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class _MemoryCap:
    """A cgroup (v1 or v2) limiting a process' memory; ``applied`` says whether one could be made here."""

    def __init__(self, gib: float):
        self.limit = int(gib * 1024 ** 3)
        self.folder = None
        for root, limit_file in ((Path("/sys/fs/cgroup/memory"), "memory.limit_in_bytes"),
                                 (Path("/sys/fs/cgroup"), "memory.max")):
            folder = root / f"forgetting_aus_bench_{os.getpid()}"
            try:
                folder.mkdir()
                (folder / limit_file).write_text(str(self.limit))
                self.folder = folder
                break
            except OSError:
                if folder.exists():
                    folder.rmdir()

    @property
    def applied(self) -> bool:
        return self.folder is not None

    def add(self, pid: int) -> None:
        if self.folder is not None:
            (self.folder / "cgroup.procs").write_text(str(pid))

    def close(self) -> None:
        if self.folder is not None:
            self.folder.rmdir()


def measure(stage: str, workdir: Path, images: int, *, cap_gib: float | None = None) -> dict:
    """Run one stage in a child process; its peak memory, disk written, seconds and result."""
    before = _disk_bytes(workdir)
    cap = _MemoryCap(cap_gib) if cap_gib else None
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, __file__, "--stage", stage, "--workdir", str(workdir),
                              "--images", str(images)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if cap is not None:
        cap.add(child.pid)
    peak = {"anon": 0, "file": 0}

    def poll() -> None:
        while child.poll() is None:
            anon, file = _memory_of(child.pid)
            peak["anon"], peak["file"] = max(peak["anon"], anon), max(peak["file"], file)
            time.sleep(0.02)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    output, _ = child.communicate()
    watcher.join()
    if cap is not None:
        cap.close()
    if child.returncode != 0:
        killed = " (killed: over the memory cap?)" if child.returncode == -9 else ""
        raise RuntimeError(f"stage {stage} at {images} images failed with exit code {child.returncode}{killed}")
    return {"stage": stage, "images": images, "peak_anon_mib": round(peak["anon"] / MIB, 1),
            "peak_file_mib": round(peak["file"] / MIB, 1),
            "disk_written_mib": round((_disk_bytes(workdir) - before) / MIB, 1),
            "seconds": round(time.perf_counter() - started, 1),
            "capped_gib": cap_gib if cap is not None and cap.applied else None,
            "result": json.loads(output.strip().splitlines()[-1])}


def slope_and_intercept(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares line ``y = slope x + intercept``."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum((x - mean_x) ** 2 for x in xs)
    return slope, mean_y - slope * mean_x


def summarise(rows: list[dict]) -> dict:
    """Per stage: growth per 1 000 images of peak anonymous memory and of disk, and both projected to AffectNet.

    Memory is projected from the largest peak measured plus the fitted growth (when
    positive) over the images still to come; disk along the fitted line.
    """
    summary = {}
    for stage in STAGES:
        mine = [row for row in rows if row["stage"] == stage]
        if len({row["images"] for row in mine}) < 2:
            continue
        xs = [row["images"] for row in mine]
        memory = slope_and_intercept(xs, [row["peak_anon_mib"] for row in mine])
        disk = slope_and_intercept(xs, [row["disk_written_mib"] for row in mine])
        # From the largest peak measured, growing by the fitted slope where it is positive:
        # peaks of a few hundred MiB vary from run to run (the allocator), so a line through
        # three noisy points can fall as well as rise.
        largest = max(mine, key=lambda row: row["images"])
        peak = max(row["peak_anon_mib"] for row in mine)
        projected = peak + max(memory[0], 0.0) * (AFFECTNET_IMAGES - largest["images"])
        summary[stage] = {"anon_mib_per_1000_images": round(1000 * memory[0], 1),
                          "projected_peak_anon_gib": round(projected / 1024, 1),
                          "disk_mib_per_1000_images": round(1000 * disk[0], 1),
                          "projected_disk_gib": round((disk[1] + disk[0] * AFFECTNET_IMAGES) / 1024, 1)}
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "scale.json")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES),
                        help="remeasure only these stages (their earlier stages run unmeasured first); "
                             "the other stages' rows are kept from --out")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--images", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(run_stage(args.stage, args.workdir, args.images)))
        return 0
    kept = []
    if set(args.stages) != set(STAGES) and args.out.exists():
        kept = [row for row in json.loads(args.out.read_text())["rows"] if row["stage"] not in args.stages]
    rows = []
    last = max(STAGES.index(stage) for stage in args.stages)
    for images in args.sizes:
        with tempfile.TemporaryDirectory(prefix=f"scale_{images}_") as tmp:
            for stage in STAGES[:last + 1]:
                row = measure(stage, Path(tmp), images, cap_gib=HEAD_CAP_GIB if stage == "heads" else None)
                if stage not in args.stages:
                    continue
                rows.append(row)
                print(f"{stage:>9} {images:>6} images: peak RssAnon {row['peak_anon_mib']:>8.1f} MiB, RssFile "
                      f"{row['peak_file_mib']:>8.1f} MiB, wrote {row['disk_written_mib']:>8.1f} MiB, "
                      f"{row['seconds']:>6.1f} s", flush=True)
    rows = sorted(kept + rows, key=lambda row: (row["images"], STAGES.index(row["stage"])))
    result = {"sizes": args.sizes, "steps": STEPS, "rows": rows, "summary": summarise(rows) if len(args.sizes) > 1
              else None, "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result["summary"], indent=2))
    print(f"bench_scale: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
