"""Vision Transformer encoder (Dosovitskiy et al., ICLR 2021) for dense prediction.

The GDCLD paper's UperNet uses an ImageNet-pretrained ViT-B/16. This encoder
follows transformers' `ViTModel` (google/vit-base-patch16-224) layer for layer,
so its checkpoints convert exactly (`gdcld_zoo.convert.transformers_vit`), and
returns the token maps of chosen blocks as (B, H/16, W/16, C) feature maps, as
mmsegmentation's `VisionTransformer` does for UperNet.

Why not keras-hub's ViT: in keras-hub 0.32 it is built for one fixed image
size (its position embedding does not follow the input), so it cannot run on
`None` or non-square inputs. Here the learned position embeddings, made for the
`image_size` of the pretrained weights (224 → a 14×14 grid), are resized to the
actual token grid on every call with PyTorch's bicubic kernel (a = -0.75,
`align_corners=False`), the same interpolation that transformers'
`interpolate_pos_encoding` and mmsegmentation's `resize_pos_embed` use, built
from `keras.ops` so it is identical on every backend and works for dynamic,
non-square H and W.
"""

import math

import keras
from keras import layers, ops

from gdcld_zoo.layers import DropPath, gelu_erf
from gdcld_zoo.layers.resize import cubic_resize_matrix, resize_with_matrices

