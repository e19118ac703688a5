"""`gdcld-zoo export --quantize int8`: calibration from a folder, the figures printed, one-line errors."""

import sys

from gdcld_zoo.cli import main
from gdcld_zoo.data import write_synthetic_dataset
from gdcld_zoo.export import read_onnx_metadata
from tests.extras import require
from tests.reliability.bad_files import assert_one_line_error
from tests.reliability.models import tiny_run

require("onnxruntime")


def test_quantize_int8_calibrated_on_a_folder_prints_the_agreement(tmp_path, capsys):
    run = tiny_run(tmp_path / "run", threshold=0.65)  # outside the untrained model's band around 0.5
    root = write_synthetic_dataset(tmp_path / "data", n_train=0, n_val=2, tile_size=64)
    output = tmp_path / "tiny_int8.onnx"
    code = main(["export", str(run), str(output), "--tile-size", "64", "--quantize", "int8",
                 "--calibration", str(root / "val")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "int8, tiles 64x64" in out and f"2 labelled tiles from {root / 'val'}" in out
    assert "pixel agreement" in out and "ΔF1" in out and "(against labels)" in out and "max |Δprob|" in out
    assert read_onnx_metadata(output)["precision"] == "int8"


def test_quantize_without_onnxruntime_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    code = main(["export", str(tiny_run(tmp_path / "run")), str(tmp_path / "x.onnx"), "--quantize", "int8"])
    assert_one_line_error(code, capsys.readouterr().err, 'onnxruntime is not installed: pip install "gdcld-zoo[onnx]"')
