"""`gdcld-zoo data check` on files that look like tiles but are not usable."""

import numpy as np
import pytest

from gdcld_zoo.cli import main
from gdcld_zoo.data import write_synthetic_dataset
from tests.reliability.bad_files import png_named_tif, rewrite_pixels


@pytest.fixture
def root(tmp_path):
    return write_synthetic_dataset(tmp_path / "data", n_train=3, n_val=1, tile_size=32, seed=0)


def check(capsys, *argv):
    code = main(["data", "check", *map(str, argv)])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("fmt, what", [("PNG", "image"), ("JPEG", "image"), ("PNG", "label")])
def test_a_png_or_jpeg_renamed_tif_is_bad_and_its_driver_named(root, capsys, fmt, what):
    folder = "images" if what == "image" else "labels"
    bad = png_named_tif(root / "train" / folder / "tile_00001.tif", bands=3 if what == "image" else 1, fmt=fmt)
    code, out = check(capsys, root)
    assert code == 1 and "all pairs OK" not in out
    assert f"BAD {bad}: named .tif but it is a {fmt} file, not a GeoTIFF" in out


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_infinite_float_pixels_are_bad(root, capsys, value):
    for image in (root / "train" / "images").iterdir():
        rewrite_pixels(image, lambda a: a, dtype="float32")
    float_flags = ("--split", "train", "--dtype", "float32", "--scale", "255")
    code, out = check(capsys, root, *float_flags)
    assert code == 0 and "all pairs OK" in out  # finite float pixels are fine
    image = root / "train" / "images" / "tile_00002.tif"

    def poison(array):
        array[:, :4, :4] = value
        return array

    rewrite_pixels(image, poison)
    code, out = check(capsys, root, *float_flags)
    assert code == 1
    assert f"BAD {image}: image has" in out and "would make the loss NaN" in out
