"""The bundled `demo` weights and `gdcld_zoo.demo.run_demo`."""

import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

import gdcld_zoo
from gdcld_zoo.data.synthetic import write_geotiff
from gdcld_zoo.demo import mask_metrics, run_demo
from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.weights import get_weight_record, get_weights, sources
from gdcld_zoo.weights.download import sha256_file

REPO_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"


@pytest.fixture(autouse=True)
def offline_fresh_home(tmp_path, monkeypatch):
    """A fresh machine: empty cache and user registry, no extra registries, no network."""
    monkeypatch.setenv(sources.ENV_HOME, str(tmp_path / "home"))
    monkeypatch.delenv(sources.ENV_REGISTRY, raising=False)
    monkeypatch.setenv(sources.ENV_OFFLINE, "1")


def test_shipped_demo_record_describes_a_small_synthetic_model():
    record = get_weights("demo")
    assert Path(record.origin) == REPO_WEIGHTS / "registry.json"
    assert record.model in gdcld_zoo.list_models()
    assert record.license == "Apache-2.0"
    assert "DEMONSTRATION" in record.description and "NOT a landslide detector" in record.description
    assert "gdcld-zoo train" in record.description
    assert record.url is None and not record.default
    (metrics,) = record.metrics
    assert (metrics.dataset, metrics.split) == ("synthetic", "val")
    assert metrics.values["miou"] >= 0.7 and metrics.values["f1"] >= 0.7
    assert record.preprocessing.dtype == "uint8" and record.preprocessing.band_names == ("red", "green", "blue")
    assert record.tile_size == 128 and record.threshold == 0.5
    path = REPO_WEIGHTS / record.file
    assert path.stat().st_size == record.size < 5 * 2**20
    assert sha256_file(path) == record.sha256


def test_load_pretrained_demo_offline_maps_a_synthetic_tile():
    from gdcld_zoo.data.synthetic import synthetic_scene

    model = gdcld_zoo.load_pretrained("demo")
    assert get_weight_record(model).tag == "demo"
    image, mask = synthetic_scene(128, 128, seed=7, n_scars=3)
    prob = gdcld_zoo.predict_tile(model, np.moveaxis(image, 0, -1))
    predicted = prob[..., 0] >= 0.5
    intersection = np.logical_and(predicted, mask == 1).sum()
    union = np.logical_or(predicted, mask == 1).sum()
    assert intersection / union > 0.7


def test_run_demo_writes_maps_and_scores_them(tmp_path):
    result = run_demo(tmp_path / "out", size=256)
    for path in (result.scene, result.label, *result.outputs.values()):
        assert Path(path).is_file()
    summary = json.loads(Path(result.outputs["summary.json"]).read_text())
    assert summary["model_tag"] == "demo" and summary["n_landslides"] >= 1
    assert summary["landslide_area_km2"] > 0
    assert result.metrics["f1"] > 0.8 and result.metrics["miou"] > 0.8


def test_run_demo_refuses_tiny_scenes(tmp_path):
    with pytest.raises(InvalidInputError, match="at least 64"):
        run_demo(tmp_path, size=16)


def test_mask_metrics_leave_out_nodata(tmp_path):
    transform = Affine(1.0, 0.0, 500000.0, 0.0, -1.0, 3300000.0)
    mask = np.array([[1, 1, 0, 255], [0, 0, 1, 255]], "uint8")
    label = np.array([[1, 0, 0, 1], [0, 1, 1, 1]], "uint8")
    write_geotiff(tmp_path / "mask.tif", mask, transform)
    write_geotiff(tmp_path / "label.tif", label, transform)
    metrics = mask_metrics(tmp_path / "mask.tif", tmp_path / "label.tif")
    assert metrics["confusion_matrix"] == [[2, 1], [1, 2]]
    assert metrics["precision"] == pytest.approx(2 / 3) and metrics["recall"] == pytest.approx(2 / 3)


def test_mask_metrics_refuse_other_grids(tmp_path):
    transform = Affine(1.0, 0.0, 500000.0, 0.0, -1.0, 3300000.0)
    write_geotiff(tmp_path / "mask.tif", np.zeros((4, 4), "uint8"), transform)
    write_geotiff(tmp_path / "label.tif", np.zeros((4, 5), "uint8"), transform)
    with pytest.raises(InvalidInputError, match="label of its scene"):
        mask_metrics(tmp_path / "mask.tif", tmp_path / "label.tif")
