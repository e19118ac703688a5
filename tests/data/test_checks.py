"""`check_pair` / `check_dataset`: every kind of bad file is named with its reason."""

import re

import numpy as np
import pytest
import rasterio

from gdcld_zoo.data.checks import check_dataset, check_pair, format_report
from gdcld_zoo.data.layout import TilePair, tile_pairs
from gdcld_zoo.preprocessing import Preprocessing
from tests.data.raster_files import DEFAULT_TRANSFORM, truncate, write_tif

# Each damage writes one broken file into a dataset copy and returns (file, reason pattern).


def _train(root, kind, name="tile_00003.tif"):
    return root / "train" / kind / name


def corrupt_image(root):
    path = _train(root, "images")
    path.write_bytes(b"II*\x00garbage" * 20)
    return path, "cannot open image"


def truncated_image(root):
    path = _train(root, "images")
    truncate(path)
    return path, r"cannot read image pixels \(truncated\?\)"


def truncated_label(root):
    path = _train(root, "labels")
    truncate(path, 0.5)
    return path, r"cannot read label pixels \(truncated\?\)"


def missing_label(root):
    _train(root, "labels").unlink()
    return _train(root, "images"), "missing label"


def orphan_label(root):
    path = _train(root, "labels", "extra.tif")
    write_tif(path, np.zeros((96, 96), "uint8"))
    return path, "label has no image"


def size_mismatch(root):
    path = _train(root, "labels")
    write_tif(path, np.zeros((64, 96), "uint8"), transform=_transform(root))
    return path, "label is 64x96 but image is 96x96"


def bad_label_values(root):
    path = _train(root, "labels")
    values = np.zeros((96, 96), "uint8")
    values[:3, :3] = 7
    values[50, 50] = 2
    write_tif(path, values, transform=_transform(root))
    return path, r"label has values \{2, 7\} outside"


def two_band_label(root):
    path = _train(root, "labels")
    write_tif(path, np.zeros((2, 96, 96), "uint8"), transform=_transform(root))
    return path, "label has 2 bands, expected 1"


def crs_mismatch(root):
    path = _train(root, "labels")
    write_tif(path, np.zeros((96, 96), "uint8"), transform=_transform(root), crs="EPSG:32648")
    return path, "label CRS EPSG:32648 differs from image CRS EPSG:32647"


def transform_mismatch(root):
    path = _train(root, "labels")
    write_tif(path, np.zeros((96, 96), "uint8"), transform=DEFAULT_TRANSFORM)
    return path, "label transform .* differs from image transform"


def four_band_image(root):
    path = _train(root, "images")
    write_tif(path, np.zeros((4, 96, 96), "uint8"), transform=_transform(root))
    return path, r"4 uint8 band\(s\) but the default spec reads exactly 3 uint8 bands.*Preprocessing\(bands="


def uint16_image(root):
    path = _train(root, "images")
    write_tif(path, np.zeros((3, 96, 96), "uint16"), transform=_transform(root))
    return path, r"3 uint16 band\(s\) but the default spec.*dtype='uint16'"


def _transform(root):
    with rasterio.open(_train(root, "images")) as src:
        return src.transform


DAMAGES = [
    corrupt_image,
    truncated_image,
    truncated_label,
    missing_label,
    orphan_label,
    size_mismatch,
    bad_label_values,
    two_band_label,
    crs_mismatch,
    transform_mismatch,
    four_band_image,
    uint16_image,
]


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda f: f.__name__)
def test_every_bad_file_is_named_with_its_reason(dataset_copy, damage):
    path, reason = damage(dataset_copy)
    report = check_dataset(dataset_copy)
    assert not report.ok
    problems = [p for r in report.bad for p in r.problems]
    assert len(problems) == 1, problems
    assert problems[0].startswith(str(path)), problems
    assert re.search(reason, problems[0]), problems[0]
    assert report.splits["val"].bad == []
    assert f"BAD {problems[0]}" in format_report(report)


def test_good_dataset_summary_matches_the_files(synthetic_root):
    report = check_dataset(synthetic_root)
    assert report.ok and list(report.splits) == ["train", "val"]
    train = report.splits["train"]
    labels = []
    for pair in tile_pairs(synthetic_root, "train"):
        with rasterio.open(pair.label) as src:
            labels.append(src.read(1))
    assert train.num_tiles == 8
    assert train.positive_tile_share == pytest.approx(np.mean([lab.any() for lab in labels]))
    assert train.landslide_pixel_share == pytest.approx(np.mean(labels))
    assert 0 < train.landslide_pixel_share < 0.5
    assert train.counts("size") == {"96x96": 8}
    assert train.counts("crs") == {"EPSG:32647": 8}
    text = format_report(report)
    assert "[train] 8 tiles, 0 bad" in text and "all pairs OK" in text


def test_label_nodata_and_ignore_values_are_allowed(tmp_path):
    image = write_tif(tmp_path / "i.tif", np.zeros((3, 8, 8), "uint8"))
    values = np.zeros((8, 8), "uint8")
    values[0] = 255
    values[1] = 9
    values[2, :4] = 1
    label = write_tif(tmp_path / "l.tif", values, nodata=9)
    report = check_pair(TilePair(image, label))
    assert report.ok, report.problems
    assert (report.landslide_pixels, report.labelled_pixels) == (4, 48)


def test_uint16_four_band_passes_with_an_explicit_spec(tmp_path):
    image = write_tif(tmp_path / "i.tif", np.full((4, 8, 8), 900, "uint16"))
    label = write_tif(tmp_path / "l.tif", np.zeros((8, 8), "uint8"))
    spec = Preprocessing(bands=(3, 2, 1), dtype="uint16", scale=(1e4, 1e4, 1e4))
    assert check_pair(TilePair(image, label), spec).ok
    wrong = Preprocessing(bands=(5, 2, 1), dtype="uint16", scale=(1e4, 1e4, 1e4))
    assert "selects bands (5, 2, 1) but the image has only 4" in check_pair(TilePair(image, label), wrong).problems[0]
    eight_bit = Preprocessing(band_names=("b1", "b2", "b3"))
    assert "image is uint16 but Preprocessing.dtype is 'uint8'" in check_pair(TilePair(image, label), eight_bit).problems[0]


def test_headers_only_skips_pixel_problems(dataset_copy):
    truncated_image(dataset_copy)
    assert check_dataset(dataset_copy, read_pixels=False).ok
    assert not check_dataset(dataset_copy, read_pixels=True).ok
