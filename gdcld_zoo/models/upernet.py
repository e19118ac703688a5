"""UperNet (Xiao et al., ECCV 2018) on a ViT-B/16 encoder, as in mmsegmentation.

The GDCLD paper benchmarks UperNet with an ImageNet-pretrained ViT-B/16
(Table 4). A plain ViT has one stride (16), so, as mmsegmentation's
`upernet_vit-b16_ln_mln` configuration does, a multi-level neck turns four
transformer blocks into a pyramid: a 1×1 convolution per block, a bilinear
rescale by 4, 2, 1 and 0.5 (strides 4, 8, 16, 32), then a 3×3 convolution.
The UPerHead fuses that pyramid: pyramid pooling (PPM, 1/2/3/6 bins) on the
stride-32 level, a top-down FPN, all levels upsampled to stride 4, concatenated
and fused by a 3×3 ConvBNReLU, then a 1×1 classifier. With 512 head channels
this is 141.7 M trainable parameters at `num_classes=1` with position
embeddings for 224 pixels (mmsegmentation's 142.3 M builds them for 512).

The blocks default to 3, 5, 7, 11 (0-based; BEiT's and transformers' UperNet
choice); mmsegmentation's ViT configuration takes 2, 5, 8, 11
(`out_indices=(2, 5, 8, 11)`); the parameter count is the same.

No auxiliary FCN head: mmsegmentation adds one only as a training loss.
"""

import keras
from keras import layers

from gdcld_zoo.layers import conv_bn_relu, bilinear_upsample, full_resolution_logits
from gdcld_zoo.layers.resize import AdaptiveAveragePooling2D, BilinearResizeLike
from gdcld_zoo.models.vit import ViTEncoder
from gdcld_zoo.models.segmentation_model import SegmentationModel
from gdcld_zoo.registry import ModelSpec, register_model

def multi_level_neck(block_maps, channels, scales, patch_size, name="neck"):
    """mmsegmentation's MultiLevelNeck: 1×1 conv, bilinear rescale, 3×3 conv.

    Args:
        block_maps: Same-stride (B, h, w, C) maps, one per scale.
        channels: Output channels of every level.
        scales: Rescale factor of each map: integers ≥ 1 (bilinear upsampling)
            or 0.5 (bilinear downsampling by 2 without antialiasing, which is
            exactly 2×2 average pooling).
        patch_size: Stride of the input maps.

    Returns:
        Dict `{"stride_{s}": map}` with s = patch_size / scale.
    """
    features = {}
    for level, (x, scale) in enumerate(zip(block_maps, scales)):
        x = layers.Conv2D(channels, 1, name=f"{name}_lateral{level}")(x)
        if scale == 0.5:
            x = layers.AveragePooling2D(2, name=f"{name}_resize{level}")(x)
        else:
            x = bilinear_upsample(x, int(scale), name=f"{name}_resize{level}")
        x = layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv{level}")(x)
        features[f"stride_{int(patch_size / scale)}"] = x
    return features


