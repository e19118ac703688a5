"""Activations whose graphs export to ONNX.

`keras.activations.gelu(approximate=False)` lowers to TensorFlow's `Erfc`,
which tf2onnx cannot convert; the same exact (erf) GELU written with
`keras.ops.erf` exports as ONNX `Erf` and matches PyTorch's `nn.GELU()`.
"""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="gdcld_zoo")
def gelu_erf(x):
    """Exact GELU, x * Φ(x) = 0.5 x (1 + erf(x / √2)), as in BERT, ViT and SegFormer."""
    return 0.5 * x * (1.0 + ops.erf(x / math.sqrt(2.0)))


@keras.saving.register_keras_serializable(package="gdcld_zoo")
def gelu_tanh(x):
    """GELU with the tanh approximation (transformers' `gelu_new`)."""
    return keras.activations.gelu(x, approximate=True)
