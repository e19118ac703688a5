import json

import numpy as np
import pytest

from gdcld_zoo.cli import main
from gdcld_zoo.registry import build_model
from gdcld_zoo.scene import KerasEngine, make_engine
from gdcld_zoo.weights import load_pretrained, write_run_record
from gdcld_zoo.weights import sources
from tests.scene.scenes import random_scene, write_scene


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv(sources.ENV_HOME, str(tmp_path / "home"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A training run folder with tiny U-Net weights, 64-pixel tiles and threshold 0.4."""
    run = tmp_path_factory.mktemp("run")
    model = build_model("unet_tiny", input_shape=(None, None, 3))
    weights = run / "best.weights.h5"
    model.save_weights(weights)
    write_run_record(run, weights, "unet_tiny", tag="unet_tiny.test", tile_size=64, threshold=0.4)
    return run


def test_keras_engine_takes_preprocessing_threshold_and_tile_size_from_the_record(run_dir):
    engine = make_engine(str(run_dir))
    assert isinstance(engine, KerasEngine)
    assert (engine.threshold, engine.tile_size, engine.tag) == (0.4, 64, "unet_tiny.test")
    raw = random_scene(64, 64).transpose(1, 2, 0)[None]
    model = load_pretrained(run_dir)
    logits = np.asarray(model(engine.preprocessing.apply(raw), training=False))
    np.testing.assert_allclose(engine.predict(raw), 1 / (1 + np.exp(-logits[..., 0])), atol=1e-5)


def test_predict_command_writes_all_outputs(run_dir, tmp_path, capsys):
    scene = write_scene(tmp_path / "scene.tif", random_scene(100, 150))
    out = tmp_path / "out"
    code = main(["predict", str(run_dir), str(scene), "--out", str(out), "--quiet", "--overlap", "16"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "inventory.geojson", "inventory.gpkg", "inventory.json",
        "scene_landslides.geojson", "scene_mask.tif", "scene_prob.tif", "scene_summary.json"]
    summary = json.loads((out / "scene_summary.json").read_text())
    assert summary["model_tag"] == "unet_tiny.test" and summary["threshold"] == 0.4 and summary["tile_size"] == 64
    assert "landslides" in capsys.readouterr().out


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_text("not a raster"), "not a raster"),
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: write_scene(p, random_scene(64, 64, bands=4)), "--bands"),
    (lambda p: write_scene(p, np.zeros((3, 40, 40), "uint8"), nodata=0), "no valid pixels"),
    (lambda p: None, "no such file"),
])
def test_bad_scenes_give_one_line_and_a_non_zero_exit(run_dir, tmp_path, capsys, make, message):
    scene = tmp_path / "bad.tif"
    make(scene)
    code = main(["predict", str(run_dir), str(scene), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("gdcld-zoo predict: error:") and message in err and "\n" not in err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_unknown_weights_are_a_clear_error(tmp_path, capsys):
    scene = write_scene(tmp_path / "scene.tif", random_scene(64, 64))
    assert main(["predict", "no_such_weights", str(scene), "--out", str(tmp_path / "out")]) == 2
    assert "no_such_weights" in capsys.readouterr().err


def test_one_bad_scene_among_several_is_reported_and_the_rest_are_mapped(run_dir, tmp_path, capsys):
    good = write_scene(tmp_path / "good.tif", random_scene(64, 64))
    bad = tmp_path / "bad.tif"
    bad.write_text("not a raster")
    out = tmp_path / "out"
    assert main(["predict", str(run_dir), str(bad), str(good), "--out", str(out), "--quiet"]) == 2
    assert "bad.tif: not a raster" in capsys.readouterr().err
    assert (out / "good_summary.json").is_file() and not (out / "bad_summary.json").exists()


def test_every_input_problem_is_reported_at_once_before_the_model_loads(run_dir, tmp_path, capsys, monkeypatch):
    import gdcld_zoo.scene.predictor

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the inputs were checked")

    monkeypatch.setattr(gdcld_zoo.scene.predictor, "make_engine", no_model)
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    uint16 = write_scene(tmp_path / "uint16.tif", random_scene(64, 64, dtype="uint16"))
    code = main(["predict", str(run_dir), str(tmp_path / "missing.tif"), str(text), str(uint16),
                 "--tile-size", "100", "--out", str(tmp_path / "out")])
    lines = capsys.readouterr().err.splitlines()
    assert code == 2 and len(lines) == 4 and all(line.startswith("gdcld-zoo predict: error: ") for line in lines)
    for line, message in zip(lines, ["multiple of 32, got 100", "missing.tif: no such file", "notes.tif: not a raster",
                                     "uint16.tif: the scene is uint16 but the model expects uint8"]):
        assert message in line
    assert not (tmp_path / "out").exists()


def test_predict_prints_one_line_per_scene_then_the_event_summary(run_dir, tmp_path, capsys):
    scene = write_scene(tmp_path / "scene.tif", random_scene(64, 64))
    assert main(["predict", str(run_dir), str(scene), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    results = [line for line in lines if " landslides, " in line and not line.startswith("Event: ")]
    assert captured.err == "" and len(results) == 1 and results[0].startswith("scene: ")
    assert lines[lines.index(results[0]) + 1].startswith("Event: ") and lines[-1].startswith("Inventory: ")
