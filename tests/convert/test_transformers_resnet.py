"""Parity of the transformers ResNet converter with transformers' `ResNetModel` (torch, CPU)."""

import numpy as np
import pytest

from tests.extras import require

torch = require("torch")
transformers = require("transformers")
from safetensors.numpy import save_file  # noqa: E402

from gdcld_zoo import build_model  # noqa: E402
from gdcld_zoo.convert import ConversionError  # noqa: E402
from gdcld_zoo.convert.transformers_resnet import load_encoder_weights  # noqa: E402
from gdcld_zoo.models.resnet import RESNET50_VD, ResNetEncoder  # noqa: E402
from tests.convert.torch_reference import perturbed  # noqa: E402

# Not ResNet-50: other widths and depths, so a layout mistake cannot hide.
CONFIG = dict(embedding_size=8, hidden_sizes=[16, 32, 32, 64], depths=[1, 2, 1, 2], layer_type="bottleneck")
ENCODER = dict(depths=(1, 2, 1, 2), widths=(4, 8, 8, 16), stem_widths=(8,))


def _state(model):
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def reference():
    return perturbed(transformers.ResNetModel(transformers.ResNetConfig(**CONFIG)))


@pytest.fixture
def checkpoint(reference, tmp_path):
    path = tmp_path / "model.safetensors"
    save_file(_state(reference), str(path))
    return path


def _nchw(x):
    return torch.from_numpy(x.transpose(0, 3, 1, 2))


def test_features_match_transformers(reference, checkpoint):
    encoder = ResNetEncoder(**ENCODER)
    load_encoder_weights(encoder, checkpoint)
    images = np.random.default_rng(0).normal(size=(2, 64, 96, 3)).astype("float32")
    with torch.no_grad():
        out = reference(_nchw(images), output_hidden_states=True)
        stem = reference.embedder.embedder(_nchw(images))
    expected = {"stride_2": stem, **{f"stride_{2 ** (i + 2)}": out.hidden_states[i + 1] for i in range(4)}}
    features = encoder(images, training=False)
    assert sorted(features) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(
            np.asarray(features[key]), value.numpy().transpose(0, 2, 3, 1), atol=1e-4, err_msg=key
        )


def test_classification_checkpoint_folder_loads(reference, tmp_path):
    classifier = transformers.ResNetForImageClassification(transformers.ResNetConfig(num_labels=5, **CONFIG))
    classifier.resnet.load_state_dict(reference.state_dict())
    classifier.save_pretrained(tmp_path, safe_serialization=True)
    model = build_model("resunet_tiny", encoder_weights=tmp_path, **ENCODER)
    kernel = np.asarray(model.get_layer("encoder").get_layer("stage4_block2_conv3").kernel)
    expected = reference.encoder.stages[3].layers[1].layer[2].convolution.weight.detach().numpy()
    np.testing.assert_array_equal(kernel, expected.transpose(2, 3, 1, 0))


def test_mismatched_checkpoint_lists_every_problem(reference, tmp_path):
    state = _state(reference)
    del state["encoder.stages.1.layers.0.shortcut.convolution.weight"]
    state["encoder.stages.9.layers.0.layer.0.convolution.weight"] = np.zeros((1,), "float32")
    state["embedder.embedder.normalization.weight"] = np.zeros((3,), "float32")
    path = tmp_path / "broken.safetensors"
    save_file(state, str(path))
    with pytest.raises(ConversionError) as error:
        load_encoder_weights(ResNetEncoder(**ENCODER), path)
    message = str(error.value)
    assert "1 missing" in message and "encoder.stages.1.layers.0.shortcut.convolution.weight" in message
    assert "1 unexpected" in message and "encoder.stages.9.layers.0.layer.0.convolution.weight" in message
    assert "1 mis-shaped" in message and "embedder.embedder.normalization.weight" in message


def test_vd_encoder_is_refused(checkpoint):
    with pytest.raises(ConversionError, match="7×7 stem"):
        load_encoder_weights(ResNetEncoder(**RESNET50_VD), checkpoint)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConversionError, match="No checkpoint at .*safetensors"):
        build_model("resunet_tiny", encoder_weights=tmp_path / "nothing.safetensors")


def test_microsoft_resnet50_layout_loads_into_resunet_r50(tmp_path):
    """The full microsoft/resnet-50 layout (ResNetForImageClassification,
    `resnet.` prefix and 1000-class head), every tensor consumed."""
    torch.manual_seed(0)
    classifier = transformers.ResNetForImageClassification(transformers.ResNetConfig(num_labels=1000))
    classifier.save_pretrained(tmp_path, safe_serialization=True)
    model = build_model("resunet_r50", encoder_weights=tmp_path)
    stem = np.asarray(model.get_layer("encoder").get_layer("stem_conv1").kernel)
    expected = classifier.resnet.embedder.embedder.convolution.weight.detach().numpy()
    np.testing.assert_array_equal(stem, expected.transpose(2, 3, 1, 0))
