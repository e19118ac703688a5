"""SegFormer (Xie et al., NeurIPS 2021): Mix Transformer encoder + all-MLP decoder.

The GDCLD paper's best model is SegFormer with the MiT-B4 encoder (Table 4:
mIoU 85.06 % on validation). This implementation follows the reference
implementations layer for layer (the SegFormer paper's code, PaddleSeg, and
transformers' `SegformerForSemanticSegmentation`), so their checkpoints convert
exactly (`gdcld_zoo.convert.from_transformers`).

Why not keras-hub's MiT: in keras-hub 0.32 it fails on `None` and non-square
inputs, uses the tanh approximation of GELU where the reference uses the exact
(erf) form, and its decoder's `Resizing` layer leaks training mode into batch
norm. Here every tensor stays (B, H, W, C), attention reshapes with dynamic
shapes, GELU is exact, and upsampling is `UpSampling2D` (half-pixel bilinear,
as PyTorch's `align_corners=False`).
"""

import math

import keras
from keras import layers, ops

from gdcld_zoo.layers import DropPath, batch_norm, bilinear_upsample, full_resolution_logits, gelu_erf, gelu_tanh
from gdcld_zoo.models.segmentation_model import SegmentationModel
from gdcld_zoo.registry import ModelSpec, register_model

# transformers' / PyTorch's nn.LayerNorm default epsilon.
LAYER_NORM_EPSILON = 1e-5

# Activation names as transformers' SegformerConfig.hidden_act spells them.
_ACTIVATIONS = {
    "gelu": gelu_erf,
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "relu": keras.activations.relu,
}


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class EfficientSelfAttention(layers.Layer):
    """Multi-head self-attention whose keys and values are spatially reduced.

    Queries come from every position of the (B, H, W, C) map; keys and values
    from the map downsampled by a `sr_ratio`×`sr_ratio` strided convolution
    followed by layer norm (PVT's spatial-reduction attention), which makes
    attention affordable at stride 4 of a 1024-pixel tile.
    """

    def __init__(self, hidden_size, num_heads, sr_ratio, attention_dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}.")
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.sr_ratio = sr_ratio
        self.attention_dropout = attention_dropout
        self.head_dim = hidden_size // num_heads
        self.query = layers.Dense(hidden_size, name="query", dtype=self.dtype_policy)
        self.key = layers.Dense(hidden_size, name="key", dtype=self.dtype_policy)
        self.value = layers.Dense(hidden_size, name="value", dtype=self.dtype_policy)
        self.output_dense = layers.Dense(hidden_size, name="output_dense", dtype=self.dtype_policy)
        self.dropout = layers.Dropout(attention_dropout, dtype=self.dtype_policy)
        if sr_ratio > 1:
            self.reduction = layers.Conv2D(
                hidden_size, sr_ratio, strides=sr_ratio, name="reduction", dtype=self.dtype_policy
            )
            self.reduction_norm = layers.LayerNormalization(
                epsilon=LAYER_NORM_EPSILON, name="reduction_norm", dtype=self.dtype_policy
            )

    def build(self, input_shape):
        self.query.build(input_shape)
        if self.sr_ratio > 1:
            self.reduction.build(input_shape)
            reduced = self.reduction.compute_output_shape(input_shape)
            self.reduction_norm.build(reduced)
        else:
            reduced = input_shape
        self.key.build(reduced)
        self.value.build(reduced)
        self.output_dense.build(input_shape)

    def _split_heads(self, x):
        """(B, H, W, C) -> (B, heads, H*W, head_dim)."""
        x = ops.reshape(x, (ops.shape(x)[0], -1, self.num_heads, self.head_dim))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, x, training=None):
        batch, height, width = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2]
        query = self._split_heads(self.query(x))
        context = x
        if self.sr_ratio > 1:
            context = self.reduction_norm(self.reduction(x))
        key = self._split_heads(self.key(context))
        value = self._split_heads(self.value(context))
        scores = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2))) / math.sqrt(self.head_dim)
        # Softmax in float32 as the reference does, also under mixed precision.
        weights = ops.cast(ops.softmax(ops.cast(scores, "float32"), axis=-1), query.dtype)
        weights = self.dropout(weights, training=training)
        attended = ops.transpose(ops.matmul(weights, value), (0, 2, 1, 3))
        attended = ops.reshape(attended, (batch, height, width, self.hidden_size))
        return self.output_dense(attended)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_size": self.hidden_size,
            "num_heads": self.num_heads,
            "sr_ratio": self.sr_ratio,
            "attention_dropout": self.attention_dropout,
        }


