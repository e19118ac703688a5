"""Parity of the transformers SegFormer converter with transformers itself (torch, CPU)."""

import json

import numpy as np
import pytest

from tests.extras import require

torch = require("torch")
transformers = require("transformers")
from safetensors.torch import save_file  # noqa: E402

from gdcld_zoo import build_model  # noqa: E402
from gdcld_zoo.convert import ConversionError, from_transformers  # noqa: E402
from gdcld_zoo.models.segformer import MIT_VARIANTS  # noqa: E402
from tests.convert.torch_reference import perturbed  # noqa: E402

# Not a preset: other widths, depths, heads and reduction ratios, 3 classes.
CONFIG = dict(
    hidden_sizes=[16, 24, 40, 64],
    depths=[1, 2, 1, 1],
    num_attention_heads=[1, 2, 5, 8],
    sr_ratios=[4, 2, 2, 1],
    decoder_hidden_size=32,
    num_labels=3,
)


def _reference_logits(model, images):
    with torch.no_grad():
        logits = model(torch.from_numpy(images.transpose(0, 3, 1, 2))).logits
        logits = torch.nn.functional.interpolate(
            logits, size=images.shape[1:3], mode="bilinear", align_corners=False
        )
    return logits.numpy().transpose(0, 2, 3, 1)


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    config = transformers.SegformerConfig(**CONFIG)
    return perturbed(transformers.SegformerForSemanticSegmentation(config))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).normal(size=(2, 224, 320, 3)).astype("float32")


def test_from_transformers_4x_names_matches_reference(reference, images, tmp_path):
    reference.save_pretrained(tmp_path)  # transformers 5 still writes the 4.x names
    with open(tmp_path / "model.safetensors", "rb") as f:
        assert b"attention.self.query" in f.read(200_000)
    model = from_transformers(tmp_path)
    ours = np.asarray(model(images, training=False))
    np.testing.assert_allclose(ours, _reference_logits(reference, images), atol=1e-4, rtol=0)


def test_from_transformers_5x_names_matches_reference(reference, images, tmp_path):
    reference.config.to_json_file(tmp_path / "config.json")
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}
    assert any("attention.q_proj" in k for k in state)
    save_file(state, tmp_path / "model.safetensors")
    model = from_transformers(tmp_path)
    ours = np.asarray(model(images))
    np.testing.assert_allclose(ours, _reference_logits(reference, images), atol=1e-4, rtol=0)


def test_encoder_weights_load_into_registered_model(tmp_path):
    encoder_config = transformers.SegformerConfig(
        hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_attention_heads=[1, 2, 1, 2]
    )
    reference = perturbed(transformers.SegformerForImageClassification(encoder_config))
    reference.save_pretrained(tmp_path)
    model = build_model("segformer_tiny", encoder_weights=tmp_path)
    images = np.random.default_rng(1).normal(size=(1, 64, 96, 3)).astype("float32")
    features = model.get_layer("encoder")(images)
    with torch.no_grad():
        hidden = reference.segformer(
            torch.from_numpy(images.transpose(0, 3, 1, 2)), output_hidden_states=True
        ).hidden_states
    for stride, expected in zip((4, 8, 16, 32), hidden):
        np.testing.assert_allclose(
            np.asarray(features[f"stride_{stride}"]), expected.numpy().transpose(0, 2, 3, 1), atol=1e-4
        )


def test_mismatched_checkpoint_names_every_problem(reference, tmp_path):
    reference.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["depths"] = [1, 1, 1, 1]
    config["hidden_sizes"] = [16, 24, 40, 32]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConversionError, match="unexpected tensors .*mis-shaped tensors"):
        from_transformers(tmp_path)


def test_missing_config_is_a_clear_error(tmp_path):
    with pytest.raises(ConversionError, match="no config.json"):
        from_transformers(tmp_path)


@pytest.mark.parametrize("variant", sorted(MIT_VARIANTS))
def test_registered_variants_match_transformers_parameter_counts(variant):
    config = MIT_VARIANTS[variant]
    hf_config = transformers.SegformerConfig(
        hidden_sizes=list(config["hidden_sizes"]),
        depths=list(config["depths"]),
        decoder_hidden_size=config["decoder_hidden_size"],
        num_labels=1,
    )
    with torch.device("meta"):
        reference = transformers.SegformerForSemanticSegmentation(hf_config)
    from gdcld_zoo import get_model_spec

    assert get_model_spec(f"segformer_{variant}").num_params == sum(p.numel() for p in reference.parameters())
