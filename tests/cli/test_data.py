"""`gdcld-zoo data check`: summary, every bad file with its reason, exit codes."""

import subprocess
import sys

import numpy as np
import rasterio

from gdcld_zoo.cli import main
from gdcld_zoo.data.synthetic import write_synthetic_dataset
from tests.data.raster_files import truncate, write_tif


def test_check_good_dataset_exits_zero(tmp_path, capsys):
    root = write_synthetic_dataset(tmp_path / "d", n_train=3, n_val=2, tile_size=64, seed=1)
    assert main(["data", "check", str(root)]) == 0
    out = capsys.readouterr().out
    assert "[train] 3 tiles, 0 bad" in out and "[val] 2 tiles, 0 bad" in out
    assert "sizes: 64x64 (3)" in out and "CRS: EPSG:32647" in out and "all pairs OK" in out


def test_check_lists_every_bad_file_and_exits_non_zero(tmp_path, capsys):
    root = write_synthetic_dataset(tmp_path / "d", n_train=4, n_val=2, tile_size=64, seed=1)
    train = root / "train"
    (train / "images" / "tile_00000.tif").write_bytes(b"not a tiff at all")
    truncate(train / "images" / "tile_00001.tif")
    (train / "labels" / "tile_00002.tif").unlink()
    with rasterio.open(root / "val" / "images" / "tile_00001.tif") as src:
        transform = src.transform
    write_tif(root / "val" / "labels" / "tile_00001.tif", np.full((64, 64), 3, "uint8"), transform)
    code = main(["data", "check", str(root)])
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.out + captured.err
    bad = [line for line in captured.out.splitlines() if line.strip().startswith("BAD ")]
    assert len(bad) == 4
    expected = [
        ("train/images/tile_00000.tif", "cannot open image"),
        ("train/images/tile_00001.tif", "truncated"),
        ("train/images/tile_00002.tif", "missing label"),
        ("val/labels/tile_00001.tif", "outside {0, 1, 255"),
    ]
    for path, reason in expected:
        assert any(str(root / path) in line and reason in line for line in bad), (path, bad)
    assert "[train] 4 tiles, 3 bad" in captured.out


def test_check_with_band_spec_accepts_16_bit_imagery(tmp_path, capsys):
    write_tif(tmp_path / "images" / "a.tif", np.full((4, 32, 32), 1200, "uint16"))
    write_tif(tmp_path / "labels" / "a.tif", np.zeros((32, 32), "uint8"))
    assert main(["data", "check", str(tmp_path)]) == 1
    assert "dtype='uint16'" in capsys.readouterr().out
    assert main(["data", "check", str(tmp_path), "--bands", "3,2,1", "--dtype", "uint16"]) == 0


def test_check_missing_root_is_one_line_error(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gdcld-zoo data check: error:") and "does not exist" in err and "Traceback" not in err


def test_data_commands_start_without_tensorflow():
    """Every command registers its options without importing Keras or TensorFlow."""
    code = (
        "import sys; from gdcld_zoo.cli import build_parser; build_parser(); "
        "import gdcld_zoo.cli.data; "
        "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
