"""int8 static quantisation of an exported ONNX graph, calibrated on tiles and measured against Keras.

`export_onnx(..., quantize="int8")` uses this module: ONNX Runtime's
`quantize_static` in QDQ format (weights int8 per output channel, activations
uint8, the pairing ORT recommends for x86 CPUs) on the compute-heavy operators
(Conv, MatMul, Gemm); normalisation, resizing and the probability head stay
float32, so the threshold decision does not move by a whole uint8 step.
Activation ranges come from calibration tiles: a folder of GeoTIFF tiles in the
GDCLD layout, an array of raw pixels, or, by default, tiles drawn by
`gdcld_zoo.data.synthetic` (a stand-in: real tiles of the deployment's sensor
calibrate better).

The result is judged by what a user sees, not by a float tolerance: the share
of pixels whose landslide decision (probability >= the record's threshold)
int8 and Keras share, the change in F1 and the largest probability difference.
"""

from dataclasses import dataclass

import numpy as np

from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.lazy_imports import require

# Tiles used for calibration and the agreement measurement (spread over a folder).
CALIBRATION_TILES = 8
# Side of generated tiles when the export leaves the size free.
SYNTHETIC_TILE_SIZE = 256
QUANTIZED_OPERATORS = ("Conv", "MatMul", "Gemm")
# Least share of pixels whose landslide decision the int8 graph must share with Keras.
MIN_AGREEMENT = 0.99


@dataclass(frozen=True)
class Calibration:
    """Raw calibration pixels (N, H, W, C) float32, labels (N, H, W) uint8 or None, and where they came from."""

    pixels: np.ndarray
    labels: np.ndarray | None
    source: str


def _read_folder(folder, preprocessing, count):
    from gdcld_zoo.data.layout import DatasetLayoutError, index_split
    from gdcld_zoo.data.reading import open_raster, read_pair

    try:
        pairs = index_split(folder).pairs
    except DatasetLayoutError:
        pairs = index_split(folder, "val").pairs  # a dataset root: its validation split
    pairs = [pairs[i] for i in np.linspace(0, len(pairs) - 1, min(count, len(pairs))).round().astype(int)]
    labelled = all(pair.label is not None for pair in pairs)
    images, labels = [], []
    for pair in pairs:
        if labelled:
            image, mask = read_pair(pair, preprocessing)
            labels.append(mask)
        else:
            with open_raster(pair.image, "image") as src:
                image = np.moveaxis(src.read(list(preprocessing.bands)), 0, -1)
        images.append(image)
    shapes = sorted({image.shape for image in images})
    if len(shapes) > 1:
        raise InvalidInputError(f"Calibration tiles in {folder} differ in size ({shapes}); use tiles of one size.")
    kind = "labelled" if labelled else "unlabelled"
    return np.stack(images), np.stack(labels) if labelled else None, f"{len(images)} {kind} tiles from {folder}"


def _synthetic(preprocessing, size, count):
    from gdcld_zoo.data.synthetic import synthetic_scene

    if preprocessing.num_bands != 3 or preprocessing.dtype != "uint8":
        raise InvalidInputError(
            f"Generated calibration tiles are 8-bit RGB but the model reads {preprocessing.num_bands} "
            f"{preprocessing.dtype} bands {preprocessing.band_names}; pass calibration tiles (a folder or an array)."
        )
    drawn = [synthetic_scene(size, size, seed=seed) for seed in range(count)]
    images = np.stack([np.moveaxis(image, 0, -1) for image, _ in drawn])
    labels = np.stack([mask for _, mask in drawn])
    return images, labels, f"{count} synthetic {size}x{size} tiles (gdcld_zoo.data.synthetic, seeds 0-{count - 1})"


