"""ResUNet: the shared model contract, the ResNet-50 encoder and its size."""

import keras
import numpy as np
import pytest

from gdcld_zoo import build_model, get_model_spec
from gdcld_zoo.models.resnet import ResNetEncoder
from tests.models.model_checks import check_model_contract, check_param_count, trainable_param_count

# segmentation_models_pytorch's Unet("resnet50", classes=1): 32,521,105.
TARGET_PARAMS = 32_500_000


@pytest.mark.backend
def test_contract(tmp_path):
    check_model_contract("resunet_tiny", tmp_path)


def test_param_count_is_exact():
    check_param_count("resunet_r50")


def test_param_count_within_target():
    assert abs(get_model_spec("resunet_r50").num_params - TARGET_PARAMS) <= 0.08 * TARGET_PARAMS


def test_encoder_is_resnet50_and_every_stage_is_skipped():
    model = build_model("resunet_r50")
    encoder = model.get_layer("encoder")
    assert isinstance(encoder, ResNetEncoder)
    assert trainable_param_count(encoder) == 23_508_032  # torchvision resnet50 without fc
    assert encoder.feature_channels == {
        "stride_2": 64, "stride_4": 256, "stride_8": 512, "stride_16": 1024, "stride_32": 2048
    }
    # v1.5: the stride is in the 3×3 convolution.
    assert encoder.get_layer("stage2_block1_conv2").strides == (2, 2)
    assert encoder.get_layer("stage2_block1_conv1").strides == (1, 1)
    in_channels = [model.get_layer(f"decoder_block{i}_1_conv").kernel.shape[2] for i in range(1, 6)]
    assert in_channels == [2048 + 1024, 256 + 512, 128 + 256, 64 + 64, 32]
    keras.backend.clear_session()


def test_encoder_features_keyed_by_stride():
    encoder = build_model("resunet_tiny").get_layer("encoder")
    features = encoder(np.zeros((1, 64, 96, 3), "float32"))
    assert {k: tuple(v.shape)[1:3] for k, v in features.items()} == {
        "stride_2": (32, 48), "stride_4": (16, 24), "stride_8": (8, 12), "stride_16": (4, 6), "stride_32": (2, 3)
    }


@pytest.mark.parametrize("size", [512, 1024])
def test_full_size_builds_for_paper_tiles(size):
    model = build_model("resunet_r50", input_shape=(size, size, 3))
    assert model.output_shape == (None, size, size, 1)
    keras.backend.clear_session()