def uper_head(features, channels, pool_scales, name="decoder"):
    """UPerHead: PPM on the deepest level, top-down FPN, fusion at the finest stride.

    Args:
        features: Dict `{"stride_{s}": (B, H/s, W/s, C_s)}` from any encoder/neck.
        channels: Width of every head convolution (512 in the paper setting).
        pool_scales: Bins of the pyramid pooling module.

    Returns:
        The fused (B, H/s0, W/s0, channels) map at the finest stride s0, and s0.
    """
    strides = sorted(int(key.split("_")[1]) for key in features)
    maps = [features[f"stride_{s}"] for s in strides]

    top = maps[-1]
    pooled = [top]
    for scale in pool_scales:
        y = AdaptiveAveragePooling2D(scale, name=f"{name}_ppm{scale}_pool")(top)
        y = conv_bn_relu(y, channels, 1, f"{name}_ppm{scale}", use_bias=False)
        pooled.append(BilinearResizeLike(name=f"{name}_ppm{scale}_resize")([y, top]))
    y = layers.Concatenate(name=f"{name}_ppm_concat")(pooled)
    laterals = [conv_bn_relu(x, channels, 1, f"{name}_lateral{i}", use_bias=False) for i, x in enumerate(maps[:-1])]
    laterals.append(conv_bn_relu(y, channels, 3, f"{name}_ppm_bottleneck", use_bias=False))

    for i in range(len(laterals) - 1, 0, -1):
        up = bilinear_upsample(laterals[i], strides[i] // strides[i - 1], name=f"{name}_topdown{i}_upsample")
        laterals[i - 1] = layers.Add(name=f"{name}_topdown{i}_add")([laterals[i - 1], up])
    outs = [conv_bn_relu(x, channels, 3, f"{name}_fpn{i}", use_bias=False) for i, x in enumerate(laterals[:-1])]
    outs.append(laterals[-1])
    outs = [outs[0]] + [
        bilinear_upsample(x, strides[i] // strides[0], name=f"{name}_fpn{i}_upsample") for i, x in enumerate(outs) if i
    ]
    y = layers.Concatenate(name=f"{name}_fpn_concat")(outs)
    return conv_bn_relu(y, channels, 3, f"{name}_fpn_bottleneck", use_bias=False), strides[0]


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class UperNet(SegmentationModel):
    """UperNet with a ViT encoder and a multi-level neck; logits at input resolution.

    Args:
        num_classes: 1 for landslide/background (sigmoid + BCE, the paper's
            setting), 2 or more for softmax.
        input_shape: Channels-last (H, W, C); H and W may be None (multiples of 32).
        patch_size, hidden_size, depth, num_heads, mlp_ratio, image_size,
            out_indices, drop_path_rate: The ViT encoder (see `ViTEncoder`).
        neck_channels: Output width of the multi-level neck (768).
        neck_scales: Rescale factor per selected block (4, 2, 1, 0.5 -> strides 4…32).
        channels: Width of the UPerHead (512).
        pool_scales: PPM bins (1, 2, 3, 6).
        dropout_rate: Dropout before the classifier (0.1 as mmsegmentation).

    Example:
    >>> model = UperNet(patch_size=16, hidden_size=16, depth=2, num_heads=2, image_size=64,
    ...     out_indices=(0, 0, 1, 1), neck_channels=16, channels=8, input_shape=(64, 96, 3))
    >>> model.output_shape
    (None, 64, 96, 1)
    """

    def __init__(
        self,
        num_classes=1,
        input_shape=(None, None, 3),
        patch_size=16,
        hidden_size=768,
        depth=12,
        num_heads=12,
        mlp_ratio=4,
        image_size=224,
        out_indices=(3, 5, 7, 11),
        drop_path_rate=0.0,
        neck_channels=768,
        neck_scales=(4, 2, 1, 0.5),
        channels=512,
        pool_scales=(1, 2, 3, 6),
        dropout_rate=0.1,
        **kwargs,
    ):
        if len(out_indices) != len(neck_scales):
            raise ValueError(f"Give one neck scale per selected block: {out_indices} vs {neck_scales}.")
        if any(not (s == 0.5 or (s >= 1 and float(s).is_integer())) for s in neck_scales):
            raise ValueError(f"neck_scales must be 0.5 or integers >= 1, got {neck_scales}.")

        # === Layers ===
        encoder = ViTEncoder(
            input_shape=input_shape,
            patch_size=patch_size,
            hidden_size=hidden_size,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            image_size=image_size,
            out_indices=sorted(set(out_indices)),
            drop_path_rate=drop_path_rate,
            name="encoder",
        )

        # === Functional graph ===
        inputs = keras.Input(shape=input_shape, name="images")
        blocks = encoder(inputs)
        features = multi_level_neck(
            [blocks[f"block_{i}"] for i in out_indices], neck_channels, neck_scales, patch_size
        )
        x, stride = uper_head(features, channels, pool_scales)
        x = layers.Dropout(dropout_rate, name="decoder_dropout")(x)
        x = layers.Conv2D(num_classes, 1, name="decoder_classifier")(x)
        outputs = full_resolution_logits(x, stride)
        super().__init__(inputs, outputs, num_classes=num_classes, input_shape=input_shape, encoder=encoder, **kwargs)

        # === Config ===
        self.out_indices_config = tuple(out_indices)
        self.neck_channels = neck_channels
        self.neck_scales = tuple(neck_scales)
        self.channels = channels
        self.pool_scales = tuple(pool_scales)
        self.dropout_rate = dropout_rate

    def head_config(self):
        return {
            "out_indices": list(self.out_indices_config),
            "neck_channels": self.neck_channels,
            "neck_scales": list(self.neck_scales),
            "channels": self.channels,
            "pool_scales": list(self.pool_scales),
            "dropout_rate": self.dropout_rate,
        }


register_model(
    ModelSpec(
        name="upernet_vit_b16",
        builder=UperNet,
        encoder_loader="gdcld_zoo.convert.transformers_vit:load_encoder_weights",
        description="UperNet, ViT-B/16 encoder + multi-level neck + UPerHead (Xiao et al., 2018)",
        config={},
        num_params=141_654_273,
    )
)

register_model(
    ModelSpec(
        name="upernet_vit_tiny",
        builder=UperNet,
        encoder_loader="gdcld_zoo.convert.transformers_vit:load_encoder_weights",
        description="Tiny UperNet on ViT for tests",
        config={
            "hidden_size": 32,
            "depth": 2,
            "num_heads": 2,
            "image_size": 64,
            "out_indices": (0, 0, 1, 1),
            "drop_path_rate": 0.1,
            "neck_channels": 16,
            "channels": 16,
        },
        public=False,
    )
)
