"""The numpy-only reader of `torch.save` files: same tensors as torch, and no code run."""

import collections
import os
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from safetensors.torch import load_file  # noqa: E402

from gdcld_zoo import build_model  # noqa: E402
from gdcld_zoo.convert.pytorch_file import UnsafeCheckpointError, read_pytorch_file  # noqa: E402
from gdcld_zoo.convert.state_dict import ConversionError, read_checkpoint  # noqa: E402
from gdcld_zoo.errors import GdcldZooError  # noqa: E402
from tests.convert.torch_reference import perturbed  # noqa: E402


def test_tensors_of_every_dtype_and_layout_read_exactly(tmp_path):
    base = torch.randn(4, 6)
    state = collections.OrderedDict(
        weight=base,
        transposed=base.t(),  # strides (1, 6)
        row=base[2],  # offset 12 into the same storage
        half=torch.randn(3, 5).half(),
        bfloat=torch.randn(7).bfloat16(),
        counter=torch.tensor(12345678901, dtype=torch.int64),
        empty=torch.zeros(0, 3),
    )
    path = tmp_path / "state.pth"
    torch.save(state, path)
    read = read_pytorch_file(path)
    assert list(read) == list(state)
    for key, tensor in state.items():
        expected = tensor.float().numpy() if tensor.dtype == torch.bfloat16 else tensor.numpy()
        assert read[key].dtype == expected.dtype and read[key].shape == expected.shape, key
        np.testing.assert_array_equal(read[key], expected)


def test_wrapped_state_dict_is_unwrapped(tmp_path):
    path = tmp_path / "checkpoint.pth"
    torch.save({"state_dict": {"w": torch.ones(2)}, "epoch": 3, "arch": "resnet50d"}, path)
    np.testing.assert_array_equal(read_pytorch_file(path)["w"], np.ones(2, "float32"))


class _Exploit:
    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return os.system, (f"touch {self.sentinel}",)


def test_pickle_that_would_run_a_command_is_refused_without_running(tmp_path):
    sentinel = tmp_path / "pwned"
    path = tmp_path / "pytorch_model.bin"
    torch.save({"w": torch.ones(2), "x": _Exploit(sentinel)}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"asks to run (posix|os)\.system .*refused"):
        read_checkpoint(path)
    assert not sentinel.exists()


def test_tensor_outside_its_storage_is_refused(tmp_path):
    path = tmp_path / "state.pth"
    torch.save({"w": torch.ones(100)}, path)
    spoiled = tmp_path / "spoiled.pth"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(spoiled, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data[:40] if item.filename.endswith("data/0") else data)
    with pytest.raises(UnsafeCheckpointError, match=r"shape \(100,\).*does not fit its storage of 10"):
        read_pytorch_file(spoiled)


def test_legacy_format_reads_the_same_tensors_and_refuses_code(tmp_path):
    base = torch.randn(3, 4)
    state = collections.OrderedDict(w=base, t=base.t(), row=base[1], h=torch.randn(5).half(), n=torch.arange(3))
    legacy = tmp_path / "legacy.pth"
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    with open(legacy, "rb") as handle:
        assert not zipfile.is_zipfile(handle)
    read = read_checkpoint(legacy)
    assert list(read) == list(state)
    for key, tensor in state.items():
        np.testing.assert_array_equal(read[key], tensor.numpy())
    sentinel = tmp_path / "pwned"
    torch.save({"w": torch.ones(2), "x": _Exploit(sentinel)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(UnsafeCheckpointError, match=r"asks to run (posix|os)\.system"):
        read_checkpoint(legacy)
    assert not sentinel.exists()
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    legacy.write_bytes(legacy.read_bytes()[:-3])
    with pytest.raises(GdcldZooError, match="truncated or damaged"):
        read_checkpoint(legacy)


def test_foreign_files_are_refused_with_what_to_do(tmp_path):
    text = tmp_path / "notes.bin"
    text.write_text("not a checkpoint")
    with pytest.raises(GdcldZooError, match="is not a PyTorch checkpoint"):
        read_checkpoint(text)
    with pytest.raises(ConversionError, match="pytorch_model.bin"):
        read_checkpoint(tmp_path)  # a folder without a checkpoint


def test_converters_read_pytorch_model_bin_like_safetensors(tmp_path):
    config = transformers.SegformerConfig(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_attention_heads=[1, 2, 1, 2])
    reference = perturbed(transformers.SegformerForImageClassification(config))
    reference.save_pretrained(tmp_path / "safe")
    # A hub `pytorch_model.bin`: torch.save of the state dict with the names
    # save_pretrained writes (transformers 5 no longer writes .bin files itself).
    (tmp_path / "bin").mkdir()
    torch.save(load_file(tmp_path / "safe" / "model.safetensors"), tmp_path / "bin" / "pytorch_model.bin")
    from_bin = read_checkpoint(tmp_path / "bin")
    from_safe = read_checkpoint(tmp_path / "safe")
    assert sorted(from_bin) == sorted(from_safe)
    for key in from_safe:
        np.testing.assert_array_equal(from_bin[key], from_safe[key])
    model = build_model("segformer_tiny", encoder_weights=tmp_path / "bin" / "pytorch_model.bin")
    patch = model.get_layer("encoder").get_layer("stage1_patch_embed").kernel
    expected = from_safe["segformer.encoder.patch_embeddings.0.proj.weight"].transpose(2, 3, 1, 0)
    np.testing.assert_array_equal(np.asarray(patch), expected)
