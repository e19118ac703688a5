"""The training engine on a tiny SegFormer: learning, resume, NaN handling, run folder."""

import csv
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from gdcld_zoo.errors import GdcldZooError, UnknownNameError
from gdcld_zoo.training import ResumeError, TrainConfig, TrainingDivergedError, train
from gdcld_zoo.training.trainer import build_training_model
from gdcld_zoo.weights import load_pretrained, read_run_record
from gdcld_zoo.weights.download import sha256_file

from tests.training.helpers import TEST_MODEL, squares


def tiny_config(tmp_path, **overrides):
    values = dict(
        model=TEST_MODEL,
        out=str(tmp_path / "run"),
        tile_size=32,
        batch_size=4,
        epochs=3,
        learning_rate=3e-3,
        warmup_steps=2,
        augment=False,
        preview_tiles=2,
    )
    values.update(overrides)
    return TrainConfig(**values)


def read_log(run_dir):
    with open(run_dir / "log.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_segformer_tiny_learns(tmp_path, datasets):
    run_dir = train(tiny_config(tmp_path, model="segformer_tiny", epochs=4), *datasets, verbose=0)
    losses = [float(r["loss"]) for r in read_log(run_dir)]
    assert losses[-1] < 0.8 * losses[0], losses
    assert load_pretrained(run_dir)(squares(1)[0]).shape == (1, 32, 32, 1)


def test_training_lowers_loss_and_fills_run_folder(tmp_path, datasets):
    train_data, val_data = datasets
    run_dir = train(tiny_config(tmp_path, epochs=4), train_data, val_data, verbose=0)
    rows = read_log(run_dir)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    losses = [float(r["loss"]) for r in rows]
    assert losses[-1] < 0.8 * losses[0], losses
    assert {"val_miou", "val_f1", "miou", "learning_rate"} <= set(rows[0])
    for name in ("config.json", "checkpoints/best.weights.h5", "checkpoints/last.weights.h5",
                 "checkpoints/state.json", "weight_record.json", "previews/epoch_004.png"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert not list(run_dir.rglob(".*.tmp")) and not list(run_dir.rglob(".*.weights.h5"))

    record = read_run_record(run_dir)
    best_miou = max(float(r["val_miou"]) for r in rows)
    assert record.model == TEST_MODEL and record.tile_size == 32
    assert record.sha256 == sha256_file(run_dir / "checkpoints/best.weights.h5")
    assert record.metrics[0].split == "val"
    assert record.metrics[0].values["miou"] == pytest.approx(best_miou, abs=1e-6)
    state = json.loads((run_dir / "checkpoints/state.json").read_text())
    assert state == {"epoch": 4, "iterations": 16, "best_score": pytest.approx(best_miou, abs=1e-6)}

    model = load_pretrained(run_dir)
    images, _ = squares(2, seed=5)
    assert model(images).shape == (2, 32, 32, 1)


def test_resume_continues_exactly(tmp_path, datasets):
    train_data, val_data = datasets
    full = train(tiny_config(tmp_path / "full"), train_data, val_data, verbose=0)

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt("killed")

    config = tiny_config(tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt):
        train(config, train_data, val_data, callbacks=[Crash()], verbose=0)
    assert json.loads((tmp_path / "cut/run/checkpoints/state.json").read_text())["epoch"] == 2
    with pytest.raises(ResumeError, match="--resume"):
        train(config, train_data, val_data, verbose=0)
    resumed = train(config, train_data, val_data, resume=True, verbose=0)

    assert json.loads((resumed / "checkpoints/state.json").read_text())["iterations"] == 12
    assert [int(r["epoch"]) for r in read_log(resumed)] == [0, 1, 2]
    full_losses = [float(r["loss"]) for r in read_log(full)]
    cut_losses = [float(r["loss"]) for r in read_log(resumed)]
    np.testing.assert_allclose(cut_losses, full_losses, rtol=1e-4)
    a = load_pretrained(full).get_weights()
    b = load_pretrained(resumed).get_weights()
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=1e-5)


def test_resume_without_checkpoint_is_an_error(tmp_path, datasets):
    with pytest.raises(ResumeError, match="does not exist"):
        train(tiny_config(tmp_path), *datasets, resume=True, verbose=0)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, datasets):
    train_data, val_data = datasets
    config = tiny_config(tmp_path, epochs=1, model_config={"activation": "linear"})
    run_dir = train(config, train_data, val_data, verbose=0)
    last = run_dir / "checkpoints/last.weights.h5"
    before = sha256_file(last), sha256_file(run_dir / "checkpoints/best.weights.h5")
    images, masks = squares(8, seed=3)
    images[5] = np.nan
    bad = tf.data.Dataset.from_tensor_slices((images, masks)).batch(4)
    config.epochs = 3
    with pytest.raises(TrainingDivergedError, match=r"epoch 2, batch 2.*last good checkpoint \(epoch 1\)"):
        train(config, bad, val_data, resume=True, verbose=0)
    assert (sha256_file(last), sha256_file(run_dir / "checkpoints/best.weights.h5")) == before
    assert json.loads((run_dir / "checkpoints/state.json").read_text())["epoch"] == 1


