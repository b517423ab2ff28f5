"""Time the stages the issues name and write the measurements to a JSON file.

    python scripts/bench.py --out bench/results.json          (what `make bench` runs)

Each stage is measured by the function of the library that owns it, on the default
profile's sizes, on this machine; nothing here asserts a speed (tests never do). The
chapter timings of the last `make book` runs (results/<profile>/timings.json, written by
the runner) are copied in, so one file holds every measured time the README quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]


def _measure(name, function, results):
    """Run one stage; a failing stage is reported in the file, and the others still run."""
    print(f"bench: {name} ...", flush=True)
    started = time.time()
    try:
        value = function()
    except Exception as error:
        value = {"error": f"{type(error).__name__}: {error}"}
    results[name] = {**value, "wall_s": round(time.time() - started, 2)}
    print(f"bench: {name} -> {results[name]}", flush=True)


def bench_rendering(cfg):
    from forgetting_aus import synth

    return {f"faces_per_s_{size}px": round(synth.render_speed(2000, size, seed=0), 1) for size in (cfg.image_size, cfg.twin_image_size)}


def bench_loading(cfg):
    from forgetting_aus import datasets, synth

    with tempfile.TemporaryDirectory() as tmp:
        root = synth.ensure_twin("affectnet", Path(tmp) / "affectnet", n_train=1000, n_test_per_class=10,
                                 image_size=cfg.twin_image_size, seed=0)
        index = datasets.read_affectnet(root)
        return {"images_per_s": round(datasets.loading_speed(index, size=cfg.image_size, n=1000), 1)}


def bench_training(cfg):
    out = Path(tempfile.mkdtemp()) / "training.json"
    subprocess.run([sys.executable, str(REPO / "scripts" / "bench_training.py"), str(out)], check=True)
    return json.loads(out.read_text())


def bench_lrp_and_probes(cfg):
    from forgetting_aus import concepts, explain, models

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = models.build_vgg16(8, input_size=cfg.image_size, width=cfg.width, head_units=cfg.head_units, seed=0)
        path = models.save_model(model, Path(tmp) / "model.keras")
        results["lrp_maps_per_s"] = round(explain.lrp_speed(path, 256, method="paper"), 1)
    d = 64 * (cfg.image_size // 32) ** 2
    for jobs in (1, 2):
        results[f"probe_fits_per_s_{jobs}_workers"] = round(concepts.probe_speed(600, d, n_fits=100, n_jobs=jobs), 1)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.json")
    parser.add_argument("--profile", default="default")
    parser.add_argument("--only", nargs="*", help="stages to run (default: all)")
    args = parser.parse_args()

    from forgetting_aus import config

    cfg = config.load_config(args.profile)
    stages = {"rendering": bench_rendering, "loading": bench_loading, "training": bench_training,
              "lrp_and_probes": bench_lrp_and_probes}
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
               "profile": args.profile, "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
    for name, function in stages.items():
        if not args.only or name in args.only:
            _measure(name, lambda f=function: f(cfg), results)
    timings = cfg.run_dir() / "timings.json"
    if timings.exists():
        results["chapters_seconds"] = json.loads(timings.read_text())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"bench: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
