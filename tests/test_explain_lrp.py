"""Tests of forgetting_aus.explain.lrp: iNNvestigate through the subprocess worker.

The test process itself stays eager (as a notebook kernel that trained models would be):
the tiny models are built and saved here, all LRP runs go through ``lrp_maps_many`` in a
single worker (to pay TensorFlow's start-up once), and the references are computed here
in eager mode (gradients with tf.GradientTape) or in plain numpy (the z and z+ rules).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from forgetting_aus.explain import lrp  # noqa: E402

keras = tf.keras
N_IMAGES = 4
SIZE = 8


# ----------------------------------------------------------------------------- models


def _dense_net(use_bias: bool) -> keras.Model:
    inp = keras.Input((6, 6, 2))
    x = keras.layers.Flatten(name="flatten")(inp)
    x = keras.layers.Dense(10, activation="relu", use_bias=use_bias, name="fc1")(x)
    x = keras.layers.Dense(3, use_bias=use_bias, name="predictions")(x)
    out = keras.layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inp, out)


def _conv_net(use_bias: bool) -> keras.Model:
    """Conv, conv, pool, flatten, dense, dropout, logits, softmax: VGG16's layout in small."""
    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", use_bias=use_bias,
                            name="block1_conv1")(inp)
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", use_bias=use_bias,
                            name="block1_conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="block1_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(8, activation="relu", use_bias=use_bias, name="fc1")(x)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    x = keras.layers.Dense(3, use_bias=use_bias, name="predictions")(x)
    out = keras.layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inp, out)


def _randomise_biases(model: keras.Model, rng: np.random.Generator) -> None:
    for layer in model.layers:
        if getattr(layer, "use_bias", False):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.1, bias.shape).astype(np.float32)])


def _logits(model: keras.Model) -> keras.Model:
    return keras.Model(model.input, model.get_layer("predictions").output)


# ------------------------------------------------------------------ numpy reference LRP


def _safe(denominator: np.ndarray) -> np.ndarray:
    # iNNvestigate's safe_divide: an exact zero denominator becomes keras epsilon (1e-7).
    return np.where(denominator == 0, 1e-7, denominator)


def _patches(x: np.ndarray, k: int) -> np.ndarray:
    """'same'-padded k x k patches of x (n, H, W, C) as (n, H, W, k, k, C)."""
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))
    return np.moveaxis(win, 3, 5)  # (n, H, W, C, k, k) -> (n, H, W, k, k, C)


def _fold(contrib: np.ndarray, shape: tuple[int, ...], k: int) -> np.ndarray:
    """Add patch relevances (n, H, W, k, k, C) back onto the input pixels (col2im)."""
    n, h, w, c = shape
    p = k // 2
    out = np.zeros((n, h + 2 * p, w + 2 * p, c))
    for i in range(k):
        for j in range(k):
            out[:, i:i + h, j:j + w] += contrib[:, :, :, i, j]
    return out[:, p:p + h, p:p + w]


def _rule_contributions(z: np.ndarray, rule: str) -> np.ndarray:
    if rule == "Z":
        return z
    if rule == "ZPlus":
        # iNNvestigate's convention: positive *contributions* (x_i w_ij)^+, which also
        # counts negative inputs times negative weights (only matters on the first layer).
        return np.maximum(z, 0)
    if rule == "ZPlusTextbook":
        raise AssertionError("handled by the caller")
    raise ValueError(rule)


def _conv_backward(x, kernel, bias, relevance, rule):
    k = kernel.shape[0]
    patches = _patches(x, k)
    if rule == "ZPlusTextbook":
        z = patches[..., None] * np.maximum(kernel, 0)  # x_i w_ij^+ (assumes x >= 0)
        denominator = z.sum(axis=(3, 4, 5))
    else:
        z = _rule_contributions(patches[..., None] * kernel, rule)
        denominator = z.sum(axis=(3, 4, 5))
        if rule == "Z" and bias is not None:
            denominator = denominator + bias  # z keeps the bias; z+ ignores it
    share = relevance / _safe(denominator)
    contrib = (z * share[:, :, :, None, None, None, :]).sum(axis=-1)
    return _fold(contrib, x.shape, k)