def _stage_strides(strides):
    """Cumulative output stride of each stage, e.g. (4, 2, 2, 2) -> (4, 8, 16, 32)."""
    return [math.prod(strides[: i + 1]) for i in range(len(strides))]


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class MixTransformerEncoder(keras.Model):
    """The hierarchical Mix Transformer (MiT) encoder of SegFormer.

    Each stage is an overlapping patch embedding (a strided convolution with
    symmetric `patch_size // 2` zero padding, then layer norm), `depth` blocks of
    efficient self-attention and Mix-FFN (dense → 3×3 depthwise conv → GELU →
    dense), and a final layer norm.

    Returns a dict of features keyed by output stride, `"stride_4"` …
    `"stride_32"` for the standard strides (4, 2, 2, 2).

    Example:
    >>> encoder = MixTransformerEncoder(hidden_sizes=(8, 16), depths=(1, 1),
    ...     num_heads=(1, 2), sr_ratios=(2, 1), patch_sizes=(7, 3), strides=(4, 2),
    ...     mlp_ratios=(2, 2))
    >>> sorted(encoder.output_shape)
    ['stride_4', 'stride_8']
    """

    def __init__(
        self,
        input_shape=(None, None, 3),
        hidden_sizes=(32, 64, 160, 256),
        depths=(2, 2, 2, 2),
        num_heads=(1, 2, 5, 8),
        sr_ratios=(8, 4, 2, 1),
        patch_sizes=(7, 3, 3, 3),
        strides=(4, 2, 2, 2),
        mlp_ratios=(4, 4, 4, 4),
        drop_path_rate=0.1,
        hidden_act="gelu",
        layer_norm_epsilon=LAYER_NORM_EPSILON,
        **kwargs,
    ):
        stages = (hidden_sizes, depths, num_heads, sr_ratios, patch_sizes, strides, mlp_ratios)
        if len({len(s) for s in stages}) != 1:
            raise ValueError("MiT stage lists (hidden_sizes, depths, ...) must all have one entry per stage.")
        if hidden_act not in _ACTIVATIONS:
            raise ValueError(f"hidden_act must be one of {sorted(_ACTIVATIONS)}, got {hidden_act!r}.")
        activation = _ACTIVATIONS[hidden_act]
        # Stochastic depth grows linearly over all blocks, as in the reference.
        total = sum(depths)
        drop_rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]

        # === Functional graph (layers are created inline, named per stage/block) ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = inputs
        features = {}
        block_index = 0
        for stage, stride in enumerate(_stage_strides(strides)):
            prefix = f"stage{stage + 1}"
            x = layers.ZeroPadding2D(patch_sizes[stage] // 2, name=f"{prefix}_patch_padding")(x)
            x = layers.Conv2D(
                hidden_sizes[stage], patch_sizes[stage], strides=strides[stage], name=f"{prefix}_patch_embed"
            )(x)
            x = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"{prefix}_patch_norm")(x)
            for block in range(depths[stage]):
                name = f"{prefix}_block{block + 1}"
                drop_path = DropPath(drop_rates[block_index], name=f"{name}_drop_path")
                block_index += 1
                y = layers.LayerNormalization(epsilon=layer_norm_epsilon, name=f"{name}_norm1")(x)
                y = EfficientSelfAttention(
                    hidden_sizes[stage], num_heads[stage], sr_ratios[stage], name=f"{name}_attention"
                )(y)
                x = layers.Add(name=f"{name}_add1")([x, drop_path(y)])
                y = layers.LayerNormalization(epsilon=layer_norm_epsilon, name=f"{name}_norm2")(x)
                y = layers.Dense(hidden_sizes[stage] * mlp_ratios[stage], name=f"{name}_fc1")(y)
                y = layers.DepthwiseConv2D(3, padding="same", name=f"{name}_dwconv")(y)
                y = layers.Activation(activation, name=f"{name}_act")(y)
                y = layers.Dense(hidden_sizes[stage], name=f"{name}_fc2")(y)
                x = layers.Add(name=f"{name}_add2")([x, drop_path(y)])
            x = layers.LayerNormalization(epsilon=layer_norm_epsilon, name=f"{prefix}_norm")(x)
            features[f"stride_{stride}"] = x
        super().__init__(inputs=inputs, outputs=features, **kwargs)

        # === Config ===
        self.input_shape_config = tuple(input_shape)
        self.hidden_sizes = tuple(hidden_sizes)
        self.depths = tuple(depths)
        self.num_heads = tuple(num_heads)
        self.sr_ratios = tuple(sr_ratios)
        self.patch_sizes = tuple(patch_sizes)
        self.strides = tuple(strides)
        self.mlp_ratios = tuple(mlp_ratios)
        self.drop_path_rate = drop_path_rate
        self.hidden_act = hidden_act
        self.layer_norm_epsilon = layer_norm_epsilon

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "input_shape": list(self.input_shape_config),
            "hidden_sizes": list(self.hidden_sizes),
            "depths": list(self.depths),
            "num_heads": list(self.num_heads),
            "sr_ratios": list(self.sr_ratios),
            "patch_sizes": list(self.patch_sizes),
            "strides": list(self.strides),
            "mlp_ratios": list(self.mlp_ratios),
            "drop_path_rate": self.drop_path_rate,
            "hidden_act": self.hidden_act,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class SegFormer(SegmentationModel):
    """SegFormer: MiT encoder and the all-MLP decoder, logits at input resolution.

    The decoder projects every stage to `decoder_hidden_size` with a dense
    layer, upsamples all to stride 4 (bilinear), concatenates them deepest stage
    first, fuses with a 1×1 convolution (no bias) + batch norm + ReLU, applies
    dropout and a 1×1 classifier, and upsamples the logits ×4 to the input size.

    Args:
        num_classes: 1 for landslide/background (sigmoid + BCE, the paper's
            setting), 2 or more for softmax.
        input_shape: Channels-last (H, W, C); H and W may be None.
        hidden_sizes, depths, num_heads, sr_ratios, patch_sizes, strides,
            mlp_ratios: The MiT encoder, one entry per stage (see `MIT_VARIANTS`).
        decoder_hidden_size: Width of the MLP decoder (256 for B0/B1, 768 for B2–B5).
        drop_path_rate: Stochastic depth at the last block (0.1 in the reference).
        dropout_rate: Dropout before the classifier (0.1 in the reference).
        hidden_act: Mix-FFN activation, `"gelu"` (exact) as the reference.
        layer_norm_epsilon: Epsilon of the block and stage layer norms: 1e-5 as
            transformers, 1e-6 as the original code and PaddleSeg (patch-embedding
            and key/value-reduction norms use 1e-5 in all three).

    Example:
    >>> model = SegFormer(hidden_sizes=(8, 16, 24, 32), depths=(1, 1, 1, 1),
    ...     num_heads=(1, 1, 1, 1), decoder_hidden_size=16, input_shape=(64, 96, 3))
    >>> model.output_shape
    (None, 64, 96, 1)
    """

    def __init__(
        self,
        num_classes=1,
        input_shape=(None, None, 3),
        hidden_sizes=(32, 64, 160, 256),
        depths=(2, 2, 2, 2),
        num_heads=(1, 2, 5, 8),
        sr_ratios=(8, 4, 2, 1),
        patch_sizes=(7, 3, 3, 3),
        strides=(4, 2, 2, 2),
        mlp_ratios=(4, 4, 4, 4),
        decoder_hidden_size=256,
        drop_path_rate=0.1,
        dropout_rate=0.1,
        hidden_act="gelu",
        layer_norm_epsilon=LAYER_NORM_EPSILON,
        **kwargs,
    ):
        # === Layers ===
        encoder = MixTransformerEncoder(
            input_shape=input_shape,
            hidden_sizes=hidden_sizes,
            depths=depths,
            num_heads=num_heads,
            sr_ratios=sr_ratios,
            patch_sizes=patch_sizes,
            strides=strides,
            mlp_ratios=mlp_ratios,
            drop_path_rate=drop_path_rate,
            hidden_act=hidden_act,
            layer_norm_epsilon=layer_norm_epsilon,
            name="encoder",
        )
        stage_strides = _stage_strides(strides)

        # === Functional graph ===
        inputs = keras.Input(shape=input_shape, name="images")
        features = encoder(inputs)
        projected = []
        for stage, stride in enumerate(stage_strides):
            x = layers.Dense(decoder_hidden_size, name=f"decoder_linear_c{stage + 1}")(features[f"stride_{stride}"])
            projected.append(bilinear_upsample(x, stride // stage_strides[0], name=f"decoder_upsample_c{stage + 1}"))
        x = layers.Concatenate(name="decoder_concat")(projected[::-1])
        x = layers.Conv2D(decoder_hidden_size, 1, use_bias=False, name="decoder_linear_fuse")(x)
        x = batch_norm(x, "decoder_batch_norm")
        x = layers.ReLU(name="decoder_relu")(x)
        x = layers.Dropout(dropout_rate, name="decoder_dropout")(x)
        x = layers.Conv2D(num_classes, 1, name="decoder_classifier")(x)
        outputs = full_resolution_logits(x, stage_strides[0])
        super().__init__(inputs, outputs, num_classes=num_classes, input_shape=input_shape, encoder=encoder, **kwargs)

        # === Config ===
        self.decoder_hidden_size = decoder_hidden_size
        self.dropout_rate = dropout_rate

    def head_config(self):
        return {
            "decoder_hidden_size": self.decoder_hidden_size,
            "dropout_rate": self.dropout_rate,
        }


_MIT_WIDE = (64, 128, 320, 512)
MIT_VARIANTS = {
    "b0": {"hidden_sizes": (32, 64, 160, 256), "depths": (2, 2, 2, 2), "decoder_hidden_size": 256},
    "b1": {"hidden_sizes": _MIT_WIDE, "depths": (2, 2, 2, 2), "decoder_hidden_size": 256},
    "b2": {"hidden_sizes": _MIT_WIDE, "depths": (3, 4, 6, 3), "decoder_hidden_size": 768},
    "b3": {"hidden_sizes": _MIT_WIDE, "depths": (3, 4, 18, 3), "decoder_hidden_size": 768},
    "b4": {"hidden_sizes": _MIT_WIDE, "depths": (3, 8, 27, 3), "decoder_hidden_size": 768},
    "b5": {"hidden_sizes": _MIT_WIDE, "depths": (3, 6, 40, 3), "decoder_hidden_size": 768},
}

# Trainable parameters at num_classes=1; equal to transformers'
# SegformerForSemanticSegmentation with num_labels=1 (checked by the tests).
_NUM_PARAMS = {
    "b0": 3_714_401,
    "b1": 13_677_505,
    "b2": 27_347_393,
    "b3": 47_223_233,
    "b4": 63_993_793,
    "b5": 84_594_113,
}


for _variant, _config in MIT_VARIANTS.items():
    register_model(
        ModelSpec(
            name=f"segformer_{_variant}",
            builder=SegFormer,
            encoder_loader="gdcld_zoo.convert.transformers_segformer:load_encoder_weights",
            checkpoint_loader="gdcld_zoo.convert.transformers_segformer:load_model_weights",
            description=f"SegFormer, MiT-{_variant.upper()} encoder + all-MLP decoder (Xie et al., 2021)"
            + (" - the paper's best model" if _variant == "b4" else ""),
            config=_config,
            num_params=_NUM_PARAMS[_variant],
        )
    )

register_model(
    ModelSpec(
        name="segformer_tiny",
        builder=SegFormer,
        encoder_loader="gdcld_zoo.convert.transformers_segformer:load_encoder_weights",
        checkpoint_loader="gdcld_zoo.convert.transformers_segformer:load_model_weights",
        description="Tiny SegFormer for tests",
        config={
            "hidden_sizes": (8, 16, 24, 32),
            "depths": (1, 1, 1, 1),
            "num_heads": (1, 2, 1, 2),
            "decoder_hidden_size": 16,
        },
        public=False,
    )
)
