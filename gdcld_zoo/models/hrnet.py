"""HRNet (Wang et al., TPAMI 2020) with the FCN head, as the GDCLD paper uses it.

The GDCLD paper's HRNet baseline (Table 4, "HRNet-48") is PaddleSeg's
`FCN` on `HRNet_W48`: a stem of two stride-2 3×3 convolutions to 64 channels,
stage 1 of four Bottleneck blocks (256 channels), then stages 2–4 that keep
2, 3 and 4 parallel branches at strides 4, 8, 16 and 32 (48, 96, 192 and 384
channels). Each stage repeats a high-resolution module (1, 4 and 3 times): four
BasicBlocks per branch, then fuse layers that add every branch into every
other (1×1 conv + batch norm + upsampling from lower resolutions, chains of
stride-2 3×3 convs from higher ones) followed by ReLU. The FCN head upsamples
all four branches bilinearly to stride 4, concatenates them (720 channels),
applies a 1×1 ConvBNReLU (720 → 720, the conv with bias as PaddleSeg's) and a
1×1 classifier; the logits are upsampled ×4 to the input size. That is
65,846,401 trainable parameters at `num_classes=1`, exactly PaddleSeg's count.

Two details follow timm's `hrnet_w48` (whose ImageNet weights
`gdcld_zoo.convert.timm_hrnet` loads) rather than PaddleSeg, because a
pretrained encoder is only right in the graph it was trained in:
- fuse layers upsample lower-resolution branches with nearest neighbours by
  the integer factor 2**(j-i) (timm's `nn.Upsample(mode="nearest")`;
  PaddleSeg interpolates bilinearly);
- stride-2 convolutions pad one pixel on every side (PyTorch `padding=1`;
  PaddleSeg and Keras `"same"` pad only bottom/right for even sizes).
The head's upsampling is bilinear with half-pixel centres, as PaddleSeg's
(`align_corners=False`).

Layer names of the encoder are timm's module paths with dots replaced by
underscores (`stage3_2_fuse_layers_1_0_0_0` is timm's
`stage3.2.fuse_layers.1.0.0.0`), so checkpoints map onto it by name.
"""

import keras
from keras import layers

from gdcld_zoo.layers import batch_norm, bilinear_upsample, full_resolution_logits
from gdcld_zoo.models.segmentation_model import SegmentationModel
from gdcld_zoo.registry import ModelSpec, register_model

# timm initialises HRNet convolutions with Kaiming-normal (fan_out, ReLU gain).
_CONV_INIT = keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="untruncated_normal")
# PaddleSeg initialises the FCN head's convolutions with N(0, 0.001).
_HEAD_INIT = keras.initializers.RandomNormal(stddev=0.001)


def _conv(x, filters, kernel_size, name, strides=1):
    """Bias-free convolution padded like PyTorch's `padding=kernel_size // 2`."""
    if strides > 1 and kernel_size > 1:
        x = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    return layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, use_bias=False,
        kernel_initializer=_CONV_INIT, name=name,
    )(x)


def _conv_bn(x, filters, kernel_size, conv_name, bn_name, strides=1, relu=False):
    x = batch_norm(_conv(x, filters, kernel_size, conv_name, strides), bn_name)
    return layers.ReLU(name=f"{bn_name}_relu")(x) if relu else x


def _basic_block(x, filters, name):
    """ResNet BasicBlock: two 3×3 conv + BN, identity (or 1×1 projection) shortcut."""
    shortcut = x
    if x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, f"{name}_downsample_0", f"{name}_downsample_1")
    y = _conv_bn(x, filters, 3, f"{name}_conv1", f"{name}_bn1", relu=True)
    y = _conv_bn(y, filters, 3, f"{name}_conv2", f"{name}_bn2")
    return layers.ReLU(name=f"{name}_relu")(layers.Add(name=f"{name}_add")([y, shortcut]))


def _bottleneck(x, filters, name):
    """ResNet Bottleneck: 1×1 → 3×3 → 1×1 (×4 channels), projection when widths differ."""
    shortcut = x
    if x.shape[-1] != 4 * filters:
        shortcut = _conv_bn(x, 4 * filters, 1, f"{name}_downsample_0", f"{name}_downsample_1")
    y = _conv_bn(x, filters, 1, f"{name}_conv1", f"{name}_bn1", relu=True)
    y = _conv_bn(y, filters, 3, f"{name}_conv2", f"{name}_bn2", relu=True)
    y = _conv_bn(y, 4 * filters, 1, f"{name}_conv3", f"{name}_bn3")
    return layers.ReLU(name=f"{name}_relu")(layers.Add(name=f"{name}_add")([y, shortcut]))


