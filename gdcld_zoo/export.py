"""ONNX export of any gdcld_zoo model, verified against Keras with ONNX Runtime.

The exported graph is self-contained for GIS plugins and C++ services: it takes
raw pixel values (float32, bands in the order of the weight record's
`Preprocessing`, e.g. 0–255 for 8-bit RGB), applies the record's scaling and
normalisation inside the graph, and returns probabilities (sigmoid for one
class, softmax over classes otherwise) at the input resolution. The weight
record travels in the file's `metadata_props` (model, tag, bands,
normalisation, threshold, tile size, gdcld_zoo version).

Conversion goes through tf2onnx on a `tf.function` that calls the model with
`training=False` explicitly, so no layer can be traced in training mode. It
therefore runs on the TensorFlow backend; a model trained on JAX or torch is
exported from its saved weights (`gdcld-zoo export RUN_DIR out.onnx` with
`KERAS_BACKEND=tensorflow`).
`quantize="int8"` writes a statically quantised graph instead
(`gdcld_zoo.quantization`), judged by its decisions rather than a tolerance.
Two tf2onnx rewrites (`gdcld_zoo.onnx_fusions`) hand ONNX Runtime the layer
norms and exact GELUs in forms it runs fused: Keras layer norms become ONNX
`LayerNormalization`, GELUs the pattern ONNX Runtime fuses into `Gelu` when it
loads the file (docs/onnx_profile.md). The file stays plain opset-17 ONNX: no
ONNX Runtime-optimised graph is saved, since ONNX Runtime's docs call graphs
saved at ORT_ENABLE_ALL hardware-specific and the EXTENDED fusions are
ONNX Runtime's own operators, which it applies at load time anyway.
Exporting a model twice gives files that compute bit-identical outputs; the
bytes themselves can differ, because TensorFlow's grappler constant folding,
which tf2onnx runs, does not always fold the same constants.
"""

import json
import tempfile
from pathlib import Path

import numpy as np

from gdcld_zoo.errors import GdcldZooError, InvalidInputError, UnknownNameError
from gdcld_zoo.files import atomic_path, check_writable_file
from gdcld_zoo.lazy_imports import require
from gdcld_zoo.onnx_fusions import write_gelus_as_onnx_runtime_fuses_them, fuse_layer_norms
from gdcld_zoo.preprocessing import Preprocessing

INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"
# Largest |ONNX Runtime - Keras| difference in probability that `check` accepts.
FLOAT32_TOLERANCE = 1e-4
FLOAT16_TOLERANCE = 1e-2
QUANTIZATIONS = ("int8",)
# The operator sets tf2onnx 1.16+ supports (its README: 14 to 18); layer norms fuse from 17.
ONNX_OPSETS = range(14, 19)


class ExportError(GdcldZooError):
    """An export that failed or whose ONNX graph disagrees with the Keras model."""


def _export_settings(model, record, tile_size):
    """Preprocessing, tile size and metadata for `model` (from its weight record if any)."""
    from gdcld_zoo import __version__

    channels = model.input_shape[-1]
    preprocessing = record.preprocessing if record is not None else Preprocessing()
    if preprocessing.num_bands != channels:
        raise InvalidInputError(
            f"The model takes {channels} bands but its preprocessing describes "
            f"{preprocessing.num_bands} ({preprocessing.band_names}); export a model loaded with "
            "gdcld_zoo.load_pretrained so its weight record says which bands it reads."
        )
    if tile_size is not None and (tile_size <= 0 or tile_size % 32):
        raise InvalidInputError(f"tile_size must be a positive multiple of 32, got {tile_size}.")
    metadata = {
        "model": record.model if record is not None else model.name,
        "tag": record.tag if record is not None else "",
        "preprocessing": json.dumps(preprocessing.to_dict()),
        "threshold": str(record.threshold if record is not None else 0.5),
        "tile_size": str(tile_size or ""),
        "weights_tile_size": str(record.tile_size if record is not None else ""),
        "num_classes": str(model.output_shape[-1]),
        "input": f"{INPUT_NAME}: raw pixel values, float32 (batch, height, width, bands)",
        "output": f"{OUTPUT_NAME}: class probabilities (batch, height, width, classes)",
        "gdcld_zoo_version": __version__,
    }
    return preprocessing, metadata


def probability_function(model, preprocessing):
    """Raw pixels -> probabilities, the function that is exported (and checked against)."""
    import tensorflow as tf

    # numpy, not tf.constant: captured eager tensors would become ONNX graph inputs.
    scale = np.asarray(preprocessing.scale, "float32")
    mean = np.asarray(preprocessing.mean, "float32")
    std = np.asarray(preprocessing.std, "float32")
    multi_class = model.output_shape[-1] > 1

    def probabilities(pixels):
        logits = model((pixels / scale - mean) / std, training=False)
        return tf.nn.softmax(logits, axis=-1) if multi_class else tf.sigmoid(logits)

    return probabilities


