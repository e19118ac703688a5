"""The viewer opening what `predict` wrote: an event's `inventory.gpkg` (from the data folder or uploaded),
a scene of the event, a single-scene result without its scene, and broken or foreign files."""

import json
import sys

import pytest

from gdcld_zoo.data.synthetic import write_synthetic_scene
from gdcld_zoo.event import map_event
from gdcld_zoo.event.inventory import Inventory, write_inventory
from gdcld_zoo.scene import predict_scene
from tests.apps.conftest import SCENE_SHAPE
from tests.apps.test_viewer import (DOWNLOADS, errors, fresh_caches, map_components, metric,  # noqa: F401 (fixture)
                                    run_app, upload)
from tests.event.event_scenes import write_event
from tests.reliability.bad_files import truncate
from tests.scene.scenes import PixelEngine

# The event's landslides seen by A and B (tests/event/event_scenes.py): L1 100 m², L2 225 m², L5 200 m², L3 100 m².
EVENT_COUNT, ABOVE_150_M2 = 4, 2


@pytest.fixture(scope="module")
def event_out(tmp_path_factory):
    """`map_event` on the two overlapping synthetic scenes A and B (written outside the output folder)."""
    scenes = write_event(tmp_path_factory.mktemp("scenes"))
    out = tmp_path_factory.mktemp("data") / "event"
    map_event(PixelEngine(), [scenes["A"], scenes["B"]], out, block_tiles=2, progress=False)
    return out


@pytest.fixture
def data_with_event(event_out, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["viewer.py", "--data", str(event_out.parent)])
    return event_out.parent


def open_results(app):
    app.sidebar.radio[0].set_value("Predict results").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def map_script(app):
    (name, args), = map_components(app)
    assert "streamlit_folium" in name
    return args["script"]


def test_an_event_inventory_shows_its_polygons_counts_and_scenes(viewer_env, data_with_event):
    app = open_results(run_app())
    assert app.sidebar.selectbox[1].options[0] == "event/inventory.gpkg"
    assert app.sidebar.selectbox[2].options == ["(the whole event: inventory)", "event/A_summary.json",
                                                "event/B_summary.json"]
    assert not errors(app)
    assert metric(app, "Landslides") == str(EVENT_COUNT) and metric(app, "Scenes") == "2"
    assert metric(app, "Total area").endswith(" m²") and metric(app, "Largest").startswith("22")  # L2, ~225 m²
    script = map_script(app)
    assert "Landslides (polygons)" in script and "mean probability" in script and "A, B" in script
    bounds = json.loads(script.split("fitBounds(")[1].split(")")[0].split(",\n")[0].strip().rstrip(","))
    (south, west), (north, east) = bounds
    assert 29.82 < south < north < 29.84 and 98.99 < west < east < 99.01, bounds  # in its place, in degrees
    per_scene = app.dataframe[0].value
    assert dict(zip(per_scene["scene"], per_scene["landslides"])) == {"A": 3, "B": 3}


def test_the_minimum_area_filters_the_inventory(viewer_env, data_with_event):
    app = open_results(run_app())
    app.sidebar.number_input(key="inventory_min_area").set_value(150.0).run()
    assert metric(app, "Landslides") == str(ABOVE_150_M2)
    assert map_script(app).count('"type": "Feature"') == ABOVE_150_M2
    app.sidebar.number_input(key="inventory_min_area").set_value(1e9).run()
    assert metric(app, "Landslides") == "0" and not errors(app) and not app.exception
    assert any("0 landslides" in i.value for i in app.info)


def test_a_scene_of_the_event_opens_without_its_scene_file(viewer_env, data_with_event):
    app = open_results(run_app())
    app.sidebar.selectbox[2].set_value("event/A_summary.json").run()
    assert not app.exception and not errors(app), errors(app)
    assert any("scene not in the data folder" in c.value for c in app.caption)
    script = map_script(app)
    assert "Landslide probability" in script and "Mask at threshold" in script and "Landslides (polygons)" in script
    assert '"Scene"' not in script
    assert [b.label for b in app.get("download_button")] == DOWNLOADS
    assert metric(app, "Landslides") == "3"


