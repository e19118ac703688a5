"""The synthetic GDCLD-like generator: deterministic, georeferenced, scars brighter than terrain."""

import csv

import numpy as np
import rasterio
from rasterio.crs import CRS

from gdcld_zoo.data.synthetic import synthetic_scene, write_synthetic_dataset, write_synthetic_scene


def test_scene_is_deterministic_and_scars_are_bright():
    image, mask = synthetic_scene(128, 96, seed=5)
    again, mask_again = synthetic_scene(128, 96, seed=5)
    other, _ = synthetic_scene(128, 96, seed=6)
    assert image.shape == (3, 128, 96) and image.dtype == np.uint8
    assert mask.shape == (128, 96) and set(np.unique(mask)) <= {0, 1}
    np.testing.assert_array_equal(image, again)
    np.testing.assert_array_equal(mask, mask_again)
    assert not np.array_equal(image, other)
    assert 0 < mask.mean() < 0.5
    brightness = image.astype(float).mean(axis=0)
    assert brightness[mask == 1].mean() > brightness[mask == 0].mean() + 50


def test_negative_scene_has_no_scars():
    _, mask = synthetic_scene(64, 64, seed=1, n_scars=0, river=True, road=True)
    assert mask.sum() == 0


def test_dataset_layout_georeferencing_and_manifest(tmp_path):
    root = write_synthetic_dataset(tmp_path / "d", n_train=3, n_val=2, n_test=1, tile_size=64, seed=2)
    for split, count in (("train", 3), ("val", 2), ("test", 1)):
        assert len(list((root / split / "images").glob("*.tif"))) == count
        assert len(list((root / split / "labels").glob("*.tif"))) == count
    with rasterio.open(root / "train" / "images" / "tile_00001.tif") as src:
        assert (src.count, src.dtypes[0], src.width) == (3, "uint8", 64)
        assert CRS.from_user_input(src.crs).is_projected and src.crs.linear_units == "metre"
        assert src.res == (3.0, 3.0)  # second source: PlanetScope, 3 m
        image_transform = src.transform
    with rasterio.open(root / "train" / "labels" / "tile_00001.tif") as src:
        assert src.transform == image_transform and src.count == 1
    with open(root / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["image", "label", "event", "sensor", "resolution_m", "split"]
    assert [r["split"] for r in rows] == ["train"] * 3 + ["val"] * 2 + ["test"]
    assert rows[1]["sensor"] == "PlanetScope" and rows[1]["resolution_m"] == "3"


def test_dataset_is_reproducible(tmp_path):
    a = write_synthetic_dataset(tmp_path / "a", n_train=2, n_val=1, tile_size=64, seed=3, manifest=False)
    b = write_synthetic_dataset(tmp_path / "b", n_train=2, n_val=1, tile_size=64, seed=3, manifest=False)
    for path in sorted(a.rglob("*.tif")):
        with rasterio.open(path) as x, rasterio.open(b / path.relative_to(a)) as y:
            np.testing.assert_array_equal(x.read(), y.read())
    assert not (a / "manifest.csv").exists()


def test_scene_writes_image_and_label(tmp_path):
    image, label = write_synthetic_scene(tmp_path / "scene.tif", 300, 260, seed=4, resolution_m=2.0)
    assert label.name == "scene_label.tif"
    with rasterio.open(image) as src, rasterio.open(label) as lab:
        assert (src.height, src.width, src.count) == (300, 260, 3)
        assert lab.transform == src.transform and src.res == (2.0, 2.0)
        assert src.profile["tiled"]
        assert set(np.unique(lab.read(1))) == {0, 1}