def test_paper_recipe_in_optimizer(tmp_path):
    config = TrainConfig(model="segformer_tiny", out=str(tmp_path))
    assert (config.learning_rate, config.beta_1, config.beta_2, config.weight_decay, config.epochs, config.loss) == (
        6e-4, 0.9, 0.999, 0.01, 100, "bce"
    )
    model = build_training_model(TrainConfig(model="segformer_tiny", augment=False, warmup_steps=10), 100)
    optimizer = model.optimizer
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert (optimizer.beta_1, optimizer.beta_2, optimizer.weight_decay) == (0.9, 0.999, 0.01)
    schedule = optimizer._learning_rate
    assert schedule.decay_steps == 100 * 100 and schedule.warmup_steps == 10
    assert float(schedule(9)) == pytest.approx(6e-4)


def test_augmentation_runs_in_train_step_only(tmp_path, datasets):
    calls = []

    class FlipAll(keras.layers.Layer):
        def call(self, data, training=None):
            calls.append(training)
            return {key: keras.ops.flip(value, axis=1) for key, value in data.items()}

    train_data, val_data = datasets
    model = build_training_model(tiny_config(tmp_path, augment=False), 4)
    model.augmentation = FlipAll()
    model.fit(train_data, validation_data=val_data, epochs=1, shuffle=False, verbose=0)
    assert calls and all(flag is True for flag in calls)


@pytest.mark.backend
def test_mixed_precision_run(tmp_path, datasets):
    run_dir = train(tiny_config(tmp_path, epochs=1, mixed_precision=True), *datasets, verbose=0)
    assert keras.config.dtype_policy().name == "float32"
    assert np.isfinite(float(read_log(run_dir)[0]["loss"]))


def test_trains_from_gdcld_folder_with_device_augmentation(tmp_path):
    from gdcld_zoo.data import SegmentationAugmentation, write_synthetic_dataset

    root = write_synthetic_dataset(tmp_path / "data", n_train=4, n_val=2, tile_size=64, seed=0)
    config = tiny_config(tmp_path, data=str(root), epochs=2, augment=True)
    run_dir = train(config, verbose=0)
    rows = read_log(run_dir)
    assert len(rows) == 2 and all(np.isfinite(float(r["val_miou"])) for r in rows)
    assert json.loads((run_dir / "checkpoints/state.json").read_text())["iterations"] == 2
    saved = TrainConfig.load(run_dir)
    assert saved == config and saved.augment
    model = build_training_model(config, 1)
    assert isinstance(model.augmentation, SegmentationAugmentation)


def test_docstring_examples():
    import doctest

    import gdcld_zoo.training.training_model

    result = doctest.testmod(gdcld_zoo.training.training_model)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.distribute runs on TensorFlow")
def test_mirrored_strategy_run(tmp_path, datasets):
    run_dir = train(tiny_config(tmp_path, epochs=1, strategy="mirrored"), *datasets, verbose=0)
    state = json.loads((run_dir / "checkpoints/state.json").read_text())
    assert state["epoch"] == 1 and state["iterations"] == 4
    assert read_run_record(run_dir).metrics[0].values["miou"] == pytest.approx(state["best_score"], abs=1e-6)


def test_early_stopping_on_val_miou(tmp_path, datasets):
    # A vanishing learning rate leaves val_miou flat (no improvement after epoch 1)
    # only without batch norm: its moving statistics drift towards the training
    # batches' whatever the rate, and the drift happened to flip no validation
    # pixel on TensorFlow but raised val_miou every epoch on torch.
    config = tiny_config(tmp_path, epochs=5, learning_rate=1e-12, early_stopping_patience=1,
                         model_config={"batch_norm": False})
    run_dir = train(config, *datasets, verbose=0)
    assert [int(r["epoch"]) for r in read_log(run_dir)] == [0, 1]


def test_unknown_loss_fails_before_any_data_is_read(tmp_path):
    config = TrainConfig(TEST_MODEL, data=str(tmp_path / "no_such_dataset"), out=str(tmp_path / "run"), loss="dise")
    with pytest.raises(UnknownNameError, match="dice"):
        train(config)
    assert not (tmp_path / "run").exists()


def test_encoder_weights_start_the_encoder_and_are_checked_before_data(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from safetensors.numpy import load_file

    mit = transformers.SegformerConfig(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_attention_heads=[1, 2, 1, 2])
    torch.manual_seed(0)
    transformers.SegformerForImageClassification(mit).save_pretrained(tmp_path / "mit")
    config = TrainConfig(model="segformer_tiny", augment=False, encoder_weights=str(tmp_path / "mit"))
    model = build_training_model(config, 10, encoder_weights=config.encoder_weights).model
    kernel = model.get_layer("encoder").get_layer("stage1_patch_embed").kernel
    expected = load_file(tmp_path / "mit" / "model.safetensors")["segformer.encoder.patch_embeddings.0.proj.weight"]
    np.testing.assert_array_equal(np.asarray(kernel), expected.transpose(2, 3, 1, 0))
    absent = tiny_config(tmp_path, model="segformer_tiny", encoder_weights=str(tmp_path / "absent.bin"))
    with pytest.raises(GdcldZooError, match="No encoder checkpoint at .*absent.bin"):
        train(absent)  # no data given: the checkpoint is checked first
