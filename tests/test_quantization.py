"""int8 export: calibration tiles, the agreement figures, the refusal below 99 % and clear input errors."""

import sys

import numpy as np
import pytest

from gdcld_zoo import quantization
from gdcld_zoo.data import write_synthetic_dataset
from gdcld_zoo.errors import InvalidInputError, MissingExtraError, UnknownNameError
from gdcld_zoo.export import ExportError, export_onnx, read_onnx_metadata
from gdcld_zoo.preprocessing import Preprocessing
from gdcld_zoo.quantization import calibration_tiles
from tests.extras import require

onnx = require("onnx")
require("onnxruntime")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """Untrained unet_tiny with a weight record at threshold 0.65.

    Untrained, every probability sits within 0.1 of 0.5, where int8 round-off
    flips decisions at random from one CPU to the next; a threshold outside that
    band keeps these tests' decisions stable. The refusal has its own test.
    """
    from gdcld_zoo import load_pretrained
    from tests.reliability.models import tiny_run

    return load_pretrained(tiny_run(tmp_path_factory.mktemp("run"), threshold=0.65))


@pytest.fixture(scope="module")
def int8_file(tiny_model, tmp_path_factory):
    """unet_tiny quantised to int8 at 64x64, calibrated on generated tiles."""
    return export_onnx(tiny_model, tmp_path_factory.mktemp("int8") / "tiny_int8.onnx", tile_size=64, quantize="int8")


def raw_tiles(count, size=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3)).astype("float32")


def test_int8_export_records_precision_calibration_and_agreement(int8_file):
    metadata = read_onnx_metadata(int8_file)
    assert metadata["precision"] == "int8" and "synthetic 64x64 tiles" in metadata["calibration"]
    agreement = metadata["int8_agreement"]
    assert agreement["pixel_agreement"] >= 0.99 and agreement["f1_reference"] == "labels"
    assert 0 < agreement["max_abs_probability_difference"] < 0.2 and abs(agreement["delta_f1"]) < 0.05
    operators = {node.op_type for node in onnx.load(str(int8_file)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= operators


def test_an_int8_file_runs_through_predict_scene_like_keras(tiny_model, int8_file, tmp_path):
    import rasterio

    from gdcld_zoo.data.synthetic import write_synthetic_scene
    from gdcld_zoo.scene import predict_scene

    scene, _ = write_synthetic_scene(tmp_path / "scene.tif", 100, 140, seed=1)
    common = dict(tile_size=64, overlap=16, progress=False)
    int8 = predict_scene(int8_file, scene, tmp_path / "int8", engine="onnx", **common)
    predict_scene(tiny_model, scene, tmp_path / "keras", **common)
    assert int8.summary["model_tag"] == "unet_tiny.reliability" and int8.summary["engine"] == "OnnxEngine"
    masks = []
    for engine in ("int8", "keras"):
        with rasterio.open(tmp_path / engine / "scene_mask.tif") as mask:
            masks.append(mask.read(1))
    assert np.mean(masks[0] == masks[1]) >= 0.98


def test_agreement_below_the_minimum_is_refused_with_the_figures(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setattr(quantization, "MIN_AGREEMENT", 1.01)  # no int8 graph reaches 101 %
    with pytest.raises(ExportError, match=r"pixel agreement 1?\d\d\.\d\d %, ΔF1 [-+]\d\.\d{4} \(against keras mask\), "
                                          r"max \|Δprob\| .* < 101 % agreement at threshold 0.65; nothing written"):
        export_onnx(tiny_model, tmp_path / "refused.onnx", tile_size=64, quantize="int8", calibration=raw_tiles(2))
    assert not list(tmp_path.iterdir())


def test_calibration_from_a_dataset_folder_uses_its_labels(tmp_path):
    root = write_synthetic_dataset(tmp_path / "data", n_train=0, n_val=3, tile_size=64)
    tiles = calibration_tiles(root, Preprocessing(), None)  # a dataset root: its val split
    assert tiles.pixels.shape == (3, 64, 64, 3) and tiles.pixels.dtype == np.float32
    assert tiles.labels.shape == (3, 64, 64) and tiles.source == f"3 labelled tiles from {root}"
    for label in (root / "val" / "labels").iterdir():
        label.unlink()
    unlabelled = calibration_tiles(root / "val", Preprocessing(), 64, count=2)
    assert unlabelled.labels is None and unlabelled.source.startswith("2 unlabelled tiles")


def test_generated_calibration_tiles_have_labels_and_say_so():
    tiles = calibration_tiles(None, Preprocessing(), 32, count=2)
    assert tiles.pixels.shape == (2, 32, 32, 3) and tiles.labels.shape == (2, 32, 32)
    assert "synthetic" in tiles.source
    with pytest.raises(InvalidInputError, match="Generated calibration tiles are 8-bit RGB"):
        calibration_tiles(None, Preprocessing(bands=(1, 2, 3, 4), mean=(0,) * 4, std=(1,) * 4, scale=(1,) * 4,
                                              band_names=("r", "g", "b", "n")), 32)


@pytest.mark.parametrize("options, error, message", [
    (dict(quantize="int4"), UnknownNameError, "Unknown quantization 'int4'"),
    (dict(quantize="int8", fp16=True), InvalidInputError, "Choose one of fp16 and quantize='int8'"),
    (dict(calibration="tiles"), InvalidInputError, "calibration tiles are for quantize='int8'"),
    (dict(quantize="int8", calibration="missing"), InvalidInputError, "missing does not exist"),
    (dict(quantize="int8", calibration="empty"), InvalidInputError, "empty is empty"),
    (dict(quantize="int8", calibration=raw_tiles(1, 96)), InvalidInputError, "96x96 but the export is fixed to 64x64"),
    (dict(quantize="int8", calibration=raw_tiles(1)[..., :2]), InvalidInputError, r"must be \(N, H, W, 3\)"),
])
def test_bad_quantization_inputs_are_refused_before_conversion(tiny_model, tmp_path, monkeypatch, options, error,
                                                               message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    monkeypatch.setitem(sys.modules, "tf2onnx.convert", None)  # conversion would fail loudly if reached
    with pytest.raises(error, match=message):
        export_onnx(tiny_model, tmp_path / "x.onnx", tile_size=64, **options)
    assert not (tmp_path / "x.onnx").exists()


def test_a_missing_onnxruntime_is_one_line_naming_the_extra(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError, match=r'^onnxruntime is not installed: pip install "gdcld-zoo\[onnx\]"\.$'):
        export_onnx(tiny_model, tmp_path / "x.onnx", quantize="int8")
