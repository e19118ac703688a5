"""Convert keras-hub SegFormer and MiT models into `gdcld_zoo` SegFormer models.

keras-hub's `SegFormerImageSegmenter` (and its `SegFormerBackbone` and
`MiTBackbone`) take one square size, fixed when the model is built: its
attention and Mix-FFN layers recover the token grid as the square root of the
sequence length. The converted model has the same weights and runs at any
height and width that are multiples of 32. keras-hub's layout, kept: the
tanh-approximate GELU and block layer norms with epsilon 1e-6; its stage norms
use 1e-5, ours the block norms' 1e-6 (logits agree within 1e-4, measured 1.1e-5; see
tests/convert/test_keras_hub_segformer.py). Needs the `keras-hub` extra.
"""

from gdcld_zoo.convert.state_dict import ConversionError
from gdcld_zoo.lazy_imports import require

# keras-hub's HierarchicalTransformerEncoder layer norms.
KERAS_HUB_LAYER_NORM_EPSILON = 1e-6


def _parts(source):
    """(MiT encoder, SegFormer backbone or None, segmenter or None) of a keras-hub model."""
    keras_hub = require("keras_hub", "keras-hub")
    models = keras_hub.models
    if isinstance(source, models.SegFormerImageSegmenter):
        return source.backbone.image_encoder, source.backbone, source
    if isinstance(source, models.SegFormerBackbone):
        return source.image_encoder, source, None
    if isinstance(source, models.MiTBackbone):
        return source, None, None
    raise ConversionError(
        f"Expected a keras-hub SegFormerImageSegmenter, SegFormerBackbone or MiTBackbone, got {type(source).__name__}."
    )


def _load_preset(preset):
    keras_hub = require("keras_hub", "keras-hub")
    models = keras_hub.models
    loader = models.MiTBackbone if str(preset).startswith("mit_") else models.SegFormerImageSegmenter
    try:
        return loader.from_preset(preset)
    except Exception as error:  # keras-hub raises many types for unknown or unreachable presets
        raise ConversionError(f"keras-hub could not load preset {preset!r}: {error}") from error


def _copy(pairs):
    """Set each of our layers to the weights of its keras-hub twin, checking every shape."""
    problems = []
    for ours, theirs in pairs:
        values = [w.numpy() if hasattr(w, "numpy") else w for w in theirs.get_weights()]
        shapes = [tuple(v.shape) for v in values], [tuple(w.shape) for w in ours.weights]
        if shapes[0] != shapes[1]:
            problems.append(f"{ours.name}: keras-hub {shapes[0]} vs ours {shapes[1]}")
            continue
        ours.set_weights(values)
    if problems:
        raise ConversionError(f"{len(problems)} layers do not match: {'; '.join(problems[:8])}.")


def _encoder_pairs(model, mit):
    encoder = model.get_layer("encoder")
    stage_norms = [layer for layer in mit.layers if type(layer).__name__ == "LayerNormalization"]
    pairs = []
    for s, depth in enumerate(mit.layerwise_depths):
        stage = f"stage{s + 1}"
        embed = mit.get_layer(f"patch_and_embed_{s}")
        pairs += [(encoder.get_layer(f"{stage}_patch_embed"), embed.proj),
                  (encoder.get_layer(f"{stage}_patch_norm"), embed.norm)]
        for b in range(depth):
            theirs, block = mit.get_layer(f"hierarchical_encoder_{s}_{b}"), f"{stage}_block{b + 1}"
            attention = encoder.get_layer(f"{block}_attention")
            pairs += [(encoder.get_layer(f"{block}_norm1"), theirs.norm1),
                      (attention.query, theirs.attn.q), (attention.key, theirs.attn.k),
                      (attention.value, theirs.attn.v), (attention.output_dense, theirs.attn.proj),
                      (encoder.get_layer(f"{block}_norm2"), theirs.norm2),
                      (encoder.get_layer(f"{block}_fc1"), theirs.mlp.fc1),
                      (encoder.get_layer(f"{block}_dwconv"), theirs.mlp.dwconv),
                      (encoder.get_layer(f"{block}_fc2"), theirs.mlp.fc2)]
            if attention.sr_ratio > 1:
                pairs += [(attention.reduction, theirs.attn.sr), (attention.reduction_norm, theirs.attn.norm)]
        pairs.append((encoder.get_layer(f"{stage}_norm"), stage_norms[s]))
    return pairs


def from_keras_hub(preset_or_model, num_classes=None):
    """A dynamic-shape `SegFormer` with the weights of a keras-hub SegFormer or MiT.

    Args:
        preset_or_model: A keras-hub preset name (`"segformer_b4_ade20k_512"`,
            `"mit_b0_ade20k_512"`; downloaded by keras-hub) or model: a
            `SegFormerImageSegmenter` (e.g. fine-tuned), a `SegFormerBackbone`
            (decoder without classifier) or a `MiTBackbone` (encoder only).
        num_classes: Classes of the new model; default the segmenter's, else 1.
            Parts the source does not have (or of another class count) start
            from fresh weights.

    Returns:
        `gdcld_zoo.models.segformer.SegFormer` taking the same normalised input
        as the keras-hub model, at any multiple-of-32 height and width.

    Example:
    >>> model = from_keras_hub("segformer_b4_ade20k_512")  # doctest: +SKIP
    >>> model(images_1024x768)  # keras-hub itself only takes 512x512  # doctest: +SKIP
    """
    from gdcld_zoo.models.segformer import SegFormer

    source = _load_preset(preset_or_model) if isinstance(preset_or_model, str) else preset_or_model
    mit, backbone, segmenter = _parts(source)
    head = segmenter.output_segmentation_head if segmenter is not None else None
    if num_classes is None:
        num_classes = head.filters if head is not None else 1
    fuse = backbone.linear_fuse.layers if backbone is not None else None
    model = SegFormer(
        num_classes=num_classes,
        input_shape=(None, None, mit.image_shape[-1]),
        hidden_sizes=tuple(mit.hidden_dims),
        depths=tuple(mit.layerwise_depths),
        num_heads=tuple(mit.layerwise_num_heads),
        sr_ratios=tuple(mit.layerwise_sr_ratios),
        patch_sizes=tuple(mit.layerwise_patch_sizes),
        strides=tuple(mit.layerwise_strides),
        mlp_ratios=(4,) * mit.num_layers,
        decoder_hidden_size=backbone.projection_filters if backbone is not None else 256,
        drop_path_rate=mit.max_drop_path_rate,
        hidden_act="gelu_new",
        layer_norm_epsilon=KERAS_HUB_LAYER_NORM_EPSILON,
    )
    pairs = _encoder_pairs(model, mit)
    if backbone is not None:
        pairs += [(model.get_layer(f"decoder_linear_c{s + 1}"), dense) for s, dense in enumerate(backbone.mlp_blocks)]
        pairs += [(model.get_layer("decoder_linear_fuse"), fuse[0]), (model.get_layer("decoder_batch_norm"), fuse[1])]
    if head is not None and head.filters == num_classes:
        pairs.append((model.get_layer("decoder_classifier"), head))
    _copy(pairs)
    return model
