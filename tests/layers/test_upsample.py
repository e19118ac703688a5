"""BilinearUpsample equals PyTorch's bilinear `align_corners=False` and works on unknown sizes."""

import numpy as np
import pytest
from keras import ops

from gdcld_zoo.layers import BilinearUpsample
from tests.models.model_checks import graph_size_tests

from tests.extras import require

torch = require("torch")


@pytest.mark.parametrize("factor", [2, 3, 4, 8])
def test_matches_pytorch_interpolate(factor):
    x = np.random.default_rng(factor).normal(size=(2, 5, 7, 3)).astype("float32")
    ours = ops.convert_to_numpy(BilinearUpsample(factor)(x))
    reference = torch.nn.functional.interpolate(
        torch.from_numpy(x.transpose(0, 3, 1, 2)), scale_factor=factor, mode="bilinear", align_corners=False
    ).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


test_tf_function_with_unknown_sizes_matches_eager, test_jax_jit_retraced_per_size_matches_eager = graph_size_tests(
    lambda: BilinearUpsample(4), ((1, 3, 6, 2), (2, 5, 4, 2)), atol=1e-6
)


def test_factor_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="positive integer"):
        BilinearUpsample(1.5)
