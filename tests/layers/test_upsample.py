"""BilinearUpsample equals PyTorch's bilinear `align_corners=False` and works on unknown sizes."""

import numpy as np
import pytest
import tensorflow as tf

from gdcld_zoo.layers import BilinearUpsample

from tests.extras import require

torch = require("torch")


@pytest.mark.parametrize("factor", [2, 3, 4, 8])
def test_matches_pytorch_interpolate(factor):
    x = np.random.default_rng(factor).normal(size=(2, 5, 7, 3)).astype("float32")
    ours = np.asarray(BilinearUpsample(factor)(x))
    reference = torch.nn.functional.interpolate(
        torch.from_numpy(x.transpose(0, 3, 1, 2)), scale_factor=factor, mode="bilinear", align_corners=False
    ).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_runs_in_a_graph_with_unknown_height_and_width():
    layer = BilinearUpsample(4)
    function = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, 2), tf.float32)])
    x = np.random.default_rng(0).normal(size=(1, 3, 6, 2)).astype("float32")
    np.testing.assert_allclose(function(x).numpy(), np.asarray(layer(x)), atol=1e-6)
    assert function(x).shape == (1, 12, 24, 2)


def test_factor_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="positive integer"):
        BilinearUpsample(1.5)
