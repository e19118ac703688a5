"""`gdcld-zoo evaluate` with bad labels, truncated files, bad numbers and unwritable reports."""

import numpy as np
import pytest
from affine import Affine

from gdcld_zoo.cli import main
from gdcld_zoo.data import write_synthetic_dataset
from gdcld_zoo.preprocessing import Preprocessing
from tests.reliability.bad_files import assert_one_line_error, rewrite_pixels, truncate
from tests.reliability.models import tiny_run
from tests.scene.scenes import random_scene, write_scene


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("run"))


@pytest.fixture
def scene_pair(tmp_path):
    scene = write_scene(tmp_path / "scene.tif", random_scene(96, 96))
    label = write_scene(tmp_path / "scene_label.tif", (random_scene(96, 96, bands=1) > 128).astype("uint8"))
    return scene, label


@pytest.fixture
def root(tmp_path):
    return write_synthetic_dataset(tmp_path / "data", n_train=1, n_val=3, tile_size=64, seed=0)


def evaluate(capsys, *argv):
    code = main(["evaluate", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_float_scene_label_is_refused_with_its_values(run_dir, scene_pair, capsys):
    scene, label = scene_pair
    rewrite_pixels(label, lambda a: np.where(a > 0, 0.7, 0.0).astype("float32"))
    code, out, err = evaluate(capsys, run_dir, "--scenes", f"{scene}:{label}")
    assert_one_line_error(code, err, "gdcld-zoo evaluate: error:", str(label), "0.7")
    assert "Overall" not in out


def test_scene_label_georeferenced_elsewhere_is_refused(run_dir, scene_pair, capsys):
    scene, label = scene_pair
    moved = Affine(0.5, 0.0, 500100.0, 0.0, -0.5, 3300000.0)
    write_scene(label, (random_scene(96, 96, bands=1) > 128).astype("uint8"), transform=moved)
    code, out, err = evaluate(capsys, run_dir, "--scenes", f"{scene}:{label}")
    assert_one_line_error(code, err, str(label), "transform differs")


@pytest.mark.parametrize("which", ["scene", "label"])
def test_truncated_scene_or_label_is_one_line(run_dir, scene_pair, capsys, which):
    scene, label = scene_pair
    bad = truncate(scene if which == "scene" else label, keep=0.3)
    code, out, err = evaluate(capsys, run_dir, "--scenes", f"{scene}:{label}")
    assert_one_line_error(code, err, str(bad))


def test_tile_evaluation_refuses_a_label_with_another_transform(run_dir, root, capsys):
    """`train` refuses it (data.checks); evaluation used to compare the pixels anyway."""
    label = root / "val" / "labels" / "tile_00002.tif"
    moved = Affine(0.5, 0.0, 400000.0, 0.0, -0.5, 3300000.0)
    write_scene(label, (random_scene(64, 64, bands=1) > 128).astype("uint8"), transform=moved)
    code, out, err = evaluate(capsys, run_dir, "--data", root)
    assert_one_line_error(code, err, str(label), "transform")
    assert "Overall" not in out


def test_nan_in_a_float_tile_is_refused_not_counted_as_background(tmp_path, root, capsys):
    run_dir = tiny_run(tmp_path / "float-run", preprocessing=Preprocessing(dtype="float32", scale=(255.0,) * 3))
    for image in (root / "val" / "images").iterdir():
        rewrite_pixels(image, lambda a: a, dtype="float32")
    bad = rewrite_pixels(root / "val" / "images" / "tile_00001.tif",
                         lambda a: np.where(np.arange(a.shape[-1]) < 4, np.nan, a).astype("float32"))
    code, out, err = evaluate(capsys, run_dir, "--data", root)
    assert_one_line_error(code, err, str(bad), "NaN")
    assert "Overall" not in out


@pytest.mark.parametrize("flag", ["--batch-size", "--jobs"])
def test_zero_batch_size_or_jobs_is_refused_by_the_parser(run_dir, root, capsys, flag):
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(run_dir), "--data", str(root), flag, "0"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and f"{flag}: must be a positive integer" in err and "Traceback" not in err


@pytest.mark.parametrize("option", ["--json", "--csv"])
def test_report_into_a_read_only_folder_is_refused_before_the_model_runs(run_dir, root, read_only_dir, capsys,
                                                                          option):
    target = read_only_dir / "report.out"
    code, out, err = evaluate(capsys, run_dir, "--data", root, option, target)
    assert_one_line_error(code, err, str(read_only_dir), "choose a folder you can write to")
    assert out == "" and not target.exists()


def test_report_path_that_is_a_folder_is_refused(run_dir, root, tmp_path, capsys):
    code, out, err = evaluate(capsys, run_dir, "--data", root, "--json", tmp_path)
    assert_one_line_error(code, err, str(tmp_path), "is a folder")
