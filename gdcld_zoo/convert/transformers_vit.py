"""Load transformers ViT checkpoints (google/vit-base-patch16-224) into `ViTEncoder`.

Reads `model.safetensors` or `pytorch_model.bin` with numpy only (no torch). Both naming schemes are
accepted: transformers 4.x (`vit.encoder.layer.{i}.attention.attention.query`,
`attention.output.dense`, `intermediate.dense`, `output.dense`) and 5.x
(`layers.{i}.attention.q_proj`, `attention.o_proj`, `mlp.fc1`, `mlp.fc2`), with
or without the `vit.` prefix of classification checkpoints. The pooler and
classifier are not used.

Position embeddings made for another grid than the model's `image_size`
are resized bicubically (PyTorch kernel, `align_corners=False`), as
mmsegmentation does when it loads ImageNet weights.
"""

import numpy as np

from gdcld_zoo.convert.state_dict import (
    ConversionError,
    assign_torch_weights,
    read_checkpoint,
    rename_keys,
    transformer_block_mapping,
)
from gdcld_zoo.layers.resize import cubic_resize_matrix

# transformers 4.x names -> 5.x names (transformers' own `ViTModel` renaming rules);
# order matters: `attention.output.dense` before `output.dense`.
_LEGACY_RENAMES = (
    (r"encoder\.layer\.(\d+)\.", r"layers.\1."),
    (r"\.attention\.attention\.query\.", ".attention.q_proj."),
    (r"\.attention\.attention\.key\.", ".attention.k_proj."),
    (r"\.attention\.attention\.value\.", ".attention.v_proj."),
    (r"\.attention\.output\.dense\.", ".attention.o_proj."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.output\.dense\.", ".mlp.fc2."),
)


def normalize_names(state):
    """Rename 4.x keys to 5.x keys and drop the `vit.` prefix; 5.x keys pass unchanged."""
    return rename_keys(state, _LEGACY_RENAMES, strip_prefix="vit.")


def resize_grid(values, out_size):
    """Resize a (S, S, C) grid to (out_size, out_size, C) bicubically (PyTorch kernel)."""
    size = values.shape[0]
    if size == out_size:
        return values
    matrix = np.asarray(cubic_resize_matrix(out_size, size), "float64")
    return np.einsum("oh,hwc,pw->opc", matrix, values.astype("float64"), matrix).astype(values.dtype)


def _position_embedding(value, encoder, source):
    """Checkpoint (1, 1 + S*S, C) -> the encoder's (1, 1 + G*G, C)."""
    grid = encoder.image_size // encoder.patch_size
    tokens = value.shape[1] - 1
    size = int(round(tokens**0.5))
    if value.ndim != 3 or size * size != tokens or value.shape[2] != encoder.hidden_size:
        raise ConversionError(
            f"{source}: position embeddings of shape {value.shape} are not (1, 1 + S*S, "
            f"{encoder.hidden_size}); check the checkpoint's hidden_size."
        )
    patches = resize_grid(value[0, 1:].reshape(size, size, -1), grid).reshape(1, grid * grid, -1)
    return np.concatenate([value[:, :1], patches], axis=1)


def _encoder_mapping(encoder):
    mapping = [("embeddings.patch_embeddings.projection", encoder.get_layer("patch_embedding"), "conv")]
    for b in range(encoder.depth):
        torch_block, block = f"layers.{b}", f"block{b}"
        mapping += transformer_block_mapping(torch_block, encoder, block)
    if encoder.depth - 1 in encoder.out_indices:
        mapping.append(("layernorm", encoder.get_layer("final_norm"), "norm"))
    return mapping


def load_vit_state(encoder, state, source):
    """Assign a transformers-layout ViT state dict (4.x or 5.x names) to a `ViTEncoder`."""
    state = normalize_names(state)
    embeddings = encoder.get_layer("embeddings")
    missing = [k for k in ("embeddings.cls_token", "embeddings.position_embeddings") if k not in state]
    if missing:
        raise ConversionError(f"{source} does not match the model: missing tensors {missing}.")
    cls_token = state["embeddings.cls_token"]
    if cls_token.shape != tuple(embeddings.cls_token.shape):
        raise ConversionError(
            f"{source} does not match the model: embeddings.cls_token is {cls_token.shape}, "
            f"the model needs {tuple(embeddings.cls_token.shape)}; check hidden_size."
        )
    position = _position_embedding(state["embeddings.position_embeddings"], encoder, source)
    ignore = ["embeddings.cls_token", "embeddings.position_embeddings", "pooler.", "classifier."]
    if encoder.depth - 1 not in encoder.out_indices:
        ignore.append("layernorm.")  # the final norm only follows the last block
    assign_torch_weights(_encoder_mapping(encoder), state, source, ignore=tuple(ignore))
    embeddings.cls_token.assign(cls_token)
    embeddings.position_embedding.assign(position)


def load_encoder_weights(model, path):
    """Load an ImageNet ViT checkpoint (folder, `.safetensors` or `.bin`) into the `encoder`
    of `model` (e.g. `UperNet`), leaving neck and head as they are."""
    load_vit_state(model.get_layer("encoder"), read_checkpoint(path), f"Checkpoint {path}")
