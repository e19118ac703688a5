"""Swin-Unet (Cao et al., ECCV Workshops 2022): a pure Swin Transformer U-Net.

The GDCLD paper benchmarks SwinUNet (Table 4). This follows the official code
(HuCaoFighting/Swin-Unet, `SwinTransformerSys`, "expand_first" final upsample):

- encoder: Swin-T width (embed 96, heads 3-6-12-24, patch 4) with depths
  2-2-2-2 (the official `swin_tiny_patch4_window7_224_lite` configuration);
- bottleneck: the last stage's output, layer-normed;
- decoder: patch expanding (linear C→2C without bias, 2×2 depth-to-space,
  layer norm), then per level: concatenation with the encoder skip, a linear
  layer back to C ("concat back dim"), Swin blocks and patch expanding;
  the official code gives each decoder level the depth of its encoder stage
  (2-2-2; its `DECODER_DEPTHS` setting is not used), and so does this one;
- layer norm, final 4× patch expanding (linear C→16C without bias, 4×4
  depth-to-space, layer norm) and a 1×1 classifier without bias.

27.2 M trainable parameters at `num_classes=1`.

Window size: 8, not the pretrained 7, so that windows tile the token grids of
the paper's 1024-pixel tiles (256, 128, 64, 32 tokens) and of 512-pixel tiles
without padding. Other multiples of 32 work too: grids are padded to a window
multiple and the padding is masked (see `gdcld_zoo.models.swin`). Window-7
checkpoints load with their relative position bias tables resized bicubically
from 13×13 to 15×15 offsets (as the Swin authors do when fine-tuning at
another window size).

Skip features are the maps that enter encoder stages 1–3 (the patch embedding
and the merged outputs), as in the official `x_downsample`.
"""

import keras
from keras import layers

from gdcld_zoo.layers import full_resolution_logits
from gdcld_zoo.models.swin import LAYER_NORM_EPSILON, DepthToSpace, SwinEncoder, drop_path_rates, swin_stage
from gdcld_zoo.models.segmentation_model import SegmentationModel
from gdcld_zoo.registry import ModelSpec, register_model


def patch_expand(x, width, scale, name):
    """Swin-Unet's patch expanding: linear layer without bias, depth-to-space by
    `scale`, layer norm. Scale 2 halves the width (`PatchExpand`, width → 2·width
    → 4 positions of width/2); the final scale 4 keeps it (`FinalPatchExpand_X4`,
    width → 16·width → 16 positions of width)."""
    out_width = width // 2 if scale == 2 else width
    x = layers.Dense(out_width * scale * scale, use_bias=False, name=f"{name}_expand")(x)
    x = DepthToSpace(scale, name=f"{name}_shuffle")(x)
    return layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"{name}_norm")(x)


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class SwinUNet(SegmentationModel):
    """Swin-Unet; logits at input resolution.

    Args:
        num_classes: 1 for landslide/background (sigmoid + BCE, the paper's
            setting), 2 or more for softmax.
        input_shape: Channels-last (H, W, C); H and W may be None (multiples of 32).
        patch_size, embed_dim, depths, num_heads, window_size, mlp_ratio,
            drop_path_rate: The Swin encoder (see `SwinEncoder`).
        decoder_depths: Swin blocks per decoder level, deepest first
            (one fewer level than encoder stages).

    Example:
    >>> model = SwinUNet(embed_dim=8, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2),
    ...     decoder_depths=(1, 1, 1), window_size=2, input_shape=(64, 96, 3))
    >>> model.output_shape
    (None, 64, 96, 1)
    """

    def __init__(
        self,
        num_classes=1,
        input_shape=(None, None, 3),
        patch_size=4,
        embed_dim=96,
        depths=(2, 2, 2, 2),
        num_heads=(3, 6, 12, 24),
        window_size=8,
        mlp_ratio=4.0,
        drop_path_rate=0.1,
        decoder_depths=(2, 2, 2),
        **kwargs,
    ):
        if len(decoder_depths) != len(depths) - 1:
            raise ValueError(
                f"decoder_depths {decoder_depths} needs one entry per decoder level ({len(depths) - 1})."
            )
        # === Layers ===
        encoder = SwinEncoder(
            input_shape=input_shape,
            patch_size=patch_size,
            embed_dim=embed_dim,
            depths=depths,
            num_heads=num_heads,
            window_size=window_size,
            mlp_ratio=mlp_ratio,
            drop_path_rate=drop_path_rate,
            name="encoder",
        )
        # Decoder level i mirrors encoder stage i and reuses its stochastic depth.
        levels = len(depths) - 1
        encoder_rates = drop_path_rates(depths, drop_path_rate)
        rates = [
            [encoder_rates[stage][min(b, depths[stage] - 1)] for b in range(decoder_depths[levels - 1 - stage])]
            for stage in range(levels)
        ]

        # === Functional graph ===
        inputs = keras.Input(shape=input_shape, name="images")
        features = encoder(inputs)
        stride = patch_size * 2**levels
        width = embed_dim * 2**levels
        x = patch_expand(features[f"stride_{stride}"], width, 2, "decoder_expand0")
        for level in range(levels):
            stage = levels - 1 - level
            stride //= 2
            width //= 2
            name = f"decoder_level{level}"
            x = layers.Concatenate(name=f"{name}_concat")([x, features[f"stride_{stride}"]])
            x = layers.Dense(width, name=f"{name}_concat_back")(x)
            x = swin_stage(x, width, decoder_depths[level], num_heads[stage], window_size, mlp_ratio, rates[stage], name)
            if stage > 0:
                x = patch_expand(x, width, 2, f"decoder_expand{level + 1}")
        x = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="decoder_norm")(x)
        x = patch_expand(x, width, patch_size, "decoder_final_expand")
        x = layers.Conv2D(num_classes, 1, use_bias=False, name="decoder_classifier")(x)
        outputs = full_resolution_logits(x, 1)
        super().__init__(inputs, outputs, num_classes=num_classes, input_shape=input_shape, encoder=encoder, **kwargs)

        # === Config ===
        self.decoder_depths = tuple(decoder_depths)

    def head_config(self):
        return {
            "decoder_depths": list(self.decoder_depths),
        }


register_model(
    ModelSpec(
        name="swin_unet",
        builder=SwinUNet,
        encoder_loader="gdcld_zoo.convert.transformers_swin:load_encoder_weights",
        description="Swin-Unet, Swin-T encoder (depths 2-2-2-2, window 8) + Swin decoder (Cao et al., 2022)",
        config={},
        num_params=27_175_524,
    )
)

register_model(
    ModelSpec(
        name="swin_unet_tiny",
        builder=SwinUNet,
        encoder_loader="gdcld_zoo.convert.transformers_swin:load_encoder_weights",
        description="Tiny Swin-Unet for tests",
        config={
            "embed_dim": 8,
            "depths": (2, 1, 1, 1),
            "num_heads": (1, 2, 2, 4),
            "window_size": 4,
            "decoder_depths": (1, 1, 2),
        },
        public=False,
    )
)
