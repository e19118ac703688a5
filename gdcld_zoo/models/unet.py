"""U-Net (Ronneberger et al., MICCAI 2015) as PaddleSeg configures it.

The GDCLD paper's UNet baseline (Table 4, 13.4 M parameters) is PaddleSeg's
`UNet`: an encoder of two 3×3 conv + batch norm + ReLU units at 64 channels,
then four max-pool downsamplings to 128, 256, 512 and 512 channels (the
512-channel bottleneck at stride 16), and a decoder that upsamples bilinearly
(instead of the original paper's transposed convolutions), concatenates the
skip connection and applies two conv units, narrowing 256-128-64-64. A 3×3
convolution gives the logits at full resolution. The convolutions keep their
biases as in PaddleSeg's `ConvBNReLU`, so the parameter count is exactly
PaddleSeg's. No pretrained encoder exists for it: the paper trains it from scratch.
"""

import keras
from keras import layers

from gdcld_zoo.layers import conv_bn_relu, bilinear_upsample, full_resolution_logits
from gdcld_zoo.models.segmentation_model import SegmentationModel
from gdcld_zoo.registry import ModelSpec, register_model

@keras.saving.register_keras_serializable(package="gdcld_zoo")
class UNet(SegmentationModel):
    """U-Net with bilinear upsampling, logits at input resolution.

    Args:
        num_classes: 1 for landslide/background (sigmoid + BCE, the paper's
            setting), 2 or more for softmax.
        input_shape: Channels-last (H, W, C); H and W may be None.
        encoder_widths: Channels of the stem and of each downsampling stage;
            the last is the bottleneck ((64, 128, 256, 512, 512) in PaddleSeg).
        decoder_widths: Channels of each upsampling stage, deepest first
            ((256, 128, 64, 64) in PaddleSeg); one per downsampling.

    Example:
    >>> model = UNet(encoder_widths=(8, 16, 16), decoder_widths=(16, 8), input_shape=(64, 96, 3))
    >>> model.output_shape
    (None, 64, 96, 1)
    """

    def __init__(
        self,
        num_classes=1,
        input_shape=(None, None, 3),
        encoder_widths=(64, 128, 256, 512, 512),
        decoder_widths=(256, 128, 64, 64),
        **kwargs,
    ):
        if len(decoder_widths) != len(encoder_widths) - 1:
            raise ValueError(
                f"decoder_widths {decoder_widths} needs one entry per downsampling "
                f"({len(encoder_widths) - 1} for encoder_widths {encoder_widths})."
            )

        # === Functional graph (layers are created inline, named per stage) ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = conv_bn_relu(inputs, encoder_widths[0], 3, "encoder_stem1")
        x = conv_bn_relu(x, encoder_widths[0], 3, "encoder_stem2")
        skips = []
        for stage, width in enumerate(encoder_widths[1:], start=1):
            skips.append(x)
            x = layers.MaxPooling2D(2, name=f"encoder_down{stage}_pool")(x)
            x = conv_bn_relu(x, width, 3, f"encoder_down{stage}_1")
            x = conv_bn_relu(x, width, 3, f"encoder_down{stage}_2")
        for stage, (width, skip) in enumerate(zip(decoder_widths, reversed(skips)), start=1):
            x = bilinear_upsample(x, 2, name=f"decoder_up{stage}_upsample")
            x = layers.Concatenate(name=f"decoder_up{stage}_concat")([x, skip])
            x = conv_bn_relu(x, width, 3, f"decoder_up{stage}_1")
            x = conv_bn_relu(x, width, 3, f"decoder_up{stage}_2")
        x = layers.Conv2D(num_classes, 3, padding="same", name="classifier")(x)
        outputs = full_resolution_logits(x, 1)
        super().__init__(inputs, outputs, num_classes=num_classes, input_shape=input_shape, **kwargs)

        # === Config ===
        self.encoder_widths = tuple(encoder_widths)
        self.decoder_widths = tuple(decoder_widths)

    def head_config(self):
        return {
            "encoder_widths": list(self.encoder_widths),
            "decoder_widths": list(self.decoder_widths),
        }


register_model(
    ModelSpec(
        name="unet",
        builder=UNet,
        description="U-Net, PaddleSeg configuration: 64-512 encoder, bilinear decoder (Ronneberger et al., 2015)",
        num_params=13_395_841,
    )
)

register_model(
    ModelSpec(
        name="unet_tiny",
        builder=UNet,
        description="Tiny U-Net for tests",
        config={"encoder_widths": (8, 16, 16, 32, 32), "decoder_widths": (16, 16, 8, 8)},
        public=False,
    )
)
