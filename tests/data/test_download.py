"""`download_gdcld` and `gdcld-zoo data download` against a fake Zenodo on 127.0.0.1."""

import hashlib
import io
import json
import tarfile
import zipfile

import pytest

from gdcld_zoo.cli import main
from gdcld_zoo.data import check_dataset, download_gdcld, write_synthetic_dataset
from gdcld_zoo.data.download import ENV_ZENODO_ENDPOINT, STATE_FILE, ZENODO_RECORD
from gdcld_zoo.errors import GdcldZooError
from gdcld_zoo.weights.download import ChecksumError
from tests.weights.conftest import http_server  # noqa: F401 (fixture)

API = f"/api/records/{ZENODO_RECORD}"


def _zip_split(root, split, name):
    """A GDCLD-style archive: `<name>/images/*.tif`, `<name>/labels/*.tif`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted((root / split).rglob("*.tif")):
            archive.write(path, f"{name}/{path.relative_to(root / split)}")
    return buffer.getvalue()


@pytest.fixture
def zenodo(http_server, tmp_path, monkeypatch):  # noqa: F811
    """The fake record: train_dataset.zip, val_dataset.zip and a README, with md5s."""
    root = write_synthetic_dataset(tmp_path / "source", n_train=3, n_val=2, tile_size=32, seed=0)
    files = {
        "train_dataset.zip": _zip_split(root, "train", "train_dataset"),
        "val_dataset.zip": _zip_split(root, "val", "val_dataset"),
        "README.txt": b"GDCLD\n",
    }
    http_server.publish = lambda checksums=None: _publish(http_server, files, checksums or {})
    http_server.publish()
    monkeypatch.setenv(ENV_ZENODO_ENDPOINT, http_server.url)
    monkeypatch.delenv("GDCLD_ZOO_OFFLINE", raising=False)
    http_server.release = files
    return http_server


def _publish(server, files, checksums):
    entries = []
    for key, body in files.items():
        server.files[f"{API}/files/{key}/content"] = body
        md5 = checksums.get(key, hashlib.md5(body).hexdigest())
        entries.append({"key": key, "size": len(body), "checksum": f"md5:{md5}",
                        "links": {"self": f"https://zenodo.org{API}/files/{key}/content"}})
    server.files[API] = json.dumps({"id": int(ZENODO_RECORD), "files": entries}).encode()


def test_download_verifies_unpacks_and_checks(zenodo, tmp_path):
    root = download_gdcld(tmp_path / "GDCLD", progress=False)
    assert sorted(p.name for p in root.iterdir()) == [".downloads", STATE_FILE, "README.txt", "train_dataset", "val_dataset"]
    report = check_dataset(root)
    assert report.ok and {k: len(s.pairs) for k, s in report.splits.items()} == {"train": 3, "val": 2}
    assert [p.name for p in (root / ".downloads").iterdir()] == [".download.lock"]  # archives deleted
    zenodo.requests.clear()
    download_gdcld(root, progress=False)  # done already: only the file list is asked for
    assert zenodo.requests == [(API, None)]


def test_wrong_md5_is_refused_and_a_rerun_resumes(zenodo, tmp_path):
    zenodo.publish({"val_dataset.zip": "0" * 32})
    with pytest.raises(ChecksumError, match="md5 mismatch .*val_dataset.zip"):
        download_gdcld(tmp_path / "GDCLD", progress=False)
    assert not (tmp_path / "GDCLD" / "val_dataset").exists()
    assert json.loads((tmp_path / "GDCLD" / STATE_FILE).read_text()) == {
        "train_dataset.zip": hashlib.md5(zenodo.release["train_dataset.zip"]).hexdigest()}
    zenodo.publish()
    zenodo.requests.clear()
    download_gdcld(tmp_path / "GDCLD", progress=False)
    assert [path for path, _ in zenodo.requests] == [API, f"{API}/files/val_dataset.zip/content", f"{API}/files/README.txt/content"]


def test_file_interrupted_in_an_earlier_run_resumes_with_range(zenodo, tmp_path):
    (tmp_path / "GDCLD" / ".downloads").mkdir(parents=True)
    (tmp_path / "GDCLD" / ".downloads" / "train_dataset.zip.part").write_bytes(zenodo.release["train_dataset.zip"][:100])
    root = download_gdcld(tmp_path / "GDCLD", progress=False)
    ranges = [r for path, r in zenodo.requests if path.endswith("train_dataset.zip/content")]
    assert ranges == ["bytes=100-"] and check_dataset(root).ok


def test_archive_escaping_the_folder_is_refused(zenodo, tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"bad"))
    zenodo.release.clear()
    zenodo.release["evil.tar.gz"] = buffer.getvalue()
    zenodo.publish()
    with pytest.raises(GdcldZooError, match="Could not unpack evil.tar.gz"):
        download_gdcld(tmp_path / "GDCLD", progress=False)
    assert not (tmp_path / "escaped.txt").exists()


def test_cli_downloads_then_checks(zenodo, tmp_path, capsys):
    assert main(["data", "download", str(tmp_path / "GDCLD"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "val" in out


def test_unreachable_zenodo_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(ENV_ZENODO_ENDPOINT, "http://127.0.0.1:9")
    monkeypatch.delenv("GDCLD_ZOO_OFFLINE", raising=False)
    assert main(["data", "download", str(tmp_path / "GDCLD")]) == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("gdcld-zoo data download: error: Could not reach http://127.0.0.1:9") and ENV_ZENODO_ENDPOINT in error
