"""gdcld_zoo: Keras 3 models for coseismic landslide mapping (GDCLD, Fang et al.)."""

from gdcld_zoo.errors import GdcldZooError
from gdcld_zoo.registry import build_model, get_model_spec, list_models
from gdcld_zoo.weights import get_weight_record, list_weights, load_pretrained
from gdcld_zoo.scene import predict_scene
from gdcld_zoo.event import map_event
from gdcld_zoo.inference import predict_tile

__version__ = "0.1.0"

__all__ = ["GdcldZooError", "build_model", "get_model_spec", "list_models", "__version__"]
__all__ += ["get_weight_record", "list_weights", "load_pretrained"]
__all__ += ["predict_scene", "map_event"]
__all__ += ["predict_tile"]
