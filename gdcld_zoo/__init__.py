"""gdcld_zoo: Keras 3 models for coseismic landslide mapping (GDCLD, Fang et al.)."""

from gdcld_zoo.errors import GdcldZooError
from gdcld_zoo.registry import build_model, get_model_spec, list_models

__version__ = "0.1.0"

__all__ = ["GdcldZooError", "build_model", "get_model_spec", "list_models", "__version__"]
