"""Convert transformers SegFormer checkpoints into `gdcld_zoo` SegFormer models.

Reads a transformers checkpoint folder (`config.json` + `model.safetensors` or `pytorch_model.bin`)
with numpy only (no torch). Both naming schemes are accepted: transformers 4.x
(`segformer.encoder.block.{i}.{j}.attention.self.query`, `decode_head.linear_c`)
— which `save_pretrained` still writes — and the 5.x module names
(`segformer.stages.{i}.blocks.{j}.attention.q_proj`, `decode_head.linear_projections`).
"""

import json
import pathlib

from gdcld_zoo.convert.state_dict import (
    ConversionError,
    assign_torch_weights,
    read_checkpoint,
    rename_keys,
    transformer_block_mapping,
)

# transformers 4.x parameter names -> 5.x names (transformers' own renaming rules).
_LEGACY_RENAMES = (
    (r"encoder\.patch_embeddings\.(\d+)\.", r"stages.\1.patch_embeddings."),
    (r"encoder\.block\.(\d+)\.", r"stages.\1.blocks."),
    (r"encoder\.layer_norm\.(\d+)\.", r"stages.\1.layer_norm."),
    (r"attention\.self\.query\.", "attention.q_proj."),
    (r"attention\.self\.key\.", "attention.k_proj."),
    (r"attention\.self\.value\.", "attention.v_proj."),
    (r"attention\.self\.sr\.", "attention.sequence_reduction.sequence_reduction."),
    (r"attention\.self\.layer_norm\.", "attention.sequence_reduction.layer_norm."),
    (r"attention\.output\.dense\.", "attention.o_proj."),
    (r"mlp\.dense1\.", "mlp.fc1."),
    (r"mlp\.dense2\.", "mlp.fc2."),
    (r"\.layer_norm_1\.", ".layernorm_before."),
    (r"\.layer_norm_2\.", ".layernorm_after."),
    (r"decode_head\.linear_c\.", "decode_head.linear_projections."),
)


def normalize_names(state):
    """Rename transformers 4.x keys to 5.x keys; 5.x keys pass unchanged.

    Encoder keys end up under `segformer.` whether the checkpoint was a
    semantic-segmentation, classification or bare `SegformerModel` one.
    """
    renamed = rename_keys(state, _LEGACY_RENAMES)
    return {("segformer." + k if k.startswith(("stages.", "encoder.")) else k): v for k, v in renamed.items()}


def segformer_config(hf_config):
    """`SegFormer` constructor arguments for a transformers `SegformerConfig` dict."""
    if hf_config.get("model_type", "segformer") != "segformer":
        raise ConversionError(f"Expected a SegFormer config, got model_type {hf_config['model_type']!r}.")
    get = lambda key, default: hf_config.get(key, default)  # noqa: E731
    num_labels = hf_config.get("num_labels") or len(hf_config.get("id2label") or {}) or 2
    return {
        "num_classes": num_labels,
        "input_shape": (None, None, get("num_channels", 3)),
        "hidden_sizes": tuple(get("hidden_sizes", (32, 64, 160, 256))),
        "depths": tuple(get("depths", (2, 2, 2, 2))),
        "num_heads": tuple(get("num_attention_heads", (1, 2, 5, 8))),
        "sr_ratios": tuple(get("sr_ratios", (8, 4, 2, 1))),
        "patch_sizes": tuple(get("patch_sizes", (7, 3, 3, 3))),
        "strides": tuple(get("strides", (4, 2, 2, 2))),
        "mlp_ratios": tuple(get("mlp_ratios", (4, 4, 4, 4))),
        "decoder_hidden_size": get("decoder_hidden_size", 256),
        "drop_path_rate": get("drop_path_rate", 0.1),
        "dropout_rate": get("classifier_dropout_prob", 0.1),
        "hidden_act": get("hidden_act", "gelu"),
    }


