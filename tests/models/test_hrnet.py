"""HRNet + FCN head: the shared model contract, size, feature pyramid and full-size builds."""

import doctest

import keras
import numpy as np
import pytest

from gdcld_zoo import build_model, get_model_spec, list_models
from gdcld_zoo.models import hrnet
from tests.models.model_checks import check_model_contract, check_param_count, trainable_param_count

# GDCLD paper's HRNet-48 (PaddleSeg FCN on HRNet_W48) at num_classes=1.
PAPER_PARAMS = 65_846_401


@pytest.mark.backend
def test_contract(tmp_path):
    check_model_contract("hrnet_tiny", tmp_path)


def test_param_count():
    check_param_count("hrnet_w48")


def test_size_matches_the_paper():
    assert abs(get_model_spec("hrnet_w48").num_params - PAPER_PARAMS) <= 0.01 * PAPER_PARAMS
    assert "hrnet_w48" in list_models() and "hrnet_tiny" not in list_models()


def test_encoder_returns_stride_keyed_branches():
    model = build_model("hrnet_tiny")
    features = model.encoder(np.zeros((1, 64, 96, 3), "float32"))
    config = get_model_spec("hrnet_tiny").config
    expected = {"stride_2": config["stem_channels"]}
    expected.update({f"stride_{4 * 2**i}": c for i, c in enumerate(config["branch_channels"])})
    assert {k: tuple(v.shape) for k, v in features.items()} == {
        k: (1, 64 // int(k.split("_")[1]), 96 // int(k.split("_")[1]), c) for k, c in expected.items()
    }


def test_other_classes_and_head_width():
    model = build_model("hrnet_tiny", num_classes=3, head_channels=8, input_shape=(96, 64, 3))
    assert model.output_shape == (None, 96, 64, 3)
    assert model.get_layer("head_conv").kernel.shape == (1, 1, 40, 8)


def test_rejects_a_wrong_branch_layout():
    with pytest.raises(ValueError, match="four branches"):
        build_model("hrnet_tiny", branch_channels=(4, 8, 12))


@pytest.mark.parametrize("size", [512, 1024])
def test_full_size_builds_for_paper_tiles(size):
    model = build_model("hrnet_w48", input_shape=(size, size, 3))
    assert model.output_shape == (None, size, size, 1)
    assert model.encoder.output["stride_32"].shape == (None, size // 32, size // 32, 384)
    assert trainable_param_count(model) == PAPER_PARAMS
    keras.backend.clear_session()


def test_docstring_examples():
    assert doctest.testmod(hrnet, raise_on_error=True).attempted == 4
