"""Whole-scene inference: georeferenced landslide maps, polygons and areas.

* `predict_scene(model_or_tag, src, out_dir, ...)`: probability and mask
  GeoTIFFs, landslide polygons (GeoJSON, WGS84) and a summary per scene.
* `SlidingWindowPredictor`: the windowed, strip-by-strip, prefetching
  predictor behind it (`strips()` for custom consumers).
* `evaluate_scenes`: paper metrics over whole scenes against label GeoTIFFs.
* Engines (`KerasEngine`, `OnnxEngine`, `D4Engine`, `make_engine`), the tile grid and
  blending (`TileGrid`, `blend_weights`), ground areas (`GroundArea`).
"""

from gdcld_zoo.scene.area import GroundArea
from gdcld_zoo.scene.engines import D4Engine, Engine, KerasEngine, make_engine
from gdcld_zoo.scene.evaluate import evaluate_scenes, format_scene_report
from gdcld_zoo.scene.onnx_engine import OnnxEngine
from gdcld_zoo.scene.predictor import SceneResult, SlidingWindowPredictor, Strip, predict_scene
from gdcld_zoo.scene.source import SceneError, select_bands
from gdcld_zoo.scene.tiling import TileGrid, blend_weights

__all__ = [
    "D4Engine",
    "Engine",
    "GroundArea",
    "KerasEngine",
    "OnnxEngine",
    "SceneError",
    "SceneResult",
    "SlidingWindowPredictor",
    "Strip",
    "TileGrid",
    "blend_weights",
    "evaluate_scenes",
    "format_scene_report",
    "make_engine",
    "predict_scene",
    "select_bands",
]
