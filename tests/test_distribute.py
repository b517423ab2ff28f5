"""Tests of the distribute knob: MirroredStrategy over two logical CPU devices trains as one device does."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import tensorflow as tf

from forgetting_aus import distribute

#: Run in a fresh interpreter: logical devices can only be configured before TensorFlow
#: initialises its devices, which the test session has long done.
MIRRORED_VS_ONE_DEVICE = """
import json
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from forgetting_aus import distribute, losses, models, training
rng = np.random.default_rng(0)
x = rng.integers(0, 256, size=(80, 32, 32, 3), dtype=np.uint8)
y = (x[:, :16].mean(axis=(1, 2, 3)) > x[:, 16:].mean(axis=(1, 2, 3))).astype(int)

def run(mode, devices=None):
    with distribute.replica_scope(mode, devices=devices) as strategy:
        model = models.build_vgg16(2, input_size=32, width=0.125, head_units=16, dropout=0.0, seed=1)
        # 64 training images in global batches of 16: 4 steps per epoch, 20 steps in all
        history = training.fit_classifier(model, (x[:64], y[:64]), (x[64:], y[64:]), loss=losses.focal_loss(gamma=2.0),
                                          epochs=5, batch_size=16, learning_rate=0.01, momentum=0.9, augment="none",
                                          seed=0, progress=False)
        return {"replicas": strategy.num_replicas_in_sync, "loss": history["loss"],
                "described": distribute.describe(strategy)}

print(json.dumps({"one": run("none"), "two": run("mirrored", devices=["/cpu:0", "/cpu:1"])}))
"""


@pytest.mark.slow
def test_mirrored_training_on_two_logical_devices_matches_one_device():
    """Same global batch, same learning rate, no dropout or augmentation: the same losses within 1e-5."""
    done = subprocess.run([sys.executable, "-c", MIRRORED_VS_ONE_DEVICE], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["one"]["replicas"] == 1 and result["two"]["replicas"] == 2
    assert result["two"]["described"] == "MirroredStrategy over 2 replicas (CPU:0, CPU:1)"
    one, two = result["one"]["loss"], result["two"]["loss"]
    assert len(one) == len(two) == 5
    for a, b in zip(one, two, strict=True):
        assert abs(a - b) <= 1e-5 * abs(a), (one, two)


def test_auto_uses_one_device_without_several_gpus():
    if len(tf.config.list_logical_devices("GPU")) > 1:
        pytest.skip("this machine has several GPUs")
    assert distribute.strategy_for("auto") is tf.distribute.get_strategy()
    assert distribute.strategy_for("none") is tf.distribute.get_strategy()
    with distribute.replica_scope("auto") as strategy:
        assert strategy.num_replicas_in_sync == 1 and distribute.describe(strategy) == "one device"


def test_an_unknown_mode_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"distribute must be one of \('auto', 'none', 'mirrored'\), got 'gpu'"):
        distribute.strategy_for("gpu")
