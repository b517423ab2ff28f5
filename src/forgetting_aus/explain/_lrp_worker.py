"""Graph-mode LRP worker: ``python -m forgetting_aus.explain._lrp_worker REQUEST_DIR``.

Reads ``REQUEST_DIR/request.json`` (job specs) and ``REQUEST_DIR/inputs.npz`` (images and
targets), writes ``outputs.npz`` (``maps_<i>``) and ``outputs.json`` (analysis seconds per
job). Eager execution is disabled before anything is built, as iNNvestigate requires.
Jobs are grouped by model file so each model is loaded once and each method's analyzer
built once. Started by :mod:`forgetting_aus.explain.lrp`; not meant to be called by hand.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


def main(request_dir: str) -> None:
    import tensorflow as tf

    # Must come before any model is built in this process.
    tf.compat.v1.disable_eager_execution()

    from keras.src.engine import base_layer_utils

    from forgetting_aus import models
    from forgetting_aus.explain import lrp

    # iNNvestigate applies raw TensorFlow ops to Keras tensors; in a graph-mode process
    # Keras then evaluates each op's non-Keras inputs (kernels, their positive parts,
    # epsilons) in a session of its own to freeze them as constants: ~300 session runs
    # for four rules on a full-width model, ~27 s of their ~50 s (profiled).
    # Keras' own switch keeps them symbolic instead; they are then computed when the
    # maps are, from the same loaded weights. Its stated costs do not apply here: the
    # worker never serialises a model, and the rules draw no random numbers.
    base_layer_utils._UNSAFE_GRAPH_OP_LAYER_CREATION = True

    root = Path(request_dir)
    jobs = json.loads((root / "request.json").read_text())["jobs"]
    inputs_file = root / "inputs.npz"
    inputs = {}
    if inputs_file.exists():
        with np.load(inputs_file, allow_pickle=False) as data:
            inputs = {key: data[key] for key in data.files}

    outputs: dict[str, np.ndarray] = {}
    seconds = [0.0] * len(jobs)
    by_model: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        by_model.setdefault(job["model_path"], []).append(i)

    # iNNvestigate copies every layer per rule and then points the copy at the original's
    # weights, so the copy's own freshly drawn weights are never read. Skipping those
    # draws (~100 M values per copy of a full-width head; its source notes "todo: set
    # initializers to something fast") leaves every map unchanged and saves seconds each.
    done = 0
    with models._initial_values_skipped():
        for model_path, indices in by_model.items():
            model = lrp.load_model_graph_mode(model_path)
            logit_model = lrp._logit_model(model)
            n_classes = int(logit_model.output_shape[-1])
            analyzers = {}
            for i in indices:
                job = jobs[i]
                key = json.dumps(job["method"], sort_keys=True)
                if key not in analyzers:
                    analyzers[key] = lrp._build_analyzer(logit_model, job["method"])
                analyzer = analyzers[key]
                if "random_images" in job:
                    rng = np.random.default_rng(job["seed"])
                    shape = (job["random_images"], *logit_model.input_shape[1:])
                    images = rng.standard_normal(shape, dtype=np.float32)
                    targets = np.zeros(len(images), dtype=np.int64)
                else:
                    images = inputs[job["images"]].astype(np.float32, copy=False)
                    targets = lrp._validate_targets(inputs[job["targets"]], len(images), n_classes)
                if job.get("warmup"):
                    # The first call builds and compiles the backward graph; keep it untimed.
                    lrp._analyze(analyzer, images[:1], targets[:1], 1)
                start = time.perf_counter()
                outputs[f"maps_{i}"] = lrp._analyze(analyzer, images, targets, job["batch_size"])
                seconds[i] = time.perf_counter() - start
                done += len(images)
                # One line per job on stderr: the parent passes lines with this prefix on live.
                print(f"{lrp.PROGRESS_PREFIX}job {i + 1}/{len(jobs)} ({Path(model_path).parent.name}, "
                      f"{len(images)} maps in {seconds[i]:.1f} s); {done} maps so far", file=sys.stderr, flush=True)
            # Free this model's graph before loading the next one.
            tf.keras.backend.clear_session()

    np.savez(root / "outputs.npz", **outputs)
    (root / "outputs.json").write_text(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m forgetting_aus.explain._lrp_worker REQUEST_DIR")
    from forgetting_aus import cache

    # Under the code audit (tests/test_book.py), the LRP code this worker runs is recorded
    # for the artifact its parent process is making.
    with cache.audit_subprocess():
        main(sys.argv[1])
