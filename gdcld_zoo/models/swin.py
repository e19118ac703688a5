"""Swin Transformer building blocks and encoder (Liu et al., ICCV 2021).

Used by Swin-Unet (`gdcld_zoo.models.swin_unet`). Layer for layer as the
official Swin code and transformers' `SwinModel`
(microsoft/swin-tiny-patch4-window7-224), so those checkpoints convert
(`gdcld_zoo.convert.transformers_swin`).

Why not keras-hub's Swin: in keras-hub 0.32 it is built for one fixed input
size (window partitioning and shift masks are computed at construction) and
returns no per-stage (pyramid) outputs. Here every block works on (B, H, W, C)
maps of any size:

- the token grid is zero-padded on the bottom/right to a multiple of the
  window (as transformers does) and the padded tokens are masked out as keys,
  so a result does not depend on how much padding a size needs;
- windows are shifted by `window_size // 2` every second block only when the
  grid is larger than the window (the official rule: at or below one window
  nothing is shifted), decided and masked in the graph from the actual size;
- the shifted-window attention mask (9 regions, -100 between regions, as the
  reference) is built from `keras.ops` for the actual, possibly dynamic size.

When the grid is a multiple of the window (e.g. window 8 on 512- and
1024-pixel tiles at patch 4: 128/64/32/16 and 256/128/64/32 tokens) there is
no padding and the result equals the reference exactly.
"""

import math

import keras
import numpy as np
from keras import layers, ops

from gdcld_zoo.layers import DropPath, gelu_erf

# PyTorch's nn.LayerNorm default, used throughout Swin.
LAYER_NORM_EPSILON = 1e-5
# The reference's additive mask between shifted-window regions.
MASK_VALUE = -100.0


def relative_position_index(window_size):
    """(w*w, w*w) indexes into the ((2w-1)^2, heads) relative position bias table."""
    coords = np.stack(np.meshgrid(np.arange(window_size), np.arange(window_size), indexing="ij")).reshape(2, -1)
    relative = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + (window_size - 1)
    return (relative[..., 0] * (2 * window_size - 1) + relative[..., 1]).astype("int32")


def _window_partition(x, window_size):
    """(B, Hp, Wp, C) -> (B * num_windows, w*w, C), windows in row-major order."""
    shape = ops.shape(x)
    rows, cols = shape[1] // window_size, shape[2] // window_size
    x = ops.reshape(x, (-1, rows, window_size, cols, window_size, shape[3]))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, window_size * window_size, shape[3]))


def _window_reverse(windows, window_size, height, width):
    """(B * num_windows, w*w, C) -> (B, height, width, C)."""
    channels = ops.shape(windows)[-1]
    rows, cols = height // window_size, width // window_size
    x = ops.reshape(windows, (-1, rows, cols, window_size, window_size, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, height, width, channels))