def _dense_backward(x, kernel, bias, relevance, rule):
    z = _rule_contributions(x[:, :, None] * kernel[None], rule)
    denominator = z.sum(axis=1)
    if rule == "Z" and bias is not None:
        denominator = denominator + bias
    return (z * (relevance / _safe(denominator))[:, None, :]).sum(axis=-1)


def numpy_lrp_conv_net(model, images, targets, conv_rule="ZPlus", dense_rule="Z"):
    """LRP of ``_conv_net`` in numpy: forward pass, then the rules layer by layer."""
    def params(name):
        w = model.get_layer(name).get_weights()
        return w[0].astype(np.float64), (w[1].astype(np.float64) if len(w) > 1 else None)

    def conv(x, name):
        kernel, bias = params(name)
        z = (_patches(x, kernel.shape[0])[..., None] * kernel).sum(axis=(3, 4, 5))
        return np.maximum(z + (0 if bias is None else bias), 0)

    x0 = images.astype(np.float64)
    a1 = conv(x0, "block1_conv1")
    a2 = conv(a1, "block1_conv2")
    n, h, w, c = a2.shape
    windows = a2.reshape(n, h // 2, 2, w // 2, 2, c)
    pooled = windows.max(axis=(2, 4))
    flat = pooled.reshape(n, -1)
    k_fc1, b_fc1 = params("fc1")
    hidden = np.maximum(flat @ k_fc1 + (0 if b_fc1 is None else b_fc1), 0)
    k_out, b_out = params("predictions")
    logits = hidden @ k_out + (0 if b_out is None else b_out)

    r_logits = np.zeros_like(logits)
    r_logits[np.arange(n), targets] = logits[np.arange(n), targets]
    r_hidden = _dense_backward(hidden, k_out, b_out, r_logits, dense_rule)
    r_flat = _dense_backward(flat, k_fc1, b_fc1, r_hidden, dense_rule)
    r_pooled = r_flat.reshape(pooled.shape)
    # Max pooling passes relevance to the winner of each window (the gradient's routing).
    winner = windows == pooled[:, :, None, :, None, :]
    r_a2 = (winner * r_pooled[:, :, None, :, None, :]).reshape(a2.shape)
    k2, b2 = params("block1_conv2")
    r_a1 = _conv_backward(a1, k2, b2, r_a2, conv_rule)
    k1, b1 = params("block1_conv1")
    r_x = _conv_backward(x0, k1, b1, r_a1, conv_rule)
    return r_x.sum(axis=-1), logits[np.arange(n), targets]


# ------------------------------------------------------------------ fixture: one worker


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """Tiny models saved to disk, and every LRP job of this file run in one worker."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    tmp = tmp_path_factory.mktemp("lrp")
    models = {
        "dense": _dense_net(use_bias=False),
        "conv": _conv_net(use_bias=False),
        "conv_bias": _conv_net(use_bias=True),
    }
    _randomise_biases(models["conv_bias"], rng)
    paths = {}
    for name, model in models.items():
        paths[name] = tmp / f"{name}.keras"
        model.save(paths[name])
    images = {
        "dense": rng.normal(size=(N_IMAGES, 6, 6, 2)).astype(np.float32),
        "conv": rng.normal(size=(N_IMAGES, SIZE, SIZE, 3)).astype(np.float32),
    }
    images["conv_bias"] = images["conv"]
    targets = np.array([0, 1, 2, 1])
    plan = [
        ("dense", "LRP-Z"),
        ("conv", "LRP-Z"),
        ("conv", "paper"),
        ("conv_bias", "paper"),
        ("conv_bias", "LRP-Z"),
        ("conv_bias", "LRP-Epsilon"),
        ("conv_bias", "LRP-PresetAFlat"),
        ("conv_bias", "LRP-PresetBFlat"),
        ("conv", "rule_map_z"),
    ]
    rule_map_z = {"Dense": "Z", "Conv2D": "Z"}
    jobs = [
        lrp.LRPJob(paths[m], images[m], targets, rule_map_z if meth == "rule_map_z" else meth)
        for m, meth in plan
    ]
    maps = lrp.lrp_maps_many(jobs, batch_size=3)  # 3 does not divide 4: tests batching
    return {
        "models": models,
        "paths": paths,
        "images": images,
        "targets": targets,
        "maps": dict(zip(plan, maps, strict=True)),
        "tmp": tmp,
    }


def _gradient_times_input(model, images, targets):
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = _logits(model)(x)
        score = tf.reduce_sum(tf.gather(logits, targets, axis=1, batch_dims=1))
    grad = tape.gradient(score, x).numpy()
    selected = logits.numpy()[np.arange(len(images)), targets]
    return (grad * images).sum(axis=-1), selected


# ------------------------------------------------------------------------------- tests


def test_worker_returns_float32_maps_of_input_size(lab):
    for (name, _), maps in lab["maps"].items():
        assert maps.dtype == np.float32
        assert maps.shape == lab["images"][name].shape[:3]
        assert np.isfinite(maps).all()


@pytest.mark.parametrize("name", ["dense", "conv"])
def test_lrp_z_equals_gradient_times_input_without_biases(lab, name):
    expected, _ = _gradient_times_input(lab["models"][name], lab["images"][name], lab["targets"])
    np.testing.assert_allclose(lab["maps"][(name, "LRP-Z")], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("key", [("dense", "LRP-Z"), ("conv", "LRP-Z"), ("conv", "paper")])
def test_relevance_is_conserved_without_biases(lab, key):
    name = key[0]
    _, logit = _gradient_times_input(lab["models"][name], lab["images"][name], lab["targets"])
    totals = lab["maps"][key].sum(axis=(1, 2))
    np.testing.assert_allclose(totals, logit, rtol=1e-4, atol=1e-5)


def test_rule_map_z_everywhere_equals_lrpz_analyzer(lab):
    np.testing.assert_allclose(lab["maps"][("conv", "rule_map_z")], lab["maps"][("conv", "LRP-Z")],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["conv", "conv_bias"])
def test_paper_rules_match_numpy_reference(lab, name):
    expected, _ = numpy_lrp_conv_net(lab["models"][name], lab["images"][name], lab["targets"])
    np.testing.assert_allclose(lab["maps"][(name, "paper")], expected, rtol=1e-4, atol=1e-5)


def test_lrp_z_with_biases_matches_numpy_reference(lab):
    expected, logit = numpy_lrp_conv_net(lab["models"]["conv_bias"], lab["images"]["conv"],
                                         lab["targets"], conv_rule="Z", dense_rule="Z")
    maps = lab["maps"][("conv_bias", "LRP-Z")]
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-5)
    # With biases the bias absorbs its share: conservation no longer holds exactly.
    assert not np.allclose(maps.sum(axis=(1, 2)), logit, rtol=1e-3, atol=1e-4)


def test_zplus_on_negative_inputs_counts_positive_contributions(lab):
    """On the first layer (inputs of both signs) iNNvestigate's z+ keeps (x w)^+, not x w^+."""
    images = lab["images"]["conv"]
    assert (images < 0).any()
    textbook, _ = numpy_lrp_conv_net(lab["models"]["conv"], images, lab["targets"],
                                     conv_rule="ZPlusTextbook")
    assert not np.allclose(lab["maps"][("conv", "paper")], textbook, rtol=1e-3, atol=1e-4)


def test_epsilon_1e7_is_close_to_z(lab):
    np.testing.assert_allclose(lab["maps"][("conv_bias", "LRP-Epsilon")],
                               lab["maps"][("conv_bias", "LRP-Z")], rtol=1e-3, atol=1e-4)


def test_flat_presets_differ_from_z(lab):
    a = lab["maps"][("conv_bias", "LRP-PresetAFlat")]
    b = lab["maps"][("conv_bias", "LRP-PresetBFlat")]
    z = lab["maps"][("conv_bias", "LRP-Z")]
    assert not np.allclose(a, z) and not np.allclose(b, z) and not np.allclose(a, b)


def test_subprocess_matches_in_process_graph_mode_and_leaves_caller_eager(lab):
    """The real situation: an eager process that built models calls lrp_maps; a process
    that disabled eager execution first and runs the analyzer in-process agrees."""
    assert tf.executing_eagerly()
    tmp = lab["tmp"]
    np.savez(tmp / "in.npz", x=lab["images"]["conv_bias"], t=lab["targets"])
    script = textwrap.dedent(f"""
        import numpy as np, tensorflow as tf
        tf.compat.v1.disable_eager_execution()
        from forgetting_aus.explain.lrp import load_model_graph_mode, lrp_maps_in_graph_mode
        model = load_model_graph_mode({str(lab["paths"]["conv_bias"])!r})
        d = np.load({str(tmp / "in.npz")!r})
        maps = lrp_maps_in_graph_mode(model, d["x"], d["t"], method="paper", batch_size=4)
        np.savez({str(tmp / "out.npz")!r}, maps=maps, probs=model.predict(d["x"], verbose=0))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = np.load(tmp / "out.npz")
    in_process = result["maps"]
    # The graph-mode loader restores the trained weights (plain load_model would not).
    np.testing.assert_allclose(result["probs"], lab["models"]["conv_bias"](lab["images"]["conv"]),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lab["maps"][("conv_bias", "paper")], in_process,
                               rtol=1e-6, atol=1e-7)
    # The caller is untouched: still eager, and its models still run.
    assert tf.executing_eagerly()
    assert lab["models"]["conv"](lab["images"]["conv"]).shape == (N_IMAGES, 3)


def test_in_process_analysis_refuses_eager_mode(lab):
    with pytest.raises(RuntimeError, match="graph mode"):
        lrp.lrp_maps_in_graph_mode(lab["models"]["conv"], lab["images"]["conv"], 0)


def test_worker_errors_are_reported(lab):
    with pytest.raises(RuntimeError, match="no LRP rule"):
        lrp.lrp_maps(lab["paths"]["conv"], lab["images"]["conv"], 0, method={"Dense": "Z"})


def test_worker_progress_reaches_stderr_live_and_a_timeout_names_the_knob(lab, capfd):
    lrp.lrp_maps_many([lrp.LRPJob(lab["paths"]["conv"], lab["images"]["conv"], lab["targets"], "paper")] * 2)
    shown = capfd.readouterr().err
    assert f"{lrp.PROGRESS_PREFIX}job 1/2" in shown and "job 2/2" in shown and "8 maps so far" in shown
    with pytest.raises(RuntimeError, match="did not finish within 0.5 s; raise `timeout`"):
        lrp.lrp_maps(lab["paths"]["conv"], lab["images"]["conv"], 0, timeout=0.5)


def test_lrp_speed_returns_positive_rate(lab):
    rate = lrp.lrp_speed(lab["paths"]["conv"], 8, method="paper", batch_size=4)
    assert rate > 0


# ----------------------------------------------------------------- cheap argument checks


def test_resolve_method_and_errors(tmp_path):
    assert lrp.resolve_method("paper") == {"rules": {"Dense": "Z", "Conv2D": "ZPlus"}}
    assert lrp.resolve_method("LRP-Epsilon")["kwargs"] == {"epsilon": 1e-7}
    for name in ("LRP-PresetAFlat", "LRP-PresetBFlat"):
        assert lrp.resolve_method(name)["kwargs"] == {"epsilon": 0.1}
    with pytest.raises(ValueError, match="unknown LRP method"):
        lrp.resolve_method("LRP-Alpha")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        lrp.lrp_maps(tmp_path / "missing.keras", np.zeros((1, 4, 4, 3)), 0)
    (tmp_path / "m.keras").write_text("")
    with pytest.raises(ValueError, match="target classes"):
        lrp.lrp_maps(tmp_path / "m.keras", np.zeros((2, 4, 4, 3)), [0, 1, 2])
    with pytest.raises(ValueError, match=r"\(n, H, W, channels\)"):
        lrp.lrp_maps(tmp_path / "m.keras", np.zeros((4, 4, 3)), 0)


def test_rule_conditions_are_isinstance_checks():
    conditions = lrp.rule_conditions(lrp.PAPER_RULES)
    dense = keras.layers.Dense(2)
    conv = keras.layers.Conv2D(2, 3)
    assert [rule for cond, rule in conditions if cond(dense)] == ["Z"]
    assert [rule for cond, rule in conditions if cond(conv)] == ["ZPlus"]
    with pytest.raises(ValueError, match="unknown iNNvestigate rule"):
        lrp.rule_conditions({"Dense": "Zed"})


# ------------------------------------------------------------------ map post-processing


def test_normalize_for_display_is_per_map_min_max():
    maps = np.array([[[-2.0, 0.0], [1.0, 2.0]], [[3.0, 3.0], [3.0, 3.0]]])
    out = lrp.normalize_for_display(maps)
    np.testing.assert_allclose(out[0], [[0.0, 0.5], [0.75, 1.0]])
    np.testing.assert_array_equal(out[1], 0)  # constant map -> zeros
    assert out.dtype == np.float32


def test_normalize_for_display_keeps_nan_maps_undefined():
    maps = np.array([[[np.nan, np.nan], [np.nan, np.nan]], [[-2.0, np.nan], [1.0, 2.0]]])
    out = lrp.normalize_for_display(maps)
    assert np.isnan(out[0]).all()  # an undefined map is not drawn as a flat one
    assert np.isnan(out[1, 0, 1])
    np.testing.assert_allclose(out[1][np.isfinite(out[1])], [0.0, 0.75, 1.0])  # scaled over defined pixels
    assert np.isnan(lrp.normalize_for_display(maps[0])).all()  # a single (H, W) map too


def test_normalize_for_display_on_finite_maps_is_the_plain_min_max_bit_for_bit():
    maps = np.random.default_rng(4).normal(size=(5, 7, 7)).astype(np.float32)
    maps[2] = 0.5
    lo = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - lo
    plain = np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)
    np.testing.assert_array_equal(lrp.normalize_for_display(maps), plain)


def test_explain_rows_explains_the_true_class_in_one_call(tmp_path):
    images = np.random.default_rng(0).integers(0, 255, (10, 8, 8, 3)).astype(np.uint8)
    labels = np.arange(10) % 8
    calls = []

    def fake_explain(jobs):
        calls.append(jobs)
        return [np.full((len(job.images), 8, 8), float(job.target_classes[0]), dtype=np.float64) for job in jobs]

    out = lrp.explain_rows({"b5": tmp_path / "b5.keras", "b0": tmp_path / "b0.keras"}, images, labels,
                           {"b5": np.array([3, 7]), "b0": np.array([7]), "none": np.zeros(0, int)},
                           method="LRP-Z", explain=fake_explain)
    assert len(calls) == 1 and len(calls[0]) == 2  # one worker for all models; no job for an empty row set
    job = calls[0][0]
    np.testing.assert_array_equal(job.target_classes, labels[[3, 7]])
    assert job.target_classes.dtype == np.int64 and job.method == "LRP-Z"
    assert job.images.dtype == np.float32 and job.images.min() < 0  # models.preprocess applied
    assert list(out) == ["b5", "b0"]  # the order of ``rows``
    assert out["b5"].shape == (2, 8, 8) and out["b5"].dtype == np.float32
    assert out["b0"][0, 0, 0] == labels[7]
    assert lrp.explain_rows({}, images, labels, {"b0": np.zeros(0, int)}, explain=fake_explain) == {}
    assert len(calls) == 1  # nothing to explain, no worker


def test_normalize_by_total_divides_by_signed_sum():
    maps = np.array([[[1.0, 3.0], [-2.0, 2.0]], [[1.0, -1.0], [0.0, 0.0]]])
    out = lrp.normalize_by_total(maps)
    np.testing.assert_allclose(out[0], [[0.25, 0.75], [-0.5, 0.5]])
    assert np.isnan(out[1]).all()  # total 0: shares undefined
    with pytest.raises(ValueError, match=r"maps \[1\]"):
        lrp.normalize_by_total(maps, on_nonpositive="raise")


def test_normalize_by_total_removes_logit_scale():
    base = np.random.default_rng(1).random((3, 5, 5))
    np.testing.assert_allclose(lrp.normalize_by_total(7.0 * base), lrp.normalize_by_total(base),
                               rtol=1e-6)


def test_difference_map_by_hand():
    r5 = np.array([[3.0, 1.0], [0.0, 0.0]])  # shares 0.75, 0.25
    rk = np.array([[1.0, 1.0], [1.0, 1.0]])  # shares 0.25 each
    d = lrp.difference_map(r5, rk)
    np.testing.assert_allclose(d, [[0.5, 0.0], [-0.25, -0.25]])
    assert abs(d.sum()) < 1e-6
    # Positive where the reference model attends more; scaling either model changes nothing.
    np.testing.assert_allclose(lrp.difference_map(10 * r5, 0.1 * rk), d, rtol=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        lrp.difference_map(r5, rk[:1])