def check_onnx(onnx_path, reference, bands, tile_size, batch_sizes, scale, tolerance):
    """Run the ONNX file and `reference` on the same random raw pixels; raise if they differ."""
    onnxruntime = require("onnxruntime", "onnx")
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for batch in batch_sizes:
        pixels = (rng.random((batch, tile_size, tile_size, bands)) * np.asarray(scale)).astype("float32")
        expected = np.asarray(reference(pixels))
        got = session.run([OUTPUT_NAME], {INPUT_NAME: pixels})[0]
        if got.shape != expected.shape:
            raise ExportError(f"ONNX output shape {got.shape} differs from Keras {expected.shape} at batch {batch}.")
        difference = float(np.max(np.abs(got.astype("float32") - expected)))
        worst = max(worst, difference)
        if not difference <= tolerance:
            raise ExportError(
                f"ONNX Runtime and Keras disagree at batch {batch}, {tile_size}x{tile_size}: "
                f"max |difference| in probability {difference:.3g} > tolerance {tolerance:g}."
            )
    return worst


def export_onnx(
    model,
    path,
    opset=17,
    dynamic_batch=True,
    check=True,
    tile_size=None,
    fp16=False,
    record=None,
    quantize=None,
    calibration=None,
):
    """Export `model` to ONNX with normalisation inside and probabilities out.

    Args:
        model: A gdcld_zoo model (from `build_model` or `load_pretrained`).
        path: Output `.onnx` file; written under a temporary name and renamed
            only after conversion (and the check) succeeded.
        opset: ONNX opset.
        dynamic_batch: Leave the batch dimension free; otherwise batch 1.
        check: Run ONNX Runtime at batch 1 and 2 (1 if the batch is fixed) on
            random raw pixels and compare with Keras (`training=False`); raise
            `ExportError` with the numbers if the probabilities differ by more
            than 1e-4 (1e-2 with `fp16`).
        tile_size: Fix height and width to this size (a multiple of 32);
            None leaves them free (any multiple of 32 at run time).
        fp16: Store weights and compute in float16, inputs and outputs stay float32.
        record: The `WeightRecord` to embed; default: the one `load_pretrained`
            attached to the model, else RGB 8-bit with ImageNet normalisation.
        quantize: None, or "int8": static int8 quantisation (QDQ, see
            `gdcld_zoo.quantization`), calibrated on `calibration`. The 1e-4
            check does not apply; instead the int8 file and Keras are compared
            on the calibration tiles: pixel agreement of the decision masks at
            the record's threshold, ΔF1 (each mask against the tiles' labels when
            they have them, else the int8 mask against the Keras mask) and max
            |Δprob|, recorded in the metadata (`int8_agreement`, `calibration`).
            Below 99 % agreement it raises `ExportError` with the figures and
            writes nothing (with `check=False` it records them without refusing).
        calibration: Tiles for `quantize="int8"`: a folder of GeoTIFF tiles
            in the GDCLD layout, raw pixels (N, H, W, C), or None for tiles from
            `gdcld_zoo.data.synthetic` (the metadata says which).

    Returns:
        The path of the ONNX file.

    Example:
    >>> import gdcld_zoo
    >>> model = gdcld_zoo.build_model("segformer_tiny")
    >>> export_onnx(model, tmp_dir / "tiny.onnx", tile_size=64).name
    'tiny.onnx'
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ExportError(
            f"ONNX export runs on the TensorFlow backend (tf2onnx), not {keras.backend.backend()}: rerun with "
            "KERAS_BACKEND=tensorflow; weights saved on JAX or torch load there unchanged."
        )
    import tensorflow as tf

    onnx = require("onnx", "onnx")
    tf2onnx = require("tf2onnx", "onnx")

    from gdcld_zoo.weights import get_weight_record

    path = check_writable_file(path, "ONNX file")
    if opset not in ONNX_OPSETS:
        raise InvalidInputError(f"opset must be one tf2onnx converts to, {ONNX_OPSETS[0]} to {ONNX_OPSETS[-1]} "
                                f"(default 17), got {opset!r}.")
    record = record if record is not None else get_weight_record(model)
    preprocessing, metadata = _export_settings(model, record, tile_size)
    tiles = _calibration(quantize, fp16, calibration, preprocessing, tile_size)
    bands = preprocessing.num_bands
    spec = [tf.TensorSpec((None if dynamic_batch else 1, tile_size, tile_size, bands), tf.float32, INPUT_NAME)]
    probabilities = probability_function(model, preprocessing)
    function = tf.function(lambda pixels: {OUTPUT_NAME: probabilities(pixels)}, input_signature=spec)
    try:
        proto, _ = tf2onnx.convert.from_function(
            function, input_signature=spec, opset=opset, custom_rewriter=[fuse_layer_norms]
        )
    except Exception as error:  # tf2onnx raises many unrelated types
        raise ExportError(f"tf2onnx could not convert {metadata['model']}: {error}") from error
    proto = write_gelus_as_onnx_runtime_fuses_them(proto)
    if fp16:
        float16 = require("onnxruntime.transformers.float16", "onnx")
        proto = float16.convert_float_to_float16(proto, keep_io_types=True)
    metadata["precision"] = "float16" if fp16 else "float32"
    onnx.helper.set_model_props(proto, metadata)
    proto.producer_name = "gdcld_zoo"
    if quantize is not None:
        return _export_int8(proto, path, probabilities, tiles, metadata, check)
    with atomic_path(path) as temporary:
        onnx.save(proto, temporary)
        if check:
            check_onnx(
                temporary,
                probabilities,
                bands,
                tile_size or 64,
                (1, 2) if dynamic_batch else (1,),
                preprocessing.scale,
                FLOAT16_TOLERANCE if fp16 else FLOAT32_TOLERANCE,
            )
    return path


def _calibration(quantize, fp16, calibration, preprocessing, tile_size):
    """The calibration tiles for `quantize` (None without), checked before any conversion."""
    if quantize is None:
        if calibration is not None:
            raise InvalidInputError("calibration tiles are for quantize='int8'; pass quantize='int8' or drop them.")
        return None
    if quantize not in QUANTIZATIONS:
        raise UnknownNameError("quantization", quantize, QUANTIZATIONS)
    if fp16:
        raise InvalidInputError("Choose one of fp16 and quantize='int8'; an int8 graph keeps float32 elsewhere.")
    require("onnxruntime", "onnx")
    from gdcld_zoo.quantization import calibration_tiles

    return calibration_tiles(calibration, preprocessing, tile_size)


def _export_int8(proto, path, probabilities, tiles, metadata, check):
    """Quantise the float32 `proto`, measure it against Keras on `tiles`, and publish it at `path`."""
    onnx = require("onnx", "onnx")
    from gdcld_zoo.quantization import MIN_AGREEMENT, format_agreement, measure_agreement, quantize_int8

    with tempfile.TemporaryDirectory(prefix="gdcld-zoo-int8-") as folder:
        fp32_path, int8_path = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        onnx.save(proto, fp32_path)
        quantize_int8(fp32_path, int8_path, tiles, INPUT_NAME)
        threshold = float(metadata["threshold"])
        agreement = measure_agreement(int8_path, probabilities, tiles, threshold, INPUT_NAME, OUTPUT_NAME)
        if check and agreement["pixel_agreement"] < MIN_AGREEMENT:
            raise ExportError(
                f"int8 {metadata['model']} disagrees with Keras on {tiles.source}: {format_agreement(agreement)} "
                f"< {100 * MIN_AGREEMENT:g} % agreement at threshold {threshold:g}; nothing written. "
                "Calibrate on real tiles (--calibration) or export float32."
            )
        quantized = onnx.load(str(int8_path))
    metadata.update(precision="int8", calibration=tiles.source, int8_agreement=json.dumps(agreement))
    onnx.helper.set_model_props(quantized, metadata)
    quantized.producer_name = "gdcld_zoo"
    with atomic_path(path) as temporary:
        onnx.save(quantized, temporary)
    return path


def read_onnx_metadata(path):
    """The gdcld_zoo metadata of an exported file, with `preprocessing` as a `Preprocessing`."""
    onnx = require("onnx", "onnx")

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as error:
        raise InvalidInputError(f"{path} is not a readable ONNX file: {error}") from error
    metadata = {prop.key: prop.value for prop in proto.metadata_props}
    if "preprocessing" not in metadata:
        raise InvalidInputError(
            f"{path} has no gdcld_zoo metadata; export it with `gdcld-zoo export` or gdcld_zoo.export_onnx."
        )
    metadata["preprocessing"] = Preprocessing.from_dict(json.loads(metadata["preprocessing"]))
    metadata["threshold"] = float(metadata["threshold"])
    for key in ("tile_size", "weights_tile_size"):
        metadata[key] = int(metadata[key]) if metadata.get(key) else None
    metadata["num_classes"] = int(metadata["num_classes"])
    if "int8_agreement" in metadata:
        metadata["int8_agreement"] = json.loads(metadata["int8_agreement"])
    return metadata