def _axis_regions(size, padded, window_size, shift):
    """Region of each position of the shifted, padded axis: the reference's three
    shift regions (0, 1, 2, in the shifted frame), plus 3 for padding (which is
    at the end of the unshifted axis, so it moves with the shift)."""
    index = ops.arange(padded, dtype="int32")
    region = ops.cast(index >= padded - window_size, "int32") + ops.cast(index >= padded - shift, "int32")
    padding = ops.roll(ops.cast(index >= size, "int32"), shift=-shift, axis=0)
    return region + 3 * padding


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class WindowAttention(layers.Layer):
    """(Shifted) window multi-head self-attention with relative position bias.

    Takes a layer-normed (B, H, W, C) map and returns (B, H, W, C). Windows are
    `window_size`×`window_size` tokens; `shift_size` > 0 makes this the
    shifted-window (SW-MSA) variant, applied when the grid exceeds one window.

    Example:
    >>> import numpy as np
    >>> tuple(WindowAttention(8, 2, window_size=4, shift_size=2)(np.ones((1, 12, 8, 8), "float32")).shape)
    (1, 12, 8, 8)
    """

    def __init__(self, hidden_size, num_heads, window_size=7, shift_size=0, **kwargs):
        super().__init__(**kwargs)
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}.")
        if not 0 <= shift_size < window_size:
            raise ValueError(f"shift_size must be in [0, window_size), got {shift_size} for window {window_size}.")
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.window_size = window_size
        self.shift_size = shift_size
        self.head_dim = hidden_size // num_heads
        self.query = layers.Dense(hidden_size, name="query", dtype=self.dtype_policy)
        self.key = layers.Dense(hidden_size, name="key", dtype=self.dtype_policy)
        self.value = layers.Dense(hidden_size, name="value", dtype=self.dtype_policy)
        self.output_dense = layers.Dense(hidden_size, name="output_dense", dtype=self.dtype_policy)
        self._bias_index = relative_position_index(window_size).reshape(-1)

    def build(self, input_shape):
        self.relative_position_bias_table = self.add_weight(
            shape=((2 * self.window_size - 1) ** 2, self.num_heads),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="relative_position_bias_table",
        )
        token_shape = (None, None, self.hidden_size)
        for dense in (self.query, self.key, self.value, self.output_dense):
            dense.build(token_shape)

    def _split_heads(self, x):
        x = ops.reshape(x, (-1, self.window_size**2, self.num_heads, self.head_dim))
        return ops.transpose(x, (0, 2, 1, 3))

    def _attention_mask(self, height, width, padded_height, padded_width, shift):
        """(num_windows, w*w, w*w): MASK_VALUE between tokens of different shift
        regions and towards padded keys, 0 elsewhere."""
        rows = _axis_regions(height, padded_height, self.window_size, shift)
        cols = _axis_regions(width, padded_width, self.window_size, shift)
        regions = ops.cast(rows[:, None] * 6 + cols[None, :], "float32")[None, :, :, None]
        regions = ops.reshape(_window_partition(regions, self.window_size), (-1, self.window_size**2))
        different = ops.not_equal(regions[:, None, :], regions[:, :, None])
        return ops.where(different, MASK_VALUE, 0.0)

    def call(self, x):
        window = self.window_size
        batch, height, width = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2]
        # The official rule: no shift when the grid fits in one window.
        shift = ops.where(ops.minimum(height, width) > window, self.shift_size, 0)
        pad_bottom, pad_right = (window - height % window) % window, (window - width % window) % window
        x = ops.pad(x, [[0, 0], [0, pad_bottom], [0, pad_right], [0, 0]])
        padded_height, padded_width = height + pad_bottom, width + pad_right
        x = ops.roll(x, shift=(-shift, -shift), axis=(1, 2))

        windows = _window_partition(x, window)
        query, key, value = (self._split_heads(f(windows)) for f in (self.query, self.key, self.value))
        scores = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2))) / math.sqrt(self.head_dim)
        scores = ops.cast(scores, "float32")
        bias = ops.take(ops.cast(self.relative_position_bias_table, "float32"), self._bias_index, axis=0)
        bias = ops.transpose(ops.reshape(bias, (window**2, window**2, self.num_heads)), (2, 0, 1))
        mask = self._attention_mask(height, width, padded_height, padded_width, shift)
        num_windows = ops.shape(mask)[0]
        scores = ops.reshape(scores, (batch, num_windows, self.num_heads, window**2, window**2))
        scores = scores + bias[None, None] + mask[None, :, None]
        scores = ops.reshape(scores, (-1, self.num_heads, window**2, window**2))
        weights = ops.cast(ops.softmax(scores, axis=-1), value.dtype)
        attended = ops.transpose(ops.matmul(weights, value), (0, 2, 1, 3))
        attended = self.output_dense(ops.reshape(attended, (-1, window**2, self.hidden_size)))

        x = _window_reverse(attended, window, padded_height, padded_width)
        x = ops.roll(x, shift=(shift, shift), axis=(1, 2))
        return x[:, :height, :width, :]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_size": self.hidden_size,
            "num_heads": self.num_heads,
            "window_size": self.window_size,
            "shift_size": self.shift_size,
        }


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class PatchMergingGather(layers.Layer):
    """Swin's 2×2 patch gathering: (B, H, W, C) -> (B, H/2, W/2, 4C) with the
    neighbours concatenated in the reference order (0,0), (1,0), (0,1), (1,1)."""

    def call(self, x):
        shape = ops.shape(x)
        x = ops.reshape(x, (shape[0], shape[1] // 2, 2, shape[2] // 2, 2, shape[3]))
        x = ops.transpose(x, (0, 1, 3, 4, 2, 5))
        return ops.reshape(x, (shape[0], shape[1] // 2, shape[2] // 2, 4 * shape[3]))

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, None if h is None else h // 2, None if w is None else w // 2, 4 * c)


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class DepthToSpace(layers.Layer):
    """(B, H, W, s*s*C) -> (B, s*H, s*W, C), channels split as (row, column,
    channel): einops' `b h w (p1 p2 c) -> b (h p1) (w p2) c` of Swin-Unet's
    patch expanding."""

    def __init__(self, block_size, **kwargs):
        super().__init__(**kwargs)
        self.block_size = int(block_size)

    def call(self, x):
        s = self.block_size
        shape = ops.shape(x)
        channels = x.shape[-1] // (s * s)
        x = ops.reshape(x, (shape[0], shape[1], shape[2], s, s, channels))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (shape[0], shape[1] * s, shape[2] * s, channels))

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        s = self.block_size
        return (b, None if h is None else h * s, None if w is None else w * s, c // (s * s))

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


def swin_block(x, hidden_size, num_heads, window_size, shift_size, mlp_ratio, drop_rate, name):
    """One Swin Transformer block: LN → (S)W-MSA → residual, LN → MLP (exact GELU) → residual."""
    drop_path = DropPath(drop_rate, name=f"{name}_drop_path")
    y = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"{name}_norm1")(x)
    y = WindowAttention(hidden_size, num_heads, window_size, shift_size, name=f"{name}_attention")(y)
    x = layers.Add(name=f"{name}_add1")([x, drop_path(y)])
    y = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"{name}_norm2")(x)
    y = layers.Dense(int(hidden_size * mlp_ratio), activation=gelu_erf, name=f"{name}_fc1")(y)
    y = layers.Dense(hidden_size, name=f"{name}_fc2")(y)
    return layers.Add(name=f"{name}_add2")([x, drop_path(y)])


def swin_stage(x, hidden_size, depth, num_heads, window_size, mlp_ratio, drop_rates, name):
    """`depth` blocks alternating regular and shifted windows."""
    for block in range(depth):
        shift = 0 if block % 2 == 0 else window_size // 2
        x = swin_block(
            x, hidden_size, num_heads, window_size, shift, mlp_ratio, drop_rates[block], f"{name}_block{block}"
        )
    return x


def drop_path_rates(depths, drop_path_rate):
    """Stochastic depth per stage, linear from 0 to `drop_path_rate` over all blocks."""
    total = sum(depths)
    rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
    return [rates[sum(depths[:s]) : sum(depths[: s + 1])] for s in range(len(depths))]


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class SwinEncoder(keras.Model):
    """Swin Transformer encoder returning the features Swin-Unet's decoder uses.

    Patch embedding (a `patch_size` strided convolution + layer norm), then per
    stage `depths[i]` Swin blocks followed, except after the last stage, by
    patch merging (2×2 gather → layer norm → linear 4C→2C without bias), and a
    final layer norm.

    Returns a dict keyed by stride: `"stride_4"`, `"stride_8"`, `"stride_16"`
    are the maps that *enter* stages 1–3 (the patch embedding and the merged
    outputs of stages 1 and 2, the skip connections of Swin-Unet — transformers'
    `hidden_states[0:3]`), and `"stride_32"` the normed output of the last stage
    (`last_hidden_state`). For patch 4 and 4 stages.

    Args:
        input_shape: Channels-last (H, W, C); H and W may be None.
        patch_size: Patch embedding stride (4).
        embed_dim: Width of the first stage (96 for Swin-T); doubles per stage.
        depths, num_heads: Blocks and heads per stage.
        window_size: Attention window in tokens.
        mlp_ratio: MLP expansion (4).
        drop_path_rate: Stochastic depth at the last block.

    Example:
    >>> encoder = SwinEncoder(embed_dim=8, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2), window_size=2)
    >>> import numpy as np
    >>> {k: tuple(v.shape) for k, v in encoder(np.zeros((1, 64, 96, 3), "float32")).items()}["stride_32"]
    (1, 2, 3, 64)
    """

    def __init__(
        self,
        input_shape=(None, None, 3),
        patch_size=4,
        embed_dim=96,
        depths=(2, 2, 6, 2),
        num_heads=(3, 6, 12, 24),
        window_size=7,
        mlp_ratio=4.0,
        drop_path_rate=0.1,
        **kwargs,
    ):
        if len(depths) != len(num_heads):
            raise ValueError(f"depths {depths} and num_heads {num_heads} need one entry per stage.")
        rates = drop_path_rates(depths, drop_path_rate)

        # === Functional graph ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = layers.Conv2D(embed_dim, patch_size, strides=patch_size, name="patch_embedding")(inputs)
        x = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="patch_norm")(x)
        features = {}
        stride = patch_size
        for stage, (depth, heads) in enumerate(zip(depths, num_heads)):
            width = embed_dim * 2**stage
            if stage < len(depths) - 1:
                features[f"stride_{stride}"] = x
            x = swin_stage(x, width, depth, heads, window_size, mlp_ratio, rates[stage], f"stage{stage}")
            if stage < len(depths) - 1:
                x = PatchMergingGather(name=f"stage{stage}_merge_gather")(x)
                x = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"stage{stage}_merge_norm")(x)
                x = layers.Dense(2 * width, use_bias=False, name=f"stage{stage}_merge_reduction")(x)
                stride *= 2
        features[f"stride_{stride}"] = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="final_norm")(x)
        super().__init__(inputs=inputs, outputs=features, **kwargs)

        # === Config ===
        self.input_shape_config = tuple(input_shape)
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.depths = tuple(depths)
        self.num_heads = tuple(num_heads)
        self.window_size = window_size
        self.mlp_ratio = mlp_ratio
        self.drop_path_rate = drop_path_rate

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "input_shape": list(self.input_shape_config),
            "patch_size": self.patch_size,
            "embed_dim": self.embed_dim,
            "depths": list(self.depths),
            "num_heads": list(self.num_heads),
            "window_size": self.window_size,
            "mlp_ratio": self.mlp_ratio,
            "drop_path_rate": self.drop_path_rate,
        }
