"""ResNet encoders (He et al., CVPR 2016) for the CNN segmentation models.

One bottleneck ResNet covers both ResNet-50 flavours the GDCLD paper's CNNs use:

- **ResNet-50 (v1.5)**, the encoder of ResUNet: a 7×7 stride-2 stem, the
  stride of each downsampling block in its 3×3 convolution, projection
  shortcuts by strided 1×1 convolutions. This is torchvision's and transformers'
  `ResNetModel` (microsoft/resnet-50) layout; `gdcld_zoo.convert.transformers_resnet`
  loads those checkpoints exactly.
- **ResNet-50-vd** (He et al., "Bag of Tricks", CVPR 2019), the encoder of
  DeepLabV3 in PaddleSeg: a deep stem of three 3×3 convolutions (32-32-64) and
  shortcuts that downsample by 2×2 average pooling before a stride-1 1×1
  convolution. `output_stride=8` replaces the strides of stages 3 and 4 by
  dilations 2 and 4, and `multi_grid` multiplies the dilations of the last
  stage's blocks (DeepLabV3's (1, 2, 4)), exactly as PaddleSeg's `ResNet_vd`.
  This is timm's `resnet50d` layout (`gdcld_zoo.convert.timm_resnet`).

Why not keras-hub's `ResNetBackbone`: it has the right v1.5 and vd blocks, but no
dilation, so it cannot be DeepLabV3's output-stride-8 encoder, and its
`pyramid_outputs` lack the stride-2 stem features a U-Net decoder skips from. One encoder here
serves both models with a single layer-naming scheme that both converters target.

Strided convolutions pad symmetrically (`ZeroPadding2D` + "valid"), as PyTorch
and Paddle do, so converted weights give the reference's numbers; Keras' "same"
would pad only after on even sizes. Zero padding before the stem's max pool is
exact because its input is post-ReLU (non-negative).
"""

import keras
from keras import layers

from gdcld_zoo.layers import batch_norm

EXPANSION = 4


def _stage_dilations(output_stride, num_stages):
    """Dilation of each stage for an output stride: PaddleSeg's `dilation_dict`."""
    if output_stride == 32:
        return [1] * num_stages
    if output_stride == 16:
        return [1] * (num_stages - 1) + [2]
    if output_stride == 8:
        return [1] * (num_stages - 2) + [2, 4]
    raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride!r}.")


def _conv_bn(x, filters, kernel_size, name, index="", stride=1, dilation=1, relu=True):
    """`{name}_conv{index}` (no bias) + `{name}_bn{index}` (+ ReLU), padded symmetrically."""
    padding = "same"
    if stride > 1 and kernel_size > 1:
        x = layers.ZeroPadding2D((kernel_size - 1) // 2, name=f"{name}_pad{index}")(x)
        padding = "valid"
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=stride,
        dilation_rate=dilation,
        padding=padding,
        use_bias=False,
        name=f"{name}_conv{index}",
    )(x)
    x = batch_norm(x, f"{name}_bn{index}")
    if relu:
        x = layers.ReLU(name=f"{name}_relu{index}")(x)
    return x


