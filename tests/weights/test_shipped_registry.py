"""Every record of the shipped `weights/registry.json`: pinned (or honestly
unpinned and refused), licensed, and its model and config accepted by the builder."""

import inspect
import pathlib

import pytest

from gdcld_zoo.registry import get_model_spec, list_models
from gdcld_zoo.weights.cache import WeightsNotFoundError, weights_file
from gdcld_zoo.weights.record import read_registry_file
from gdcld_zoo.weights.sources import get_weights
from tests.weights.conftest import write_registry

REGISTRY = pathlib.Path(__file__).resolve().parents[2] / "weights" / "registry.json"
RECORDS = read_registry_file(REGISTRY)
UNPINNED_NOTE = "Revision not pinned: no verified commit of"


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.tag)
def test_record_is_pinned_licensed_and_builds(record):
    assert record.license not in ("", "unspecified") and record.trained_on and record.description
    hub_file = record.hub_file
    if hub_file is not None:
        assert record.file == hub_file.path.rsplit("/", 1)[-1]
        # Pinned to a full commit (checked by the record), or saying in its description that it is not.
        assert hub_file.pinned != (UNPINNED_NOTE in record.description), record.description
    else:
        assert record.sha256 is not None and (REGISTRY.parent / record.file).is_file()
    spec = get_model_spec(record.model)
    loader = spec.encoder_loader if record.part == "encoder" else spec.checkpoint_loader
    assert loader or not record.is_checkpoint
    config = {k: v for k, v in record.config.items() if k != "num_classes"}
    inspect.signature(spec.builder).bind(num_classes=record.num_classes, input_shape=(None, None, 3), **config)


def test_unpinned_records_refuse_to_download(weights_env, fake_hub):
    unpinned = [r for r in RECORDS if r.hub_file is not None and not r.hub_file.pinned]
    for record in unpinned:
        with pytest.raises(WeightsNotFoundError, match=f"not pinned: no commit of {record.hub_file.repo}"):
            weights_file(record, progress=False)
    assert fake_hub.requests == []


def test_every_model_with_an_encoder_defaults_to_its_imagenet_record(weights_env):
    write_registry(weights_env["shipped"] / "registry.json", [r.to_dict() for r in RECORDS])
    for name in list_models():
        if get_model_spec(name).encoder_loader:
            record = get_weights(name)
            assert (record.tag, record.part) == (f"{name}.imagenet", "encoder")
    assert get_weights("segformer_b0").tag != "demo" and get_weights("demo").tag == "demo"


@pytest.mark.slow
@pytest.mark.parametrize("record", [r for r in RECORDS if set(r.config) - {"num_classes"}], ids=lambda r: r.tag)
def test_record_model_builds_full_size(record):
    """Records whose config changes the architecture build (today `demo`).

    The others are left to tests that build them anyway: a record with an empty
    config is its model's default, which the full-size contract
    (tests/models/test_full_size.py) builds on every backend; one that sets only
    `num_classes` changes the head's width, which the contract's softmax variant
    checks and `test_record_is_pinned_licensed_and_builds` binds to the builder.
    """
    from gdcld_zoo import build_model

    config = dict(record.config)
    model = build_model(record.model, num_classes=config.pop("num_classes", 1), **config)
    assert model.output_shape[-1] == record.num_classes
