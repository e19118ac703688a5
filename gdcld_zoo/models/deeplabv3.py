"""DeepLabV3 (Chen et al., "Rethinking Atrous Convolution", 2017) on ResNet-50-vd.

The GDCLD paper's DeepLabV3 (Table 4, ResNet-50 backbone) is PaddleSeg's
`DeepLabV3` with `ResNet50_vd`: a ResNet-50-vd encoder (deep 3×3 stem,
average-pool downsampling shortcuts) at output stride 8 — stages 3 and 4 dilated
2 and 4, the last stage's blocks multiplied by the multi-grid (1, 2, 4) — and
Atrous Spatial Pyramid Pooling: a 1×1 branch, 3×3 branches at rates 12, 24 and
36, and image pooling (global average → 1×1 conv → broadcast back), each
conv + batch norm + ReLU at 256 channels, concatenated, fused by a 1×1 unit,
dropout 0.1 and a 1×1 classifier; logits are upsampled ×8 bilinearly.
The ASPP convolutions keep their biases (PaddleSeg's `ConvBNReLU`) except in
image pooling, so the parameter count is exactly PaddleSeg's, 39,063,905.

This is DeepLabV3, not V3+ (no low-level decoder); keras-hub's `DeepLabV3`
is a V3+ on a stride-32 ResNet and is not this model.
"""

import keras
from keras import layers, ops

from gdcld_zoo.layers import conv_bn_relu, full_resolution_logits
from gdcld_zoo.models.resnet import RESNET50_VD, ResNetEncoder
from gdcld_zoo.models.segmentation_model import SegmentationModel
from gdcld_zoo.registry import ModelSpec, register_model


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class SpatialBroadcast(layers.Layer):
    """Broadcast a (B, 1, 1, C) map to the height and width of a reference map.

    DeepLabV3's image-pooling branch upsamples its 1×1 map to the feature size;
    bilinear upsampling of a single pixel is a broadcast, and this one reads the
    size at run time, so any input height and width work.
    """

    def call(self, inputs):
        pooled, reference = inputs
        shape = ops.shape(reference)
        return ops.broadcast_to(pooled, (shape[0], shape[1], shape[2], pooled.shape[-1]))

    def compute_output_shape(self, input_shapes):
        pooled, reference = input_shapes
        return tuple(reference[:3]) + (pooled[-1],)


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class DeepLabV3(SegmentationModel):
    """DeepLabV3: dilated ResNet encoder + ASPP, logits at input resolution.

    Args:
        num_classes: 1 for landslide/background (sigmoid + BCE, the paper's
            setting), 2 or more for softmax.
        input_shape: Channels-last (H, W, C); H and W may be None.
        depths, widths, stem_widths, avg_down: The `ResNetEncoder`
            (ResNet-50-vd by default, see `resnet.RESNET50_VD`).
        output_stride: 8 (the paper's) or 16.
        multi_grid: Dilation multipliers of the last stage's blocks.
        aspp_rates: Dilation of each ASPP branch; rate 1 is a 1×1 convolution.
            (1, 12, 24, 36) at output stride 8, (1, 6, 12, 18) at 16.
        aspp_channels: Width of every ASPP branch and of the fused features.
        dropout_rate: Dropout after the ASPP fusion (0.1 in PaddleSeg).

    Example:
    >>> model = DeepLabV3(depths=(1, 1, 1, 2), widths=(4, 8, 8, 16), stem_widths=(8, 8, 8),
    ...     multi_grid=(1, 2), aspp_channels=8, input_shape=(64, 96, 3))
    >>> model.output_shape
    (None, 64, 96, 1)
    """

    def __init__(
        self,
        num_classes=1,
        input_shape=(None, None, 3),
        depths=RESNET50_VD["depths"],
        widths=RESNET50_VD["widths"],
        stem_widths=RESNET50_VD["stem_widths"],
        avg_down=RESNET50_VD["avg_down"],
        output_stride=8,
        multi_grid=(1, 2, 4),
        aspp_rates=(1, 12, 24, 36),
        aspp_channels=256,
        dropout_rate=0.1,
        **kwargs,
    ):
        # === Layers ===
        encoder = ResNetEncoder(
            input_shape=input_shape,
            depths=depths,
            widths=widths,
            stem_widths=stem_widths,
            avg_down=avg_down,
            output_stride=output_stride,
            multi_grid=multi_grid,
            name="encoder",
        )

        # === Functional graph ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = encoder(inputs)[f"stride_{output_stride}"]
        branches = [
            conv_bn_relu(x, aspp_channels, 1 if rate == 1 else 3, f"aspp_branch{i + 1}", dilation=rate)
            for i, rate in enumerate(aspp_rates)
        ]
        pooled = layers.GlobalAveragePooling2D(keepdims=True, name="aspp_pooling_average")(x)
        pooled = conv_bn_relu(pooled, aspp_channels, 1, "aspp_pooling", use_bias=False)
        branches.append(SpatialBroadcast(name="aspp_pooling_broadcast")([pooled, x]))
        x = layers.Concatenate(name="aspp_concat")(branches)
        x = conv_bn_relu(x, aspp_channels, 1, "aspp_project")
        x = layers.Dropout(dropout_rate, name="aspp_dropout")(x)
        x = layers.Conv2D(num_classes, 1, name="classifier")(x)
        outputs = full_resolution_logits(x, output_stride)
        super().__init__(inputs, outputs, num_classes=num_classes, input_shape=input_shape, encoder=encoder, **kwargs)

        # === Config ===
        self.aspp_rates = tuple(aspp_rates)
        self.aspp_channels = aspp_channels
        self.dropout_rate = dropout_rate

    def head_config(self):
        return {
            "aspp_rates": list(self.aspp_rates),
            "aspp_channels": self.aspp_channels,
            "dropout_rate": self.dropout_rate,
        }


register_model(
    ModelSpec(
        name="deeplabv3_r50",
        builder=DeepLabV3,
        encoder_loader="gdcld_zoo.convert.timm_resnet:load_encoder_weights",
        description="DeepLabV3 on ResNet-50-vd, output stride 8, multi-grid (1, 2, 4), ASPP (Chen et al., 2017)",
        num_params=39_063_905,
    )
)

register_model(
    ModelSpec(
        name="deeplabv3_tiny",
        builder=DeepLabV3,
        encoder_loader="gdcld_zoo.convert.timm_resnet:load_encoder_weights",
        description="Tiny DeepLabV3 for tests",
        config={
            "depths": (1, 1, 1, 2),
            "widths": (4, 8, 8, 16),
            "stem_widths": (8, 8, 8),
            "multi_grid": (1, 2),
            "aspp_rates": (1, 2, 3),
            "aspp_channels": 8,
        },
        public=False,
    )
)
