import hashlib
import warnings

import numpy as np
import pytest

from gdcld_zoo import build_model, get_weight_record, load_pretrained
from gdcld_zoo.errors import GdcldZooError, InvalidInputError
from gdcld_zoo.weights import sources
from gdcld_zoo.weights.cache import WeightsNotFoundError
from gdcld_zoo.weights.download import ChecksumError
from gdcld_zoo.weights.record import WeightRecord
from gdcld_zoo.weights.run import write_run_record
from gdcld_zoo.weights.sources import add_user_record
from tests.weights.conftest import write_registry

IMAGES = np.random.default_rng(0).normal(size=(1, 64, 64, 3)).astype("float32")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A segformer_tiny, its .weights.h5 bytes and logits on IMAGES."""
    folder = tmp_path_factory.mktemp("trained")
    model = build_model("segformer_tiny")
    path = folder / "tiny.weights.h5"
    model.save_weights(path)
    return {"model": model, "path": path, "bytes": path.read_bytes(),
            "logits": np.asarray(model(IMAGES, training=False))}


def _register(weights_env, server, body, sha256=None, **fields):
    server.files["/v1/tiny.weights.h5"] = body
    record = {"tag": "segformer_tiny.test", "model": "segformer_tiny", "file": "tiny.weights.h5",
              "url": server.url + "/v1/tiny.weights.h5", "sha256": sha256 or hashlib.sha256(body).hexdigest(),
              "size": len(body), "threshold": 0.3, **fields}
    write_registry(weights_env["shipped"] / "registry.json", [record])


def test_tag_downloads_verifies_caches_and_works_offline(weights_env, http_server, trained, monkeypatch):
    _register(weights_env, http_server, trained["bytes"])
    model = load_pretrained("segformer_tiny.test", progress=False)
    np.testing.assert_array_equal(np.asarray(model(IMAGES, training=False)), trained["logits"])
    assert get_weight_record(model).tag == "segformer_tiny.test"
    assert get_weight_record(model).threshold == 0.3
    cached = weights_env["home"] / "weights" / "tiny.weights.h5"
    assert cached.read_bytes() == trained["bytes"]
    assert len(http_server.requests) == 1

    load_pretrained("segformer_tiny", progress=False)  # the model's only tag, from the cache
    monkeypatch.setenv(sources.ENV_OFFLINE, "1")
    offline = load_pretrained("segformer_tiny.test")
    np.testing.assert_array_equal(np.asarray(offline(IMAGES, training=False)), trained["logits"])
    assert len(http_server.requests) == 1


def test_hash_mismatch_leaves_nothing_in_the_cache(weights_env, http_server, trained):
    _register(weights_env, http_server, trained["bytes"], sha256="1" * 64)
    with pytest.raises(ChecksumError, match=f"sha256.*expected {'1' * 64}, got "):
        load_pretrained("segformer_tiny.test", progress=False)
    assert [p.name for p in (weights_env["home"] / "weights").iterdir()] == [".download.lock"]


def test_offline_without_the_file_says_where_to_put_it(weights_env, http_server, trained, monkeypatch):
    _register(weights_env, http_server, trained["bytes"])
    monkeypatch.setenv(sources.ENV_OFFLINE, "1")
    expected = str(weights_env["home"] / "weights" / "tiny.weights.h5")
    with pytest.raises(WeightsNotFoundError, match=f"GDCLD_ZOO_OFFLINE is set. Put tiny.weights.h5 .* at {expected}"):
        load_pretrained("segformer_tiny.test")
    assert http_server.requests == []


def test_corrupted_cache_file_is_downloaded_again(weights_env, http_server, trained):
    _register(weights_env, http_server, trained["bytes"])
    cached = weights_env["home"] / "weights" / "tiny.weights.h5"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not the weights")
    with pytest.warns(UserWarning, match="Deleting it and downloading it again"):
        load_pretrained("segformer_tiny.test", progress=False)
    assert cached.read_bytes() == trained["bytes"] and len(http_server.requests) == 1


def test_shipped_file_is_used_without_download(weights_env, trained):
    (weights_env["shipped"] / "tiny.weights.h5").write_bytes(trained["bytes"])
    write_registry(weights_env["shipped"] / "registry.json", [{
        "tag": "demo", "model": "segformer_tiny", "file": "tiny.weights.h5",
        "sha256": hashlib.sha256(trained["bytes"]).hexdigest()}])
    model = load_pretrained("demo")
    np.testing.assert_array_equal(np.asarray(model(IMAGES, training=False)), trained["logits"])
    with pytest.raises(InvalidInputError, match="take 3 bands"):
        load_pretrained("demo", input_shape=(64, 64, 4))


def test_a_tag_wins_over_a_same_named_folder_that_is_not_a_run(weights_env, trained, tmp_path, monkeypatch):
    (weights_env["shipped"] / "tiny.weights.h5").write_bytes(trained["bytes"])
    write_registry(weights_env["shipped"] / "registry.json", [{
        "tag": "demo", "model": "segformer_tiny", "file": "tiny.weights.h5",
        "sha256": hashlib.sha256(trained["bytes"]).hexdigest()}])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()  # what `gdcld-zoo demo --out demo` leaves
    model = load_pretrained("demo")
    np.testing.assert_array_equal(np.asarray(model(IMAGES, training=False)), trained["logits"])
    with pytest.raises(GdcldZooError, match="not a training run folder"):
        load_pretrained("./demo")


def test_new_num_classes_rebuilds_only_the_classifier(weights_env, trained, tmp_path):
    write_run_record(tmp_path, trained["path"], "segformer_tiny", tag="segformer_tiny.run",
                     metrics=[], description="run")
    with pytest.warns(UserWarning, match=r"trained for 1 class;.*rebuilt for 3.*decoder_classifier/kernel"):
        model = load_pretrained(tmp_path, num_classes=3, input_shape=(64, 64, 3))
    assert model.output_shape == (None, 64, 64, 3)
    assert get_weight_record(model).num_classes == 3
    source = trained["model"]
    same = [np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(source.weights, model.weights)]
    assert same.count(False) == 2  # the classifier kernel and bias only


def test_run_folder_and_weight_file_paths(weights_env, trained, tmp_path):
    with pytest.raises(GdcldZooError, match="not a training run folder"):
        load_pretrained(tmp_path)
    run = tmp_path / "Run 7"  # laid out as `gdcld-zoo train` writes it
    (run / "checkpoints").mkdir(parents=True)
    best = run / "checkpoints" / "best.weights.h5"
    best.write_bytes(trained["bytes"])
    record = write_run_record(run, best, "segformer_tiny", threshold=0.4)
    assert record.tag == "segformer_tiny.run-7" and record.file == "checkpoints/best.weights.h5"
    for source in (run, best, str(best)):
        model = load_pretrained(source)
        assert get_weight_record(model).threshold == 0.4
        np.testing.assert_array_equal(np.asarray(model(IMAGES, training=False)), trained["logits"])

    bare = tmp_path / "bare.weights.h5"
    bare.write_bytes(trained["bytes"])
    with pytest.raises(GdcldZooError, match="not which model they belong to"):
        load_pretrained(bare)
    with pytest.raises(GdcldZooError, match="No such weight file"):
        load_pretrained(tmp_path / "absent.weights.h5")


def test_keras_file_loads_in_safe_mode(weights_env, trained, tmp_path):
    path = tmp_path / "tiny.keras"
    trained["model"].save(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_pretrained(path)
    assert any("No weight record describes" in str(w.message) for w in caught)
    np.testing.assert_array_equal(np.asarray(model(IMAGES, training=False)), trained["logits"])
    record = get_weight_record(model)
    assert record.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and record.threshold == 0.5
    with pytest.warns(UserWarning) as caught:
        two = load_pretrained(path, num_classes=2)
    assert any("rebuilt for 2" in str(w.message) for w in caught)
    assert two.output_shape[-1] == 2


def test_moved_run_file_is_found_in_the_cache(weights_env, trained, tmp_path):
    sha = hashlib.sha256(trained["bytes"]).hexdigest()
    gone = tmp_path / "deleted_run" / "best.weights.h5"
    add_user_record(WeightRecord(tag="segformer_tiny.gone", model="segformer_tiny", file=str(gone), sha256=sha))
    cached = weights_env["home"] / "weights" / "best.weights.h5"
    with pytest.raises(WeightsNotFoundError, match=f"has no url. Put best.weights.h5 .* at {cached} .searched: {gone}"):
        load_pretrained("segformer_tiny.gone")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(trained["bytes"])
    model = load_pretrained("segformer_tiny.gone")
    np.testing.assert_array_equal(np.asarray(model(IMAGES, training=False)), trained["logits"])
