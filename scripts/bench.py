"""Time the stages the issues name and write the measurements to a JSON file.

    python scripts/bench.py --out bench/results.json          (what `make bench` runs)
    python scripts/bench.py --only probes --out bench/probes.json   (the probe engines alone, ~3 min)

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


def bench_lrp(cfg):
    from forgetting_aus import explain, models

    with tempfile.TemporaryDirectory() as tmp:
        model = models.build_vgg16(8, input_size=cfg.image_size, width=cfg.width, head_units=cfg.head_units, seed=0)
        path = models.save_model(model, Path(tmp) / "model.keras")
        return {"lrp_maps_per_s": round(explain.lrp_speed(path, 256, method="paper"), 1)}


#: Fits per engine and round in the random-feature cases: the reference is 10-50x slower at 25 088 features.
PROBE_FITS = {"gram": {256: 12, 25088: 12}, "pipeline": {256: 12, 25088: 1}}
#: Repetitions per engine and round on the chapter-06 features (every AU x model x fold scheme x 2 folds each).
CHAPTER06_REPEATS = {"gram": 6, "pipeline": 2}
#: Rounds of the speed comparisons: the engines take turns, so a change in the machine's load
#: between two measurements (the machine is shared) weighs on both engines alike.
ROUNDS = 3


def _interleaved_rates(measure, fits):
    """Fits per second of every engine, the engines measured in turn over :data:`ROUNDS` rounds.

    ``measure(engine)`` runs ``fits[engine]`` fits; each engine's rate is its fits over its
    summed wall time. Also returns the per-round ratios gram / pipeline (their spread says
    how much the machine moved).
    """
    seconds = {engine: 0.0 for engine in fits}
    ratios = []
    for _ in range(ROUNDS):
        round_seconds = {}
        for engine in fits:
            started = time.perf_counter()
            measure(engine)
            round_seconds[engine] = time.perf_counter() - started
            seconds[engine] += round_seconds[engine]
        ratios.append(round((fits["gram"] / round_seconds["gram"]) / (fits["pipeline"] / round_seconds["pipeline"]), 1))
    return {engine: ROUNDS * fits[engine] / seconds[engine] for engine in fits}, ratios


def bench_probes(cfg):
    """Probe fits per second, the gram engine beside the reference pipeline (concepts.ENGINES), in one run.

    (a) the default run's own chapter-06 features, through fold_scores as the chapter calls it
    (a synthetic stand-in of the same shape when results/<profile> holds none); (b) 600 x 256
    random features with a weak planted signal (libsvm's slow case: the solver, not the kernel,
    dominates); (c) 300 training rows x 25 088 features (the paper's block5, 7 x 7 x 512).
    The engines take turns in (a) and (c) (:data:`ROUNDS`).
    """
    from forgetting_aus import concepts

    results = {}
    d = 64 * (cfg.image_size // 32) ** 2
    for engine in concepts.ENGINES:
        suffix = "" if engine == "gram" else "_pipeline"
        for jobs in (1, 2):
            results[f"probe_fits_per_s_{jobs}_workers{suffix}"] = round(
                concepts.probe_speed(600, d, n_fits=PROBE_FITS[engine][256], n_jobs=jobs, engine=engine), 2)
    fits = {engine: PROBE_FITS[engine][25088] for engine in concepts.ENGINES}
    rates, ratios = _interleaved_rates(
        lambda engine: concepts.probe_speed(300, 25088, n_fits=fits[engine], n_jobs=1, engine=engine), fits)
    results["probe_fits_per_s_25088_dims_300_rows"] = round(rates["gram"], 2)
    results["probe_fits_per_s_25088_dims_300_rows_pipeline"] = round(rates["pipeline"], 3)
    # The paper profile's probe stages run with n_jobs=2: the rate its projection uses.
    results["probe_fits_per_s_25088_dims_300_rows_2_workers"] = round(
        concepts.probe_speed(300, 25088, n_fits=2 * PROBE_FITS["gram"][25088], n_jobs=2), 2)
    results["probe_speedup_25088_dims"] = round(rates["gram"] / rates["pipeline"], 1)
    results["probe_speedup_25088_dims_per_round"] = ratios
    results["probe_speedup_600x256_weak_signal"] = round(results["probe_fits_per_s_1_workers"]
                                                         / results["probe_fits_per_s_1_workers_pipeline"], 1)
    return {**results, **bench_chapter06_probes(cfg)}


def synthetic_chapter06_features(*, seed=0, n_images=600, n_subjects=100, n_features=256):
    """A stand-in for chapter 06's probe inputs, of their shape, when no run left its own.

    ``n_images`` CK+-like peak frames of ``n_subjects`` subjects (1 + a multinomial share
    each), 18 AUs whose presence leans on the subject (prevalences 3-50 %), and FreezeB0-5
    block5-like features on both image variants: ReLU of a subject component, an AU
    component that weakens with k (and on the masked variant) and noise. Its fits are
    somewhat harder for libsvm than the default run's (measured: ~1-2 ms of solve per fit
    against ~1.1 ms), which favours neither engine by design; only its shape is chapter 06's.

    Returns
    -------
    (features, labels, groups)
        As :func:`chapter06_features`.
    """
    import numpy as np

    from forgetting_aus import concepts, facs

    rng = np.random.default_rng(seed)
    per_subject = rng.multinomial(n_images - n_subjects, np.full(n_subjects, 1 / n_subjects)) + 1
    groups = np.repeat(np.arange(n_subjects), per_subject)
    n_aus = len(facs.AU_CODES)
    prevalence = rng.uniform(0.03, 0.5, n_aus)
    logits = (np.log(prevalence / (1 - prevalence)) + rng.normal(0, 1.0, (n_subjects, n_aus))[groups]
              + rng.normal(0, 1.0, (n_images, n_aus)))
    present = (rng.random((n_images, n_aus)) < 1 / (1 + np.exp(-logits))).astype(float)
    directions = rng.normal(size=(n_aus, n_features))
    identity = rng.normal(size=(n_subjects, n_features))
    features = {}
    for k in range(6):
        for variant in concepts.VARIANTS:
            strength = 1.2 - 0.15 * k - (0.3 if variant == "mouth_masked" else 0.0)
            raw = identity[groups] * 0.8 + present @ directions * strength * 0.5 + rng.normal(size=(n_images, n_features))
            features[(k, variant)] = np.maximum(raw, 0).astype(np.float32)
    return features, concepts.au_labels(present), groups


def chapter06_features(run_dir):
    """The chapter-06 probe inputs a run left in its store, read without making anything.

    Returns
    -------
    (features, labels, groups) or None
        ``features``: (k, variant) -> block5 features of FreezeB<k> on the CK+ peak frames
        (the newest artifact of each); ``labels``: :func:`concepts.au_labels`; ``groups``:
        subject ids. None when the run has no CK+ data, pain models or probe features.
    """
    import numpy as np

    from forgetting_aus import cache, concepts, pipeline

    def newest(stage):
        return sorted(Path(run_dir).glob(f"{stage}/*/manifest.json"), key=lambda m: m.stat().st_mtime)

    blocks = {json.loads(m.read_text())["key"]: json.loads(m.read_text())["params"].get("frozen_blocks")
              for m in newest("pain_model")}
    features = {}
    for manifest in newest("probe_features"):
        params = json.loads(manifest.read_text())["params"]
        if blocks.get(params.get("model")) is not None:
            x = cache.read_npz(manifest.parent / "features.npz")["features"]
            features[(blocks[params["model"]], params["variant"])] = x
    data = newest("ckplus_data")
    if not features or not data:
        return None
    peaks = pipeline.load_split(data[-1].parent, "peaks")
    features = {kv: x for kv, x in features.items() if len(x) == len(peaks.images)}
    return (features, concepts.au_labels(peaks.present), np.asarray(peaks.groups)) if features else None


def bench_chapter06_probes(cfg):
    """(a) of :func:`bench_probes`: fold_scores on the run's chapter-06 features, both engines in turn, one worker.

    Fold drawing is included, as in the chapter. Without a run's features, on
    :func:`synthetic_chapter06_features` (``probe_chapter06_source`` says which).
    """
    from forgetting_aus import concepts

    found = chapter06_features(cfg.run_dir())
    source = f"the run's own ({cfg.run_dir()})"
    if found is None:
        found = synthetic_chapter06_features(seed=cfg.seed)
        source = f"synthetic stand-in of the same shape (no chapter-06 probe features in {cfg.run_dir()})"
    features, labels, groups = found
    ks = sorted({k for k, _ in features})
    variants = {au: concepts.variant_for(au) for au in labels}
    aus = {au: labels[au] for au in labels if all((k, variants[au]) in features for k in ks)}
    scores = {}

    def measure(engine):
        scores[engine] = concepts.fold_scores(features, aus, models=ks, groups=groups, folds=concepts.FOLD_SCHEMES,
                                              n_repeats=CHAPTER06_REPEATS[engine], C=cfg.probe_C, seed=cfg.seed,
                                              n_jobs=1, engine=engine)

    n_fits = {engine: len(aus) * len(concepts.FOLD_SCHEMES) * len(ks) * concepts.N_SPLITS * CHAPTER06_REPEATS[engine]
              for engine in concepts.ENGINES}
    rates, ratios = _interleaved_rates(measure, n_fits)
    common = scores["gram"][scores["gram"]["repeat"] < CHAPTER06_REPEATS["pipeline"]].reset_index(drop=True)
    same = (common["f1"] == scores["pipeline"]["f1"]).mean()
    return {"probe_chapter06_source": source,
            "probe_chapter06_dims": int(next(iter(features.values())).shape[1]),
            "probe_chapter06_fits": {engine: ROUNDS * n for engine, n in n_fits.items()},
            "probe_chapter06_fits_per_s": round(rates["gram"], 1),
            "probe_chapter06_fits_per_s_pipeline": round(rates["pipeline"], 1),
            "probe_chapter06_speedup": round(rates["gram"] / rates["pipeline"], 2),
            "probe_chapter06_speedup_per_round": ratios,
            "probe_chapter06_identical_fold_f1_share": round(float(same), 4)}


def bench_feature_dtype(cfg):
    """Chapter 04's re-trained heads on float16 against float32 features: the run's own features, test recalls.

    For each FreezeB<k> of the run's ``emotion_features`` artifact (float32), one head is
    re-trained as chapter 04 trains repetition 0, on the features as stored and rounded to
    float16 (the paper profile's ``feature_dtype``); reported: the largest per-class test
    recall difference and both macro recalls. Skipped when the run has no such artifact.
    """
    import numpy as np

    from forgetting_aus import evaluation, facs, pipeline, training

    folders = sorted(Path(cfg.run_dir()).glob("emotion_features/*/FreezeB0_train.npy"), key=lambda p: p.stat().st_mtime)
    if not folders:
        return {"feature_dtype": f"skipped: no chapter-04 features in {cfg.run_dir()} (run make book first)"}
    folder = folders[-1].parent
    labels = pipeline.emotion_labels(cfg)
    loss, _ = pipeline.emotion_loss(cfg, labels["train"])
    largest, macro = 0.0, {"float32": [], "float16": []}
    for k in pipeline.FREEZE_LEVELS:
        recalls = {}
        for dtype in macro:
            split = {name: np.load(folder / f"FreezeB{k}_{name}.npy").astype(dtype) for name in pipeline.FEATURE_SPLITS}
            head = training.fit_head(split["train"], split["train_flipped"], labels["train"], split["val"], labels["val"],
                                     num_classes=len(facs.EMOTIONS), loss=loss, epochs=cfg.retrain_epochs,
                                     batch_size=cfg.retrain_batch_size, learning_rate=cfg.learning_rate,
                                     momentum=cfg.momentum, head_units=cfg.head_units, dropout=cfg.dropout,
                                     seed=cfg.seed + 1000 + k, select_by="macro_recall", progress=False)
            predicted = training.predict_batches(head, split["test"], batch_size=512).argmax(axis=1)
            recalls[dtype] = evaluation.per_class_recall(labels["test"], predicted, class_names=facs.EMOTIONS)
            macro[dtype].append(float(recalls[dtype].mean()))
        largest = max(largest, max(abs(recalls["float16"][e] - recalls["float32"][e]) for e in facs.EMOTIONS))
    return {"feature_dtype_largest_class_recall_difference": round(largest, 4),
            "feature_dtype_macro_recall_float32": [round(v, 4) for v in macro["float32"]],
            "feature_dtype_macro_recall_float16": [round(v, 4) for v in macro["float16"]]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.json")
    parser.add_argument("--profile", default="default")
    parser.add_argument("--only", nargs="*", help="stages to run (default: all)")
    args = parser.parse_args()

    from forgetting_aus import config

    cfg = config.load_config(args.profile)
    stages = {"rendering": bench_rendering, "loading": bench_loading, "training": bench_training,
              "lrp": bench_lrp, "probes": bench_probes, "feature_dtype": bench_feature_dtype}
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
