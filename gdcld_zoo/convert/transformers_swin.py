"""Load transformers Swin checkpoints (microsoft/swin-tiny-patch4-window7-224) into Swin-Unet.

Reads `model.safetensors` or `pytorch_model.bin` with numpy only (no torch). Both naming schemes are
accepted: transformers 4.x (`swin.encoder.layers.{s}.blocks.{b}.attention.self.query`,
`attention.self.relative_position_bias_table`, `attention.output.dense`,
`intermediate.dense`, `output.dense`) and 5.x (`attention.q_proj`,
`attention.relative_position_bias.relative_position_bias_table`,
`attention.o_proj`, `mlp.fc1`, `mlp.fc2`), with or without the `swin.` prefix
of classification checkpoints. The classifier and the
`relative_position_index` / `attn_mask` buffers some checkpoints store are not used.

As the official Swin-Unet `load_from` does:
- a stage with more blocks in the checkpoint than in the model uses the first
  ones (Swin-T has 6 blocks in stage 3, Swin-Unet's encoder 2);
- each decoder level's Swin blocks start from the blocks of the encoder stage
  it mirrors (same width and heads).

Relative position bias tables for another window size (7 in the ImageNet
checkpoints, 8 in `swin_unet`) are resized bicubically from (2·7-1)² to
(2·8-1)² offsets (PyTorch kernel, `align_corners=False`), as the Swin authors
do when fine-tuning at another window.
"""

import re

from gdcld_zoo.convert.state_dict import (
    ConversionError,
    assign_torch_weights,
    read_checkpoint,
    rename_keys,
    transformer_block_mapping,
)
from gdcld_zoo.convert.transformers_vit import resize_grid

# transformers 4.x names -> 5.x names (transformers' own `swin` renaming rules);
# order matters: `attention.output.dense` before `output.dense`.
_LEGACY_RENAMES = (
    (r"\.attention\.self\.query\.", ".attention.q_proj."),
    (r"\.attention\.self\.key\.", ".attention.k_proj."),
    (r"\.attention\.self\.value\.", ".attention.v_proj."),
    (r"\.attention\.self\.relative_position_bias_table$",
     ".attention.relative_position_bias.relative_position_bias_table"),
    (r"\.attention\.output\.dense\.", ".attention.o_proj."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.output\.dense\.", ".mlp.fc2."),
)
_BIAS_TABLE = "attention.relative_position_bias.relative_position_bias_table"
# Buffers that follow from the window size (older checkpoints store them); not loaded.
_DERIVED_BUFFERS = ("relative_position_index", "attn_mask")


def normalize_names(state):
    """Rename 4.x keys to 5.x keys and drop the `swin.` prefix; 5.x keys pass unchanged."""
    return rename_keys(state, _LEGACY_RENAMES, strip_prefix="swin.")


def _block_mapping(torch_block, model, block):
    attention = model.get_layer(f"{block}_attention")
    return transformer_block_mapping(torch_block, model, block), (f"{torch_block}.{_BIAS_TABLE}", attention)


def _checkpoint_depth(state, stage):
    pattern = re.compile(rf"encoder\.layers\.{stage}\.blocks\.(\d+)\.")
    return 1 + max((int(m.group(1)) for k in state if (m := pattern.match(k))), default=-1)


def _bias_table(value, attention, key, source):
    """Checkpoint ((2v-1)^2, heads) table -> the layer's ((2w-1)^2, heads)."""
    heads = attention.num_heads
    side = int(round(value.shape[0] ** 0.5)) if value.ndim == 2 else 0
    if value.ndim != 2 or side * side != value.shape[0] or value.shape[1] != heads:
        raise ConversionError(
            f"{source}: {key} has shape {value.shape}, expected ((2*window-1)^2, {heads}); "
            "check the checkpoint's num_heads."
        )
    return resize_grid(value.reshape(side, side, heads), 2 * attention.window_size - 1).reshape(-1, heads)


def load_swin_state(model, state, source, mirror_decoder=True):
    """Assign a transformers-layout Swin state dict (4.x or 5.x names) to the
    encoder of `model` (a `SwinUNet`) and, with `mirror_decoder`, to its decoder blocks."""
    state = {k: v for k, v in normalize_names(state).items() if not k.endswith(_DERIVED_BUFFERS)}
    encoder = model.get_layer("encoder")
    mapping = [
        ("embeddings.patch_embeddings.projection", encoder.get_layer("patch_embedding"), "conv"),
        ("embeddings.norm", encoder.get_layer("patch_norm"), "norm"),
        ("layernorm", encoder.get_layer("final_norm"), "norm"),
    ]
    tables, ignore = [], ["classifier.", "pooler."]
    for stage, depth in enumerate(encoder.depths):
        for b in range(depth):
            entries, table = _block_mapping(f"encoder.layers.{stage}.blocks.{b}", encoder, f"stage{stage}_block{b}")
            mapping += entries
            tables.append(table)
        ignore += [f"encoder.layers.{stage}.blocks.{b}." for b in range(depth, _checkpoint_depth(state, stage))]
        if stage < len(encoder.depths) - 1:
            mapping += [
                (f"encoder.layers.{stage}.downsample.norm", encoder.get_layer(f"stage{stage}_merge_norm"), "norm"),
                (f"encoder.layers.{stage}.downsample.reduction",
                 encoder.get_layer(f"stage{stage}_merge_reduction"), "linear"),
            ]
    if mirror_decoder:
        levels = len(encoder.depths) - 1
        for level, depth in enumerate(model.decoder_depths):
            stage = levels - 1 - level
            for b in range(min(depth, encoder.depths[stage])):
                entries, table = _block_mapping(
                    f"encoder.layers.{stage}.blocks.{b}", model, f"decoder_level{level}_block{b}"
                )
                mapping += entries
                tables.append(table)

    missing = [key for key, _ in tables if key not in state]
    if missing:
        raise ConversionError(f"{source} does not match the model: missing tensors {missing[:8]}.")
    values = [(attention, _bias_table(state[key], attention, key, source)) for key, attention in tables]
    assign_torch_weights(
        mapping, state, source, ignore=tuple(ignore) + tuple(key for key, _ in tables)
    )
    for attention, value in values:
        attention.relative_position_bias_table.assign(value)


def load_encoder_weights(model, path, mirror_decoder=True):
    """Load an ImageNet Swin checkpoint (folder, `.safetensors` or `.bin`) into `model`
    (a `SwinUNet`): its encoder, and its decoder blocks unless `mirror_decoder=False`."""
    load_swin_state(model, read_checkpoint(path), f"Checkpoint {path}", mirror_decoder=mirror_decoder)
