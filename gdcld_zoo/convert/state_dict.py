"""Reading PyTorch-layout checkpoints as numpy and assigning them to Keras layers.

Checkpoints are read with `safetensors.numpy` (no torch needed). Assignment
goes through a list of `(torch_prefix, keras_layer, kind)` entries so every
converter states its mapping as data, and every tensor is accounted for:
missing, unexpected and mis-shaped tensors are reported together in one error.
"""

import json
import pathlib
import re

import numpy as np

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


def read_safetensors(path):
    """All tensors of a `.safetensors` file, or of a folder holding one
    (`model.safetensors`) or a sharded checkpoint (`model.safetensors.index.json`)."""
    from safetensors.numpy import load_file

    path = pathlib.Path(path)
    if path.is_dir():
        index = path / "model.safetensors.index.json"
        if index.exists():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            state = {}
            for shard in shards:
                state.update(load_file(path / shard))
            return state
        path = path / "model.safetensors"
    if not path.exists():
        raise ConversionError(
            f"No safetensors checkpoint at {path}. Give a `.safetensors` file or a folder "
            "holding `model.safetensors` (save a torch checkpoint with `save_pretrained(..., "
            "safe_serialization=True)` to make one)."
        )
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
