"""TrainConfig: files, overrides, validation, the saved resolved config."""

import json

import pytest

from gdcld_zoo.training import ConfigError, TrainConfig


def test_yaml_and_json_with_overrides(tmp_path):
    (tmp_path / "run.yaml").write_text("model: segformer_b0\nepochs: 20\nlearning_rate: 6.0e-5\nmodel_config:\n  drop_path_rate: 0.1\n")
    config = TrainConfig.from_file(tmp_path / "run.yaml", epochs=5, batch_size=None)
    assert (config.model, config.epochs, config.learning_rate, config.batch_size) == ("segformer_b0", 5, 6e-5, 8)
    assert config.model_config == {"drop_path_rate": 0.1}
    (tmp_path / "run.json").write_text(json.dumps({"model": "unet", "loss": "dice"}))
    assert TrainConfig.from_file(tmp_path / "run.json").loss == "dice"


def test_saved_config_round_trips(tmp_path):
    config = TrainConfig(model="segformer_b0", data="/data", out=str(tmp_path), tile_size=256)
    path = config.save(tmp_path)
    assert path.name == "config.json" and json.loads(path.read_text())["tile_size"] == 256
    assert TrainConfig.load(tmp_path) == config
    assert TrainConfig.load(tmp_path, epochs=7).epochs == 7


@pytest.mark.parametrize(
    "values, message",
    [
        ({"model": "unet", "epoch": 3}, r"Unknown config keys \['epoch'\]"),
        ({"epochs": 3}, "needs a 'model'"),
        ({"model": "unet", "tile_size": 100}, "multiple of 32"),
        ({"model": "unet", "strategy": "tpu"}, "strategy must be one of"),
        ({"model": "unet", "batch_size": 0}, "batch_size must be a positive integer"),
        ({"model": "unet", "preprocessing": {"bands": [1, 2]}}, "preprocessing"),
    ],
)
def test_bad_values_are_named(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(values)


def test_missing_or_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        TrainConfig.from_file(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot be parsed"):
        TrainConfig.from_file(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="no config.json"):
        TrainConfig.load(tmp_path)


def test_encoder_weights_default_none_tag_or_path():
    assert TrainConfig(model="segformer_b0").encoder_weights == "default"
    assert TrainConfig(model="segformer_b0", encoder_weights="none").encoder_weights is None
    assert TrainConfig.from_dict({"model": "segformer_b0", "encoder_weights": "mit.bin"}).encoder_weights == "mit.bin"
    with pytest.raises(ConfigError, match="encoder_weights must be"):
        TrainConfig(model="segformer_b0", encoder_weights=3)
