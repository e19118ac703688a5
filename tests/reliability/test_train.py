"""`gdcld-zoo train`: copied runs, short data, bad tiles, unwritable folders, crashes and damaged checkpoints."""

import csv
import json
import os
import shutil
import stat

import keras
import numpy as np
import pytest
import tensorflow as tf

from gdcld_zoo.cli import main
from gdcld_zoo.data import write_synthetic_dataset
from gdcld_zoo.training import TrainConfig, TrainingDivergedError, train
from gdcld_zoo.weights.download import sha256_file
from tests.reliability.bad_files import (
    assert_one_line_error,
    lock_held_by_another_process,
    rewrite_pixels,
    truncate,
)
from tests.training.helpers import TEST_MODEL, squares


@pytest.fixture
def root(tmp_path):
    return write_synthetic_dataset(tmp_path / "data", n_train=4, n_val=2, tile_size=64, seed=0)


def train_cli(capsys, root, out, *extra, epochs=1):
    flags = ["--data", str(root), "--out", str(out), "--batch-size", "2", "--tile-size", "32", "--no-augment",
             "--epochs", str(epochs), "--warmup-steps", "1"]
    code = main(["train", TEST_MODEL, *flags, *map(str, extra)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def state(run_dir):
    return json.loads((run_dir / "checkpoints" / "state.json").read_text())


def hashes(folder):
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resume_of_a_copied_run_continues_in_the_copy(root, tmp_path, capsys):
    original, copy = tmp_path / "original", tmp_path / "copy"
    assert train_cli(capsys, root, original)[0] == 0
    shutil.copytree(original, copy)
    before = hashes(original)
    assert main(["train", TEST_MODEL, "--out", str(copy), "--resume", "--epochs", "2"]) == 0
    assert hashes(original) == before
    assert state(copy)["epoch"] == 2
    assert json.loads((copy / "config.json").read_text())["out"] == str(copy)


def test_steps_per_epoch_beyond_the_data_are_all_run_and_the_schedule_ends(root, tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, _, err = train_cli(capsys, root, run_dir, "--steps-per-epoch", "5", "--lr", "0.01", epochs=2)
    assert code == 0, err
    assert state(run_dir)["iterations"] == 10  # 2 batches of data, 5 steps asked, 2 epochs
    with open(run_dir / "log.csv", newline="") as handle:
        rates = [float(row["learning_rate"]) for row in csv.DictReader(handle)]
    assert rates[-1] == pytest.approx(0.0, abs=1e-9)  # the schedule reached its end


@pytest.mark.parametrize("damage", ["truncated", "label value 2"])
def test_a_bad_tile_stops_training_before_the_first_step(root, tmp_path, capsys, damage):
    if damage == "truncated":
        bad = truncate(root / "train" / "images" / "tile_00003.tif", keep=0.5)
    else:
        bad = rewrite_pixels(root / "train" / "labels" / "tile_00001.tif", lambda a: np.where(a == 1, 2, a))
    run_dir = tmp_path / "run"
    code, _, err = train_cli(capsys, root, run_dir)
    assert_one_line_error(code, err, "gdcld-zoo train: error:", str(bad), "--skip-bad")
    assert not (run_dir / "config.json").exists()


def test_skip_bad_trains_on_the_good_tiles(root, tmp_path, capsys):
    truncate(root / "train" / "images" / "tile_00003.tif", keep=0.5)
    with pytest.warns(UserWarning, match="Skipping 1 of 4 bad tile pairs"):
        code, _, err = train_cli(capsys, root, tmp_path / "run", "--skip-bad")
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "config.json").read_text())["skip_bad"] is True


def test_out_that_is_a_file_is_refused_first(root, tmp_path, capsys):
    out = tmp_path / "run.txt"
    out.write_text("keep me")
    code, _, err = train_cli(capsys, tmp_path / "no-data-here", out)
    assert_one_line_error(code, err, str(out), "is a file")
    assert out.read_text() == "keep me"


def test_out_in_a_read_only_folder_is_refused_first(tmp_path, read_only_dir, capsys):
    code, _, err = train_cli(capsys, tmp_path / "no-data-here", read_only_dir / "run")
    assert_one_line_error(code, err, str(read_only_dir / "run"), "choose a folder you can write to")


class BreakTilesAtFirstEpoch(keras.callbacks.Callback):
    """Truncates every training image when the first epoch begins (a disk failing under a run)."""

    def __init__(self, images):
        super().__init__()
        self.images = images

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 0:
            for image in self.images:
                truncate(image, keep=0.3)


def test_read_error_in_epoch_one_is_one_line_and_the_run_can_be_started_again(root, tmp_path, capsys):
    from gdcld_zoo.training.trainer import TrainingDataError

    run_dir = tmp_path / "run"
    config = TrainConfig(TEST_MODEL, data=str(root), out=str(run_dir), batch_size=2, tile_size=32, epochs=1,
                         augment=False, warmup_steps=1, preview_tiles=0)
    originals = {p: p.read_bytes() for p in (root / "train" / "images").iterdir()}
    with pytest.raises(TrainingDataError) as info:
        train(config, callbacks=[BreakTilesAtFirstEpoch(list(originals))], verbose=0)
    message = str(info.value)
    assert "\n" not in message and "tile_0000" in message and "--resume" in message
    for path, data in originals.items():
        path.write_bytes(data)  # the disk is fixed
    code, _, err = train_cli(capsys, root, run_dir, "--resume")
    assert code == 0, err
    assert state(run_dir)["epoch"] == 1


def test_a_run_that_never_finished_an_epoch_is_started_again_without_resume(root, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"model": TEST_MODEL}))
    code, _, err = train_cli(capsys, root, run_dir)
    assert code == 0, err
    assert state(run_dir)["epoch"] == 1


def test_a_truncated_last_checkpoint_is_one_line_offering_best_and_a_fresh_start(root, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert train_cli(capsys, root, run_dir)[0] == 0
    last = truncate(run_dir / "checkpoints" / "last.weights.h5", keep=0.5)
    code = main(["train", TEST_MODEL, "--out", str(run_dir), "--resume", "--epochs", "2"])
    err = capsys.readouterr().err
    assert_one_line_error(code, err, str(last), "delete", str(run_dir / "checkpoints" / "best.weights.h5"))


def test_nan_in_the_first_epoch_names_no_missing_checkpoint(tmp_path):
    images, masks = squares(8, seed=3)
    images[5] = np.nan
    data = tf.data.Dataset.from_tensor_slices((images, masks)).batch(4)
    config = TrainConfig(TEST_MODEL, out=str(tmp_path / "run"), tile_size=32, batch_size=4, epochs=1,
                         augment=False, warmup_steps=1, preview_tiles=0, model_config={"activation": "linear"})
    with pytest.raises(TrainingDivergedError) as info:
        train(config, data, None, verbose=0)
    message = str(info.value)
    assert "last.weights.h5" not in message and "No epoch finished" in message


def test_checkpoints_and_records_get_the_umask_permissions(root, tmp_path, capsys):
    previous = os.umask(0o027)
    try:
        assert train_cli(capsys, root, tmp_path / "run")[0] == 0
    finally:
        os.umask(previous)
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file() and "tensorboard" not in p.parts]
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: 0o640 for p in files}


def test_a_second_run_into_the_same_folder_refuses_naming_the_first(root, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with lock_held_by_another_process(run_dir, "train") as pid:
        code, _, err = train_cli(capsys, root, run_dir)
    assert_one_line_error(code, err, f"another run (pid {pid})")
    assert not (run_dir / "config.json").exists()
