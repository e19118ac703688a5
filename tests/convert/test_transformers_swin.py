"""Parity of the transformers Swin converter with transformers' `SwinModel` (torch, CPU)."""

import numpy as np
import pytest

from tests.extras import require

torch = require("torch")
transformers = require("transformers")
from safetensors.torch import save_file  # noqa: E402

from gdcld_zoo import build_model  # noqa: E402
from gdcld_zoo.convert.state_dict import ConversionError  # noqa: E402
from tests.convert.torch_reference import perturbed  # noqa: E402

# A small Swin whose window (4) matches the model's, so the reference needs no
# padding at 128-pixel multiples (grids 32, 16, 8, 4).
CONFIG = dict(
    image_size=128,
    patch_size=4,
    embed_dim=8,
    depths=[2, 2, 2, 2],
    num_heads=[1, 2, 2, 4],
    window_size=4,
    layer_norm_eps=1e-5,
)
MODEL = dict(embed_dim=8, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=4, decoder_depths=(2, 2, 1))


def _reference(**overrides):
    torch.manual_seed(0)
    config = transformers.SwinConfig(**{**CONFIG, **overrides}, num_labels=3)
    return perturbed(transformers.SwinForImageClassification(config))


@pytest.fixture(scope="module")
def reference():
    return _reference()


def _reference_features(reference, images):
    with torch.no_grad():
        out = reference.swin(torch.from_numpy(images.transpose(0, 3, 1, 2)), output_hidden_states=True)
    maps = list(out.hidden_states[:3]) + [out.last_hidden_state]
    batch, height, width = images.shape[:3]
    return [
        m.numpy().reshape(batch, height // (4 * 2**i), width // (4 * 2**i), -1) for i, m in enumerate(maps)
    ]


def _our_features(model, images):
    features = model.get_layer("encoder")(images, training=False)
    return [np.asarray(features[f"stride_{s}"]) for s in (4, 8, 16, 32)]


@pytest.mark.parametrize("size", [(128, 128), (128, 256)], ids=["square", "non-square"])
def test_4x_names_match_reference(reference, tmp_path, size):
    reference.save_pretrained(tmp_path)  # transformers 5 writes the 4.x names
    with open(tmp_path / "model.safetensors", "rb") as f:
        assert b"attention.self.query" in f.read(100_000)
    images = np.random.default_rng(0).normal(size=(2, *size, 3)).astype("float32")
    model = build_model("swin_unet_tiny", encoder_weights=tmp_path, **MODEL)
    for ours, theirs in zip(_our_features(model, images), _reference_features(reference, images)):
        np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)


def test_5x_names_and_decoder_mirrors_encoder(reference, tmp_path):
    state = {k: v.contiguous() for k, v in reference.swin.state_dict().items()}
    assert any(k.endswith("attention.q_proj.weight") for k in state)
    save_file(state, tmp_path / "swin.safetensors")
    images = np.random.default_rng(1).normal(size=(1, 128, 128, 3)).astype("float32")
    model = build_model("swin_unet_tiny", encoder_weights=tmp_path / "swin.safetensors", **MODEL)
    for ours, theirs in zip(_our_features(model, images), _reference_features(reference, images)):
        np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)
    # Decoder level 0 mirrors encoder stage 2, level 2 (depth 1) the first block of stage 0.
    encoder = model.get_layer("encoder")
    for level, stage, block in ((0, 2, 0), (0, 2, 1), (2, 0, 0)):
        for part in ("fc1", "attention"):
            ours = model.get_layer(f"decoder_level{level}_block{block}_{part}").get_weights()
            theirs = encoder.get_layer(f"stage{stage}_block{block}_{part}").get_weights()
            for a, b in zip(ours, theirs):
                np.testing.assert_array_equal(a, b)


def test_deeper_checkpoint_and_other_window(tmp_path):
    """Swin-T's 6-block stage into a 2-block stage (first blocks used, as the
    official Swin-Unet), and window-4 bias tables into a window-5 model
    (bicubic, equal to PyTorch's)."""
    deeper = _reference(depths=[2, 2, 3, 2])
    state = {k: v.contiguous() for k, v in deeper.state_dict().items()}
    # Buffers that older transformers versions saved; derived from the window, not loaded.
    state["swin.encoder.layers.0.blocks.0.attention.self.relative_position_index"] = torch.zeros(16, 16)
    save_file(state, tmp_path / "d.safetensors")
    model = build_model("swin_unet_tiny", encoder_weights=tmp_path / "d.safetensors", **{**MODEL, "window_size": 5})
    table = deeper.swin.encoder.layers[1].blocks[1].attention.relative_position_bias.relative_position_bias_table
    grid = table.detach().T.reshape(1, -1, 7, 7)
    expected = torch.nn.functional.interpolate(grid, size=(9, 9), mode="bicubic", align_corners=False)
    ours = model.get_layer("encoder").get_layer("stage1_block1_attention").relative_position_bias_table
    np.testing.assert_allclose(np.asarray(ours), expected.reshape(-1, 81).T.numpy(), atol=1e-5)


def test_mismatched_checkpoint_lists_problems(reference, tmp_path):
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}
    state.pop("swin.layernorm.bias")
    state["swin.extra.weight"] = torch.zeros(3)
    state["swin.encoder.layers.0.blocks.0.mlp.fc1.weight"] = torch.zeros(5, 8)
    save_file(state, tmp_path / "bad.safetensors")
    with pytest.raises(ConversionError) as error:
        build_model("swin_unet_tiny", encoder_weights=tmp_path / "bad.safetensors", **MODEL)
    message = str(error.value)
    assert "layernorm.bias" in message and "extra.weight" in message and "blocks.0.mlp.fc1.weight" in message
    assert "missing" in message and "unexpected" in message and "mis-shaped" in message


def test_wrong_heads_in_bias_table_raise(reference, tmp_path):
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, tmp_path / "m.safetensors")
    with pytest.raises(ConversionError, match="num_heads"):
        build_model("swin_unet_tiny", encoder_weights=tmp_path / "m.safetensors", **{**MODEL, "num_heads": (2, 2, 2, 4)})