def _bottleneck_block(x, width, stride, dilation, projection, avg_down, name):
    """1×1 → 3×3 (carries the stride and dilation) → 1×1 ×4, plus the shortcut."""
    shortcut = x
    if projection:
        if avg_down and stride > 1:
            shortcut = layers.AveragePooling2D(stride, strides=stride, name=f"{name}_downsample_pool")(x)
            shortcut = _conv_bn(shortcut, width * EXPANSION, 1, f"{name}_downsample", relu=False)
        else:
            shortcut = _conv_bn(x, width * EXPANSION, 1, f"{name}_downsample", stride=stride, relu=False)
    y = _conv_bn(x, width, 1, name, index=1)
    y = _conv_bn(y, width, 3, name, index=2, stride=stride, dilation=dilation)
    y = _conv_bn(y, width * EXPANSION, 1, name, index=3, relu=False)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class ResNetEncoder(keras.Model):
    """Bottleneck ResNet returning features keyed by output stride.

    The dict holds `"stride_2"` (the stem before max pooling) and the output of
    every stage under its stride: `"stride_4"` … `"stride_32"` at
    `output_stride=32`. With dilation (`output_stride` 8 or 16) the stages past
    it keep that stride, and the key holds the deepest of them (e.g. stage 4 under
    `"stride_8"` at `output_stride=8`), so the dict never lies about strides.

    Layers are named `stem_conv{i}`/`stem_bn{i}` and
    `stage{s}_block{b}_{conv,bn}{1,2,3}` / `_downsample_{conv,bn}` (1-based),
    the names the checkpoint converters map onto.

    Args:
        input_shape: Channels-last (H, W, C); H and W may be None.
        depths: Blocks per stage ((3, 4, 6, 3) for ResNet-50).
        widths: Bottleneck width per stage; stage outputs are 4× wider.
        stem_widths: One entry for the 7×7 stem of ResNet v1.5, three for the
            deep 3×3 stem of ResNet-vd ((32, 32, 64)).
        avg_down: Downsample shortcuts by 2×2 average pooling (ResNet-vd)
            instead of a strided 1×1 convolution.
        output_stride: 32, or 16 / 8 to dilate the last one / two stages.
        multi_grid: Dilation multipliers for the last stage's blocks, one per
            block (DeepLabV3's (1, 2, 4)).

    Example:
    >>> encoder = ResNetEncoder(depths=(1, 1, 1, 1), widths=(4, 8, 8, 16), stem_widths=(8,))
    >>> encoder.feature_channels
    {'stride_2': 8, 'stride_4': 16, 'stride_8': 32, 'stride_16': 32, 'stride_32': 64}
    """

    def __init__(
        self,
        input_shape=(None, None, 3),
        depths=(3, 4, 6, 3),
        widths=(64, 128, 256, 512),
        stem_widths=(64,),
        avg_down=False,
        output_stride=32,
        multi_grid=None,
        **kwargs,
    ):
        if len(depths) != len(widths):
            raise ValueError(f"depths {depths} and widths {widths} need one entry per stage.")
        if len(stem_widths) not in (1, 3):
            raise ValueError(f"stem_widths needs 1 (7×7 stem) or 3 (deep stem) entries, got {stem_widths}.")
        multi_grid = tuple(multi_grid) if multi_grid is not None else (1,) * depths[-1]
        if len(multi_grid) != depths[-1]:
            raise ValueError(f"multi_grid {multi_grid} needs one entry per block of the last stage ({depths[-1]}).")
        dilations = _stage_dilations(output_stride, len(depths))

        # === Functional graph (layers are created inline, named per stage/block) ===
        inputs = keras.Input(shape=input_shape, name="images")
        if len(stem_widths) == 1:
            x = _conv_bn(inputs, stem_widths[0], 7, "stem", index=1, stride=2)
        else:
            x = inputs
            for i, width in enumerate(stem_widths):
                x = _conv_bn(x, width, 3, "stem", index=i + 1, stride=2 if i == 0 else 1)
        features = {"stride_2": x}
        x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
        stride = 4
        for stage, (depth, width, dilation) in enumerate(zip(depths, widths, dilations)):
            # The first stage keeps stride 4; later ones halve, unless dilated.
            stage_stride = 2 if stage > 0 and dilation == 1 else 1
            stride *= stage_stride
            for block in range(depth):
                block_dilation = dilation * (multi_grid[block] if stage == len(depths) - 1 else 1)
                x = _bottleneck_block(
                    x,
                    width,
                    stride=stage_stride if block == 0 else 1,
                    dilation=block_dilation,
                    projection=block == 0,
                    avg_down=avg_down,
                    name=f"stage{stage + 1}_block{block + 1}",
                )
            features[f"stride_{stride}"] = x
        super().__init__(inputs=inputs, outputs=features, **kwargs)

        # === Config ===
        self.input_shape_config = tuple(input_shape)
        self.depths = tuple(depths)
        self.widths = tuple(widths)
        self.stem_widths = tuple(stem_widths)
        self.avg_down = avg_down
        self.output_stride = output_stride
        self.multi_grid = multi_grid
        self.feature_channels = {
            "stride_2": stem_widths[-1],
            **{key: int(tensor.shape[-1]) for key, tensor in features.items() if key != "stride_2"},
        }

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "input_shape": list(self.input_shape_config),
            "depths": list(self.depths),
            "widths": list(self.widths),
            "stem_widths": list(self.stem_widths),
            "avg_down": self.avg_down,
            "output_stride": self.output_stride,
            "multi_grid": list(self.multi_grid),
        }


# ResNet-50 v1.5 (torchvision / transformers microsoft/resnet-50).
RESNET50 = {"depths": (3, 4, 6, 3), "widths": (64, 128, 256, 512), "stem_widths": (64,), "avg_down": False}
# ResNet-50-vd (PaddleSeg ResNet50_vd / timm resnet50d).
RESNET50_VD = {"depths": (3, 4, 6, 3), "widths": (64, 128, 256, 512), "stem_widths": (32, 32, 64), "avg_down": True}
