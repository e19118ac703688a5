"""Layers shared by several architectures."""

from gdcld_zoo.layers.drop_path import DropPath
from gdcld_zoo.layers.upsample import bilinear_upsample, full_resolution_logits

__all__ = ["DropPath", "bilinear_upsample", "full_resolution_logits"]
