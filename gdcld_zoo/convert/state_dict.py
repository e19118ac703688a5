"""Reading PyTorch-layout checkpoints as numpy and assigning them to Keras layers.

Checkpoints (safetensors or PyTorch files) are read with numpy alone: no torch
is needed and no pickled code runs (`read_checkpoint`). Assignment
goes through a list of `(torch_prefix, keras_layer, kind)` entries so every
converter states its mapping as data, and every tensor is accounted for:
missing, unexpected and mis-shaped tensors are reported together in one error.
"""

import json
import pathlib
import re

import numpy as np

from gdcld_zoo.convert.pytorch_file import read_pytorch_file
from gdcld_zoo.errors import GdcldZooError


class ConversionError(GdcldZooError):
    """A checkpoint that does not match the model it is converted into."""


def _to_keras_conv(w):
    return np.transpose(w, (2, 3, 1, 0))  # (out, in, kh, kw) -> (kh, kw, in, out)


def _to_keras_depthwise(w):
    return np.transpose(w, (2, 3, 0, 1))  # (C, 1, kh, kw) -> (kh, kw, C, 1)


# For each kind of layer: the torch parameter names in Keras `get_weights()`
# order, and how each torch tensor becomes the Keras one.
_KINDS = {
    "linear": (("weight", np.transpose), ("bias", None)),
    "conv": (("weight", _to_keras_conv), ("bias", None)),
    "depthwise": (("weight", _to_keras_depthwise), ("bias", None)),
    "norm": (("weight", None), ("bias", None)),
    "batch_norm": (("weight", None), ("bias", None), ("running_mean", None), ("running_var", None)),
}

# Bookkeeping tensors with no trainable meaning.
_ALWAYS_IGNORED = ("num_batches_tracked",)


# Checkpoint files a folder may hold, in order of preference: safetensors
# (a single file or shards), then PyTorch's pickle-based files.
_FOLDER_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def read_checkpoint(path):
    """All tensors of a checkpoint as numpy arrays, read without torch.

    `path` is a `.safetensors` file, a PyTorch file (`pytorch_model.bin`,
    `.pth`: read by `gdcld_zoo.convert.pytorch_file`, which never runs the
    pickle's code), or a folder holding one of them (or a sharded
    checkpoint's `*.index.json`); a folder's safetensors file wins.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        found = [path / name for name in _FOLDER_FILES if (path / name).is_file()]
        if not found:
            raise ConversionError(
                f"No checkpoint in {path}: expected one of {', '.join(_FOLDER_FILES)} "
                "(as transformers' `save_pretrained` or a hub download writes them)."
            )
        path = found[0]
    if not path.is_file():
        raise ConversionError(
            f"No checkpoint at {path}. Give a `.safetensors` or PyTorch (`.bin`, `.pth`) file, "
            "or a folder holding `model.safetensors` or `pytorch_model.bin`."
        )
    if path.name.endswith(".index.json"):
        shards = sorted(set(json.loads(path.read_text())["weight_map"].values()))
        state = {}
        for shard in shards:
            state.update(read_checkpoint(path.parent / shard))
        return state
    if _is_safetensors(path):
        return _read_checkpoint_file(path)
    return read_pytorch_file(path)


def _is_safetensors(path):
    """True for a safetensors file: an 8-byte little-endian header length, then a JSON object."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < path.stat().st_size


def _read_checkpoint_file(path):
    from safetensors.numpy import load_file

    try:
        return load_file(path)
    except Exception as error:  # safetensors raises its own error types
        raise ConversionError(f"{path} is not a readable safetensors file: {error}") from error


def rename_keys(state, renames, strip_prefix=""):
    """`state` with `strip_prefix` cut from its keys, then each `(regex, replacement)` applied in order.

    The transformers converters use it to map 4.x checkpoint names onto 5.x
    names (5.x keys pass unchanged).

    Example:
    >>> rename_keys({"vit.encoder.layer.0.w": 1}, [(r"encoder\\.layer\\.", "layers.")], "vit.")
    {'layers.0.w': 1}
    """
    renamed = {}
    for key, value in state.items():
        if strip_prefix and key.startswith(strip_prefix):
            key = key[len(strip_prefix):]
        for pattern, replacement in renames:
            key = re.sub(pattern, replacement, key)
        renamed[key] = value
    return renamed


def assign_torch_weights(mapping, state, source, ignore=()):
    """Set Keras layer weights from a torch-layout `state` dict.

    Args:
        mapping: `(torch_prefix, keras_layer, kind)` entries; `kind` is one of
            `linear`, `conv`, `depthwise`, `norm`, `batch_norm`. Layers without a
            bias simply have no `.bias` tensor in the checkpoint.
        state: Name -> numpy array, torch layout.
        source: What the checkpoint is, for error messages.
        ignore: Name prefixes that may be present but are not converted
            (e.g. a classification head).

    Raises:
        ConversionError: listing every missing, unexpected or mis-shaped tensor.
    """
    used, missing, mismatched, updates = set(), [], [], []
    for prefix, layer, kind in mapping:
        values = []
        for (param, transform), variable in zip(_KINDS[kind], layer.weights):
            key = f"{prefix}.{param}"
            if key not in state:
                missing.append(key)
                continue
            used.add(key)
            value = state[key] if transform is None else transform(state[key])
            if tuple(value.shape) != tuple(variable.shape):
                mismatched.append(f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(variable.shape)}")
                continue
            values.append(value.astype(variable.dtype))
        updates.append((layer, values))
    unexpected = sorted(
        k for k in state
        if k not in used and not k.endswith(_ALWAYS_IGNORED) and not k.startswith(tuple(ignore))
    )
    problems = []
    for title, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", mismatched)):
        if items:
            shown = ", ".join(items[:8]) + (f" and {len(items) - 8} more" if len(items) > 8 else "")
            problems.append(f"{len(items)} {title} tensors ({shown})")
    if problems:
        raise ConversionError(
            f"{source} does not match the model: " + "; ".join(problems)
            + ". Check that the checkpoint's config matches the model you build."
        )
    for layer, values in updates:
        layer.set_weights(values)


def transformer_block_mapping(torch_block, model, block):
    """A pre-norm transformer block as transformers names it, onto our layers.

    transformers' `layernorm_before`, `attention.{q,k,v,o}_proj`,
    `layernorm_after` and `mlp.fc1`/`fc2` map to the layers our encoders name
    `{block}_norm1`, `{block}_attention` (`query`, `key`, `value`,
    `output_dense`), `{block}_norm2`, `{block}_fc1` and `{block}_fc2` (SegFormer,
    ViT and Swin share this layout).
    """
    attention = model.get_layer(f"{block}_attention")
    return [
        (f"{torch_block}.layernorm_before", model.get_layer(f"{block}_norm1"), "norm"),
        (f"{torch_block}.attention.q_proj", attention.query, "linear"),
        (f"{torch_block}.attention.k_proj", attention.key, "linear"),
        (f"{torch_block}.attention.v_proj", attention.value, "linear"),
        (f"{torch_block}.attention.o_proj", attention.output_dense, "linear"),
        (f"{torch_block}.layernorm_after", model.get_layer(f"{block}_norm2"), "norm"),
        (f"{torch_block}.mlp.fc1", model.get_layer(f"{block}_fc1"), "linear"),
        (f"{torch_block}.mlp.fc2", model.get_layer(f"{block}_fc2"), "linear"),
    ]