def _transition(branches, channels, name):
    """Adapt the previous stage's branches to this stage's: a 3×3 conv where
    the width changes, and a new lower-resolution branch made from the last one
    by a stride-2 3×3 conv."""
    outputs = []
    for i, filters in enumerate(channels):
        if i < len(branches):
            x = branches[i]
            if x.shape[-1] != filters:
                x = _conv_bn(x, filters, 3, f"{name}_{i}_0", f"{name}_{i}_1", relu=True)
        else:
            x = _conv_bn(branches[-1], filters, 3, f"{name}_{i}_0_0", f"{name}_{i}_0_1", strides=2, relu=True)
        outputs.append(x)
    return outputs


def _fuse(branches, channels, name):
    """Every output branch i sums all input branches brought to its resolution
    and width, then applies ReLU."""
    outputs = []
    for i, filters in enumerate(channels):
        terms = []
        for j, x in enumerate(branches):
            prefix = f"{name}_{i}_{j}"
            if j > i:
                x = _conv_bn(x, filters, 1, f"{prefix}_0", f"{prefix}_1")
                x = layers.UpSampling2D(2 ** (j - i), interpolation="nearest", name=f"{prefix}_upsample")(x)
            elif j < i:
                for k in range(i - j):
                    last = k == i - j - 1
                    x = _conv_bn(
                        x, filters if last else channels[j], 3, f"{prefix}_{k}_0", f"{prefix}_{k}_1",
                        strides=2, relu=not last,
                    )
            terms.append(x)
        outputs.append(layers.ReLU(name=f"{name}_{i}_relu")(layers.Add(name=f"{name}_{i}_add")(terms)))
    return outputs