# The original (JAX) ViT and mmsegmentation use 1e-6; transformers' config says
# 1e-12, which is the same to float32 precision for unit-variance activations.
LAYER_NORM_EPSILON = 1e-6


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class ViTEmbeddings(layers.Layer):
    """Class token + learned position embeddings for a (B, h, w, C) patch map.

    The position embeddings are stored for a `grid_size`×`grid_size` patch grid
    (14 for 224-pixel pretraining at patch 16) plus the class token and are
    resized bicubically to the input's (h, w) grid when it differs.
    Returns tokens (B, 1 + h*w, C), class token first.
    """

    def __init__(self, hidden_size, grid_size, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = int(hidden_size)
        self.grid_size = int(grid_size)

    def build(self, input_shape):
        self.cls_token = self.add_weight(
            shape=(1, 1, self.hidden_size), initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="cls_token",
        )
        self.position_embedding = self.add_weight(
            shape=(1, 1 + self.grid_size**2, self.hidden_size),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="position_embedding",
        )

    def call(self, patches):
        batch, height, width = ops.shape(patches)[0], ops.shape(patches)[1], ops.shape(patches)[2]
        position = ops.cast(self.position_embedding, patches.dtype)
        grid = ops.reshape(position[:, 1:], (1, self.grid_size, self.grid_size, self.hidden_size))
        grid = resize_with_matrices(
            grid, cubic_resize_matrix(height, self.grid_size), cubic_resize_matrix(width, self.grid_size)
        )
        tokens = ops.reshape(patches + grid, (batch, -1, self.hidden_size))
        cls = ops.broadcast_to(ops.cast(self.cls_token, patches.dtype) + position[:, :1], (batch, 1, self.hidden_size))
        return ops.concatenate([cls, tokens], axis=1)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        tokens = None if height is None or width is None else 1 + height * width
        return (batch, tokens, self.hidden_size)

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size, "grid_size": self.grid_size}


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class MultiHeadSelfAttention(layers.Layer):
    """Global multi-head self-attention over (B, N, C) tokens (q, k, v, output
    dense layers with bias, as transformers' `ViTAttention`)."""

    def __init__(self, hidden_size, num_heads, **kwargs):
        super().__init__(**kwargs)
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}.")
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.query = layers.Dense(hidden_size, name="query", dtype=self.dtype_policy)
        self.key = layers.Dense(hidden_size, name="key", dtype=self.dtype_policy)
        self.value = layers.Dense(hidden_size, name="value", dtype=self.dtype_policy)
        self.output_dense = layers.Dense(hidden_size, name="output_dense", dtype=self.dtype_policy)

    def build(self, input_shape):
        for dense in (self.query, self.key, self.value, self.output_dense):
            dense.build(input_shape)

    def _split_heads(self, x):
        x = ops.reshape(x, (ops.shape(x)[0], -1, self.num_heads, self.head_dim))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, x):
        query, key, value = (self._split_heads(f(x)) for f in (self.query, self.key, self.value))
        scores = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2))) / math.sqrt(self.head_dim)
        weights = ops.cast(ops.softmax(ops.cast(scores, "float32"), axis=-1), query.dtype)
        attended = ops.transpose(ops.matmul(weights, value), (0, 2, 1, 3))
        attended = ops.reshape(attended, (ops.shape(x)[0], -1, self.hidden_size))
        return self.output_dense(attended)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size, "num_heads": self.num_heads}


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class TokensToMap(layers.Layer):
    """Drop the class token and fold (B, 1 + h*w, C) tokens back into a
    (B, h, w, C) map shaped like `reference`: `layer([tokens, reference])`."""

    def call(self, inputs):
        tokens, reference = inputs
        shape = ops.shape(reference)
        return ops.reshape(tokens[:, 1:], (shape[0], shape[1], shape[2], ops.shape(tokens)[-1]))

    def compute_output_shape(self, input_shape):
        tokens_shape, reference_shape = input_shape
        return tuple(reference_shape[:3]) + (tokens_shape[-1],)


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class ViTEncoder(keras.Model):
    """ViT encoder returning the token maps of selected blocks at stride `patch_size`.

    Pre-norm transformer blocks (layer norm → self-attention → residual,
    layer norm → MLP with exact GELU → residual). When the last block is among
    `out_indices`, its output passes the encoder's final layer norm (transformers'
    `last_hidden_state`, mmsegmentation's `final_norm=True`).

    Returns a dict `{"block_{i}": (B, H/p, W/p, C)}` for each 0-based block index
    `i` in `out_indices`.

    Args:
        input_shape: Channels-last (H, W, C); H and W may be None.
        patch_size: Side of the square, non-overlapping patches (16).
        hidden_size, depth, num_heads, mlp_ratio: The transformer (768, 12, 12, 4 for ViT-B).
        image_size: Image side the position embeddings are made for (224 for
            google/vit-base-patch16-224); other sizes resize them bicubically.
        out_indices: 0-based blocks whose outputs are returned.
        drop_path_rate: Stochastic depth at the last block, linear over blocks.

    Example:
    >>> encoder = ViTEncoder(patch_size=4, hidden_size=8, depth=2, num_heads=2,
    ...     image_size=32, out_indices=(0, 1))
    >>> import numpy as np
    >>> tuple(encoder(np.zeros((1, 32, 48, 3), "float32"))["block_1"].shape)
    (1, 8, 12, 8)
    """

    def __init__(
        self,
        input_shape=(None, None, 3),
        patch_size=16,
        hidden_size=768,
        depth=12,
        num_heads=12,
        mlp_ratio=4,
        image_size=224,
        out_indices=(3, 5, 7, 11),
        drop_path_rate=0.0,
        **kwargs,
    ):
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} must be a multiple of patch_size {patch_size}.")
        if not out_indices or any(not 0 <= i < depth for i in out_indices):
            raise ValueError(f"out_indices {out_indices} must be block indexes in [0, {depth}).")
        drop_rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]

        # === Functional graph ===
        inputs = keras.Input(shape=input_shape, name="images")
        patches = layers.Conv2D(hidden_size, patch_size, strides=patch_size, name="patch_embedding")(inputs)
        x = ViTEmbeddings(hidden_size, image_size // patch_size, name="embeddings")(patches)
        features = {}
        for block in range(depth):
            name = f"block{block}"
            drop_path = DropPath(drop_rates[block], name=f"{name}_drop_path")
            y = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"{name}_norm1")(x)
            y = MultiHeadSelfAttention(hidden_size, num_heads, name=f"{name}_attention")(y)
            x = layers.Add(name=f"{name}_add1")([x, drop_path(y)])
            y = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"{name}_norm2")(x)
            y = layers.Dense(hidden_size * mlp_ratio, activation=gelu_erf, name=f"{name}_fc1")(y)
            y = layers.Dense(hidden_size, name=f"{name}_fc2")(y)
            x = layers.Add(name=f"{name}_add2")([x, drop_path(y)])
            if block in out_indices:
                out = x
                if block == depth - 1:
                    out = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="final_norm")(x)
                features[f"block_{block}"] = TokensToMap(name=f"{name}_map")([out, patches])
        super().__init__(inputs=inputs, outputs=features, **kwargs)

        # === Config ===
        self.input_shape_config = tuple(input_shape)
        self.patch_size = patch_size
        self.hidden_size = hidden_size
        self.depth = depth
        self.num_heads = num_heads
        self.mlp_ratio = mlp_ratio
        self.image_size = image_size
        self.out_indices = tuple(out_indices)
        self.drop_path_rate = drop_path_rate

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "input_shape": list(self.input_shape_config),
            "patch_size": self.patch_size,
            "hidden_size": self.hidden_size,
            "depth": self.depth,
            "num_heads": self.num_heads,
            "mlp_ratio": self.mlp_ratio,
            "image_size": self.image_size,
            "out_indices": list(self.out_indices),
            "drop_path_rate": self.drop_path_rate,
        }
