import json

import pytest

from gdcld_zoo.preprocessing import Preprocessing
from gdcld_zoo.weights.record import (
    InvalidWeightRecordError,
    Metrics,
    WeightRecord,
    read_registry_file,
    write_registry_file,
)

SHA = "ab" * 32
MINIMAL = {"tag": "segformer_b4.gdcld", "model": "segformer_b4", "file": "b4.weights.h5", "sha256": SHA}


def test_minimal_record_gets_documented_defaults():
    record = WeightRecord.from_dict(MINIMAL)
    assert record.url is None and record.size is None and record.config == {}
    assert record.preprocessing == Preprocessing()
    assert record.tile_size == 1024 and record.resolution_m is None and record.threshold == 0.5
    assert record.metrics == () and record.license == "unspecified" and record.default is False
    assert record.num_classes == 1


def test_full_record_round_trips_through_json(tmp_path):
    record = WeightRecord.from_dict({
        **MINIMAL,
        "url": "https://example.org/v1/b4.weights.h5",
        "size": 123,
        "config": {"num_classes": 2},
        "preprocessing": Preprocessing(
            bands=(3, 2, 1, 4), band_names=("r", "g", "b", "nir"), dtype="uint16",
            scale=(1e4,) * 4, mean=(0.1,) * 4, std=(0.2,) * 4,
        ).to_dict(),
        "tile_size": 512,
        "resolution_m": [0.2, 3],
        "threshold": 0.4,
        "metrics": [{"dataset": "GDCLD", "split": "val", "values": {"f1": 0.9, "miou": 0.85}}],
        "license": "CC-BY-4.0",
        "citation": "Fang et al., 2024",
        "default": True,
        "description": "d",
    })
    assert record.num_classes == 2 and record.resolution_m == (0.2, 3.0)
    assert record.metrics == (Metrics("GDCLD", "val", {"f1": 0.9, "miou": 0.85}),)
    path = tmp_path / "out" / "registry.json"
    write_registry_file(path, [record])
    assert read_registry_file(path) == [record]
    assert json.loads(path.read_text())["weights"][0]["preprocessing"]["band_names"] == ["r", "g", "b", "nir"]
    assert list(path.parent.iterdir()) == [path]  # the temporary file was renamed away


def test_unknown_keys_are_named():
    with pytest.raises(InvalidWeightRecordError, match=r"unknown keys \['bandz', 'mean'\]"):
        WeightRecord.from_dict({**MINIMAL, "bandz": [1], "mean": [0.5]})


def test_missing_required_keys_are_named():
    with pytest.raises(InvalidWeightRecordError, match=r"missing required keys \['file', 'sha256'\]"):
        WeightRecord.from_dict({"tag": "unet.x", "model": "unet"})


@pytest.mark.parametrize(
    "change, message",
    [
        ({"sha256": "xyz"}, "64 hex digits"),
        ({"tag": "unet.gdcld"}, "must start with its model name"),
        ({"tag": "Segformer B4"}, "tag must look like"),
        ({"file": "b4.pdparams"}, r"\.weights\.h5"),
        ({"url": "ftp://host/b4.weights.h5"}, "url must start with"),
        ({"threshold": 1.5}, "threshold"),
        ({"resolution_m": [3, 0.2]}, "resolution_m"),
        ({"config": {"num_classes": 0}}, "num_classes"),
        ({"config": {"input_shape": [64, 64, 3]}}, "input_shape"),
        ({"preprocessing": {"bands": [1, 2]}}, "preprocessing"),
        ({"metrics": [{"dataset": "GDCLD", "values": {}}]}, r"missing required keys \['split'\]"),
        ({"metrics": [{"dataset": "GDCLD", "split": "val", "values": {"f1": "high"}}]}, "numbers"),
        ({"default": "yes"}, "default"),
    ],
)
def test_invalid_fields_are_refused(change, message):
    with pytest.raises(InvalidWeightRecordError, match=message):
        WeightRecord.from_dict({**MINIMAL, **change})


def test_single_word_alias_tags_are_allowed():
    assert WeightRecord.from_dict({**MINIMAL, "tag": "demo"}).tag == "demo"


def test_registry_file_errors_name_the_file(tmp_path):
    path = tmp_path / "registry.json"
    path.write_text("{not json")
    with pytest.raises(InvalidWeightRecordError, match="not valid JSON"):
        read_registry_file(path)
    path.write_text(json.dumps([MINIMAL]))
    with pytest.raises(InvalidWeightRecordError, match="one key, 'weights'"):
        read_registry_file(path)
    path.write_text(json.dumps({"weights": [MINIMAL, MINIMAL]}))
    with pytest.raises(InvalidWeightRecordError, match="more than once"):
        read_registry_file(path)
    path.write_text(json.dumps({"weights": [{**MINIMAL, "default": True},
                                            {**MINIMAL, "tag": "segformer_b4.x", "default": True}]}))
    with pytest.raises(InvalidWeightRecordError, match="several weights"):
        read_registry_file(path)
    path.write_text(json.dumps({"weights": [{**MINIMAL, "extra": 1}]}))
    with pytest.raises(InvalidWeightRecordError, match=str(path)):
        read_registry_file(path)
    assert read_registry_file(tmp_path / "absent.json") == []