def _validate(stage1_blocks, branch_channels, num_modules, num_blocks):
    if len(branch_channels) != 4 or len(num_modules) != 3 or len(num_blocks) != 3:
        raise ValueError(
            "HRNet has four branches and stages 2–4: give 4 branch_channels, 3 num_modules and "
            f"3 num_blocks, got {branch_channels}, {num_modules}, {num_blocks}."
        )
    if stage1_blocks < 1 or min(num_modules) < 1 or min(num_blocks) < 1:
        raise ValueError("HRNet needs at least one block and one module in every stage.")


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class HRNetEncoder(keras.Model):
    """The HRNet backbone: stem, Bottleneck stage 1, multi-branch stages 2–4.

    Returns the stem's first activation as `"stride_2"` and the four branches
    of the last stage as `"stride_4"` … `"stride_32"`.

    Args:
        input_shape: Channels-last (H, W, C); H and W may be None.
        stem_channels: Width of both stem convolutions (64).
        stage1_channels: Bottleneck width of stage 1; it outputs 4× as many (64 → 256).
        stage1_blocks: Bottleneck blocks in stage 1 (4).
        branch_channels: Width of the branches at strides 4, 8, 16, 32 (48, 96, 192, 384 for W48).
        num_modules: High-resolution modules in stages 2, 3, 4 (1, 4, 3).
        num_blocks: BasicBlocks per branch in each module of stages 2, 3, 4 (4, 4, 4).

    Example:
    >>> encoder = HRNetEncoder(stem_channels=8, stage1_channels=4, stage1_blocks=1,
    ...     branch_channels=(4, 8, 12, 16), num_modules=(1, 1, 1), num_blocks=(1, 1, 1))
    >>> {key: value.shape[-1] for key, value in encoder.output.items()}
    {'stride_2': 8, 'stride_4': 4, 'stride_8': 8, 'stride_16': 12, 'stride_32': 16}
    """

    def __init__(
        self,
        input_shape=(None, None, 3),
        stem_channels=64,
        stage1_channels=64,
        stage1_blocks=4,
        branch_channels=(48, 96, 192, 384),
        num_modules=(1, 4, 3),
        num_blocks=(4, 4, 4),
        **kwargs,
    ):
        _validate(stage1_blocks, branch_channels, num_modules, num_blocks)

        # === Functional graph (layers are created inline, named as timm's modules) ===
        inputs = keras.Input(shape=input_shape, name="images")
        stem = _conv_bn(inputs, stem_channels, 3, "conv1", "bn1", strides=2, relu=True)
        x = _conv_bn(stem, stem_channels, 3, "conv2", "bn2", strides=2, relu=True)
        for block in range(stage1_blocks):
            x = _bottleneck(x, stage1_channels, f"layer1_{block}")
        branches = [x]
        for stage, (modules, blocks) in enumerate(zip(num_modules, num_blocks)):
            channels = branch_channels[: stage + 2]
            branches = _transition(branches, channels, f"transition{stage + 1}")
            for module in range(modules):
                prefix = f"stage{stage + 2}_{module}"
                for b, filters in enumerate(channels):
                    for block in range(blocks):
                        branches[b] = _basic_block(branches[b], filters, f"{prefix}_branches_{b}_{block}")
                branches = _fuse(branches, channels, f"{prefix}_fuse_layers")
        features = {"stride_2": stem}
        features.update({f"stride_{4 * 2 ** i}": x for i, x in enumerate(branches)})
        super().__init__(inputs=inputs, outputs=features, **kwargs)

        # === Config ===
        self.input_shape_config = tuple(input_shape)
        self.stem_channels = stem_channels
        self.stage1_channels = stage1_channels
        self.stage1_blocks = stage1_blocks
        self.branch_channels = tuple(branch_channels)
        self.num_modules = tuple(num_modules)
        self.num_blocks = tuple(num_blocks)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "input_shape": list(self.input_shape_config),
            "stem_channels": self.stem_channels,
            "stage1_channels": self.stage1_channels,
            "stage1_blocks": self.stage1_blocks,
            "branch_channels": list(self.branch_channels),
            "num_modules": list(self.num_modules),
            "num_blocks": list(self.num_blocks),
        }


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class HRNet(SegmentationModel):
    """HRNet encoder + FCN head (PaddleSeg's `FCN` on `HRNet_W48`), logits at input resolution.

    Args:
        num_classes: 1 for landslide/background (sigmoid + BCE, the paper's
            setting), 2 or more for softmax.
        input_shape: Channels-last (H, W, C); H and W may be None.
        stem_channels, stage1_channels, stage1_blocks, branch_channels,
            num_modules, num_blocks: The encoder (see `HRNetEncoder`).
        head_channels: Width of the head's 1×1 ConvBNReLU; None means the
            concatenated width, `sum(branch_channels)` (720 for W48), as PaddleSeg.

    Example:
    >>> model = HRNet(stem_channels=8, stage1_channels=4, stage1_blocks=1,
    ...     branch_channels=(4, 8, 12, 16), num_modules=(1, 1, 1), num_blocks=(1, 1, 1),
    ...     input_shape=(64, 96, 3))
    >>> model.output_shape
    (None, 64, 96, 1)
    """

    def __init__(
        self,
        num_classes=1,
        input_shape=(None, None, 3),
        stem_channels=64,
        stage1_channels=64,
        stage1_blocks=4,
        branch_channels=(48, 96, 192, 384),
        num_modules=(1, 4, 3),
        num_blocks=(4, 4, 4),
        head_channels=None,
        **kwargs,
    ):
        # === Layers ===
        encoder = HRNetEncoder(
            input_shape=input_shape,
            stem_channels=stem_channels,
            stage1_channels=stage1_channels,
            stage1_blocks=stage1_blocks,
            branch_channels=branch_channels,
            num_modules=num_modules,
            num_blocks=num_blocks,
            name="encoder",
        )
        width = sum(branch_channels) if head_channels is None else head_channels

        # === Functional graph ===
        inputs = keras.Input(shape=input_shape, name="images")
        features = encoder(inputs)
        upsampled = [
            bilinear_upsample(features[f"stride_{stride}"], stride // 4, name=f"head_upsample_{stride}")
            for stride in (4, 8, 16, 32)
        ]
        x = layers.Concatenate(name="head_concat")(upsampled)
        x = layers.Conv2D(width, 1, kernel_initializer=_HEAD_INIT, name="head_conv")(x)
        x = batch_norm(x, "head_bn")
        x = layers.ReLU(name="head_relu")(x)
        x = layers.Conv2D(num_classes, 1, kernel_initializer=_HEAD_INIT, name="head_classifier")(x)
        outputs = full_resolution_logits(x, 4)
        super().__init__(inputs, outputs, num_classes=num_classes, input_shape=input_shape, encoder=encoder, **kwargs)

        # === Config ===
        self.head_channels = head_channels

    def head_config(self):
        return {
            "head_channels": self.head_channels,
        }


register_model(
    ModelSpec(
        name="hrnet_w48",
        builder=HRNet,
        encoder_loader="gdcld_zoo.convert.timm_hrnet:load_encoder_weights",
        description="HRNet-W48 + FCN head (Wang et al., 2020), the paper's PaddleSeg configuration",
        config={},
        num_params=65_846_401,
    )
)

register_model(
    ModelSpec(
        name="hrnet_tiny",
        builder=HRNet,
        encoder_loader="gdcld_zoo.convert.timm_hrnet:load_encoder_weights",
        description="Tiny HRNet for tests",
        config={
            "stem_channels": 8,
            "stage1_channels": 4,
            "stage1_blocks": 1,
            "branch_channels": (4, 8, 12, 16),
            "num_modules": (1, 1, 1),
            "num_blocks": (1, 1, 1),
        },
        public=False,
    )
)
