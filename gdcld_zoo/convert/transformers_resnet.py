"""Convert transformers ResNet checkpoints (microsoft/resnet-50) into a `ResNetEncoder`.

transformers' `ResNetModel` is ResNet v1.5 (torchvision's layout): a 7×7 stem,
the downsampling stride in each bottleneck's 3×3 convolution, and projection
shortcuts by strided 1×1 convolutions — the `ResNetEncoder` with
`resnet.RESNET50`'s settings. Parameter names map as

    embedder.embedder.{convolution,normalization}       -> stem_conv1 / stem_bn1
    encoder.stages.{s}.layers.{b}.layer.{k}.…            -> stage{s+1}_block{b+1}_conv{k+1} / _bn{k+1}
    encoder.stages.{s}.layers.{b}.shortcut.…             -> stage{s+1}_block{b+1}_downsample_conv / _bn

with or without the `resnet.` prefix of `ResNetForImageClassification`
checkpoints (whose `classifier.` head is skipped). Read with numpy only
(`read_checkpoint`, no torch); the checkpoint must have been saved with the
default `downsample_in_bottleneck=False`, as microsoft/resnet-50 is.
"""

from gdcld_zoo.convert.state_dict import ConversionError, assign_torch_weights, read_checkpoint


def encoder_mapping(encoder):
    """`(torch_prefix, keras_layer, kind)` entries for every layer of `encoder`."""
    if len(encoder.stem_widths) != 1 or encoder.avg_down:
        raise ConversionError(
            "transformers ResNet checkpoints have a 7×7 stem and strided-convolution shortcuts "
            f"(ResNet v1.5); this encoder has stem_widths={encoder.stem_widths}, "
            f"avg_down={encoder.avg_down}. Build it with `resnet.RESNET50`'s settings."
        )
    mapping = [
        ("embedder.embedder.convolution", encoder.get_layer("stem_conv1"), "conv"),
        ("embedder.embedder.normalization", encoder.get_layer("stem_bn1"), "batch_norm"),
    ]
    for s, depth in enumerate(encoder.depths):
        for b in range(depth):
            torch_block, block = f"encoder.stages.{s}.layers.{b}", f"stage{s + 1}_block{b + 1}"
            for k in range(3):
                mapping += [
                    (f"{torch_block}.layer.{k}.convolution", encoder.get_layer(f"{block}_conv{k + 1}"), "conv"),
                    (f"{torch_block}.layer.{k}.normalization", encoder.get_layer(f"{block}_bn{k + 1}"), "batch_norm"),
                ]
            if b == 0:
                mapping += [
                    (f"{torch_block}.shortcut.convolution", encoder.get_layer(f"{block}_downsample_conv"), "conv"),
                    (f"{torch_block}.shortcut.normalization", encoder.get_layer(f"{block}_downsample_bn"), "batch_norm"),
                ]
    return mapping


def load_state(encoder, state, source):
    """Assign a transformers ResNet state dict (numpy arrays) to `encoder`."""
    state = {key.removeprefix("resnet."): value for key, value in state.items()}
    assign_torch_weights(encoder_mapping(encoder), state, source, ignore=("classifier.",))


def load_encoder_weights(model, path):
    """Load a transformers ResNet checkpoint (`.safetensors` or `pytorch_model.bin`
    file, or a folder holding one, e.g. a download of microsoft/resnet-50) into
    `model`, a `ResNetEncoder` or a model whose `encoder` is one.

    Raises:
        ConversionError: the checkpoint is unreadable or its tensors do not
            match the encoder (all missing, unexpected and mis-shaped ones listed).

    Example:
    >>> from gdcld_zoo import build_model
    >>> model = build_model("resunet_r50", encoder_weights="resnet-50/")  # doctest: +SKIP
    """
    encoder = getattr(model, "encoder", None)  # a segmentation model's, or the bare ResNet given
    load_state(model if encoder is None else encoder, read_checkpoint(path), f"transformers ResNet checkpoint {path}")
