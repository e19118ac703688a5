"""The viewer with broken files: truncated rasters in the data folder, rejected uploads, size limits."""

import sys

import numpy as np
import pytest

from gdcld_zoo.scene import inputs
from tests.apps.test_viewer import errors, fresh_caches, run_app, scene_bytes, upload  # noqa: F401 (fixture)
from tests.reliability.bad_files import rewrite_pixels, truncate
from tests.scene.scenes import random_scene, write_scene


@pytest.fixture
def broken_folder(tmp_path, monkeypatch):
    """A data folder holding one scene cut to a third of its bytes, chosen in the sidebar."""
    folder = tmp_path / "data"
    folder.mkdir()
    truncate(write_scene(folder / "broken.tif", random_scene(256, 256), tiled=True), keep=0.3)
    monkeypatch.setattr(sys, "argv", ["viewer.py", "--data", str(folder)])
    return folder


def test_truncated_raster_in_the_data_folder_is_a_message_not_an_exception(viewer_env, broken_folder):
    app = run_app()
    app.sidebar.radio[0].set_value("Data folder").run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("broken.tif" in e and "truncated" in e for e in errors(app)), errors(app)


def test_truncated_raster_without_weights_is_a_message_not_an_exception(viewer_env, broken_folder, tmp_path,
                                                                       monkeypatch):
    monkeypatch.setenv("GDCLD_ZOO_REGISTRY", str(tmp_path / "empty.json"))
    (viewer_env["shipped"] / "registry.json").write_text('{"weights": []}')
    app = run_app()
    app.sidebar.radio[0].set_value("Data folder").run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("broken.tif" in e and "truncated" in e for e in errors(app)), errors(app)


def test_rejected_upload_is_not_kept(viewer_env):
    app = run_app()
    upload(app, ("notes.tif", b"these are not pixels", "image/tiff"))
    assert any("not a raster" in e for e in errors(app)), errors(app)
    uploads = viewer_env["home"] / "viewer" / "uploads"
    assert not uploads.exists() or not [p for p in uploads.rglob("*") if p.is_file()]


def test_size_limit_message_tells_size_and_limit_apart(tmp_path):
    limit = 200 * 1024**2
    with pytest.raises(inputs.SceneError) as info:
        inputs.save_upload("big.tif", b"\0" * (limit + 1), tmp_path, max_bytes=limit)
    message = str(info.value)
    assert f"{limit + 1:,} bytes is above the upload limit of {limit:,} bytes (200 MB)" in message


def test_float_label_is_refused_with_its_values_not_scored(viewer_env, tmp_path):
    scene, label = scene_bytes(tmp_path)
    path = tmp_path / "float_label.tif"
    path.write_bytes(label)
    rewrite_pixels(path, lambda a: np.where(a == 1, 0.7, 0.0).astype("float32"))
    app = run_app()
    upload(app, ("scene.tif", scene, "image/tiff"), ("label.tif", path.read_bytes(), "image/tiff"))
    assert not app.exception, [e.value for e in app.exception]
    assert any("0.7" in e and "labels must be 0 background, 1 landslide" in e for e in errors(app)), errors(app)
    assert not app.table  # no metrics from a label read as all zeros
