"""Callback pieces that need no training run."""

import json

import keras
import numpy as np
import pytest

from gdcld_zoo.preprocessing import Preprocessing
from gdcld_zoo.training.callbacks import NaNGuard, PredictionPreview, is_chief, save_weights_atomic


def test_is_chief_from_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert is_chief()
    cluster = {"worker": ["a:1", "b:1"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert is_chief()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert not is_chief()
    with_chief = {**cluster, "chief": ["c:1"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": with_chief, "task": {"type": "worker", "index": 0}}))
    assert not is_chief()


def test_atomic_save_leaves_only_the_target(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    target = tmp_path / "ckpt" / "best.weights.h5"
    save_weights_atomic(model, target)
    save_weights_atomic(model, target)
    assert [p.name for p in target.parent.iterdir()] == ["best.weights.h5"]

    class Broken(keras.Model):
        def save_weights(self, path, overwrite=True):
            open(path, "wb").write(b"half")
            raise OSError("disk full")

    before = target.read_bytes()
    with pytest.raises(OSError):
        save_weights_atomic(Broken(), target)
    assert target.read_bytes() == before and len(list(target.parent.iterdir())) == 1


def test_nan_guard_records_position():
    guard = NaNGuard()
    model = keras.Sequential([keras.layers.Dense(1)])
    model.stop_training = False
    guard.set_model(model)
    guard.on_epoch_begin(2)
    guard.on_train_batch_end(0, {"loss": 0.5})
    assert guard.diverged is None and not guard.model.stop_training
    guard.on_train_batch_end(1, {"loss": float("inf")})
    assert guard.diverged == {"epoch": 3, "batch": 2, "loss": float("inf")} and guard.model.stop_training


def test_preview_grid_layout():
    pre = Preprocessing()
    raw = np.zeros((2, 8, 8, 3), "float32")
    raw[..., 0] = 1.0  # pure red in [0, 1]
    images = (raw - np.array(pre.mean, "float32")) / np.array(pre.std, "float32")
    masks = np.zeros((2, 8, 8, 1), "uint8")
    masks[:, :2] = 255
    masks[:, 4:, 4:] = 1
    preview = PredictionPreview("unused", images, masks, pre, threshold=0.5)
    probabilities = np.zeros((2, 8, 8), "float32")
    probabilities[:, 2:6, 2:6] = 0.9
    grid = preview.render(probabilities)
    assert grid.shape == (16, 24, 3) and grid.dtype == np.uint8
    np.testing.assert_array_equal(grid[3, 3], (255, 0, 0))  # image column: red
    assert tuple(grid[0, 8]) == (128, 128, 128) and tuple(grid[7, 15]) == (255, 255, 255)
    assert tuple(grid[2, 18]) == (255, 0, 0)  # outline of the thresholded prediction
    assert tuple(grid[3, 19]) == (229, 229, 229)  # inside: probability 0.9
