"""`gdcld-zoo predict`: two runs into one folder, killed runs, truncated scenes, unwritable outputs."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import rasterio

from gdcld_zoo.cli import main
from tests.reliability.bad_files import assert_one_line_error, lock_held_by_another_process, truncate
from tests.reliability.models import tiny_run
from tests.scene.scenes import random_scene, write_scene

OUTPUTS = ["inventory.geojson", "inventory.gpkg", "inventory.json",
           "scene_landslides.geojson", "scene_mask.tif", "scene_prob.tif", "scene_summary.json"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("run"))


@pytest.fixture
def scene(tmp_path):
    return write_scene(tmp_path / "scene.tif", random_scene(96, 96))


def predict(capsys, run_dir, *argv):
    code = main(["predict", str(run_dir), *map(str, argv), "--quiet", "--overlap", "16"])
    out = capsys.readouterr()
    return code, out.out, out.err


def predict_process(scene, out, *extra):
    """`gdcld-zoo predict demo SCENE --out OUT` in its own Python process."""
    return subprocess.Popen(
        [sys.executable, "-m", "gdcld_zoo", "predict", "demo", str(scene), "--out", str(out), "--quiet", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def assert_complete_outputs(out):
    """Every output readable, and the summary describing exactly these files."""
    summary = json.loads((out / "scene_summary.json").read_text())
    for name in ("scene_prob.tif", "scene_mask.tif"):
        with rasterio.open(out / name) as src:
            assert src.read(1).shape == (summary["height"], summary["width"])
    features = json.loads((out / "scene_landslides.geojson").read_text())["features"]
    assert len(features) == summary["n_landslides"]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_two_runs_at_once_into_one_folder_leave_complete_outputs(tmp_path):
    scene = write_scene(tmp_path / "scene.tif", random_scene(1024, 1024))
    out = tmp_path / "out"
    first, second = predict_process(scene, out), predict_process(scene, out)
    results = [(p.wait(timeout=300), *p.communicate()) for p in (first, second)]
    codes = sorted(code for code, _, _ in results)
    assert codes[0] == 0, results
    if codes[1] != 0:  # they met: the later one refuses, naming the other
        refused = next(err for code, _, err in results if code != 0)
        assert "another run (pid" in refused and "Traceback" not in refused, refused
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS
    assert_complete_outputs(out)


def test_a_live_holder_of_the_scene_lock_is_named_and_nothing_is_written(run_dir, scene, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    with lock_held_by_another_process(out, "scene") as pid:
        code, _, err = predict(capsys, run_dir, scene, "--out", out)
    assert_one_line_error(code, err, f"another run (pid {pid})", "wait for it to finish")
    assert [p.name for p in out.iterdir()] == [".scene.lock"]


def test_a_lock_left_by_a_dead_run_is_taken_over(run_dir, scene, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / ".scene.lock").write_text(dead.stdout)
    code, _, err = predict(capsys, run_dir, scene, "--out", out)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS


def test_temporaries_of_a_killed_run_are_removed_by_the_next_run(run_dir, scene, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    left = [out / f".scene_{kind}.4242-0badf00d.part" for kind in ("prob.tif", "mask.tif", "landslides.geojson")]
    other = out / ".other_prob.tif.4242-0badf00d.part"  # another scene's: not ours to remove
    for path in [*left, other]:
        path.write_bytes(b"half")
    assert predict(capsys, run_dir, scene, "--out", out)[0] == 0
    assert not any(p.exists() for p in left) and other.exists()


def test_killed_run_leaves_no_final_file_and_the_next_run_completes(tmp_path):
    scene = write_scene(tmp_path / "scene.tif", random_scene(1024, 1024))
    out = tmp_path / "out"
    run = predict_process(scene, out)
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(p.suffix == ".part" for p in out.iterdir())):
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert not [p.name for p in out.iterdir() if not p.name.startswith(".")]
    assert all(f".{run.pid}-" in p.name for p in out.glob(".*.part"))  # temporaries are named per run
    again = predict_process(scene, out)
    assert again.wait(timeout=300) == 0, again.communicate()
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS
    assert_complete_outputs(out)


def test_truncated_scene_is_reported_and_the_other_scenes_still_run(run_dir, tmp_path, capsys):
    good = [write_scene(tmp_path / f"good{i}.tif", random_scene(96, 96, seed=i)) for i in range(2)]
    bad = truncate(write_scene(tmp_path / "bad.tif", random_scene(256, 256, seed=3)), keep=0.3)
    out = tmp_path / "out"
    code, stdout, err = predict(capsys, run_dir, good[0], bad, good[1], "--out", out)
    assert code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and str(bad) in lines[0] and "truncated" in lines[0]
    assert "1 of 3 scenes failed" in lines[1] and str(bad) in lines[1]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("good")) == sorted(
        f"good{i}_{kind}" for i in range(2) for kind in ("landslides.geojson", "mask.tif", "prob.tif", "summary.json"))
    assert not list(out.glob("bad_*")) and not list(out.glob(".*part*"))


def test_a_single_truncated_scene_is_one_line(run_dir, tmp_path, capsys):
    bad = truncate(write_scene(tmp_path / "bad.tif", random_scene(256, 256)), keep=0.3)
    code, _, err = predict(capsys, run_dir, bad, "--out", tmp_path / "out")
    assert_one_line_error(code, err, "gdcld-zoo predict: error:", str(bad), "truncated")


def test_out_that_is_a_file_is_refused(run_dir, scene, tmp_path, capsys):
    out = tmp_path / "out.txt"
    out.write_text("keep me")
    code, _, err = predict(capsys, run_dir, scene, "--out", out)
    assert_one_line_error(code, err, str(out), "is a file")
    assert out.read_text() == "keep me"


def test_out_in_a_read_only_folder_is_refused(run_dir, scene, read_only_dir, capsys):
    code, _, err = predict(capsys, run_dir, scene, "--out", read_only_dir / "maps")
    assert_one_line_error(code, err, str(read_only_dir / "maps"), "choose a folder you can write to")
