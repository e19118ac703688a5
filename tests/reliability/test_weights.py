"""`gdcld-zoo weights` and weight loading with a bad registry, junk, truncated and unsafe files."""

import json
import os
import subprocess
import sys

import keras
import pytest

from gdcld_zoo.cli import main
from gdcld_zoo.registry import build_model
from gdcld_zoo.weights import sources
from tests.reliability.bad_files import assert_one_line_error, truncate


def run(capsys, *argv):
    code = main([*map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def weights_file(tmp_path):
    path = tmp_path / "tiny.weights.h5"
    build_model("unet_tiny", input_shape=(None, None, 3)).save_weights(path)
    return path


def keras_file(path, lambda_layer=False):
    inputs = keras.Input((None, None, 3))
    layer = keras.layers.Lambda(lambda x: x[..., :1] * 2) if lambda_layer else keras.layers.Conv2D(1, 1)
    keras.Model(inputs, layer(inputs)).save(path)
    return path


def test_registry_variable_naming_a_folder_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(sources.ENV_REGISTRY, str(tmp_path))
    code, _, err = run(capsys, "weights", "list")
    assert_one_line_error(code, err, "gdcld-zoo weights list: error:", str(tmp_path), "is a folder")


def test_registry_that_is_not_text_is_one_line(tmp_path, monkeypatch, capsys):
    registry = tmp_path / "registry.json"
    registry.write_bytes(b"\xff\xfe\x00garbage")
    monkeypatch.setenv(sources.ENV_REGISTRY, str(registry))
    code, _, err = run(capsys, "weights", "list")
    assert_one_line_error(code, err, str(registry), "not valid JSON")


@pytest.mark.parametrize("damage", ["junk", "truncated"])
def test_weights_add_refuses_a_file_that_does_not_load(weights_file, capsys, damage):
    if damage == "junk":
        weights_file.write_text("these are not weights")
    else:
        truncate(weights_file, keep=0.5)
    code, _, err = run(capsys, "weights", "add", weights_file, "--tag", "unet_tiny.bad", "--model", "unet_tiny")
    assert_one_line_error(code, err, "gdcld-zoo weights add: error:", str(weights_file), "cannot read the weights")
    assert not sources.user_registry_path().exists()


@pytest.mark.parametrize("damage", ["truncated", "text"])
def test_a_damaged_keras_file_says_what_it_is_not_file_not_found(tmp_path, capsys, recwarn, damage):
    path = keras_file(tmp_path / "model.keras")
    if damage == "truncated":
        truncate(path, keep=0.5)
    else:
        path.write_text("<html>404</html>")
    code, _, err = run(capsys, "export", path, tmp_path / "model.onnx")
    line = assert_one_line_error(code, err, str(path), "not a .keras archive")
    assert "File not found" not in line
    assert not [w for w in recwarn if "No weight record" in str(w.message)]  # one message, the error
    assert not (tmp_path / "model.onnx").exists()


def test_a_keras_file_with_a_lambda_layer_is_refused_as_arbitrary_code(tmp_path, capsys):
    path = keras_file(tmp_path / "lambda.keras", lambda_layer=True)
    code, _, err = run(capsys, "export", path, tmp_path / "model.onnx")
    line = assert_one_line_error(code, err, str(path), "contains arbitrary code", "gdcld_zoo will not run it")
    assert "safe_mode" not in line


ADD_MANY = """
import sys
from gdcld_zoo.weights.record import WeightRecord
from gdcld_zoo.weights.sources import add_user_record
for i in range(25):
    add_user_record(WeightRecord(tag=f"unet_tiny.p{sys.argv[1]}-{i}", model="unet_tiny", file="/x.weights.h5",
                                 sha256="0" * 64))
"""


def test_two_processes_adding_weights_at_once_lose_no_record(tmp_path):
    env = {**os.environ, sources.ENV_HOME: str(tmp_path / "home")}
    adders = [subprocess.Popen([sys.executable, "-c", ADD_MANY, str(n)], env=env) for n in range(2)]
    assert [p.wait(timeout=120) for p in adders] == [0, 0]
    registry = json.loads((tmp_path / "home" / "registry.json").read_text())
    assert len(registry["weights"]) == 50
