"""Data folder confinement, checked uploads, the demo scene and the progress engine."""

import json

import numpy as np
import pytest
import rasterio

from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.scene import SlidingWindowPredictor, inputs
from gdcld_zoo.scene.source import SceneError
from tests.scene.scenes import PixelEngine, random_scene, write_scene


def test_data_folder_lists_rasters_inside_and_refuses_everything_else(tmp_path):
    root = tmp_path / "data"
    (root / "a" / "b").mkdir(parents=True)
    (root / ".hidden").mkdir()
    for name in ("one.tif", "one_label.tif", "a/b/two.TIFF", ".hidden/three.tif", ".four.tif"):
        write_scene(root / name, random_scene(32, 32))
    (root / "notes.txt").write_text("x")
    outside = write_scene(tmp_path / "outside.tif", random_scene(32, 32))
    (root / "link.tif").symlink_to(outside)
    (root / "inner_link.tif").symlink_to(root / "one.tif")
    folder = inputs.DataFolder(root)
    assert folder.scenes() == ["a/b/two.TIFF", "inner_link.tif", "one.tif"]
    assert folder.labels()[0] == "one_label.tif"
    assert folder.label_for("one.tif") == "one_label.tif" and folder.label_for("a/b/two.TIFF") is None
    for name in ("../outside.tif", str(outside), "link.tif", "a/../../outside.tif", "/etc/passwd"):
        with pytest.raises(SceneError, match="outside the data folder"):
            folder.resolve(name)
    assert folder.resolve("a/b/two.TIFF") == root / "a" / "b" / "two.TIFF"
    with pytest.raises(InvalidInputError, match="does not exist"):
        inputs.DataFolder(tmp_path / "missing")


def test_save_upload_checks_size_and_content(tmp_path):
    data = write_scene(tmp_path / "s.tif", random_scene(32, 32)).read_bytes()
    stored = inputs.save_upload("../../evil/s.tif", data, tmp_path / "uploads")
    assert stored.parent.parent == tmp_path / "uploads" and stored.name == "s.tif"
    assert inputs.save_upload("s.tif", data, tmp_path / "uploads") == stored
    with pytest.raises(SceneError, match="above the upload limit"):
        inputs.save_upload("s.tif", data, tmp_path / "uploads", max_bytes=100)
    with pytest.raises(SceneError, match=r"^x.tif: not a raster"):
        inputs.save_upload("x.tif", b"hello", tmp_path / "uploads")
    with pytest.raises(SceneError, match="empty"):
        inputs.save_upload("e.tif", b"", tmp_path / "uploads")


def test_scene_info_and_demo_scene(tmp_path):
    scene, label = inputs.demo_scene(tmp_path, shape=(64, 96))
    info = inputs.scene_info(scene)
    assert (info["width"], info["height"], info["bands"], info["crs"]) == (96, 64, 3, "EPSG:32647")
    with rasterio.open(label) as dataset:
        assert set(np.unique(dataset.read(1))) <= {0, 1}
    stamp = scene.stat().st_mtime_ns
    assert inputs.demo_scene(tmp_path, shape=(64, 96)) == (scene, label)
    assert scene.stat().st_mtime_ns == stamp  # written once


def test_progress_engine_reports_tiles_and_keeps_predictions(tmp_path):
    path = write_scene(tmp_path / "scene.tif", random_scene(100, 150))
    seen = []
    engine = inputs.ProgressEngine(PixelEngine(), seen.append)
    predictor = SlidingWindowPredictor(engine, tile_size=64, overlap=16, batch_size=2, progress=False)
    result = predictor.predict(path, tmp_path / "out")
    assert seen == sorted(seen) and seen[-1] == result.summary["n_tiles_predicted"]
    assert engine.tag == "pixel-test" and result.summary["model_tag"] == "pixel-test"


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(inputs)
    assert result.attempted > 0 and result.failed == 0


def test_predict_results_and_inventories_in_the_data_folder(tmp_path):
    root = tmp_path / "data"
    event = root / "event"
    event.mkdir(parents=True)
    for name in ("A", "B"):
        (event / f"{name}_prob.tif").write_bytes(b"")
        (event / f"{name}_landslides.geojson").write_text("{}")
        (event / f"{name}_summary.json").write_text(json.dumps({
            "scene": f"/elsewhere/{name}.tif", "model_tag": "demo", "threshold": 0.5, "bands": [1, 2, 3],
            "tile_size": 128, "overlap": 32, "timings_s": {"model": 1.0},
            "outputs": {k: f"{name}_{k}" for k in ("prob.tif", "landslides.geojson", "summary.json")}}))
    (event / "inventory.gpkg").write_bytes(b"")
    (root / "other_summary.json").write_text("[1, 2]")
    (root / "thin_summary.json").write_text(json.dumps({"outputs": {"prob.tif": "thin_prob.tif"}}))
    (root / "gone_summary.json").write_text((event / "A_summary.json").read_text())
    folder = inputs.DataFolder(root)
    assert folder.inventories() == ["event/inventory.gpkg"]
    assert folder.results_beside("event/inventory.gpkg") == ["event/A_summary.json", "event/B_summary.json"]
    run = folder.result("event/A_summary.json")
    assert run["outputs"]["prob.tif"] == str(event / "A_prob.tif") and run["summary"]["model_tag"] == "demo"
    with pytest.raises(SceneError, match="other_summary.json is not a summary that gdcld-zoo predict wrote"):
        folder.result("other_summary.json")
    with pytest.raises(SceneError, match="thin_summary.json has no scene, model_tag, .*outputs.landslides.geojson"):
        folder.result("thin_summary.json")
    with pytest.raises(SceneError, match="'A_prob.tif' is not a file in the data folder"):
        folder.result("gone_summary.json")


def test_an_upload_is_checked_by_the_given_opener_and_dropped_when_refused(tmp_path):
    def refuse(path):
        raise InvalidInputError(f"{path} is not an inventory.")

    with pytest.raises(InvalidInputError, match=r"^x.gpkg is not an inventory\.$"):
        inputs.save_upload("x.gpkg", b"bytes", tmp_path, check=refuse)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    assert inputs.save_upload("y.gpkg", b"bytes", tmp_path, check=lambda path: None).read_bytes() == b"bytes"
