"""Converters from checkpoints people have (transformers, timm, PaddleSeg, keras-hub) to gdcld_zoo models."""

from gdcld_zoo.convert.keras_hub_segformer import from_keras_hub
from gdcld_zoo.convert.paddleseg_segformer import from_paddleseg
from gdcld_zoo.convert.state_dict import ConversionError
from gdcld_zoo.convert.transformers_segformer import from_transformers

__all__ = ["ConversionError", "from_keras_hub", "from_paddleseg", "from_transformers"]
