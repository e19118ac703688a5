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


def test_an_opset_tf2onnx_cannot_write_is_refused_by_the_parser(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit) as exit_:
        main(["export", "demo", str(tmp_path / "x.onnx"), "--opset", "0"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--opset: invalid choice: 0 (choose from 14, 15, 16, 17, 18)" in err
    assert not (tmp_path / "x.onnx").exists()


def test_export_onnx_refuses_an_opset_before_converting(tmp_path):
    import pytest

    from gdcld_zoo import build_model
    from gdcld_zoo.errors import InvalidInputError
    from gdcld_zoo.export import export_onnx

    with pytest.raises(InvalidInputError, match="opset must be one tf2onnx converts to, 14 to 18"):
        export_onnx(build_model("unet_tiny"), tmp_path / "x.onnx", opset=9)
