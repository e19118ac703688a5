"""Layout discovery: folder name variants, .tif/.tiff, split aliases, CSV manifests."""

import numpy as np
import pytest

from gdcld_zoo.data.layout import DatasetLayoutError, TilePair, index_split, tile_pairs, write_manifest
from gdcld_zoo.errors import GdcldZooError
from tests.data.raster_files import write_tif


def _make(folder, names, image_dir="images", label_dir="labels", label_names=None):
    for name in names:
        write_tif(folder / image_dir / name, np.zeros((3, 8, 8), "uint8"))
    for name in names if label_names is None else label_names:
        write_tif(folder / label_dir / name, np.zeros((8, 8), "uint8"))


@pytest.mark.parametrize(
    "split_dir, image_dir, label_dir",
    [
        ("train", "images", "labels"),
        ("train", "image", "label"),
        ("train", "img", "masks"),
        ("train_dataset", "img", "mask"),
        ("training", "images", "gt"),
    ],
)
def test_folder_name_variants_pair_by_stem(tmp_path, split_dir, image_dir, label_dir):
    _make(tmp_path / split_dir, ["b.tif", "a.tiff"], image_dir, label_dir, label_names=["a.tif", "b.tiff"])
    pairs = tile_pairs(tmp_path, "train")
    assert [(p.image.name, p.label.name) for p in pairs] == [("a.tiff", "a.tif"), ("b.tif", "b.tiff")]
    assert all(p.event is None and p.sensor is None and p.resolution_m is None for p in pairs)


def test_root_that_is_a_split_folder(tmp_path):
    _make(tmp_path, ["x.tif"])
    assert [p.name for p in tile_pairs(tmp_path)] == ["x"]


def test_missing_labels_and_orphans_are_reported(tmp_path):
    _make(tmp_path / "val", ["a.tif", "b.tif"], label_names=["a.tif", "c.tif"])
    index = index_split(tmp_path, "val")
    assert [(p.image.name, p.label.name if p.label else None) for p in index.pairs] == [
        ("a.tif", "a.tif"),
        ("b.tif", None),
    ]
    assert [p.name for p in index.orphan_labels] == ["c.tif"]


def test_non_tiff_files_are_ignored(tmp_path):
    _make(tmp_path / "train", ["a.tif"])
    (tmp_path / "train" / "images" / "notes.txt").write_text("x")
    assert len(tile_pairs(tmp_path, "train")) == 1


def test_unknown_split_names_what_exists(tmp_path):
    _make(tmp_path / "train", ["a.tif"])
    with pytest.raises(DatasetLayoutError, match=r"split 'val'.*found train"):
        tile_pairs(tmp_path, "val")


def test_missing_root_and_empty_image_folder(tmp_path):
    with pytest.raises(GdcldZooError, match="does not exist"):
        tile_pairs(tmp_path / "nope", "train")
    (tmp_path / "train" / "images").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match="no .tif/.tiff"):
        tile_pairs(tmp_path, "train")


def test_manifest_resolves_relative_paths_and_metadata(tmp_path):
    _make(tmp_path / "data", ["a.tif", "b.tif"])
    (tmp_path / "lists").mkdir()
    manifest = tmp_path / "lists" / "tiles.csv"
    manifest.write_text(
        "image,label,event,sensor,resolution_m\n"
        "../data/images/a.tif,../data/labels/a.tif,Luding 2022,UAV,0.2\n"
        "../data/images/b.tif,../data/labels/b.tif,,,\n"
    )
    a, b = tile_pairs(manifest, "test")
    assert a == TilePair(
        (tmp_path / "data/images/a.tif").resolve(), (tmp_path / "data/labels/a.tif").resolve(), "Luding 2022", "UAV", 0.2
    )
    assert (b.event, b.sensor, b.resolution_m) == (None, None, None)


def test_manifest_with_only_image_and_label_columns(tmp_path):
    _make(tmp_path, ["a.tif"])
    manifest = tmp_path / "m.csv"
    manifest.write_text("image,label\nimages/a.tif,labels/a.tif\n")
    assert tile_pairs(manifest)[0].label == (tmp_path / "labels/a.tif").resolve()


def test_manifest_split_column_filters_rows(synthetic_root):
    manifest = synthetic_root / "manifest.csv"
    train, val = tile_pairs(manifest, "train"), tile_pairs(manifest, "val")
    assert (len(train), len(val)) == (8, 4)
    assert [p.image for p in val] == [p.image for p in tile_pairs(synthetic_root, "val")]
    assert {p.sensor for p in train} >= {"UAV", "PlanetScope"}
    with pytest.raises(DatasetLayoutError, match=r"no rows with split 'test'.*\['train', 'val'\]"):
        tile_pairs(manifest, "test")


@pytest.mark.parametrize(
    "text, message",
    [
        ("img,lbl\na.tif,b.tif\n", "lacks column"),
        ("image,label,resolution_m\na.tif,b.tif,fine\n", "not a number"),
        ("image,label\n", "no rows"),
    ],
)
def test_bad_manifests_are_named(tmp_path, text, message):
    manifest = tmp_path / "m.csv"
    manifest.write_text(text)
    with pytest.raises(DatasetLayoutError, match=message):
        tile_pairs(manifest)


def test_write_manifest_round_trips(tmp_path):
    _make(tmp_path, ["a.tif"])
    pair = TilePair((tmp_path / "images/a.tif"), (tmp_path / "labels/a.tif"), "Palu 2018", "Map World", 1.0)
    path = write_manifest(tmp_path / "m.csv", [pair], splits=["test"])
    assert path.read_text().splitlines()[1] == "images/a.tif,labels/a.tif,Palu 2018,Map World,1,test"
    assert tile_pairs(path, "test")[0] == TilePair(
        pair.image.resolve(), pair.label.resolve(), "Palu 2018", "Map World", 1.0
    )
