"""Layer-wise Relevance Propagation through iNNvestigate 2.1.2, in a process of its own.

Why a separate process
----------------------
iNNvestigate builds its backward graph with TF1-style symbolic gradients and therefore
needs ``tf.compat.v1.disable_eager_execution()`` *before any model is built in the
process*. The book trains eagerly, and a notebook kernel that has built or trained a model
can no longer switch. :func:`lrp_maps` and :func:`lrp_maps_many` therefore load the saved
``.keras`` model themselves inside a fresh Python subprocess
(``python -m forgetting_aus.explain._lrp_worker``) that disables eager execution first;
arrays travel through temporary ``.npz`` files, models travel as paths (never pickled).
The caller's process is left untouched. TensorFlow start-up costs seconds, so
:func:`lrp_maps_many` runs several (model, method) jobs in one worker.

Rules as data
-------------
:data:`PAPER_RULES` is the paper's rule map (Prajod et al. 2022, §4.2, after Montavon et al.
2019): the z-rule for fully connected layers and the z+-rule for convolutions. A rule map
is a ``{keras layer class name: iNNvestigate rule name}`` dictionary, turned into
iNNvestigate's ``[(condition, rule), ...]`` list by :func:`rule_conditions`.
:data:`LRP_METHODS` names the analyzers of the book: ``"paper"`` and Weitz et al. (2018)'s
four variants.

What iNNvestigate 2.1.2 does (read from its source)
---------------------------------------------------
- ``"Z"`` (``ZRule``) keeps the layer's bias in the denominator,
  ``R_i = sum_j x_i w_ij / (sum_i' x_i' w_i'j + b_j) R_j``; a zero denominator is replaced
  by ``keras.backend.epsilon()`` (1e-7). With biases relevance is not conserved exactly
  (the bias absorbs its share); without biases it is.
- ``"ZPlus"`` (``ZPlusRule`` = ``Alpha1Beta0IgnoreBiasRule``) ignores the bias and keeps
  the *positive contributions* ``(x_i w_ij)^+``: it splits inputs and weights by sign and
  uses ``x+ w+ + x- w-``. After a ReLU (``x >= 0``) this is the textbook z+ rule
  ``x_i w_ij^+``; on the first layer, whose preprocessed inputs can be negative, a
  negative pixel with a negative weight also counts as a positive contribution.
- ``"Epsilon"`` adds ``epsilon * sign(z)`` (``sign(0) = +1``) to the denominator, bias kept.
- ``LRPSequentialPresetAFlat``: Epsilon (``epsilon`` argument, default 0.1, bias kept) on
  Dense layers, ``Alpha1Beta0Rule`` (alpha 1, beta 0, bias *kept*) on conv layers, and the
  Flat rule on the first kernel layer (``input_layer_rule="Flat"``: relevance is spread
  uniformly over each receptive field, independent of the pixels).
  ``LRPSequentialPresetBFlat``: the same with ``Alpha2Beta1Rule`` (alpha 2, beta 1) on
  conv layers. Weitz et al. state "alpha 1, beta 0, epsilon 1e-1, flat" and "alpha 2,
  beta 1, epsilon 1e-1, flat", which matches: the alpha/beta values are fixed by the
  presets and apply to conv layers only, epsilon applies to the Dense layers only.
- Quirk of Keras 2.14 that matters most here: a ``.keras`` file loaded with eager
  execution disabled silently keeps *random* weights (the loader's ``assign`` ops are
  never run). :func:`load_model_graph_mode` works around it; always use it in graph mode.
- Quirks: ``innvestigate.__version__`` reports "2.0.1" although the distribution is 2.1.2;
  a kernel layer that no condition of a rule list matches ends in an ``UnboundLocalError``
  inside ``LRP.create_rule_mapping`` (we check coverage beforehand and raise a clear
  error); ``LRP`` inserts input-layer rules into the caller's list in place (we always
  pass a fresh list); the analyzer refuses models ending in softmax, so the softmax is
  stripped and the pre-softmax logit of the target class is explained
  (``neuron_selection_mode="index"``).
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "PAPER_RULES",
    "LRP_METHODS",
    "LRPJob",
    "rule_conditions",
    "resolve_method",
    "lrp_maps",
    "lrp_maps_many",
    "explain_rows",
    "lrp_maps_in_graph_mode",
    "load_model_graph_mode",
    "lrp_speed",
    "normalize_for_display",
    "normalize_by_total",
    "difference_map",
]

#: The paper's rule map: z-rule for fully connected layers, z+ for convolutions
#: (Prajod et al. 2022, §4.2). Keys are ``keras.layers`` class names (matched with
#: ``isinstance``, in order), values are iNNvestigate rule names (``LRP_RULES`` keys).
PAPER_RULES: dict[str, str] = {"Dense": "Z", "Conv2D": "ZPlus"}

#: Named LRP analyzers. ``"rules"`` entries go through ``innvestigate.analyzer.LRP`` with
#: :func:`rule_conditions`; ``"analyzer"`` entries name an iNNvestigate class and its
#: keyword arguments. Weitz et al. (2018) used LRP-Z, LRP-Epsilon (eps 1e-7),
#: LRP-PresetAFlat (alpha 1, beta 0, eps 0.1, flat) and LRP-PresetBFlat (alpha 2, beta 1,
#: eps 0.1, flat); see the module docstring for how iNNvestigate's presets realise them.
LRP_METHODS: dict[str, dict[str, Any]] = {
    "paper": {"rules": PAPER_RULES},
    "LRP-Z": {"analyzer": "LRPZ", "kwargs": {}},
    "LRP-Epsilon": {"analyzer": "LRPEpsilon", "kwargs": {"epsilon": 1e-7}},
    "LRP-PresetAFlat": {"analyzer": "LRPSequentialPresetAFlat", "kwargs": {"epsilon": 0.1}},
    "LRP-PresetBFlat": {"analyzer": "LRPSequentialPresetBFlat", "kwargs": {"epsilon": 0.1}},
}


def resolve_method(method: str | Mapping[str, str]) -> dict[str, Any]:
    """Turn a method name or a rule map into a JSON-serialisable analyzer spec.

    Parameters
    ----------
    method : str or mapping
        A key of :data:`LRP_METHODS`, or a rule map ``{layer class name: rule name}``
        such as :data:`PAPER_RULES`.

    Returns
    -------
    dict
        ``{"rules": {...}}`` or ``{"analyzer": name, "kwargs": {...}}``.
    """
    if isinstance(method, str):
        if method not in LRP_METHODS:
            raise ValueError(
                f"unknown LRP method {method!r}; expected one of {sorted(LRP_METHODS)} "
                "or a rule map such as PAPER_RULES ({'Dense': 'Z', 'Conv2D': 'ZPlus'})"
            )
        spec = LRP_METHODS[method]
        return json.loads(json.dumps(spec))  # a deep copy, so callers cannot mutate ours
    if isinstance(method, Mapping):
        rules = {str(k): str(v) for k, v in method.items()}
        if not rules:
            raise ValueError("an LRP rule map needs at least one entry, got an empty mapping")
        return {"rules": rules}
    raise TypeError(f"method must be a name or a rule map, got {type(method).__name__}")


def rule_conditions(rules: Mapping[str, str]) -> list[tuple[Any, str]]:
    """iNNvestigate ``[(condition, rule_name), ...]`` list from a rule map.

    Parameters
    ----------
    rules : mapping of str to str
        ``keras.layers`` class name -> iNNvestigate rule name (``"Z"``, ``"ZPlus"``,
        ``"Epsilon"``, ``"Flat"``, ``"Alpha1Beta0"``, ...). Conditions are ``isinstance``
        checks tried in the mapping's order, so put subclasses first.

    Returns
    -------
    list of (callable, str)
        A fresh list (iNNvestigate's ``LRP`` mutates the list it is given).
    """
    import tensorflow as tf
    from innvestigate.analyzer.relevance_based.relevance_analyzer import LRP_RULES

    conditions = []
    for class_name, rule_name in rules.items():
        layer_class = getattr(tf.keras.layers, class_name, None)
        if layer_class is None:
            raise ValueError(f"{class_name!r} is not a tf.keras.layers class; use e.g. 'Dense', 'Conv2D'")
        if rule_name not in LRP_RULES:
            raise ValueError(
                f"unknown iNNvestigate rule {rule_name!r} for {class_name}; "
                f"expected one of {sorted(LRP_RULES)}"
            )
        conditions.append((lambda layer, cls=layer_class: isinstance(layer, cls), rule_name))
    return conditions


# --------------------------------------------------------------------------------------
# In-process analysis (graph mode only): used by the worker, and by callers that run in a
# process where eager execution was disabled first.
# --------------------------------------------------------------------------------------


def load_model_graph_mode(model_path: str | os.PathLike):
    """Load a ``.keras`` model in a graph-mode process, with its trained weights.

    Keras 2.14 quirk: with eager execution disabled, ``keras.models.load_model`` on a
    ``.keras`` archive builds the model but its weight loader only *creates*
    ``variable.assign`` ops that nothing runs, so the model silently keeps its random
    initial weights. Those never-run ops also hold the weights as graph constants, which
    makes every later graph extension slow (iNNvestigate's analyzer build took 42 s
    instead of 15 s on a small VGG16). Here Keras' weight loader (on the parts
    :func:`forgetting_aus.models.saved_parts` gives) runs with the per-layer
    ``load_own_variables`` hook replaced by one that only *collects* the stored arrays;
    they are then assigned through the Keras session (``backend.batch_set_value``), read
    back and checked.

    Parameters
    ----------
    model_path : str or Path
        Saved ``.keras`` file.

    Returns
    -------
    keras.Model
    """
    import tensorflow as tf
    from keras.src.engine.base_layer import Layer

    from forgetting_aus import models

    path = str(model_path)
    if not path.endswith(".keras"):
        raise ValueError(f"expected a .keras model file, got {path!r}; save with model.save('x.keras')")
    if tf.executing_eagerly():
        return models.load_model(path)  # eager loading works

    pending: list[tuple[Any, np.ndarray]] = []
    original = Layer.load_own_variables

    def collect(layer, store):
        layer._update_trackables()
        variables = layer._trainable_weights + layer._non_trainable_weights
        if len(store.keys()) != len(variables):
            raise ValueError(
                f"layer {layer.name!r} expects {len(variables)} weights, the file holds "
                f"{len(store.keys())}; was {path!r} saved from this architecture?"
            )
        pending.extend((v, np.asarray(store[str(i)])) for i, v in enumerate(variables))

    with models.saved_parts(path) as (model, weights):
        Layer.load_own_variables = collect  # only in this (worker) process, restored below
        try:
            model.load_weights(weights)
        finally:
            Layer.load_own_variables = original
    overridden = [
        layer.name for layer in model._flatten_layers(include_self=False)
        if type(layer).load_own_variables is not original and layer.weights
    ]
    if overridden:
        raise NotImplementedError(
            f"layers {overridden} restore their own state, which this graph-mode loader "
            "cannot replay; remove them from the model given to LRP"
        )
    n_weights = len(model.weights)
    if len(pending) != n_weights:
        raise RuntimeError(f"loaded {len(pending)} of the model's {n_weights} weights from {path!r}")
    tf.keras.backend.batch_set_value(pending)
    loaded = tf.keras.backend.batch_get_value([v for v, _ in pending])
    if not all(np.array_equal(a, b) for a, b in zip(loaded, (w for _, w in pending), strict=True)):
        raise RuntimeError(f"the weights of {path!r} did not load correctly in graph mode")
    return model


def _logit_model(model):
    """The model without its final softmax (separate Activation layer or fused)."""
    import innvestigate
    import tensorflow as tf

    low_precision = [
        layer.name for layer in model.layers
        if getattr(getattr(layer, "dtype_policy", None), "compute_dtype", "float32") != "float32"
    ]
    if low_precision:
        raise ValueError(
            f"layers {low_precision[:5]} compute in reduced precision; LRP needs a float32 "
            "model: save forgetting_aus.models.to_float32(model) and explain that file"
        )
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    activation_name = getattr(activation, "__name__", str(activation))
    if activation_name == "softmax":
        if isinstance(last, tf.keras.layers.Activation):
            return tf.keras.Model(model.inputs, last.input, name=f"{model.name}_logits")
        return innvestigate.model_wo_softmax(model)
    if activation_name == "linear" or activation is None:
        return model
    raise ValueError(
        f"the model ends in layer {last.name!r} with activation {activation_name!r}; "
        "LRP explains a pre-softmax logit, so the model should end in a linear layer "
        "or a softmax (fused or as a separate Activation layer)"
    )


def _check_rule_coverage(model, rules: Mapping[str, str]) -> None:
    """Raise if a layer with a kernel matches no rule (iNNvestigate would crash obscurely)."""
    import tensorflow as tf

    classes = [getattr(tf.keras.layers, name) for name in rules]
    uncovered = [
        f"{layer.name} ({type(layer).__name__})"
        for layer in model.layers
        if hasattr(layer, "kernel") and not any(isinstance(layer, c) for c in classes)
    ]
    if uncovered:
        raise ValueError(
            f"no LRP rule in {dict(rules)} applies to the layers {uncovered}; "
            "add their layer class to the rule map"
        )


def _build_analyzer(logit_model, spec: Mapping[str, Any]):
    import innvestigate

    if "rules" in spec:
        _check_rule_coverage(logit_model, spec["rules"])
        return innvestigate.analyzer.LRP(
            logit_model, rule=rule_conditions(spec["rules"]), neuron_selection_mode="index"
        )
    analyzer_class = getattr(innvestigate.analyzer, spec["analyzer"])
    return analyzer_class(logit_model, neuron_selection_mode="index", **spec.get("kwargs", {}))


def _validate_targets(target_classes, n: int, n_classes: int | None = None) -> np.ndarray:
    targets = np.asarray(target_classes)
    if targets.ndim == 0:
        targets = np.full(n, int(targets))
    if targets.shape != (n,):
        raise ValueError(f"expected {n} target classes (one per image), got shape {targets.shape}")
    if not np.issubdtype(targets.dtype, np.integer):
        if not np.all(np.equal(np.mod(targets, 1), 0)):
            raise ValueError("target classes must be integer class indices")
    targets = targets.astype(np.int64)
    if n_classes is not None and n and (targets.min() < 0 or targets.max() >= n_classes):
        raise ValueError(
            f"target classes must lie in 0..{n_classes - 1} (the model has {n_classes} "
            f"outputs), got range {targets.min()}..{targets.max()}"
        )
    return targets


def _validate_images(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(
            f"expected images of shape (n, H, W, channels), got shape {images.shape}; "
            "add a batch axis with images[None] for a single image"
        )
    return images.astype(np.float32, copy=False)


def _analyze(analyzer, images: np.ndarray, targets: np.ndarray, batch_size: int) -> np.ndarray:
    out = np.empty(images.shape[:3], dtype=np.float32)
    for start in range(0, len(images), batch_size):
        stop = start + batch_size
        relevance = analyzer.analyze(images[start:stop], neuron_selection=targets[start:stop])
        # Sum over colour channels: one relevance value per pixel, sign kept.
        out[start:stop] = np.asarray(relevance, dtype=np.float32).sum(axis=-1)
    return out


def lrp_maps_in_graph_mode(model, images: np.ndarray, target_classes, *,
                           method: str | Mapping[str, str] = "paper",
                           batch_size: int = 32) -> np.ndarray:
    """LRP maps of an already loaded model, in this process (eager execution must be off).

    Use :func:`lrp_maps` unless this process called
    ``tf.compat.v1.disable_eager_execution()`` before building any model.

    Parameters
    ----------
    model : keras.Model
        Classifier ending in a softmax or a linear layer; the softmax is stripped.
    images : ndarray of shape (n, H, W, C)
        Preprocessed model inputs (cast to float32).
    target_classes : int or array-like of shape (n,)
        Class whose pre-softmax logit is explained, per image.
    method : str or mapping, keyword-only
        A key of :data:`LRP_METHODS` or a rule map.
    batch_size : int, keyword-only

    Returns
    -------
    ndarray of shape (n, H, W), float32
        Signed relevance summed over channels.
    """
    import tensorflow as tf

    if tf.executing_eagerly():
        raise RuntimeError(
            "iNNvestigate needs graph mode, but eager execution is on in this process. "
            "Use forgetting_aus.explain.lrp_maps(model_path, ...), which runs in a fresh "
            "subprocess, or call tf.compat.v1.disable_eager_execution() before building "
            "any model."
        )
    images = _validate_images(images)
    logit_model = _logit_model(model)
    targets = _validate_targets(target_classes, len(images), int(logit_model.output_shape[-1]))
    analyzer = _build_analyzer(logit_model, resolve_method(method))
    return _analyze(analyzer, images, targets, batch_size)


# --------------------------------------------------------------------------------------
# Subprocess front end
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LRPJob:
    """One LRP computation for :func:`lrp_maps_many`.

    Attributes
    ----------
    model_path : str or Path
        Saved ``.keras`` model.
    images : ndarray of shape (n, H, W, C)
        Preprocessed inputs. Jobs may share the same array object; it is sent once.
    target_classes : int or array-like of shape (n,)
        Class explained per image (its pre-softmax logit).
    method : str or mapping
        A key of :data:`LRP_METHODS` or a rule map.
    """

    model_path: str | os.PathLike
    images: np.ndarray = field(repr=False)
    target_classes: Any = field(repr=False)
    method: str | Mapping[str, str] = "paper"


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # The caller (a notebook kernel) may already hold the GPU; let the worker grow into
    # what is left instead of failing to reserve all of it.
    env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    src_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src_root, env.get("PYTHONPATH", "")) if p)
    return env


#: Lines of the worker's stderr that start with this are its progress, passed on live.
PROGRESS_PREFIX = "LRP worker: "


def _run_worker(job_specs: list[dict[str, Any]], arrays: dict[str, np.ndarray], *,
                timeout: float | None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="forgetting_aus_lrp_") as tmp:
        tmp_path = Path(tmp)
        np.savez(tmp_path / "inputs.npz", **arrays)
        (tmp_path / "request.json").write_text(json.dumps({"jobs": job_specs}))
        cmd = [sys.executable, "-m", "forgetting_aus.explain._lrp_worker", str(tmp_path)]
        proc = subprocess.Popen(cmd, env=_worker_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # The worker runs for minutes on many images: its progress lines reach the
        # chapter's output as they come; the rest is kept for an error message.
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout, kill) if timeout is not None else None
        if timer is not None:
            timer.start()
        messages: collections.deque[str] = collections.deque(maxlen=25)
        try:
            for line in proc.stderr:
                if line.startswith(PROGRESS_PREFIX):
                    print(line, end="", file=sys.stderr, flush=True)
                else:
                    messages.append(line.rstrip("\n"))
            returncode = proc.wait()
        finally:
            if timer is not None:
                timer.cancel()
        if timed_out.is_set():
            raise RuntimeError(
                f"the LRP worker did not finish within {timeout} s; raise `timeout` or "
                "explain fewer images per call"
            )
        if returncode != 0:
            tail = "\n".join(messages)
            raise RuntimeError(
                f"the LRP worker failed (exit code {returncode}). Its last messages:\n{tail}"
            )
        with np.load(tmp_path / "outputs.npz", allow_pickle=False) as data:
            outputs = {key: data[key] for key in data.files}
        meta = json.loads((tmp_path / "outputs.json").read_text())
    return outputs, meta


def _pack_jobs(jobs: Sequence[LRPJob], *, batch_size: int) -> tuple[list, dict]:
    arrays: dict[str, np.ndarray] = {}
    keys_by_id: dict[int, str] = {}
    specs = []
    for i, job in enumerate(jobs):
        path = Path(job.model_path)
        if not path.exists():
            raise FileNotFoundError(
                f"job {i}: model file {str(path)!r} does not exist; save the model with "
                "model.save('name.keras') first"
            )
        images = job.images
        key = keys_by_id.get(id(images))
        if key is None:
            key = f"images_{len(keys_by_id)}"
            keys_by_id[id(images)] = key
            arrays[key] = _validate_images(images)
        targets = _validate_targets(job.target_classes, len(arrays[key]))
        arrays[f"targets_{i}"] = targets
        specs.append({
            "model_path": str(path.resolve()),
            "method": resolve_method(job.method),
            "images": key,
            "targets": f"targets_{i}",
            "batch_size": int(batch_size),
        })
    return specs, arrays


def lrp_maps_many(jobs: Sequence[LRPJob], *, batch_size: int = 32,
                  timeout: float | None = None) -> list[np.ndarray]:
    """Run several LRP jobs in one fresh graph-mode worker process.

    Each model file is loaded once and each (model, method) analyzer built once, so
    explaining FreezeB5 and FreezeB0 with several methods pays TensorFlow's start-up once.

    Parameters
    ----------
    jobs : sequence of LRPJob
    batch_size : int, keyword-only
        Images per analyzer call.
    timeout : float or None, keyword-only
        Seconds before the worker is killed.

    Returns
    -------
    list of ndarray of shape (n_i, H, W), float32
        Signed relevance maps summed over channels, in the order of ``jobs``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    jobs = list(jobs)
    if not jobs:
        return []
    specs, arrays = _pack_jobs(jobs, batch_size=batch_size)
    outputs, _ = _run_worker(specs, arrays, timeout=timeout)
    return [outputs[f"maps_{i}"].astype(np.float32, copy=False) for i in range(len(jobs))]


