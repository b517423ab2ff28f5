"""Tests of forgetting_aus.shared_blocks: networks sharing leading conv blocks."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures_models import freeze_family  # tests/ is on sys.path under pytest

from forgetting_aus import models, shared_blocks, training

SIZE = 32


def test_shared_blocks_are_read_from_the_weights():
    family = freeze_family()
    assert [shared_blocks.leading_shared_blocks(family[k], family[5]) for k in range(6)] == [0, 1, 2, 3, 4, 5]
    stranger = models.build_vgg16(2, input_size=SIZE, width=0.0625, head_units=16, seed=99)
    assert shared_blocks.leading_shared_blocks(stranger, family[5]) == 0
    assert [len(segment) for segment in shared_blocks.conv_segments(stranger)] == [3, 3, 4, 4, 4]


@pytest.mark.parametrize("flip", [False, True])
def test_equal_to_each_network_run_alone(flip, tmp_path):
    """Bit for bit what training.extract_features gives each network, in memory and on disk,
    with a last batch shorter than the others."""
    family = freeze_family()
    family["stranger"] = models.build_vgg16(2, input_size=SIZE, width=0.0625, head_units=16, seed=99)
    images = np.random.default_rng(0).integers(0, 256, (11, SIZE, SIZE, 3)).astype(np.uint8)
    shared = shared_blocks.shared_block_features(family, images, reference=5, flip=flip, batch_size=4)
    files = {key: tmp_path / f"{key}.npy" for key in family}
    on_disk = shared_blocks.shared_block_features(family, images, reference=5, flip=flip, batch_size=4, out=files)
    for key, model in family.items():
        alone = training.extract_features(model, images, batch_size=4, flip=flip)
        np.testing.assert_array_equal(shared[key], alone)
        np.testing.assert_array_equal(np.load(files[key]), alone)
        assert on_disk[key].shape == alone.shape
    assert not np.array_equal(shared[0], shared[5])  # the family really differs


def test_float_inputs_equal_block5_features():
    """Preprocessed float32 inputs give concepts.block5_features' values, bit for bit."""
    from forgetting_aus import concepts

    family = freeze_family()
    inputs = models.preprocess(np.random.default_rng(1).integers(0, 256, (7, SIZE, SIZE, 3)).astype(np.uint8))
    shared = shared_blocks.shared_block_features(family, inputs, reference=5, batch_size=4)
    for key, model in family.items():
        np.testing.assert_array_equal(shared[key].reshape(len(inputs), -1),
                                      concepts.block5_features(model, inputs, batch_size=4))


def test_bad_arguments_are_refused():
    family = freeze_family()
    images = np.zeros((2, SIZE, SIZE, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="reference 7 is not one of the networks"):
        shared_blocks.shared_block_features(family, images, reference=7)
    with pytest.raises(ValueError, match="one file per network"):
        shared_blocks.shared_block_features(family, images, reference=5, out={5: "x.npy"})
    with pytest.raises(ValueError, match="at least one image"):
        shared_blocks.shared_block_features(family, images[:0], reference=5)
    with pytest.raises(ValueError, match="uint8 or float32"):
        shared_blocks.shared_block_features(family, images.astype(np.float64), reference=5)
    with pytest.raises(ValueError, match="mirrors uint8 images"):
        shared_blocks.shared_block_features(family, images.astype(np.float32), reference=5, flip=True)
