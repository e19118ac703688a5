"""The Streamlit viewer (`apps/viewer.py`) run headless with `streamlit.testing.v1.AppTest`.

A tiny segformer registered as `demo` and 128x160 scenes keep every run to seconds.
"""

import json
import re
import sys

import numpy as np
import pytest

from gdcld_zoo.data.synthetic import write_synthetic_scene
from gdcld_zoo.scene import engines, inputs, overview
from tests.apps.conftest import SCENE_SHAPE, VIEWER, write_registry
from tests.extras import require
from tests.scene.scenes import random_scene, write_scene

st = require("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

TIMEOUT_S = 120
METRIC_COLUMNS = ["Precision (%)", "Recall (%)", "F1 (%)", "IoU (%)", "mIoU (%)"]
DOWNLOADS = ["Mask GeoTIFF", "Probability GeoTIFF", "Polygons GeoJSON", "Summary JSON"]


@pytest.fixture(autouse=True)
def fresh_caches(monkeypatch):
    """Streamlit's data cache is per process: start every test without it, and without arguments.

    Engines (`st.cache_resource`) are kept: they are keyed by tag and file hash,
    and every test uses the same tiny weights.
    """
    st.cache_data.clear()
    monkeypatch.setattr(sys, "argv", ["viewer.py"])
    yield
    st.cache_data.clear()


@pytest.fixture
def engine_calls(monkeypatch):
    """Counts batches the Keras engine predicts."""
    calls = []
    predict = engines.KerasEngine.predict

    def counting(self, raw):
        calls.append(len(raw))
        return predict(self, raw)

    monkeypatch.setattr(engines.KerasEngine, "predict", counting)
    return calls


def run_app():
    return AppTest.from_file(str(VIEWER), default_timeout=TIMEOUT_S).run()


def errors(app):
    return [e.value for e in app.error]


def assert_results(app, with_label=True):
    """No exception or error; the four pictures (three without label), statistics and downloads."""
    assert not app.exception, [e.value for e in app.exception]
    assert not errors(app)
    captions = [c for image in app.get("image") for c in image.captions]
    assert "Scene" in captions and "Landslide probability (dark 0 → bright 1)" in captions
    assert any(c.startswith("Mask at threshold") for c in captions)
    assert ("Errors against the label" in captions) == with_label
    assert [m.label for m in app.metric] == ["Landslides", "Total area", "Share of mapped area", "Largest"]
    assert [b.label for b in app.get("download_button")] == DOWNLOADS
    if with_label:
        table = app.table[0].value
        assert list(table.columns) == METRIC_COLUMNS
        assert ((table.to_numpy() >= 0) & (table.to_numpy() <= 100)).all()
    else:
        assert not app.table


def metric(app, label):
    return next(m.value for m in app.metric if m.label == label)


def test_default_flow_shows_demo_maps_metrics_and_downloads(viewer_env, engine_calls):
    app = run_app()
    assert_results(app)
    assert app.sidebar.selectbox[0].value == "demo"
    assert app.sidebar.radio[0].value == "Demo scene"
    assert "128 x 160 px" in "".join(c.value for c in app.caption) or "160 x 128 px" in "".join(
        c.value for c in app.caption)
    assert engine_calls, "the model ran"


def test_rethresholding_does_not_run_the_model_again(viewer_env, engine_calls):
    app = run_app()
    calls = len(engine_calls)
    app.sidebar.slider(key="threshold_demo").set_value(0.0).run()
    assert_results(app)
    assert len(engine_calls) == calls
    assert app.table[0].value["Recall (%)"].iloc[0] == 100.0  # everything is a landslide at threshold 0
    assert int(metric(app, "Landslides")) == 1  # one polygon covering the scene
    app.sidebar.slider(key="threshold_demo").set_value(1.0).run()
    assert len(engine_calls) == calls
    assert app.table[0].value["Recall (%)"].iloc[0] == 0.0
    assert metric(app, "Landslides") == "0"
    # A setting the model depends on runs it again.
    app.sidebar.checkbox[0].check().run()
    assert_results(app)
    assert len(engine_calls) > calls


def test_zoom_window_shows_a_locator(viewer_env):
    app = run_app()
    app.sidebar.select_slider[0].set_value(2).run()
    assert_results(app)
    assert [c for image in app.sidebar.get("image") for c in image.captions] == ["Zoom window"]
    assert any("window rows" in c.value for c in app.caption)


def scene_bytes(tmp_path, shape=SCENE_SHAPE, seed=3):
    scene, label = write_synthetic_scene(tmp_path / f"upload_{seed}.tif", *shape, seed=seed)
    return scene.read_bytes(), label.read_bytes()


def upload(app, scene=None, label=None):
    app.sidebar.radio[0].set_value("Upload").run()
    if scene is not None:
        app.sidebar.file_uploader(key="scene_upload").set_value(scene)
    if label is not None:
        app.sidebar.file_uploader(key="label_upload").set_value(label)
    return app.run()


def test_upload_scene_and_label(viewer_env, tmp_path):
    scene, label = scene_bytes(tmp_path)
    app = run_app()
    upload(app, ("scene.tif", scene, "image/tiff"))
    assert_results(app, with_label=False)
    app.sidebar.file_uploader(key="label_upload").set_value(("scene_label.tif", label, "image/tiff"))
    app.run()
    assert_results(app, with_label=True)


def test_upload_that_is_not_a_raster_shows_an_error(viewer_env):
    app = run_app()
    upload(app, ("notes.tif", b"these are not pixels", "image/tiff"))
    assert not app.exception
    assert any("notes.tif" in e and "not a raster" in e for e in errors(app)), errors(app)
    app.sidebar.radio[0].set_value("Demo scene").run()  # the app keeps working
    assert_results(app)


def test_upload_above_the_size_limit_shows_an_error(viewer_env, tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "MAX_UPLOAD_BYTES", 1024)
    scene, _ = scene_bytes(tmp_path)
    app = run_app()
    upload(app, ("big.tif", scene, "image/tiff"))
    assert not app.exception
    assert any("above the upload limit" in e for e in errors(app)), errors(app)


def test_four_band_scene_needs_a_band_choice(viewer_env, tmp_path):
    path = write_scene(tmp_path / "bgrn.tif", random_scene(*SCENE_SHAPE, bands=4))
    app = run_app()
    upload(app, ("bgrn.tif", path.read_bytes(), "image/tiff"))
    assert not app.exception
    assert any("4 bands" in e and "Enter the bands in the sidebar" in e for e in errors(app)), errors(app)
    assert [c for image in app.get("image") for c in image.captions] == ["Scene"]
    app.sidebar.text_input[0].set_value("3,2,1").run()
    assert_results(app, with_label=False)
    assert any("bands [3, 2, 1] (--bands)" in c.value for c in app.caption)


def test_label_of_another_size_shows_an_error_and_the_map(viewer_env, tmp_path):
    scene, _ = scene_bytes(tmp_path)
    _, small_label = scene_bytes(tmp_path, shape=(64, 96), seed=4)
    app = run_app()
    upload(app, ("scene.tif", scene, "image/tiff"), ("label.tif", small_label, "image/tiff"))
    assert not app.exception
    assert any("96x64 px but the scene is 160x128 px" in e for e in errors(app)), errors(app)
    assert [b.label for b in app.get("download_button")] == DOWNLOADS


@pytest.fixture
def data_folder(tmp_path):
    folder = tmp_path / "data"
    (folder / "event").mkdir(parents=True)
    write_synthetic_scene(folder / "event" / "luding.tif", *SCENE_SHAPE, seed=1)
    write_scene(folder / "plain.tif", random_scene(*SCENE_SHAPE))
    (folder / "readme.txt").write_text("not a scene")
    outside = write_scene(tmp_path / "secret.tif", random_scene(*SCENE_SHAPE))
    (folder / "link.tif").symlink_to(outside)
    return folder


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_data_folder_lists_only_its_own_rasters_and_pairs_labels(viewer_env, data_folder, monkeypatch, how):
    if how == "argument":
        monkeypatch.setattr(sys, "argv", ["viewer.py", "--data", str(data_folder)])
    else:
        monkeypatch.setenv("GDCLD_ZOO_VIEWER_DATA", str(data_folder))
    app = run_app()
    app.sidebar.radio[0].set_value("Data folder").run()
    files = app.sidebar.selectbox[1]
    assert files.options == ["event/luding.tif", "plain.tif"]  # no label, text file or link leading out
    files.set_value("event/luding.tif").run()
    assert app.sidebar.selectbox[2].value == "event/luding_label.tif"
    assert_results(app, with_label=True)
    app.sidebar.selectbox[1].set_value("plain.tif").run()
    assert app.sidebar.selectbox[2].value == "(no label)"
    assert_results(app, with_label=False)


def test_data_folder_refuses_paths_outside_it(data_folder, tmp_path):
    folder = inputs.DataFolder(data_folder)
    assert folder.resolve("event/luding.tif") == (data_folder / "event" / "luding.tif").resolve()
    for name in ("../secret.tif", str(tmp_path / "secret.tif"), "link.tif", "event/../../secret.tif"):
        with pytest.raises(inputs.SceneError, match="outside the data folder"):
            folder.resolve(name)
    with pytest.raises(inputs.SceneError, match="not a file in the data folder"):
        folder.resolve("event")


def test_missing_data_folder_is_reported_and_the_demo_still_runs(viewer_env, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["viewer.py", "--data", str(tmp_path / "nowhere")])
    app = run_app()
    assert any("does not exist" in e.value for e in app.sidebar.error)
    assert [r for r in app.sidebar.radio[0].options] == ["Demo scene", "Upload"]
    assert not app.exception


def test_without_weights_the_page_says_what_to_do(viewer_env, tmp_path, monkeypatch):
    monkeypatch.setenv("GDCLD_ZOO_REGISTRY", str(tmp_path / "empty.json"))
    app = run_app()
    assert not app.exception
    assert any("No weights are registered" in w.value for w in app.warning)
    assert [c for image in app.get("image") for c in image.captions] == ["Scene"]


def test_other_weights_are_offered_and_demo_is_the_default(viewer_env, tiny_weights, tmp_path, monkeypatch):
    other = write_registry(tmp_path / "other.json", tiny_weights, tag="segformer_tiny.mine", threshold=0.3)
    monkeypatch.setenv("GDCLD_ZOO_REGISTRY", f"{viewer_env['tmp'] / 'registry.json'}:{other}")
    app = run_app()
    weights = app.sidebar.selectbox[0]
    assert weights.options == ["demo (segformer_tiny)", "segformer_tiny.mine (segformer_tiny)"]
    assert weights.value == "demo"
    weights.set_value("segformer_tiny.mine").run()
    assert_results(app)
    assert app.sidebar.slider(key="threshold_segformer_tiny.mine").value == 0.3
    assert any("segformer_tiny.mine" in c.value for c in app.caption)


def test_overview_is_never_the_full_resolution_scene(viewer_env, monkeypatch):
    shapes = []
    read_image = overview.read_image

    def spy(*args, **kwargs):
        image = read_image(*args, **kwargs)
        shapes.append(image.shape)
        return image

    monkeypatch.setattr(overview, "MAX_SIDE", 64)
    monkeypatch.setattr(overview, "read_image", spy)
    app = run_app()
    assert_results(app)
    assert shapes and all(max(s[:2]) <= 64 for s in shapes)
    assert np.prod(shapes[0][:2]) < np.prod(SCENE_SHAPE)


@pytest.mark.filterwarnings("ignore:The scene has no CRS")
def test_scene_without_crs_reports_areas_in_pixels(viewer_env, tmp_path):
    path = write_scene(tmp_path / "plain.tif", random_scene(*SCENE_SHAPE), crs=None)
    app = run_app()
    upload(app, ("plain.tif", path.read_bytes(), "image/tiff"))
    assert_results(app, with_label=False)
    assert any("no CRS" in c.value for c in app.caption)
    assert metric(app, "Share of mapped area") == "n/a (no CRS)"
    assert metric(app, "Total area").endswith(" px")


def test_progress_bar_counts_tiles(viewer_env, monkeypatch):
    reported = []
    progress = inputs.ProgressEngine

    class Recording(progress):
        def predict(self, raw):
            probs = super().predict(raw)
            reported.append(self.tiles_done)
            return probs

    monkeypatch.setattr(inputs, "ProgressEngine", Recording)
    app = run_app()
    assert_results(app)
    assert reported and reported == sorted(reported)
    app.sidebar.checkbox[0].check().run()  # TTA: still counted in tiles, not in 8x model calls
    assert_results(app)
    first = reported[: len(reported) // 2]
    assert reported[len(first):][-1] == first[-1]


def map_components(app):
    """The streamlit-folium maps on the page: (component name, its JSON arguments)."""
    found = []

    def walk(node):
        for child in getattr(node, "children", {}).values():
            if getattr(child, "type", None) == "component_instance":
                found.append((child.proto.component_name, json.loads(child.proto.json_args)))
            walk(child)

    walk(app.main)
    return found


def test_the_map_tab_shows_the_layers_polygons_and_the_demo_note(viewer_env):
    app = run_app()
    assert_results(app)
    assert [t.label for t in app.tabs] == ["Map", "Static overview"]
    (name, args), = map_components(app)
    assert "streamlit_folium" in name
    script = args["script"]
    for layer in ("Scene", "Landslide probability", "Mask at threshold 0.50", "Errors against the label"):
        assert layer in script
    assert "mean probability" in script and "L.control.scale" in script
    assert not [u for u in args["js_links"] + args["css_links"] if not u.startswith("data:")], "all assets inline"
    assert any("demonstration model, synthetic training data" in w.value for w in app.warning)


def test_minimum_area_and_readable_units(viewer_env):
    app = run_app()
    assert re.search(r" (m²|ha|km²)$", metric(app, "Total area")) and re.search(r" (m²|ha|km²)$", metric(app, "Largest"))
    app.sidebar.number_input(key="min_area").set_value(1e9).run()
    assert metric(app, "Landslides") == "0" and not app.exception
    assert [c.value for c in app.caption if "No landslide at this threshold and minimum area" in c.value]


def test_predict_results_in_the_data_folder_open_without_the_model(viewer_env, tmp_path, monkeypatch, engine_calls):
    from gdcld_zoo.cli import main

    folder = tmp_path / "data"
    scene, _ = write_synthetic_scene(folder / "luding.tif", *SCENE_SHAPE, seed=1)
    assert main(["predict", "demo", str(scene), "--out", str(folder / "maps"), "--quiet"]) == 0
    monkeypatch.setattr(sys, "argv", ["viewer.py", "--data", str(folder)])
    app = run_app()  # the demo scene first
    calls = len(engine_calls)
    app.sidebar.radio[0].set_value("Predict results").run()
    assert app.sidebar.selectbox[1].options == ["maps/inventory.gpkg", "maps/luding_summary.json"]
    assert app.sidebar.selectbox[1].value == "maps/inventory.gpkg"  # predict writes an event: its inventory first
    written = json.loads((folder / "maps" / "inventory.json").read_text())["landslide_count"]
    assert written > 0 and metric(app, "Landslides") == str(written) and not errors(app)
    app.sidebar.selectbox[2].set_value("maps/luding_summary.json").run()  # the event's one scene, in the folder
    assert_results(app)
    assert len(engine_calls) == calls, "the viewer ran the model on a finished result"
    assert map_components(app)
