"""U-Net: the shared model contract and PaddleSeg's exact size."""

import keras
import pytest

from gdcld_zoo import build_model, get_model_spec
from gdcld_zoo.layers.upsample import BilinearUpsample
from tests.models.model_checks import check_model_contract, check_param_count, trainable_param_count

# PaddleSeg's UNet(num_classes=1), the GDCLD paper's UNet.
PADDLESEG_PARAMS = 13_395_841


@pytest.mark.backend
def test_contract(tmp_path):
    check_model_contract("unet_tiny", tmp_path)


def test_param_count_is_exact():
    check_param_count("unet")


def test_param_count_matches_paddleseg():
    assert abs(get_model_spec("unet").num_params - PADDLESEG_PARAMS) <= 0.01 * PADDLESEG_PARAMS


def test_layout_is_paddleseg():
    model = build_model("unet")
    widths = [model.get_layer(f"encoder_down{i}_2_conv").filters for i in range(1, 5)]
    assert widths == [128, 256, 512, 512]
    decoder = [model.get_layer(f"decoder_up{i}_2_conv").filters for i in range(1, 5)]
    assert decoder == [256, 128, 64, 64]
    # The first decoder stage sees the bottleneck and the 512-channel skip.
    assert model.get_layer("decoder_up1_1_conv").kernel.shape == (3, 3, 1024, 256)
    assert isinstance(model.get_layer("decoder_up1_upsample"), BilinearUpsample)
    keras.backend.clear_session()


@pytest.mark.parametrize("size", [512, 1024])
def test_full_size_builds_for_paper_tiles(size):
    model = build_model("unet", input_shape=(size, size, 3))
    assert model.output_shape == (None, size, size, 1)
    assert trainable_param_count(model) == PADDLESEG_PARAMS
    keras.backend.clear_session()


def test_mismatched_widths_are_refused():
    with pytest.raises(ValueError, match="decoder_widths"):
        build_model("unet", decoder_widths=(256, 128))
