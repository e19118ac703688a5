"""Layers shared by several architectures."""

from gdcld_zoo.layers.activations import gelu_erf, gelu_tanh
from gdcld_zoo.layers.conv_bn import batch_norm, conv_bn_relu
from gdcld_zoo.layers.drop_path import DropPath
from gdcld_zoo.layers.upsample import BilinearUpsample, bilinear_upsample, full_resolution_logits

__all__ = [
    "BilinearUpsample",
    "DropPath",
    "batch_norm",
    "bilinear_upsample",
    "conv_bn_relu",
    "full_resolution_logits",
    "gelu_erf",
    "gelu_tanh",
]
