"""ResUNet: a U-Net decoder on a ResNet-50 encoder.

The GDCLD paper's ResUNet (Table 4, ResNet-50 backbone) puts residual blocks in
the contracting path of a U-Net. As in segmentation_models_pytorch's
`Unet("resnet50")` — the usual form of this model, 32.5 M parameters — the
encoder is an ImageNet-pretrained ResNet-50 (v1.5) and the decoder has five
blocks of 256-128-64-32-16 channels. Each block upsamples ×2 (nearest, as smp),
concatenates the encoder features at that stride (strides 16, 8, 4 and 2: every
stage and the stem; the last block has no skip) and applies two 3×3 conv +
batch norm + ReLU units; a 3×3 convolution gives the logits at full resolution.
"""

import keras
from keras import layers

from gdcld_zoo.layers import conv_bn_relu, full_resolution_logits
from gdcld_zoo.models.resnet import RESNET50, ResNetEncoder
from gdcld_zoo.models.segmentation_model import SegmentationModel
from gdcld_zoo.registry import ModelSpec, register_model


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class ResUNet(SegmentationModel):
    """U-Net decoder on a ResNet encoder, logits at input resolution.

    Args:
        num_classes: 1 for landslide/background (sigmoid + BCE, the paper's
            setting), 2 or more for softmax.
        input_shape: Channels-last (H, W, C); H and W may be None.
        depths, widths, stem_widths, avg_down: The `ResNetEncoder`
            (ResNet-50 v1.5 by default, see `resnet.RESNET50`).
        decoder_widths: Channels of the five decoder blocks, deepest first.

    Example:
    >>> model = ResUNet(depths=(1, 1, 1, 1), widths=(4, 8, 8, 16), stem_widths=(8,),
    ...     decoder_widths=(16, 16, 8, 8, 8), input_shape=(64, 96, 3))
    >>> model.output_shape
    (None, 64, 96, 1)
    """

    FIXED_ENCODER_ARGUMENTS = ("output_stride", "multi_grid")

    def __init__(
        self,
        num_classes=1,
        input_shape=(None, None, 3),
        depths=RESNET50["depths"],
        widths=RESNET50["widths"],
        stem_widths=RESNET50["stem_widths"],
        avg_down=RESNET50["avg_down"],
        decoder_widths=(256, 128, 64, 32, 16),
        **kwargs,
    ):
        if len(decoder_widths) != 5:
            raise ValueError(f"decoder_widths needs 5 entries (strides 16 to 1), got {decoder_widths}.")

        # === Layers ===
        encoder = ResNetEncoder(
            input_shape=input_shape,
            depths=depths,
            widths=widths,
            stem_widths=stem_widths,
            avg_down=avg_down,
            name="encoder",
        )

        # === Functional graph ===
        inputs = keras.Input(shape=input_shape, name="images")
        features = encoder(inputs)
        x = features["stride_32"]
        skip_keys = ("stride_16", "stride_8", "stride_4", "stride_2", None)
        for block, (width, skip_key) in enumerate(zip(decoder_widths, skip_keys), start=1):
            x = layers.UpSampling2D(2, interpolation="nearest", name=f"decoder_block{block}_upsample")(x)
            if skip_key is not None:
                x = layers.Concatenate(name=f"decoder_block{block}_concat")([x, features[skip_key]])
            x = conv_bn_relu(x, width, 3, f"decoder_block{block}_1", use_bias=False)
            x = conv_bn_relu(x, width, 3, f"decoder_block{block}_2", use_bias=False)
        x = layers.Conv2D(num_classes, 3, padding="same", name="classifier")(x)
        outputs = full_resolution_logits(x, 1)
        super().__init__(inputs, outputs, num_classes=num_classes, input_shape=input_shape, encoder=encoder, **kwargs)

        # === Config ===
        self.decoder_widths = tuple(decoder_widths)

    def head_config(self):
        return {
            "decoder_widths": list(self.decoder_widths),
        }


register_model(
    ModelSpec(
        name="resunet_r50",
        builder=ResUNet,
        encoder_loader="gdcld_zoo.convert.transformers_resnet:load_encoder_weights",
        description="ResUNet: U-Net decoder (256-128-64-32-16) on ResNet-50, skips from every stage",
        num_params=32_521_105,
    )
)

register_model(
    ModelSpec(
        name="resunet_tiny",
        builder=ResUNet,
        encoder_loader="gdcld_zoo.convert.transformers_resnet:load_encoder_weights",
        description="Tiny ResUNet for tests",
        config={
            "depths": (1, 1, 1, 1),
            "widths": (4, 8, 8, 16),
            "stem_widths": (8,),
            "decoder_widths": (16, 16, 8, 8, 8),
        },
        public=False,
    )
)
