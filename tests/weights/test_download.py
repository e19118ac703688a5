import hashlib
import socket

import numpy as np
import pytest

from gdcld_zoo.weights.download import ChecksumError, DownloadError, download, part_path

BODY = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
SHA = hashlib.sha256(BODY).hexdigest()


def _serve(server, body=BODY):
    server.files["/v1/file.weights.h5"] = body
    return server.url + "/v1/file.weights.h5"


def test_download_verifies_and_renames(http_server, tmp_path):
    dest = download(_serve(http_server), tmp_path / "c" / "file.weights.h5", SHA, progress=False)
    assert dest.read_bytes() == BODY
    assert sorted(p.name for p in dest.parent.iterdir()) == [".download.lock", "file.weights.h5"]
    assert http_server.requests == [("/v1/file.weights.h5", None)]


def test_hash_mismatch_is_refused_and_leaves_nothing(http_server, tmp_path):
    wrong = "0" * 64
    with pytest.raises(ChecksumError, match=f"sha256 mismatch.*expected {wrong}, got {SHA}"):
        download(_serve(http_server), tmp_path / "c" / "file.weights.h5", wrong, progress=False)
    assert [p.name for p in (tmp_path / "c").iterdir()] == [".download.lock"]  # empty lock file only
    assert len(http_server.requests) == 1


def test_interrupted_download_resumes_with_range(http_server, tmp_path):
    http_server.cut_after = 100_000
    dest = download(_serve(http_server), tmp_path / "file.weights.h5", SHA, progress=False, backoff_s=0)
    assert dest.read_bytes() == BODY
    assert http_server.requests == [("/v1/file.weights.h5", None), ("/v1/file.weights.h5", "bytes=100000-")]


def test_partial_file_from_an_earlier_run_is_resumed(http_server, tmp_path):
    dest = tmp_path / "file.weights.h5"
    part_path(dest).write_bytes(BODY[:1234])
    download(_serve(http_server), dest, SHA, size=len(BODY), progress=False)
    assert dest.read_bytes() == BODY and not part_path(dest).exists()
    assert http_server.requests == [("/v1/file.weights.h5", "bytes=1234-")]


def test_complete_partial_file_needs_no_body(http_server, tmp_path):
    dest = tmp_path / "file.weights.h5"
    part_path(dest).write_bytes(BODY)
    download(_serve(http_server), dest, SHA, progress=False)  # size unknown: server answers 416
    assert dest.read_bytes() == BODY
    assert len(http_server.requests) == 1
    part_path(dest).write_bytes(BODY)
    dest.unlink()
    download(_serve(http_server), dest, SHA, size=len(BODY), progress=False)  # size known: no request
    assert dest.read_bytes() == BODY and len(http_server.requests) == 1


def test_server_without_range_support_restarts(http_server, tmp_path):
    http_server.ranges = False
    dest = tmp_path / "file.weights.h5"
    part_path(dest).write_bytes(BODY[:500])
    download(_serve(http_server), dest, SHA, progress=False)
    assert dest.read_bytes() == BODY and len(http_server.requests) == 1


def test_spoiled_partial_file_is_downloaded_again_once(http_server, tmp_path):
    dest = tmp_path / "file.weights.h5"
    part_path(dest).write_bytes(b"x" * 1000)
    download(_serve(http_server), dest, SHA, progress=False)
    assert dest.read_bytes() == BODY
    assert http_server.requests == [("/v1/file.weights.h5", "bytes=1000-"), ("/v1/file.weights.h5", None)]


def test_offline_never_requests(http_server, tmp_path, monkeypatch):
    monkeypatch.setenv("GDCLD_ZOO_OFFLINE", "1")
    with pytest.raises(DownloadError, match="GDCLD_ZOO_OFFLINE is set"):
        download(_serve(http_server), tmp_path / "c" / "f.weights.h5", SHA, progress=False)
    assert http_server.requests == [] and not (tmp_path / "c").exists()


def test_missing_file_is_not_retried(http_server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(http_server.url + "/nope.weights.h5", tmp_path / "f.weights.h5", SHA, progress=False)
    assert len(http_server.requests) == 1


def test_unreachable_server_gives_up_after_retries(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match="after 3 attempts"):
        download(f"http://127.0.0.1:{port}/f.weights.h5", tmp_path / "f.weights.h5", SHA,
                 progress=False, retries=2, backoff_s=0)


def test_concurrent_downloads_take_turns(http_server, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    url, dest = _serve(http_server), tmp_path / "file.weights.h5"
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: download(url, dest, SHA, progress=False), range(2)))
    assert results == [dest, dest] and dest.read_bytes() == BODY
    assert len(http_server.requests) == 1  # the second found the finished file


def test_file_urls_download(tmp_path):
    source = tmp_path / "src.weights.h5"
    source.write_bytes(BODY)
    dest = download(source.as_uri(), tmp_path / "out" / "f.weights.h5", SHA, progress=False)
    assert dest.read_bytes() == BODY
