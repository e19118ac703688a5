"""`OnnxEngine`: an exported `.onnx` file (float32, float16 or int8) as a scene-inference engine."""

import os
from pathlib import Path

import numpy as np

from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.export import INPUT_NAME, OUTPUT_NAME, read_onnx_metadata
from gdcld_zoo.lazy_imports import require
from gdcld_zoo.scene.engines import Engine


def usable_cores():
    """CPU cores this process may run on (its affinity mask, e.g. under taskset or a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def session_options():
    """The fastest CPU settings for one large graph at a time.

    All usable cores inside each operator, operators one after another
    (parallel operator execution only helps branchy graphs and competes for the
    same cores), and every graph optimisation ONNX Runtime has.
    """
    onnxruntime = require("onnxruntime", "onnx")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = usable_cores()
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


class OnnxEngine(Engine):
    """An exported `.onnx` file as a scene-inference engine (ONNX Runtime).

    Preprocessing, threshold, tag and tile size come from the file's metadata,
    so `predict_scene("model.onnx", ..., engine="onnx")` needs nothing else;
    int8 files run unchanged. Normalisation runs inside the graph; `predict`
    feeds raw pixels. `session.run` releases the GIL, so the scene predictor's
    reader thread keeps reading while the graph computes.

    Args:
        path: A file written by `export_onnx` / `gdcld-zoo export`.
        providers: ONNX Runtime execution providers; default all available
            (CUDA first when onnxruntime-gpu is installed).
    """

    def __init__(self, path, providers=None):
        onnxruntime = require("onnxruntime", "onnx")
        metadata = read_onnx_metadata(path)
        self.path = Path(path)
        self.preprocessing = metadata["preprocessing"]
        self.threshold = metadata["threshold"]
        self.tag = metadata["tag"] or metadata["model"]
        self.precision = metadata.get("precision", "float32")
        self.input_size = metadata["tile_size"]
        # The Keras engine's default, so both engines give the same maps by default.
        self.tile_size = metadata["tile_size"] or metadata["weights_tile_size"] or 1024
        self.num_classes = metadata["num_classes"]
        if self.num_classes > 2:
            raise InvalidInputError(
                f"{path} has {self.num_classes} classes; landslide probabilities need 1 or 2."
            )
        self.session = onnxruntime.InferenceSession(
            str(path), sess_options=session_options(), providers=providers or onnxruntime.get_available_providers()
        )
        batch = self.session.get_inputs()[0].shape[0]
        self.fixed_batch = batch if isinstance(batch, int) else None

    def predict(self, raw):
        """Landslide probabilities (N, H, W) float32 for raw tiles (N, H, W, C)."""
        pixels = np.asarray(raw, "float32")
        if pixels.shape[-1] != self.num_bands:
            raise InvalidInputError(
                f"{self.path.name} takes {self.num_bands} bands {self.preprocessing.band_names}, "
                f"got tiles of shape {pixels.shape}."
            )
        step = self.fixed_batch or len(pixels)
        outputs = [
            self.session.run([OUTPUT_NAME], {INPUT_NAME: pixels[i : i + step]})[0]
            for i in range(0, len(pixels), step)
        ]
        probabilities = np.concatenate(outputs)
        return probabilities[..., -1].astype("float32")
