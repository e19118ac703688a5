"""`gdcld-zoo train`: flags, config files, resume and one-line errors."""

import csv
import json

import pytest

from gdcld_zoo.cli import main
from gdcld_zoo.data import write_synthetic_dataset
from gdcld_zoo.weights import read_run_record
from tests.training.helpers import TEST_MODEL


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("data"), n_train=4, n_val=2, tile_size=64, seed=0)


def epochs_logged(run_dir):
    with open(run_dir / "log.csv", newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def test_train_then_resume_to_more_epochs(tmp_path, data_root, capsys):
    run_dir = tmp_path / "run"
    flags = ["--data", str(data_root), "--out", str(run_dir), "--batch-size", "2", "--tile-size", "32"]
    assert main(["train", TEST_MODEL, *flags, "--epochs", "1", "--lr", "0.002", "--warmup-steps", "1", "--no-augment"]) == 0
    assert "Best weights:" in capsys.readouterr().out
    saved = json.loads((run_dir / "config.json").read_text())
    assert (saved["learning_rate"], saved["epochs"], saved["augment"], saved["tile_size"]) == (0.002, 1, False, 32)

    assert main(["train", TEST_MODEL, "--out", str(run_dir), "--resume", "--epochs", "2"]) == 0
    assert epochs_logged(run_dir) == [0, 1]
    state = json.loads((run_dir / "checkpoints/state.json").read_text())
    assert state["epoch"] == 2 and state["iterations"] == 4  # 2 batches per epoch, continued
    assert read_run_record(run_dir).model == TEST_MODEL


def test_config_file_with_flag_overrides(tmp_path, data_root):
    config = tmp_path / "run.yaml"
    config.write_text(f"data: {data_root}\nepochs: 1\nbatch_size: 4\ntile_size: 32\naugment: false\nloss: dice\n")
    run_dir = tmp_path / "run"
    assert main(["train", TEST_MODEL, "--config", str(config), "--out", str(run_dir), "--loss", "bce_dice"]) == 0
    saved = json.loads((run_dir / "config.json").read_text())
    assert (saved["loss"], saved["batch_size"], saved["model"]) == ("bce_dice", 4, TEST_MODEL)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "segformer_b9", "--out", "x"], "Unknown model 'segformer_b9'"),
        (["train", TEST_MODEL, "--out", "{tmp}/none", "--resume"], "no config.json"),
        (["train", TEST_MODEL, "--out", "{tmp}/r", "--tile-size", "100"], "multiple of 32"),
        (["train", TEST_MODEL, "--out", "{tmp}/r"], "No training data"),
    ],
)
def test_errors_are_one_line(tmp_path, capsys, argv, message):
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_default_encoder_offline_and_not_cached_says_what_to_fetch(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GDCLD_ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GDCLD_ZOO_OFFLINE", "1")
    assert main(["train", "segformer_b4", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "run `gdcld-zoo weights download segformer_b4.imagenet`" in err
    assert "GDCLD_ZOO_HOME" in err and "pass --encoder-weights none" in err
