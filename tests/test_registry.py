"""The model registry: names, errors, input-shape validation."""

import pytest

import gdcld_zoo
from gdcld_zoo.errors import InvalidInputError, UnknownNameError

PAPER_MODELS = {
    "unet", "resunet_r50", "deeplabv3_r50", "hrnet_w48", "upernet_vit_b16", "swin_unet",
    *(f"segformer_b{i}" for i in range(6)),
}


def test_list_models_has_only_public_models():
    names = gdcld_zoo.list_models()
    assert names == sorted(names)
    assert {n for n in names if n.startswith("segformer_")} == {f"segformer_b{i}" for i in range(6)}
    assert not any(n.endswith("_tiny") for n in names)
    assert set(names) <= PAPER_MODELS
    assert "segformer_tiny" in gdcld_zoo.list_models(include_tiny=True)


def test_every_public_model_has_a_description_and_size():
    for name in gdcld_zoo.list_models():
        spec = gdcld_zoo.get_model_spec(name)
        assert spec.description and spec.num_params > 0


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownNameError, match="Did you mean 'segformer_b4'"):
        gdcld_zoo.build_model("segformer-b4")


def test_unknown_model_never_offers_the_hidden_test_variants():
    with pytest.raises(UnknownNameError) as info:
        gdcld_zoo.build_model("segformer_tin")
    assert "tiny" not in str(info.value) and "segformer_b0" in str(info.value)


@pytest.mark.parametrize(
    "shape, message",
    [((64, 64), "height, width, channels"), ((60, 64, 3), "multiples of 32"), ((64, 64, 0), "channel")],
)
def test_bad_input_shape_is_a_clear_error(shape, message):
    with pytest.raises(InvalidInputError, match=message):
        gdcld_zoo.build_model("segformer_tiny", input_shape=shape)


def test_bad_num_classes_is_a_clear_error():
    with pytest.raises(InvalidInputError, match="num_classes"):
        gdcld_zoo.build_model("segformer_tiny", num_classes=0)


def test_unknown_override_names_the_allowed_ones():
    with pytest.raises(InvalidInputError, match="hidden_sizes"):
        gdcld_zoo.build_model("segformer_tiny", hiden_sizes=(8, 16, 24, 32))


def test_encoder_weights_for_a_model_trained_from_scratch_is_a_clear_error():
    with pytest.raises(InvalidInputError, match="trained from scratch"):
        gdcld_zoo.build_model("unet_tiny", encoder_weights="resnet.safetensors")
