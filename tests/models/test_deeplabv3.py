"""DeepLabV3: the shared model contract, the dilated ResNet-50-vd and PaddleSeg's size."""

import keras
import numpy as np
import pytest

from gdcld_zoo import build_model, get_model_spec
from gdcld_zoo.models.deeplabv3 import SpatialBroadcast
from gdcld_zoo.models.resnet import ResNetEncoder
from tests.models.model_checks import check_model_contract, check_param_count, graph_size_tests

# PaddleSeg's DeepLabV3(ResNet50_vd, output_stride=8, multi_grid=(1, 2, 4),
# aspp_ratios=(1, 12, 24, 36)) with num_classes=1.
PADDLESEG_PARAMS = 39_063_905


@pytest.mark.backend
def test_contract(tmp_path):
    check_model_contract("deeplabv3_tiny", tmp_path)


def test_param_count_is_exact():
    check_param_count("deeplabv3_r50")


def test_param_count_matches_paddleseg():
    assert abs(get_model_spec("deeplabv3_r50").num_params - PADDLESEG_PARAMS) <= 0.01 * PADDLESEG_PARAMS


def test_encoder_is_resnet50_vd_at_output_stride_8():
    model = build_model("deeplabv3_r50")
    encoder = model.get_layer("encoder")
    assert isinstance(encoder, ResNetEncoder)
    assert encoder.feature_channels == {"stride_2": 64, "stride_4": 256, "stride_8": 2048}
    assert [encoder.get_layer(f"stem_conv{i}").filters for i in (1, 2, 3)] == [32, 32, 64]
    assert encoder.get_layer("stage2_block1_downsample_pool").strides == (2, 2)
    assert encoder.get_layer("stage2_block1_downsample_conv").strides == (1, 1)
    dilations = {
        stage: [encoder.get_layer(f"stage{stage}_block{b}_conv2").dilation_rate[0] for b in range(1, blocks + 1)]
        for stage, blocks in ((2, 4), (3, 6), (4, 3))
    }
    assert dilations == {2: [1] * 4, 3: [2] * 6, 4: [4, 8, 16]}
    assert encoder.get_layer("stage3_block1_conv2").strides == (1, 1)
    rates = [model.get_layer(f"aspp_branch{i}_conv").dilation_rate[0] for i in (1, 2, 3, 4)]
    assert rates == [1, 12, 24, 36]
    assert model.get_layer("aspp_project_conv").kernel.shape == (1, 1, 5 * 256, 256)
    keras.backend.clear_session()


def test_dilated_encoder_keeps_stride_8():
    encoder = build_model("deeplabv3_tiny").get_layer("encoder")
    features = encoder(np.zeros((1, 64, 96, 3), "float32"))
    assert {k: tuple(v.shape)[1:3] for k, v in features.items()} == {
        "stride_2": (32, 48), "stride_4": (16, 24), "stride_8": (8, 12)
    }


def test_image_pooling_broadcasts_the_global_mean_at_any_size():
    model = build_model("deeplabv3_tiny")
    branch = keras.Model(model.input, model.get_layer("aspp_pooling_broadcast").output)
    for height, width in ((32, 32), (64, 160)):
        out = np.asarray(branch(np.random.default_rng(0).normal(size=(2, height, width, 3)).astype("float32")))
        assert out.shape[1:3] == (height // 8, width // 8)
        np.testing.assert_array_equal(out, np.broadcast_to(out[:, :1, :1], out.shape))
    layer = SpatialBroadcast()
    pooled = np.arange(6, dtype="float32").reshape(2, 1, 1, 3)
    np.testing.assert_array_equal(layer([pooled, np.zeros((2, 4, 5, 7), "float32")]), np.broadcast_to(pooled, (2, 4, 5, 3)))


@pytest.mark.parametrize("size", [512, 1024])
def test_full_size_builds_for_paper_tiles(size):
    model = build_model("deeplabv3_r50", input_shape=(size, size, 3))
    assert model.output_shape == (None, size, size, 1)
    assert model.get_layer("aspp_concat").output.shape[1:3] == (size // 8, size // 8)
    keras.backend.clear_session()


test_tf_function_with_unknown_sizes_matches_eager, test_jax_jit_retraced_per_size_matches_eager = graph_size_tests(
    lambda: build_model("deeplabv3_tiny"), ((1, 64, 96, 3), (2, 32, 32, 3)), atol=1e-5
)