def test_a_predict_folder_of_the_tiny_model_opens_with_its_layers(viewer_env, tmp_path, monkeypatch):
    scene, _ = write_synthetic_scene(tmp_path / "elsewhere" / "luding.tif", *SCENE_SHAPE, seed=1)
    predict_scene("demo", scene, tmp_path / "data" / "maps", progress=False)
    monkeypatch.setattr(sys, "argv", ["viewer.py", "--data", str(tmp_path / "data")])
    app = open_results(run_app())
    assert app.sidebar.selectbox[1].options == ["maps/luding_summary.json"]
    assert not errors(app), errors(app)
    assert any("is not in the data folder" in i.value for i in app.sidebar.info)
    captions = [c for image in app.get("image") for c in image.captions]
    assert "Landslide probability (dark 0 → bright 1)" in captions and "Scene" not in captions
    assert "Landslide probability" in map_script(app)
    assert [m.label for m in app.metric] == ["Landslides", "Total area", "Share of mapped area", "Largest"]
    assert any("demonstration model" in w.value for w in app.warning)


def test_an_uploaded_inventory_opens_and_an_empty_one_shows_0_landslides(viewer_env, event_out, tmp_path):
    app = run_app()
    upload(app, ("inventory.gpkg", (event_out / "inventory.gpkg").read_bytes(), "application/geopackage+sqlite3"))
    assert not errors(app) and metric(app, "Landslides") == str(EVENT_COUNT)
    write_inventory(Inventory(None, [], [], 0.0), tmp_path)
    app.sidebar.file_uploader(key="scene_upload").set_value(
        ("empty.gpkg", (tmp_path / "inventory.gpkg").read_bytes(), "application/geopackage+sqlite3"))
    app.run()
    assert not app.exception and not errors(app), errors(app)
    assert metric(app, "Landslides") == "0" and any("0 landslides" in i.value for i in app.info)


def foreign_gpkg(path, layer="landslides", field="name"):
    import numpy as np
    import pyogrio
    import shapely

    pyogrio.raw.write(path, shapely.to_wkb(np.array([shapely.box(0, 0, 1, 1)], dtype=object)),
                      [np.array(["x"], dtype=object)], [field], layer=layer, driver="GPKG",
                      geometry_type="Polygon", crs="EPSG:4326")
    return path


@pytest.mark.parametrize("case, message", [
    ("truncated", "is not a readable GeoPackage"),
    ("roads layer", "has no layer 'landslides' (it has: roads)"),
    ("no columns", "has no column id, area_m2"),
])
def test_a_bad_geopackage_is_one_error_box(viewer_env, event_out, tmp_path, case, message):
    path = tmp_path / "bad.gpkg"
    if case == "truncated":
        path.write_bytes((event_out / "inventory.gpkg").read_bytes())
        truncate(path, keep=0.3)
    else:
        foreign_gpkg(path, layer="roads" if case == "roads layer" else "landslides")
    app = run_app()
    upload(app, ("bad.gpkg", path.read_bytes(), "application/geopackage+sqlite3"))
    assert not app.exception, [e.value for e in app.exception]
    assert len(errors(app)) == 1 and "bad.gpkg" in errors(app)[0] and message in errors(app)[0], errors(app)


def test_a_folder_with_neither_offers_no_result_and_a_foreign_summary_is_one_error(viewer_env, tmp_path, monkeypatch):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "notes.txt").write_text("neither a scene nor a result")
    monkeypatch.setattr(sys, "argv", ["viewer.py", "--data", str(folder)])
    app = run_app()
    assert "Predict results" not in app.sidebar.radio[0].options and not app.exception
    (folder / "other_summary.json").write_text(json.dumps({"outputs": {"prob.tif": "other_prob.tif"}}))
    app = open_results(run_app())
    assert len(errors(app)) == 1 and "other_summary.json has no scene" in errors(app)[0], errors(app)
