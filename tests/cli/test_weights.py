"""`gdcld-zoo weights`."""

import hashlib
import json
import pathlib

import pytest

from gdcld_zoo import build_model
from gdcld_zoo.cli import main
from gdcld_zoo.weights import get_weights
from gdcld_zoo.weights.run import write_run_record
from tests.weights.conftest import http_server, weights_env, write_registry  # noqa: F401 (fixtures)


@pytest.fixture
def run_dir(tmp_path, weights_env):  # noqa: F811
    run = tmp_path / "run"
    run.mkdir()
    build_model("segformer_tiny").save_weights(run / "best.weights.h5")
    write_run_record(run, run / "best.weights.h5", "segformer_tiny", threshold=0.4)
    return run


def test_add_list_info_verify_publish(run_dir, weights_env, capsys):  # noqa: F811
    assert main(["weights", "list"]) == 0
    assert "No weights registered" in capsys.readouterr().out

    assert main(["weights", "add", str(run_dir), "--tag", "segformer_tiny.mine", "--default"]) == 0
    assert "Added segformer_tiny.mine" in capsys.readouterr().out
    assert main(["weights", "list"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split()[:8] == ["tag", "model", "classes", "bands", "licence", "trained", "on", "local"]
    assert rows[1].split()[:8] == ["segformer_tiny.mine", "*", "segformer_tiny", "1", "red,green,blue",
                                   "unspecified", "not", "stated"]
    assert rows[1].split()[8] == "yes"

    assert main(["weights", "info", "segformer_tiny"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["threshold"] == 0.4 and info["file"] == str((run_dir / "best.weights.h5").resolve())

    assert main(["weights", "verify"]) == 0
    assert "segformer_tiny.mine: ok" in capsys.readouterr().out

    assert main(["weights", "publish", "segformer_tiny.mine", "--url", "https://example.org/v1/best.weights.h5"]) == 0
    published = json.loads(capsys.readouterr().out)["weights"][0]
    data = (run_dir / "best.weights.h5").read_bytes()
    assert published["file"] == "best.weights.h5" and published["url"].endswith("/v1/best.weights.h5")
    assert published["sha256"] == hashlib.sha256(data).hexdigest() and published["size"] == len(data)

    (run_dir / "best.weights.h5").write_bytes(data + b"changed")
    assert main(["weights", "verify", "segformer_tiny.mine"]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_add_refuses_existing_tag_and_bare_files_without_model(run_dir, capsys):
    assert main(["weights", "add", str(run_dir), "--tag", "segformer_tiny.a"]) == 0
    assert main(["weights", "add", str(run_dir), "--tag", "segformer_tiny.a"]) == 2
    assert "--force" in capsys.readouterr().err
    bare = run_dir.parent / "bare.weights.h5"
    bare.write_bytes((run_dir / "best.weights.h5").read_bytes())
    assert main(["weights", "add", str(bare), "--tag", "segformer_tiny.b"]) == 2
    assert "pass --model" in capsys.readouterr().err
    assert main(["weights", "add", str(bare), "--tag", "segformer_tiny.b", "--model", "segformer_tiny"]) == 0
    capsys.readouterr()
    # A record must describe its file: one-class weights registered as three classes would never load.
    assert main(["weights", "add", str(bare), "--tag", "segformer_tiny.c", "--model", "segformer_tiny",
                 "--num-classes", "3", "--description", "three"]) == 2
    assert "does not fit model 'segformer_tiny'" in capsys.readouterr().err
    assert get_weights("segformer_tiny.b").num_classes == 1


def test_download_and_unknown_tag(weights_env, http_server, capsys):  # noqa: F811
    body = b"weights bytes"
    http_server.files["/w.weights.h5"] = body
    write_registry(weights_env["shipped"] / "registry.json", [{
        "tag": "unet.gdcld", "model": "unet", "file": "w.weights.h5",
        "url": http_server.url + "/w.weights.h5", "sha256": hashlib.sha256(body).hexdigest()}])
    assert main(["weights", "download", "unet.gdcld", "--quiet"]) == 0
    path = capsys.readouterr().out.strip()
    assert path == str(weights_env["home"] / "weights" / "w.weights.h5")
    assert main(["weights", "info", "unet.gdclld"]) == 2
    assert "Did you mean 'unet.gdcld'" in capsys.readouterr().err


SHIPPED = json.loads((pathlib.Path(__file__).resolve().parents[2] / "weights" / "registry.json").read_text())


def test_list_shows_every_shipped_record_with_licence_and_training_data(weights_env, capsys):  # noqa: F811
    write_registry(weights_env["shipped"] / "registry.json", SHIPPED["weights"])
    assert main(["weights", "list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:-1]}
    assert sorted(rows) == sorted(r["tag"] for r in SHIPPED["weights"])
    assert "other (NVIDIA SegFormer licence, non-commercial)  ImageNet-1k, then ADE20K" in rows["segformer_b4.ade20k"]
    assert "Apache-2.0" in rows["demo"] and "synthetic scenes" in rows["demo"]
    assert "unpinned" in rows["hrnet_w48.imagenet"] and " no " in rows["segformer_b4.imagenet"]


def test_info_of_a_model_without_landslide_weights_says_so_and_how_to_train(weights_env, capsys):  # noqa: F811
    write_registry(weights_env["shipped"] / "registry.json", SHIPPED["weights"])
    assert main(["weights", "info", "segformer_b4"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["tag"] == "segformer_b4.imagenet"
    assert "No landslide-trained segformer_b4 has been published" in err
    assert "`gdcld-zoo train segformer_b4 --data GDCLD --out runs/segformer_b4`" in err
