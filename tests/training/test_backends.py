"""Training, resume, scene inference and evaluation through the CLI on the current Keras backend.

The `backend` tests here are CI's smoke test under KERAS_BACKEND=tensorflow, jax
and torch: the same config and tf.data pipeline on each.
"""

import json

import keras
import numpy as np
import pytest
import rasterio

from gdcld_zoo.cli import main
from gdcld_zoo.data import write_synthetic_dataset
from gdcld_zoo.errors import GdcldZooError
from gdcld_zoo.training import TrainConfig, train
from gdcld_zoo.training.backends import check_strategy
from gdcld_zoo.training.trainer import build_training_model
from tests.scene.scenes import random_scene, write_scene
from tests.training.helpers import TEST_MODEL

BACKEND = keras.backend.backend()


@pytest.mark.backend
def test_train_resume_map_a_scene_and_evaluate(tmp_path, capsys):
    root = write_synthetic_dataset(tmp_path / "data", n_train=4, n_val=2, tile_size=64, seed=0)
    run_dir = tmp_path / "run"
    flags = ["--data", str(root), "--out", str(run_dir), "--batch-size", "2", "--tile-size", "32", "--warmup-steps", "1"]
    assert main(["train", TEST_MODEL, *flags, "--epochs", "1"]) == 0  # with device augmentation
    assert main(["train", TEST_MODEL, "--out", str(run_dir), "--resume", "--epochs", "2"]) == 0
    state = json.loads((run_dir / "checkpoints/state.json").read_text())
    assert state["epoch"] == 2 and state["iterations"] == 4
    capsys.readouterr()

    scene = write_scene(tmp_path / "scene.tif", random_scene(96, 128))
    assert main(["predict", str(run_dir), str(scene), "--out", str(tmp_path / "maps"), "--tile-size", "64", "--quiet"]) == 0
    with rasterio.open(tmp_path / "maps/scene_mask.tif") as mask:
        assert mask.shape == (96, 128) and set(np.unique(mask.read(1))) <= {0, 1}
    assert main(["evaluate", str(run_dir), "--data", str(root), "--json", str(tmp_path / "eval.json")]) == 0
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["tiles"] == 2 and 0.0 <= report["overall"]["miou"] <= 1.0


@pytest.mark.backend
def test_augmentation_draws_new_randomness_every_step(tmp_path, datasets):
    """On JAX the seeds go through the stateless step's state; a step that
    replayed them would leave the seed generator where it started."""
    model = build_training_model(TrainConfig(TEST_MODEL, tile_size=32, augment=True), 4)
    seeds = model.augmentation.generator.state
    before = keras.ops.convert_to_numpy(seeds).copy()
    model.fit(datasets[0], epochs=1, verbose=0)
    after = keras.ops.convert_to_numpy(seeds)
    assert not np.array_equal(before, after)
    model.fit(datasets[0], epochs=1, verbose=0)
    assert not np.array_equal(after, keras.ops.convert_to_numpy(seeds))


@pytest.mark.backend
@pytest.mark.skipif(BACKEND == "tensorflow", reason="tf.distribute strategies run on TensorFlow")
def test_tf_distribute_strategy_is_refused_in_one_line(tmp_path, datasets):
    with pytest.raises(GdcldZooError, match="TensorFlow only") as error:
        train(TrainConfig(TEST_MODEL, out=str(tmp_path / "run"), strategy="mirrored"), *datasets, verbose=0)
    assert "\n" not in str(error.value) and not (tmp_path / "run").exists()
    check_strategy("default")
