"""Fixtures for the viewer tests: an isolated GDCLD_ZOO_HOME, a registry holding one
tiny `demo` model, a tiny demo scene, and helpers to run the app headless."""

import hashlib
import json
from pathlib import Path

import keras
import pytest

from gdcld_zoo import build_model
from gdcld_zoo.scene import inputs
from gdcld_zoo.weights import sources

VIEWER = Path(__file__).resolve().parents[2] / "apps" / "viewer.py"
SCENE_SHAPE = (128, 160)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """A segformer_tiny `.weights.h5` file (built once per session, seeded: a session fixture is
    made before the per-test seed, so its weights would otherwise depend on the tests run before)."""
    path = tmp_path_factory.mktemp("weights") / "tiny.weights.h5"
    keras.utils.set_random_seed(0)
    build_model("segformer_tiny").save_weights(path)
    return path


def write_registry(path, weights, tag="demo", **fields):
    record = {"tag": tag, "model": "segformer_tiny", "file": str(weights),
              "sha256": hashlib.sha256(Path(weights).read_bytes()).hexdigest(),
              "size": Path(weights).stat().st_size, "tile_size": 128, "threshold": 0.5, **fields}
    path.write_text(json.dumps({"weights": [record]}))
    return path


@pytest.fixture
def viewer_env(tmp_path, monkeypatch, tiny_weights):
    """Empty shipped registry, a GDCLD_ZOO_REGISTRY with a tiny `demo`, a tiny demo scene."""
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "registry.json").write_text('{"weights": []}')
    monkeypatch.setenv(sources.ENV_HOME, str(tmp_path / "home"))
    monkeypatch.setenv(sources.ENV_REGISTRY, str(write_registry(tmp_path / "registry.json", tiny_weights)))
    monkeypatch.setenv(sources.ENV_OFFLINE, "1")
    monkeypatch.delenv("GDCLD_ZOO_VIEWER_DATA", raising=False)
    monkeypatch.setattr(sources, "shipped_weights_dir", lambda: shipped)
    monkeypatch.setattr(inputs, "DEMO_SHAPE", SCENE_SHAPE)
    return {"home": tmp_path / "home", "shipped": shipped, "tmp": tmp_path}