def _encoder_mapping(model):
    encoder = model.get_layer("encoder")
    mapping = []
    for s, depth in enumerate(encoder.depths):
        torch_stage, stage = f"segformer.stages.{s}", f"stage{s + 1}"
        mapping += [
            (f"{torch_stage}.patch_embeddings.proj", encoder.get_layer(f"{stage}_patch_embed"), "conv"),
            (f"{torch_stage}.patch_embeddings.layer_norm", encoder.get_layer(f"{stage}_patch_norm"), "norm"),
            (f"{torch_stage}.layer_norm", encoder.get_layer(f"{stage}_norm"), "norm"),
        ]
        for b in range(depth):
            torch_block, block = f"{torch_stage}.blocks.{b}", f"{stage}_block{b + 1}"
            attention = encoder.get_layer(f"{block}_attention")
            mapping += transformer_block_mapping(torch_block, encoder, block)
            mapping.append((f"{torch_block}.mlp.dwconv.dwconv", encoder.get_layer(f"{block}_dwconv"), "depthwise"))
            if attention.sr_ratio > 1:
                reduction = f"{torch_block}.attention.sequence_reduction"
                mapping += [
                    (f"{reduction}.sequence_reduction", attention.reduction, "conv"),
                    (f"{reduction}.layer_norm", attention.reduction_norm, "norm"),
                ]
    return mapping


def _decoder_mapping(model):
    stages = len(model.get_layer("encoder").depths)
    return [
        (f"decode_head.linear_projections.{s}.proj", model.get_layer(f"decoder_linear_c{s + 1}"), "linear")
        for s in range(stages)
    ] + [
        ("decode_head.linear_fuse", model.get_layer("decoder_linear_fuse"), "conv"),
        ("decode_head.batch_norm", model.get_layer("decoder_batch_norm"), "batch_norm"),
        ("decode_head.classifier", model.get_layer("decoder_classifier"), "conv"),
    ]


def load_segformer_state(model, state, source, encoder_only=False):
    """Assign a transformers-layout SegFormer state dict (4.x or 5.x names) to `model`.

    Other converters (e.g. PaddleSeg) translate their checkpoints into this
    layout and call this function.
    """
    state = normalize_names(state)
    mapping = _encoder_mapping(model)
    ignore = ("classifier.",)
    if encoder_only:
        ignore += ("decode_head.",)
    else:
        mapping += _decoder_mapping(model)
    assign_torch_weights(mapping, state, source, ignore=ignore)


def load_encoder_weights(model, path):
    """Load the MiT encoder of a transformers SegFormer / MiT checkpoint (e.g. the
    ImageNet-pretrained `nvidia/mit-b4`) into `model`, leaving the decoder as is."""
    load_segformer_state(model, read_checkpoint(path), f"Checkpoint {path}", encoder_only=True)


def load_model_weights(model, path):
    """Load a whole transformers SegFormer checkpoint (encoder, decoder and
    classifier) into `model`, built with the checkpoint's configuration (e.g.
    `nvidia/segformer-b4-finetuned-ade-512-512` into `segformer_b4` with 150 classes)."""
    load_segformer_state(model, read_checkpoint(path), f"Checkpoint {path}")


def from_transformers(path):
    """A `SegFormer` with the weights of a transformers checkpoint folder.

    Args:
        path: Folder with `config.json` and `model.safetensors` (or
            `pytorch_model.bin`) of a
            `SegformerForSemanticSegmentation` (any configuration, not only B0–B5).

    Returns:
        `gdcld_zoo.models.segformer.SegFormer` whose logits equal the transformers
        model's upsampled to the input size (bilinear, `align_corners=False`).
    """
    from gdcld_zoo.models.segformer import SegFormer

    path = pathlib.Path(path)
    config_path = path / "config.json"
    if not config_path.exists():
        raise ConversionError(
            f"{path} has no config.json; give the folder written by transformers' `save_pretrained`."
        )
    model = SegFormer(**segformer_config(json.loads(config_path.read_text())))
    load_model_weights(model, path)
    return model
