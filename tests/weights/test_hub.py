"""hf:// records: pinned revisions, the hub's declared sha256, and what is refused."""

import numpy as np
import pytest

from gdcld_zoo.weights.cache import WeightsNotFoundError, cache_path, weights_file
from gdcld_zoo.weights.download import ChecksumError
from gdcld_zoo.weights.hub import HubError, parse_hf_url
from gdcld_zoo.weights.record import InvalidWeightRecordError, WeightRecord

REPO, REV, OTHER = "nvidia/mit-b0", "a" * 40, "b" * 40
BODY = np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes()


def _record(revision=REV, sha256=None, path="pytorch_model.bin"):
    url = f"hf://{REPO}@{revision}/{path}" if revision else f"hf://{REPO}/{path}"
    return WeightRecord(tag="segformer_b0.imagenet", model="segformer_b0", file=path.rsplit("/", 1)[-1],
                        sha256=sha256, url=url, part="encoder")


def test_hf_urls_must_pin_a_full_commit():
    hub_file = parse_hf_url(f"hf://{REPO}@{REV}/sub/model.safetensors")
    assert (hub_file.repo, hub_file.revision, hub_file.path) == (REPO, REV, "sub/model.safetensors")
    assert not parse_hf_url(f"hf://{REPO}/pytorch_model.bin").pinned
    for bad in (f"hf://{REPO}@main/pytorch_model.bin", f"hf://{REPO}@{REV}/../x.bin", "hf://mit-b0/x.bin"):
        with pytest.raises(ValueError):
            parse_hf_url(bad)
    with pytest.raises(InvalidWeightRecordError, match="full 40-hex commit"):
        WeightRecord(tag="x.y", model="x", file="a.bin", sha256=None, url=f"hf://{REPO}@v1.0/a.bin")
    with pytest.raises(InvalidWeightRecordError, match="sha256 is required"):
        WeightRecord(tag="x.y", model="x", file="a.bin", sha256=None, url="https://example.org/a.bin")
    with pytest.raises(InvalidWeightRecordError, match="name of the hub file, 'a.bin'"):
        WeightRecord(tag="x.y", model="x", file="b.bin", sha256=None, url=f"hf://{REPO}@{REV}/a.bin")


def test_download_checks_the_hub_declared_sha256_and_caches_by_commit(weights_env, fake_hub, monkeypatch):
    fake_hub.add(REPO, REV, "pytorch_model.bin", BODY)
    path = weights_file(_record(), progress=False)
    assert path == weights_env["home"] / "weights" / "hf" / REPO / REV / "pytorch_model.bin"
    assert path.read_bytes() == BODY
    assert [r[0] for r in fake_hub.requests] == [
        f"HEAD /{REPO}/resolve/{REV}/pytorch_model.bin",
        f"/{REPO}/resolve/{REV}/pytorch_model.bin",
        f"/cdn/{path.with_name('pytorch_model.bin.sha256').read_text().strip()}",
    ]
    fake_hub.requests.clear()
    monkeypatch.setenv("GDCLD_ZOO_OFFLINE", "1")
    assert weights_file(_record(), progress=False) == path  # verified against the saved hub hash
    assert fake_hub.requests == []


def test_wrong_etag_is_refused_with_nothing_cached(weights_env, fake_hub):
    fake_hub.add(REPO, REV, "pytorch_model.bin", BODY, etag="f" * 64)
    with pytest.raises(ChecksumError, match="expected f{64}"):
        weights_file(_record(), progress=False)
    folder = cache_path(_record()).parent
    assert [p.name for p in folder.iterdir()] == [".download.lock"]


def test_record_hash_disagreeing_with_the_hub_shows_both_and_downloads_nothing(weights_env, fake_hub):
    fake_hub.add(REPO, REV, "pytorch_model.bin", BODY)
    with pytest.raises(ChecksumError, match=f"hub declares sha256 [0-9a-f]{{64}} .*record {'e' * 64}"):
        weights_file(_record(sha256="e" * 64), progress=False)
    assert [r[0] for r in fake_hub.requests] == [f"HEAD /{REPO}/resolve/{REV}/pytorch_model.bin"]


def test_another_revision_is_not_served(weights_env, fake_hub):
    fake_hub.add(REPO, REV, "pytorch_model.bin", BODY)
    with pytest.raises(HubError, match=f"no pytorch_model.bin in {REPO} at commit {OTHER}"):
        weights_file(_record(revision=OTHER), progress=False)
    fake_hub.answer_commit = OTHER
    with pytest.raises(HubError, match=f"from commit {OTHER}, not the pinned {REV}"):
        weights_file(_record(), progress=False)
    assert not cache_path(_record()).exists()


def test_unpinned_record_is_never_downloaded(weights_env, fake_hub):
    with pytest.raises(WeightsNotFoundError, match=f"not pinned.*hf://{REPO}@<40-hex commit>/pytorch_model.bin"):
        weights_file(_record(revision=None), progress=False)
    assert fake_hub.requests == []


def test_offline_with_nothing_cached_says_what_to_fetch_and_how(weights_env, fake_hub, monkeypatch):
    monkeypatch.setenv("GDCLD_ZOO_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as error:
        weights_file(_record(), progress=False)
    message = str(error.value)
    assert "\n" not in message
    assert "run `gdcld-zoo weights download segformer_b0.imagenet`" in message
    assert f"hf://{REPO}@{REV}/pytorch_model.bin" in message and "GDCLD_ZOO_HOME" in message
    assert fake_hub.requests == []