def lrp_maps(model_path: str | os.PathLike, images: np.ndarray, target_classes, *,
             method: str | Mapping[str, str] = "paper", batch_size: int = 32,
             timeout: float | None = None) -> np.ndarray:
    """LRP relevance maps of a saved model, computed in a fresh subprocess.

    Parameters
    ----------
    model_path : str or Path
        Saved ``.keras`` classifier (softmax output or logits).
    images : ndarray of shape (n, H, W, C)
        Preprocessed model inputs (sent as float32).
    target_classes : int or array-like of shape (n,)
        Class whose pre-softmax logit is explained, per image.
    method : str or mapping, keyword-only
        ``"paper"`` (z for Dense, z+ for Conv2D), ``"LRP-Z"``, ``"LRP-Epsilon"``,
        ``"LRP-PresetAFlat"``, ``"LRP-PresetBFlat"``, or a rule map.
    batch_size : int, keyword-only
    timeout : float or None, keyword-only

    Returns
    -------
    ndarray of shape (n, H, W), float32
        Signed relevance summed over colour channels (units of the logit).
    """
    job = LRPJob(model_path, images, target_classes, method)
    return lrp_maps_many([job], batch_size=batch_size, timeout=timeout)[0]


def explain_rows(model_paths: Mapping[Any, str | os.PathLike], images: np.ndarray, labels: np.ndarray,
                 rows: Mapping[Any, np.ndarray], *, method: str | Mapping[str, str] = "paper",
                 explain: Callable[[list[LRPJob]], list[np.ndarray]] | None = None) -> dict[Any, np.ndarray]:
    """LRP maps of the true class for several models, each on its own test rows, in ONE worker.

    What chapters 05 and 08 explain: saved classifiers on rows of one test split, the
    logit of each image's true class, all in one :func:`lrp_maps_many` call (TensorFlow's
    start-up is paid once).

    Parameters
    ----------
    model_paths : mapping model id -> path of a saved float32 ``.keras`` classifier
    images : uint8 (n, S, S, 3)
        All test images (preprocessed here with ``models.preprocess``).
    labels : int (n,)
        True classes: the explained logit of each image.
    rows : mapping model id -> int (n_m,)
        Test rows each model explains; models with no row are left out (no job).
    method : str or mapping, keyword-only
        The LRP analyzer (see :func:`lrp_maps`).
    explain : callable, optional, keyword-only
        ``explain(jobs) -> list of (n_m, S, S) arrays``; default :func:`lrp_maps_many`
        (injectable for tests).

    Returns
    -------
    dict model id -> float32 (n_m, S, S)
        In the order of ``rows``; empty when no model has a row (and no worker runs).
    """
    rows = {m: np.asarray(r, dtype=np.int64) for m, r in rows.items() if len(r)}
    if not rows:
        return {}
    from forgetting_aus import models

    explain = explain or lrp_maps_many
    labels = np.asarray(labels)
    jobs = [LRPJob(model_paths[m], models.preprocess(images[r]), labels[r].astype(np.int64), method)
            for m, r in rows.items()]
    outputs = explain(jobs)
    return {m: np.asarray(maps, dtype=np.float32) for m, maps in zip(rows, outputs, strict=True)}


