"""Swin-Unet: the shared model contract, its size and window attention on any grid."""

import numpy as np
import pytest

from gdcld_zoo import build_model
from gdcld_zoo.models.swin import SwinEncoder, WindowAttention
from tests.models.model_checks import check_model_contract, check_param_count, graph_size_tests, trainable_param_count


@pytest.mark.backend
def test_contract(tmp_path):
    check_model_contract("swin_unet_tiny", tmp_path)


@pytest.mark.slow
def test_contract_softmax_classes(tmp_path):
    check_model_contract("swin_unet_tiny", tmp_path, size=(32, 64), num_classes=3)


def test_param_count_is_exact():
    check_param_count("swin_unet")


def test_size_matches_the_paper_setting():
    """27.2 M (±5 %); with the official window 7 it is the official 27.17 M."""
    assert abs(trainable_param_count(build_model("swin_unet")) - 27.2e6) / 27.2e6 < 0.05
    assert trainable_param_count(build_model("swin_unet", window_size=7)) == 27_168_132


def test_full_size_builds_for_paper_tiles():
    for size in (512, 1024):
        model = build_model("swin_unet", input_shape=(size, size, 3))
        assert model.output_shape == (None, size, size, 1)


def test_encoder_returns_features_keyed_by_stride():
    encoder = build_model("swin_unet_tiny").get_layer("encoder")
    assert isinstance(encoder, SwinEncoder)
    features = encoder(np.zeros((1, 64, 96, 3), "float32"))
    assert {k: tuple(v.shape) for k, v in features.items()} == {
        "stride_4": (1, 16, 24, 8),
        "stride_8": (1, 8, 12, 16),
        "stride_16": (1, 4, 6, 32),
        "stride_32": (1, 2, 3, 64),
    }


def test_one_model_runs_on_sizes_that_need_padding():
    """Grids that are not window multiples (tiny window 4: 24x40, 6x10, 3x5 tokens)."""
    model = build_model("swin_unet_tiny")
    for size in ((96, 160), (32, 32), (160, 96)):
        out = np.asarray(model(np.ones((1, *size, 3), "float32")))
        assert out.shape == (1, *size, 1) and np.all(np.isfinite(out))


def _attention_pair(window, smaller):
    """Two layers with the same weights; the second has a smaller window whose
    bias table is the centre of the first's."""
    big = WindowAttention(8, 2, window_size=window, shift_size=window // 2)
    small = WindowAttention(8, 2, window_size=smaller, shift_size=0)
    big.build((None, None, None, 8))
    small.build((None, None, None, 8))
    table = np.random.default_rng(0).normal(size=big.relative_position_bias_table.shape).astype("float32")
    big.relative_position_bias_table.assign(table)
    cut = window - smaller
    side = 2 * window - 1
    small.relative_position_bias_table.assign(table.reshape(side, side, 2)[cut:side - cut, cut:side - cut].reshape(-1, 2))
    for name in ("query", "key", "value", "output_dense"):
        getattr(small, name).set_weights(getattr(big, name).get_weights())
    return big, small


def test_padding_is_masked():
    """A 3x3 grid in a window of 4 (padded, no shift since it fits one window)
    equals attention in one 3x3 window: the padded tokens take no part."""
    big, small = _attention_pair(4, 3)
    x = np.random.default_rng(1).normal(size=(2, 3, 3, 8)).astype("float32")
    np.testing.assert_allclose(np.asarray(big(x)), np.asarray(small(x)), atol=1e-5)


def test_shift_mask_separates_wrapped_regions():
    """With a shift, a token's output depends only on tokens of its own
    (unshifted) neighbourhood: changing a far token leaves it unchanged."""
    layer = WindowAttention(8, 2, window_size=4, shift_size=2)
    x = np.random.default_rng(2).normal(size=(1, 8, 8, 8)).astype("float32")
    base = np.asarray(layer(x))
    changed = x.copy()
    changed[0, 7, 7] += 10.0  # after the cyclic shift, (7, 7) and (0, 0) share a window
    out = np.asarray(layer(changed))
    assert np.allclose(out[0, 0, 0], base[0, 0, 0], atol=1e-6)  # (0, 0) must not see the wrapped-around (7, 7)
    assert not np.allclose(out[0, 6, 6], base[0, 6, 6])


def test_decoder_depths_are_validated():
    with pytest.raises(ValueError, match="decoder_depths"):
        build_model("swin_unet_tiny", decoder_depths=(1, 1))


def test_docstring_examples_run():
    import doctest

    from gdcld_zoo.models import swin, swin_unet

    for module in (swin, swin_unet):
        result = doctest.testmod(module, raise_on_error=True)
        assert result.attempted >= 2


# Padding, shift and masks are decided in the graph (as an ONNX export needs).
test_tf_function_with_unknown_sizes_matches_eager, test_jax_jit_retraced_per_size_matches_eager = graph_size_tests(
    lambda: build_model("swin_unet_tiny"), ((1, 96, 160, 3), (1, 64, 64, 3)), atol=1e-4
)
