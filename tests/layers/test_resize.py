"""Matrix-based resizing equals PyTorch's adaptive pooling and interpolation."""

import numpy as np
import pytest

from tests.extras import require

torch = require("torch")

from gdcld_zoo.layers.resize import AdaptiveAveragePooling2D, BilinearResizeLike  # noqa: E402
from gdcld_zoo.layers.resize import cubic_resize_matrix, resize_with_matrices  # noqa: E402

F = torch.nn.functional


def _nchw(x):
    return torch.from_numpy(x.transpose(0, 3, 1, 2))


def _nhwc(t):
    return t.numpy().transpose(0, 2, 3, 1)


@pytest.fixture
def feature_map():
    return np.random.default_rng(0).normal(size=(2, 10, 16, 3)).astype("float32")


@pytest.mark.parametrize("bins", [1, 2, 3, 6])
def test_adaptive_average_pooling_matches_torch(feature_map, bins):
    ours = np.asarray(AdaptiveAveragePooling2D(bins)(feature_map))
    np.testing.assert_allclose(ours, _nhwc(F.adaptive_avg_pool2d(_nchw(feature_map), bins)), atol=1e-5)


@pytest.mark.parametrize("size", [(16, 10), (3, 7), (32, 32)])
def test_bilinear_resize_matches_torch(feature_map, size):
    ours = np.asarray(BilinearResizeLike()([feature_map, np.zeros((1, *size, 1), "float32")]))
    theirs = F.interpolate(_nchw(feature_map), size=size, mode="bilinear", align_corners=False)
    np.testing.assert_allclose(ours, _nhwc(theirs), atol=1e-5)


@pytest.mark.parametrize("size", [(20, 24), (5, 9), (10, 16)])
def test_bicubic_resize_matches_torch(feature_map, size):
    rows, cols = cubic_resize_matrix(size[0], 10), cubic_resize_matrix(size[1], 16)
    ours = np.asarray(resize_with_matrices(feature_map, rows, cols))
    theirs = F.interpolate(_nchw(feature_map), size=size, mode="bicubic", align_corners=False)
    np.testing.assert_allclose(ours, _nhwc(theirs), atol=1e-5)


def test_docstring_examples_run():
    import doctest

    from gdcld_zoo.layers import resize

    assert doctest.testmod(resize, raise_on_error=True).attempted == 4