def lrp_speed(model_path: str | os.PathLike, n: int, *,
              method: str | Mapping[str, str] = "paper", batch_size: int = 32,
              seed: int = 0, timeout: float | None = None) -> float:
    """Throughput of LRP on random inputs, in maps per second (for the benchmark).

    Process start-up, TensorFlow import, model loading and one warm-up batch (which
    builds the analyzer graph) are excluded; only the ``n`` timed maps count.

    Parameters
    ----------
    model_path : str or Path
    n : int
        Number of maps to time.
    method, batch_size : keyword-only
        As in :func:`lrp_maps`.
    seed : int, keyword-only
        Seed of the standard-normal random images.
    timeout : float or None, keyword-only

    Returns
    -------
    float
        Maps per second.
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of maps, got {n}")
    path = Path(model_path)
    if not path.exists():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist")
    spec = {
        "model_path": str(path.resolve()),
        "method": resolve_method(method),
        "random_images": int(n),
        "seed": int(seed),
        "warmup": True,
        "batch_size": int(batch_size),
    }
    _, meta = _run_worker([spec], {}, timeout=timeout)
    seconds = meta["seconds"][0]
    return float(n / max(seconds, 1e-12))


# --------------------------------------------------------------------------------------
# Post-processing of maps (pure numpy)
# --------------------------------------------------------------------------------------


def _as_maps(maps) -> tuple[np.ndarray, bool]:
    arr = np.asarray(maps, dtype=np.float32)
    if arr.ndim == 2:
        return arr[None], True
    if arr.ndim != 3:
        raise ValueError(f"expected maps of shape (n, H, W) or (H, W), got shape {arr.shape}")
    return arr, False


def normalize_for_display(maps: np.ndarray) -> np.ndarray:
    """Min-max scale each map to [0, 1] (display only, as in the paper's figures).

    Parameters
    ----------
    maps : ndarray of shape (n, H, W) or (H, W)

    Returns
    -------
    ndarray of the same shape, float32
        ``(m - min) / (max - min)`` per map over its finite pixels; a constant map becomes
        all zeros. NaN pixels stay NaN, so an undefined map (all-NaN, e.g. a difference
        map whose total relevance is <= 0) stays all-NaN and a figure can say so instead
        of drawing a flat map. Not for analysis: the scaling differs per map, so values
        are not comparable across maps.
    """
    arr, single = _as_maps(maps)
    undefined = np.isnan(arr)
    # Min and max over the defined pixels only (on a map without NaN: its min and max).
    lo = np.where(undefined, np.inf, arr).min(axis=(1, 2), keepdims=True)
    span = np.where(undefined, -np.inf, arr).max(axis=(1, 2), keepdims=True) - lo
    with np.errstate(invalid="ignore"):  # an all-NaN map: span = -inf - inf, never used
        scaled = np.where(span > 0, (arr - lo) / np.where(span > 0, span, 1), 0)
    out = np.where(undefined, np.nan, scaled).astype(np.float32)
    return out[0] if single else out


def normalize_by_total(maps: np.ndarray, *, on_nonpositive: str = "nan") -> np.ndarray:
    """Divide each signed map by its total relevance, so maps sum to 1.

    A model with a larger logit spreads more relevance; dividing by the total turns the
    map into *shares* of the explanation, so a larger logit does not masquerade as more
    attention when two models are compared.

    Parameters
    ----------
    maps : ndarray of shape (n, H, W) or (H, W)
        Signed relevance.
    on_nonpositive : {"nan", "raise"}, keyword-only
        What to do with maps whose total is <= 0 (shares are then meaningless, their sign
        would flip): return them as all-NaN (default, so that a batch survives and
        downstream means can skip them) or raise ``ValueError``.

    Returns
    -------
    ndarray of the same shape, float32
    """
    if on_nonpositive not in ("nan", "raise"):
        raise ValueError(f"on_nonpositive must be 'nan' or 'raise', got {on_nonpositive!r}")
    arr, single = _as_maps(maps)
    total = arr.astype(np.float64).sum(axis=(1, 2), keepdims=True)
    bad = total[:, 0, 0] <= 0
    if bad.any() and on_nonpositive == "raise":
        raise ValueError(
            f"maps {np.flatnonzero(bad).tolist()} have a total relevance <= 0, so they cannot "
            "be expressed as shares; pass on_nonpositive='nan' to mark them NaN instead"
        )
    out = np.where(total > 0, arr / np.where(total > 0, total, 1), np.nan).astype(np.float32)
    return out[0] if single else out


def difference_map(r_reference: np.ndarray, r_other: np.ndarray, *,
                   on_nonpositive: str = "nan") -> np.ndarray:
    """Signed difference of total-normalised maps, ``R5/sum(R5) - Rk/sum(Rk)``.

    Parameters
    ----------
    r_reference : ndarray of shape (n, H, W) or (H, W)
        Raw relevance of the reference model (FreezeB5 in the paper).
    r_other : ndarray of the same shape
        Raw relevance of the other model (FreezeB<k>), same images and target classes.
    on_nonpositive : {"nan", "raise"}, keyword-only
        Passed to :func:`normalize_by_total`.

    Returns
    -------
    ndarray of the same shape, float32
        Positive where the reference model puts a larger share of its relevance; sums
        to 0 per map. For display, pass it through :func:`normalize_for_display`.
    """
    ref = np.asarray(r_reference)
    other = np.asarray(r_other)
    if ref.shape != other.shape:
        raise ValueError(
            f"reference and other maps must have the same shape, got {ref.shape} and {other.shape}"
        )
    return (normalize_by_total(ref, on_nonpositive=on_nonpositive)
            - normalize_by_total(other, on_nonpositive=on_nonpositive))
