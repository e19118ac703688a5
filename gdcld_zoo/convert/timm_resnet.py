"""Convert timm ResNet checkpoints (`resnet50d`, also `resnet50`) into a `ResNetEncoder`.

timm's `resnet50d` is ResNet-50-vd: a deep stem (`conv1` is a Sequential of
3×3 convolutions 32-32-64 with batch norms at indexes 1 and 4, and the model's
`bn1` after the third), and shortcuts `downsample = [AvgPool2d, conv, bn]` — the
`ResNetEncoder` with `resnet.RESNET50_VD`'s settings. Parameter names map as

    conv1.0 / conv1.1 / conv1.3 / conv1.4 / conv1.6 / bn1 -> stem_conv1 / stem_bn1 / … / stem_conv3 / stem_bn3
    layer{s}.{b}.conv{k} / bn{k}                           -> stage{s}_block{b+1}_conv{k} / _bn{k}
    layer{s}.0.downsample.{1,2}  (.{0,1} without avg_down) -> stage{s}_block1_downsample_conv / _bn

and the `fc.` classifier is skipped. Plain `resnet50` (7×7 `conv1`, `bn1`) maps too.

With dilation, timm and PaddleSeg differ: timm keeps the previous dilation in a
dilated stage's first block and average-pools its shortcut 2×2 at stride 1;
`ResNetEncoder` follows PaddleSeg (the GDCLD paper's code). The ImageNet weights
are stride-32 weights either way, so they load the same.

Tested without timm (it needs torchvision, which has no CPU wheel here): the
tests write a checkpoint with timm's parameter names and shapes and compare the
encoder against a torch functional re-implementation of timm's forward pass.
"""

from gdcld_zoo.convert.state_dict import ConversionError, assign_torch_weights, read_checkpoint

# timm's deep stem: conv1 = Sequential(conv, bn, act, conv, bn, act, conv); the
# last batch norm is the model's bn1.
_DEEP_STEM = (("conv1.0", "conv1.1"), ("conv1.3", "conv1.4"), ("conv1.6", "bn1"))


def encoder_mapping(encoder):
    """`(torch_prefix, keras_layer, kind)` entries for every layer of `encoder`."""
    if len(encoder.stem_widths) == 3:
        stem = _DEEP_STEM
    elif len(encoder.stem_widths) == 1:
        stem = (("conv1", "bn1"),)
    else:
        raise ConversionError(f"timm ResNets have 1 or 3 stem convolutions, not {len(encoder.stem_widths)}.")
    mapping = []
    for i, (conv, bn) in enumerate(stem, start=1):
        mapping += [
            (conv, encoder.get_layer(f"stem_conv{i}"), "conv"),
            (bn, encoder.get_layer(f"stem_bn{i}"), "batch_norm"),
        ]
    # With avg_down, index 0 of `downsample` is the (parameter-free) pool.
    first = 1 if encoder.avg_down else 0
    for s, depth in enumerate(encoder.depths, start=1):
        for b in range(depth):
            torch_block, block = f"layer{s}.{b}", f"stage{s}_block{b + 1}"
            for k in (1, 2, 3):
                mapping += [
                    (f"{torch_block}.conv{k}", encoder.get_layer(f"{block}_conv{k}"), "conv"),
                    (f"{torch_block}.bn{k}", encoder.get_layer(f"{block}_bn{k}"), "batch_norm"),
                ]
            if b == 0:
                mapping += [
                    (f"{torch_block}.downsample.{first}", encoder.get_layer(f"{block}_downsample_conv"), "conv"),
                    (f"{torch_block}.downsample.{first + 1}", encoder.get_layer(f"{block}_downsample_bn"), "batch_norm"),
                ]
    return mapping


def load_state(encoder, state, source):
    """Assign a timm ResNet state dict (numpy arrays) to `encoder`."""
    assign_torch_weights(encoder_mapping(encoder), state, source, ignore=("fc.",))


def load_encoder_weights(model, path):
    """Load a timm ResNet checkpoint (`.safetensors` or `.bin`/`.pth` file, or a
    folder holding one, e.g. a download of timm/resnet50d.a1_in1k) into
    `model`, a `ResNetEncoder` or a model whose `encoder` is one.

    Raises:
        ConversionError: the checkpoint is unreadable or its tensors do not
            match the encoder (all missing, unexpected and mis-shaped ones listed).

    Example:
    >>> from gdcld_zoo import build_model
    >>> model = build_model("deeplabv3_r50", encoder_weights="resnet50d.safetensors")  # doctest: +SKIP
    """
    encoder = getattr(model, "encoder", None)  # a segmentation model's, or the bare ResNet given
    load_state(model if encoder is None else encoder, read_checkpoint(path), f"timm ResNet checkpoint {path}")
