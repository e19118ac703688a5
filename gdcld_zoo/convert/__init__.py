"""Converters from checkpoints people have (transformers, timm, PaddleSeg) to gdcld_zoo models."""

from gdcld_zoo.convert.paddleseg_segformer import from_paddleseg
from gdcld_zoo.convert.state_dict import ConversionError
from gdcld_zoo.convert.transformers_segformer import from_transformers

__all__ = ["ConversionError", "from_paddleseg", "from_transformers"]
