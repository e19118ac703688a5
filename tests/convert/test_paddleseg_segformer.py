"""PaddleSeg SegFormer `.pdparams` conversion: logits against PaddleSeg's own on a
checkpoint PaddleSeg wrote (`data/make_paddleseg_segformer.py`), a round trip through a
checkpoint this test writes from a known Keras SegFormer, and refusal of pickles that run code."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from gdcld_zoo.convert import ConversionError
from gdcld_zoo.convert.paddleseg_segformer import (
    from_paddleseg,
    load_paddleseg_encoder,
    read_pdparams,
    segformer_config_from_pdparams,
)
from gdcld_zoo.models.segformer import SegFormer

# Not a preset: uneven widths, depths, reduction and MLP ratios, 2 classes, 4 bands.
CONFIG = {
    "num_classes": 2,
    "input_shape": (None, None, 4),
    "hidden_sizes": (8, 16, 40, 64),
    "depths": (1, 2, 1, 1),
    "num_heads": (1, 2, 4, 8),
    "sr_ratios": (4, 2, 2, 1),
    "mlp_ratios": (4, 2, 4, 4),
    "decoder_hidden_size": 24,
    "layer_norm_epsilon": 1e-6,
}


DATA = Path(__file__).parent / "data"


def test_logits_match_paddleseg():
    """PaddleSeg 2.8 / Paddle 3.3.1 logits; ours differ by float32 round-off (6e-6 on logits up to 8)."""
    reference = np.load(DATA / "paddleseg_segformer_tiny_io.npz")
    model = from_paddleseg(DATA / "paddleseg_segformer_tiny.pdparams")
    assert model.get_config()["hidden_sizes"] == [8, 16, 20, 32]
    ours = np.asarray(model(reference["images"].transpose(0, 2, 3, 1), training=False))
    np.testing.assert_allclose(ours.transpose(0, 3, 1, 2), reference["logits"], atol=1e-4, rtol=0)


def _perturbed(model):
    """Distinct random values in every variable, batch-norm variance positive."""
    rng = np.random.default_rng(0)
    for variable in model.weights:
        noise = rng.normal(size=variable.shape).astype("float32")
        variable.assign(np.abs(noise) + 0.5 if "moving_variance" in variable.path else noise)
    return model


def _conv(kernel):
    return kernel.transpose(3, 2, 0, 1)  # Keras (kh, kw, in, out) -> Paddle (out, in, kh, kw)


def _paddle_state(model):
    """PaddleSeg parameter names and layouts, written directly from the Keras layers
    (Paddle Linear weights are [in, out] like Keras Dense kernels)."""
    encoder, state = model.get_layer("encoder"), {}

    def put(name, layer, kind="as_is"):
        weights = [np.asarray(w) for w in layer.weights]
        if kind == "conv":
            weights[0] = _conv(weights[0])
        elif kind == "depthwise":
            weights[0] = weights[0].transpose(2, 3, 0, 1)  # (kh, kw, C, 1) -> (C, 1, kh, kw)
        names = ("weight", "bias", "_mean", "_variance") if kind == "batch_norm" else ("weight", "bias")
        for param, value in zip(names, weights):
            state[f"{name}.{param}"] = value

    for s, depth in enumerate(encoder.depths, start=1):
        put(f"backbone.patch_embed{s}.proj", encoder.get_layer(f"stage{s}_patch_embed"), "conv")
        put(f"backbone.patch_embed{s}.norm", encoder.get_layer(f"stage{s}_patch_norm"))
        put(f"backbone.norm{s}", encoder.get_layer(f"stage{s}_norm"))
        for j in range(depth):
            block, keras_block = f"backbone.block{s}.{j}", f"stage{s}_block{j + 1}"
            attention = encoder.get_layer(f"{keras_block}_attention")
            put(f"{block}.norm1", encoder.get_layer(f"{keras_block}_norm1"))
            put(f"{block}.norm2", encoder.get_layer(f"{keras_block}_norm2"))
            put(f"{block}.attn.q", attention.query)
            state[f"{block}.attn.kv.weight"] = np.concatenate(
                [np.asarray(attention.key.kernel), np.asarray(attention.value.kernel)], axis=1)
            state[f"{block}.attn.kv.bias"] = np.concatenate(
                [np.asarray(attention.key.bias), np.asarray(attention.value.bias)])
            put(f"{block}.attn.proj", attention.output_dense)
            if attention.sr_ratio > 1:
                put(f"{block}.attn.sr", attention.reduction, "conv")
                put(f"{block}.attn.norm", attention.reduction_norm)
            put(f"{block}.mlp.fc1", encoder.get_layer(f"{keras_block}_fc1"))
            put(f"{block}.mlp.dwconv.dwconv", encoder.get_layer(f"{keras_block}_dwconv"), "depthwise")
            put(f"{block}.mlp.fc2", encoder.get_layer(f"{keras_block}_fc2"))
    for s in range(1, 5):
        put(f"linear_c{s}.proj", model.get_layer(f"decoder_linear_c{s}"))
    put("linear_fuse._conv", model.get_layer("decoder_linear_fuse"), "conv")
    put("linear_fuse._batch_norm", model.get_layer("decoder_batch_norm"), "batch_norm")
    put("linear_pred", model.get_layer("decoder_classifier"), "conv")
    return state


@pytest.fixture(scope="module")
def reference():
    return _perturbed(SegFormer(**CONFIG)), CONFIG


def _write(path, state, protocol=4):
    with open(path, "wb") as handle:
        pickle.dump(state, handle, protocol=protocol)
    return path


@pytest.mark.parametrize("protocol", [2, 4])
def test_round_trip_reproduces_every_weight_and_the_logits(reference, tmp_path, protocol):
    model, config = reference
    state = _paddle_state(model)
    state["StructuredToParameterName@@"] = {k: f"param_{i}" for i, k in enumerate(state)}
    path = _write(tmp_path / "model.pdparams", state, protocol)

    converted = from_paddleseg(path, num_heads=config["num_heads"])
    expected = {k: v for k, v in SegFormer(**config).get_config().items() if k != "name"}
    assert {k: v for k, v in converted.get_config().items() if k != "name"} == expected
    for ours, theirs in zip(converted.weights, model.weights):
        assert ours.path == theirs.path
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs), err_msg=ours.path)
    images = np.random.default_rng(1).normal(size=(1, 64, 96, 4)).astype("float32")
    np.testing.assert_array_equal(np.asarray(converted(images)), np.asarray(model(images)))


def test_config_is_read_from_the_shapes(reference):
    model, config = reference
    read = segformer_config_from_pdparams(_paddle_state(model), num_heads=config["num_heads"])
    assert read == dict(config, patch_sizes=(7, 3, 3, 3), strides=(4, 2, 2, 2))


def test_backbone_only_checkpoint_loads_the_encoder(reference, tmp_path):
    model, config = reference
    backbone = {k[len("backbone."):]: v for k, v in _paddle_state(model).items() if k.startswith("backbone.")}
    path = _write(tmp_path / "mit.pdparams", backbone)
    with pytest.raises(ConversionError, match="backbone-only"):
        from_paddleseg(path)
    fresh = SegFormer(**config)
    head_before = np.asarray(fresh.get_layer("decoder_classifier").kernel)
    load_paddleseg_encoder(fresh, path)
    for ours, theirs in zip(fresh.get_layer("encoder").weights, model.get_layer("encoder").weights):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    np.testing.assert_array_equal(np.asarray(fresh.get_layer("decoder_classifier").kernel), head_before)


def test_missing_and_unexpected_arrays_are_reported(reference, tmp_path):
    model, config = reference
    state = _paddle_state(model)
    del state["backbone.block2.1.attn.q.weight"]
    state["aux_head.weight"] = np.zeros(3, "float32")
    with pytest.raises(ConversionError, match=r"missing tensors.*q_proj.*unexpected tensors \(aux_head.weight\)"):
        from_paddleseg(_write(tmp_path / "model.pdparams", state), num_heads=config["num_heads"])


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_pickle_with_a_forbidden_global_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path / "evil.pdparams", {"backbone.norm1.weight": _RunsCode()})
    with pytest.raises(ConversionError, match=r"asks to load (posix|nt|os)\.system.*refusing"):
        read_pdparams(path)
    assert not (tmp_path / "pwned.txt").exists()
    path = _write(tmp_path / "obj.pdparams", {"w": np.zeros(2), "x": {"nested": 1}}, protocol=2)
    with pytest.raises(ConversionError, match=r"entries \['x'\] are not arrays"):
        read_pdparams(path)
    (tmp_path / "junk.pdparams").write_bytes(b"not a pickle")
    with pytest.raises(ConversionError, match="not a readable .pdparams"):
        read_pdparams(tmp_path / "junk.pdparams")
