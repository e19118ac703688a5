"""Published checkpoints behind hf:// records, served by a fake hub: the encoder
records (the paper's ImageNet starting point), whole-model records, licences,
and `load_pretrained("segformer_b4")` end to end without torch."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from safetensors.numpy import load_file  # noqa: E402

from gdcld_zoo import get_weight_record, load_pretrained  # noqa: E402
from gdcld_zoo.convert import from_transformers  # noqa: E402
from gdcld_zoo.convert.state_dict import _KINDS  # noqa: E402
from gdcld_zoo.convert.transformers_segformer import _encoder_mapping, normalize_names  # noqa: E402
from gdcld_zoo.errors import GdcldZooError  # noqa: E402
from gdcld_zoo.weights import load as load_module  # noqa: E402
from gdcld_zoo.weights.cache import WeightsNotFoundError  # noqa: E402
from gdcld_zoo.weights.load import UntrainedHeadWarning, encoder_checkpoint  # noqa: E402
from tests.convert.torch_reference import perturbed  # noqa: E402
from tests.weights.conftest import write_registry  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHIPPED = json.loads((ROOT / "weights" / "registry.json").read_text())["weights"]
REV = "c" * 40
TINY_MIT = dict(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_attention_heads=[1, 2, 1, 2])


def _checkpoint(model, folder):
    """`model.safetensors` as save_pretrained writes it, and the same tensors as a
    hub `pytorch_model.bin` (torch.save of that state dict)."""
    model.save_pretrained(folder)
    state = load_file(folder / "model.safetensors")
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, folder / "pytorch_model.bin")
    return state


def assert_encoder_equals(model, state):
    """Every encoder weight of our SegFormer equals its checkpoint tensor (torch layout converted)."""
    state, checked = normalize_names(state), 0
    for prefix, layer, kind in _encoder_mapping(model):
        for (param, transform), variable in zip(_KINDS[kind], layer.weights):
            value = state[f"{prefix}.{param}"]
            np.testing.assert_array_equal(np.asarray(variable), value if transform is None else transform(value))
            checked += 1
    assert checked == len([k for k in state if k.startswith("segformer.")])


@pytest.fixture
def served(weights_env, fake_hub, tmp_path):
    """A tiny MiT encoder and a tiny 3-class SegFormer on the fake hub, with records."""
    encoder = perturbed(transformers.SegformerForImageClassification(transformers.SegformerConfig(**TINY_MIT)))
    full = perturbed(transformers.SegformerForSemanticSegmentation(
        transformers.SegformerConfig(**TINY_MIT, decoder_hidden_size=16, num_labels=3)))
    encoder_state = _checkpoint(encoder, tmp_path / "mit")
    _checkpoint(full, tmp_path / "ade")
    fake_hub.add("nvidia/mit-tiny", REV, "pytorch_model.bin", (tmp_path / "mit" / "pytorch_model.bin").read_bytes())
    fake_hub.add("nvidia/segformer-tiny-ade", REV, "model.safetensors", (tmp_path / "ade" / "model.safetensors").read_bytes())
    write_registry(weights_env["shipped"] / "registry.json", [
        {"tag": "segformer_tiny.imagenet", "model": "segformer_tiny", "file": "pytorch_model.bin", "sha256": None,
         "url": f"hf://nvidia/mit-tiny@{REV}/pytorch_model.bin", "part": "encoder", "trained_on": "ImageNet-1k",
         "default": True, "license": "other (research only)"},
        {"tag": "segformer_tiny.ade20k", "model": "segformer_tiny", "file": "model.safetensors", "sha256": None,
         "url": f"hf://nvidia/segformer-tiny-ade@{REV}/model.safetensors", "config": {"num_classes": 3},
         "license": "other (research only)"},
    ])
    return {"encoder_state": encoder_state, "ade": tmp_path / "ade"}


def test_model_name_gives_the_imagenet_encoder_and_a_fresh_head(served, monkeypatch, capsys):
    monkeypatch.setattr(load_module, "_LICENSES_SHOWN", set())
    with pytest.warns(UntrainedHeadWarning, match=r"^segformer_tiny.imagenet: encoder pretrained on ImageNet-1k; "
                      r"the landslide head is untrained: fine-tune with `gdcld-zoo train segformer_tiny`\.$"):
        model = load_pretrained("segformer_tiny", input_shape=(None, None, 3))
    assert get_weight_record(model).tag == "segformer_tiny.imagenet" and model.output_shape[-1] == 1
    assert_encoder_equals(model, served["encoder_state"])
    with pytest.warns(UntrainedHeadWarning):
        load_pretrained("segformer_tiny.imagenet")
    assert capsys.readouterr().err.count("licensed: other (research only); see https://huggingface.co/nvidia/mit-tiny") == 1


def test_whole_model_record_loads_the_checkpoint_and_can_rebuild_the_head(served):
    images = np.random.default_rng(0).normal(size=(1, 64, 64, 3)).astype("float32")
    model = load_pretrained("segformer_tiny.ade20k")
    expected = np.asarray(from_transformers(served["ade"])(images))
    np.testing.assert_array_equal(np.asarray(model(images)), expected)
    with pytest.warns(UserWarning, match="trained for 3 classes; the classifier was rebuilt for 1"):
        binary = load_pretrained("segformer_tiny.ade20k", num_classes=1)
    assert binary.output_shape[-1] == 1


def test_segformer_b4_offline_with_nothing_cached_is_one_line(weights_env, monkeypatch):
    write_registry(weights_env["shipped"] / "registry.json", SHIPPED)
    monkeypatch.setenv("GDCLD_ZOO_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as error:
        load_pretrained("segformer_b4")
    message = str(error.value)
    assert "\n" not in message and "`gdcld-zoo weights download segformer_b4.imagenet`" in message
    assert "hf://nvidia/mit-b4@3844ddaa13d9ce98816bacb904688a5284f164af/pytorch_model.bin" in message


def test_model_names_never_resolve_to_the_demo(weights_env):
    demo = next(r for r in SHIPPED if r["tag"] == "demo")
    write_registry(weights_env["shipped"] / "registry.json", [demo])
    with pytest.raises(GdcldZooError, match="No weights are registered for model 'segformer_b0'"):
        load_pretrained("segformer_b0")


_B4_SCRIPT = textwrap.dedent("""
    import sys
    from gdcld_zoo import get_weight_record, load_pretrained

    model = load_pretrained("segformer_b4", progress=False)
    assert "torch" not in sys.modules, "torch was imported"
    print("loaded without torch")
    assert type(model).__name__ == "SegFormer" and model.count_params() > 60_000_000
    assert get_weight_record(model).tag == "segformer_b4.imagenet"
    from safetensors.numpy import load_file
    from tests.weights.test_published import assert_encoder_equals  # imports torch, after the check
    assert_encoder_equals(model, load_file(sys.argv[1]))
    print("encoder equals the served checkpoint")
