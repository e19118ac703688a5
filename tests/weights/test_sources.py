import os
import warnings

import pytest

from gdcld_zoo import list_weights
from gdcld_zoo.errors import GdcldZooError, UnknownNameError
from gdcld_zoo.weights import sources
from gdcld_zoo.weights.record import WeightRecord
from tests.weights.conftest import write_registry


def _record(tag, model, **fields):
    return {"tag": tag, "model": model, "file": f"{tag}.weights.h5", "sha256": "0" * 64, **fields}


def test_sources_merge_in_order_later_wins(weights_env, tmp_path, monkeypatch):
    write_registry(weights_env["shipped"] / "registry.json", [
        _record("unet.gdcld", "unet", description="shipped"),
        _record("segformer_b4.gdcld", "segformer_b4", description="shipped", default=True),
    ])
    first = write_registry(tmp_path / "a.json", [_record("unet.gdcld", "unet", description="a")])
    second = write_registry(tmp_path / "b.json", [
        _record("unet.gdcld", "unet", description="b"),
        _record("segformer_b4.lab", "segformer_b4", default=True),
    ])
    monkeypatch.setenv(sources.ENV_REGISTRY, os.pathsep.join([str(first), str(second)]))
    records = {r.tag: r for r in list_weights()}
    assert sorted(records) == ["segformer_b4.gdcld", "segformer_b4.lab", "unet.gdcld"]
    assert records["unet.gdcld"].description == "b"
    assert records["unet.gdcld"].origin == str(second)
    # The default of the latest source wins.
    assert sources.get_weights("segformer_b4").tag == "segformer_b4.lab"

    sources.add_user_record(WeightRecord.from_dict(_record("unet.gdcld", "unet", description="user")))
    assert sources.get_weights("unet").description == "user"
    assert sources.registry_sources()[-1] == str(weights_env["home"] / "registry.json")


def test_model_name_resolves_to_default_or_only_tag(weights_env):
    write_registry(weights_env["shipped"] / "registry.json", [
        _record("unet.gdcld", "unet"),
        _record("hrnet_w48.a", "hrnet_w48"),
        _record("hrnet_w48.b", "hrnet_w48"),
    ])
    assert sources.get_weights("unet").tag == "unet.gdcld"
    assert sources.get_weights("hrnet_w48.b").tag == "hrnet_w48.b"
    with pytest.raises(GdcldZooError, match=r"several weights \(hrnet_w48.a, hrnet_w48.b\) and none is marked default"):
        sources.get_weights("hrnet_w48")


def test_unknown_tag_lists_close_matches(weights_env):
    write_registry(weights_env["shipped"] / "registry.json", [
        _record("segformer_b4.gdcld", "segformer_b4"), _record("unet.gdcld", "unet")])
    with pytest.raises(UnknownNameError, match="Did you mean 'segformer_b4.gdcld'") as info:
        sources.get_weights("segformer_b4.gdlcd")
    assert "segformer_b4.gdcld" in info.value.close_matches


def test_user_registry_refuses_duplicate_tags_without_replace(weights_env):
    record = WeightRecord.from_dict(_record("unet.mine", "unet"))
    sources.add_user_record(record)
    with pytest.raises(GdcldZooError, match="--force"):
        sources.add_user_record(record)
    sources.add_user_record(record, replace=True)
    assert [r.tag for r in list_weights()] == ["unet.mine"]


def test_registry_url_is_cached_for_offline_use(weights_env, http_server, monkeypatch):
    import json

    http_server.files["/registry.json"] = json.dumps({"weights": [_record("unet.remote", "unet")]}).encode()
    monkeypatch.setenv(sources.ENV_REGISTRY, http_server.url + "/registry.json")
    assert [r.tag for r in list_weights()] == ["unet.remote"]
    assert [r.tag for r in list_weights()] == ["unet.remote"]
    assert len(http_server.requests) == 1  # fetched once per process

    monkeypatch.setattr(sources, "_FETCHED", {})  # a new process
    monkeypatch.setenv(sources.ENV_OFFLINE, "1")
    assert [r.tag for r in list_weights()] == ["unet.remote"]
    assert len(http_server.requests) == 1  # offline: the cached copy, no request

    monkeypatch.delenv(sources.ENV_OFFLINE)
    del http_server.files["/registry.json"]
    with pytest.warns(UserWarning, match="Using the cached copy.*HTTP Error 404"):
        assert [r.tag for r in list_weights()] == ["unet.remote"]
    assert len(http_server.requests) == 2

    monkeypatch.setenv(sources.ENV_REGISTRY, http_server.url + "/other.json")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert list_weights() == []
    assert "no copy is cached" in str(caught[0].message)
    assert len(http_server.requests) == 3


def test_registry_list_keeps_urls_whole():
    value = os.pathsep.join(["/labs/a.json", "https://host:8443/v1/r.json", "http://127.0.0.1:80",
                             "file:///srv/r.json", "b.json"])
    assert sources.split_registry_list(value) == [
        "/labs/a.json", "https://host:8443/v1/r.json", "http://127.0.0.1:80", "file:///srv/r.json", "b.json"]
    assert sources.split_registry_list("") == []