def calibration_tiles(calibration, preprocessing, tile_size, count=CALIBRATION_TILES):
    """The `Calibration` for `calibration` (None, a folder or raw pixels), checked against the export.

    Args:
        calibration: None (generated tiles), a folder of GeoTIFF tiles in the
            GDCLD layout (`images/` and optional `labels/`, or a dataset root,
            whose `val` split is used), or raw pixels (N, H, W, C) / (H, W, C).
        preprocessing: The export's `Preprocessing` (bands read, band count).
        tile_size: The export's fixed tile size, or None when free.
        count: Most tiles used.
    """
    from pathlib import Path

    if calibration is None:
        images, labels, source = _synthetic(preprocessing, tile_size or SYNTHETIC_TILE_SIZE, count)
    elif isinstance(calibration, (str, Path)):
        folder = Path(calibration)
        if not folder.is_dir():
            raise InvalidInputError(f"Calibration folder {folder} does not exist; pass a folder of GeoTIFF tiles.")
        if not any(folder.iterdir()):
            raise InvalidInputError(f"Calibration folder {folder} is empty; put GeoTIFF tiles in {folder}/images.")
        images, labels, source = _read_folder(folder, preprocessing, count)
    else:
        images = np.asarray(calibration)
        images = images[None] if images.ndim == 3 else images
        if images.ndim != 4 or images.shape[-1] != preprocessing.num_bands or not len(images):
            raise InvalidInputError(
                f"Calibration pixels must be (N, H, W, {preprocessing.num_bands}) raw tiles, got shape {images.shape}."
            )
        labels, source = None, f"{len(images)} tiles given as an array"
    height, width = images.shape[1:3]
    if tile_size is not None and (height, width) != (tile_size, tile_size):
        raise InvalidInputError(
            f"Calibration tiles are {height}x{width} but the export is fixed to {tile_size}x{tile_size}; "
            "give tiles of that size or export with a free tile size."
        )
    if height % 32 or width % 32:
        raise InvalidInputError(f"Calibration tiles are {height}x{width}; sides must be multiples of 32.")
    return Calibration(images.astype("float32"), labels, source)


def quantize_int8(fp32_path, int8_path, calibration, input_name):
    """Write the int8 QDQ version of the float32 graph at `fp32_path`, calibrated on `calibration`."""
    quantization = require("onnxruntime.quantization", "onnx")
    shape_inference = require("onnxruntime.quantization.shape_inference", "onnx")

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.tiles = iter(calibration.pixels)

        def get_next(self):
            tile = next(self.tiles, None)
            return None if tile is None else {input_name: tile[None]}

    prepared = str(int8_path) + ".prep.onnx"
    # Symbolic shape inference cannot follow free height and width; ONNX's own inference can.
    shape_inference.quant_pre_process(str(fp32_path), prepared, skip_symbolic_shape=True)
    quantization.quantize_static(
        prepared,
        str(int8_path),
        Reader(),
        quant_format=quantization.QuantFormat.QDQ,
        per_channel=True,
        activation_type=quantization.QuantType.QUInt8,
        weight_type=quantization.QuantType.QInt8,
        op_types_to_quantize=list(QUANTIZED_OPERATORS),
        calibrate_method=quantization.CalibrationMethod.MinMax,
    )


def _f1(mask, labels):
    """F1 of a decision mask against 0/1 labels (255 left out), by the paper's metrics (1.0 when both are empty)."""
    from gdcld_zoo.metrics import confusion_matrix, metrics_from_confusion_matrix

    return metrics_from_confusion_matrix(confusion_matrix(labels, mask.astype("int64"), 2, ignore_index=255))["f1"]


def measure_agreement(onnx_path, reference, calibration, threshold, input_name, output_name):
    """How far the int8 file's decisions are from `reference` (Keras probabilities) on the calibration tiles.

    Returns a dict: `pixel_agreement` (share of pixels with the same decision
    at `threshold`), `delta_f1` (int8 F1 minus Keras F1, both against the
    labels when the tiles have them, pixels labelled 255 left out; without
    labels, the F1 of the int8 mask against the Keras mask minus 1),
    `f1_reference` ("labels" or "keras mask") and `max_abs_probability_difference`.
    """
    onnxruntime = require("onnxruntime", "onnx")
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    same = total = 0
    worst = 0.0
    keras_masks, int8_masks = [], []
    for tile in calibration.pixels:
        expected = np.asarray(reference(tile[None]), "float32")
        got = session.run([output_name], {input_name: tile[None]})[0].astype("float32")
        worst = max(worst, float(np.max(np.abs(got - expected))))
        keras_masks.append(expected[0, ..., -1] >= threshold)
        int8_masks.append(got[0, ..., -1] >= threshold)
        same += int(np.sum(keras_masks[-1] == int8_masks[-1]))
        total += keras_masks[-1].size
    keras_mask, int8_mask = np.stack(keras_masks), np.stack(int8_masks)
    if calibration.labels is not None:
        delta_f1 = _f1(int8_mask, calibration.labels) - _f1(keras_mask, calibration.labels)
    else:
        delta_f1 = _f1(int8_mask, keras_mask.astype("int64")) - 1.0
    return {
        "pixel_agreement": round(same / total, 6),
        "delta_f1": round(delta_f1, 6),
        "f1_reference": "labels" if calibration.labels is not None else "keras mask",
        "max_abs_probability_difference": round(worst, 6),
    }


def format_agreement(agreement):
    """One line of the figures, as the CLI and errors print them."""
    return (
        f"pixel agreement {100 * agreement['pixel_agreement']:.2f} %, ΔF1 {agreement['delta_f1']:+.4f} "
        f"(against {agreement['f1_reference']}), max |Δprob| {agreement['max_abs_probability_difference']:.3g}"
    )