""")


def test_load_pretrained_segformer_b4_from_the_hub_without_torch(weights_env, fake_hub, tmp_path):
    """The shipped record (its repository and pinned commit), served a random
    MiT-B4 `pytorch_model.bin`; loaded in a fresh process that never imports torch.
    The record's published sha256 and size describe the real file, so this copy
    drops them and the hub's declared hash is checked instead."""
    shipped = next(r for r in SHIPPED if r["tag"] == "segformer_b4.imagenet")
    write_registry(weights_env["shipped"] / "registry.json", [{**shipped, "sha256": None, "size": None}])
    config = transformers.SegformerConfig(hidden_sizes=[64, 128, 320, 512], depths=[3, 8, 27, 3],
                                          num_attention_heads=[1, 2, 5, 8])
    torch.manual_seed(0)
    _checkpoint(transformers.SegformerForImageClassification(config), tmp_path / "mit-b4")
    fake_hub.add("nvidia/mit-b4", "3844ddaa13d9ce98816bacb904688a5284f164af", "pytorch_model.bin",
                 (tmp_path / "mit-b4" / "pytorch_model.bin").read_bytes())
    # A fresh process reads the real shipped registry; this copy replaces its record.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore",
           "GDCLD_ZOO_REGISTRY": str(weights_env["shipped"] / "registry.json")}
    result = subprocess.run([sys.executable, "-c", _B4_SCRIPT, str(tmp_path / "mit-b4" / "model.safetensors")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded without torch\nencoder equals the served checkpoint" in result.stdout


def test_encoder_checkpoint_for_training(served, tmp_path):
    cached = encoder_checkpoint("segformer_tiny")  # the model's default encoder record, downloaded
    assert cached.endswith("hf/nvidia/mit-tiny/" + REV + "/pytorch_model.bin")
    assert encoder_checkpoint("segformer_tiny", "segformer_tiny.imagenet", progress=False) == cached
    assert encoder_checkpoint("segformer_tiny", "none") is None and encoder_checkpoint("unet_tiny") is None
    assert encoder_checkpoint("segformer_tiny", str(tmp_path / "mit")) == str(tmp_path / "mit")
    with pytest.raises(GdcldZooError, match="'segformer_tiny.ade20k' is a whole-model record of 'segformer_tiny'"):
        encoder_checkpoint("segformer_tiny", "segformer_tiny.ade20k")
