"""Parity of the transformers ViT converter with transformers' `ViTModel` (torch, CPU)."""

import numpy as np
import pytest

from tests.extras import require

torch = require("torch")
transformers = require("transformers")
from safetensors.torch import save_file  # noqa: E402

from gdcld_zoo import build_model  # noqa: E402
from gdcld_zoo.convert.state_dict import ConversionError  # noqa: E402
from gdcld_zoo.convert.transformers_vit import load_encoder_weights, resize_grid  # noqa: E402
from tests.convert.torch_reference import perturbed  # noqa: E402

# A small ViT: 16-pixel patches, weights made for 64-pixel images (a 4×4 grid).
CONFIG = dict(
    hidden_size=32,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=128,
    image_size=64,
    patch_size=16,
    layer_norm_eps=1e-6,
)
MODEL = dict(hidden_size=32, depth=4, num_heads=4, image_size=64, out_indices=(0, 1, 2, 3), neck_channels=16, channels=16)


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    return perturbed(transformers.ViTForImageClassification(transformers.ViTConfig(**CONFIG, num_labels=5)))


def _reference_features(reference, images):
    with torch.no_grad():
        out = reference.vit(
            torch.from_numpy(images.transpose(0, 3, 1, 2)), output_hidden_states=True, interpolate_pos_encoding=True
        )
    grid = (images.shape[1] // 16, images.shape[2] // 16)
    maps = [h[:, 1:].numpy().reshape((len(images),) + grid + (-1,)) for h in out.hidden_states[1:]]
    maps[-1] = out.last_hidden_state[:, 1:].numpy().reshape(maps[-1].shape)  # after the final layer norm
    return maps


def _our_features(model, images):
    features = model.get_layer("encoder")(images, training=False)
    return [np.asarray(features[f"block_{i}"]) for i in range(4)]


@pytest.mark.parametrize("size", [(64, 64), (96, 160)], ids=["pretrained-grid", "interpolated-non-square"])
def test_4x_names_match_reference(reference, tmp_path, size):
    reference.save_pretrained(tmp_path)  # transformers 5 writes the 4.x names
    with open(tmp_path / "model.safetensors", "rb") as f:
        assert b"attention.attention.query" in f.read(100_000)
    images = np.random.default_rng(0).normal(size=(2, *size, 3)).astype("float32")
    model = build_model("upernet_vit_tiny", encoder_weights=tmp_path, **MODEL)
    for ours, theirs in zip(_our_features(model, images), _reference_features(reference, images)):
        np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)


def test_5x_names_and_vit_model_checkpoint(reference, tmp_path):
    state = {k: v.contiguous() for k, v in reference.vit.state_dict().items()}
    assert "layers.0.attention.q_proj.weight" in state and "pooler.dense.weight" not in state
    save_file(state, tmp_path / "vit.safetensors")
    images = np.random.default_rng(1).normal(size=(1, 64, 128, 3)).astype("float32")
    model = build_model("upernet_vit_tiny", encoder_weights=tmp_path / "vit.safetensors", **MODEL)
    for ours, theirs in zip(_our_features(model, images), _reference_features(reference, images)):
        np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)


def test_position_embeddings_resized_for_another_image_size(reference, tmp_path):
    """Weights for a 4×4 grid load into a model built for 128 pixels (8×8) by
    bicubic resizing, which matches PyTorch's bicubic interpolation."""
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, tmp_path / "m.safetensors")
    model = build_model("upernet_vit_tiny", encoder_weights=tmp_path / "m.safetensors", **{**MODEL, "image_size": 128})
    ours = np.asarray(model.get_layer("encoder").get_layer("embeddings").position_embedding)
    grid = reference.vit.embeddings.position_embeddings.detach()[:, 1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
    theirs = torch.nn.functional.interpolate(grid, size=(8, 8), mode="bicubic", align_corners=False)
    np.testing.assert_allclose(ours[0, 1:], theirs.permute(0, 2, 3, 1).reshape(64, -1).numpy(), atol=1e-5)
    assert resize_grid(np.ones((4, 4, 2), "float32"), 4).shape == (4, 4, 2)


def test_mismatched_checkpoint_lists_problems(reference, tmp_path):
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}
    state.pop("vit.layernorm.weight")
    state["vit.extra.weight"] = torch.zeros(3)
    state["vit.layers.0.mlp.fc1.weight"] = torch.zeros(7, 32)
    save_file(state, tmp_path / "bad.safetensors")
    with pytest.raises(ConversionError) as error:
        build_model("upernet_vit_tiny", encoder_weights=tmp_path / "bad.safetensors", **MODEL)
    message = str(error.value)
    assert "layernorm.weight" in message and "extra.weight" in message and "layers.0.mlp.fc1.weight" in message
    assert "missing" in message and "unexpected" in message and "mis-shaped" in message


def test_wrong_width_raises(tmp_path):
    model = build_model("upernet_vit_tiny", **MODEL)
    narrow = {"embeddings.cls_token": torch.zeros(1, 1, 8), "embeddings.position_embeddings": torch.zeros(1, 17, 8)}
    save_file(narrow, tmp_path / "w.safetensors")
    with pytest.raises(ConversionError, match="hidden_size"):
        load_encoder_weights(model, tmp_path / "w.safetensors")
