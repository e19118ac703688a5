import numpy as np
import pytest

from gdcld_zoo.scene import SceneError, evaluate_scenes
from gdcld_zoo.scene.evaluate import parse_scene_pairs
from tests.scene.scenes import PixelEngine, write_scene


def scene_and_label(tmp_path, name):
    scene = np.full((3, 100, 120), 40, "uint8")
    scene[:, 10:30, 10:60] = 220  # predicted landslide: 1000 px
    label = np.zeros((1, 100, 120), "uint8")
    label[0, 10:30, 10:50] = 1  # 800 px true positives, 200 px false positives
    label[0, 80:90, 100:110] = 1  # 100 px false negatives
    label[0, 0:5, :] = 255  # ignored rows
    return (
        write_scene(tmp_path / f"{name}.tif", scene),
        write_scene(tmp_path / f"{name}_label.tif", label),
    )


def test_whole_scene_metrics_follow_the_confusion_matrix(tmp_path):
    one = scene_and_label(tmp_path, "one")
    two = scene_and_label(tmp_path, "two")
    report = evaluate_scenes(PixelEngine(), [f"{one[0]}:{one[1]}", two], tile_size=64, overlap=16, progress=False)
    tn = 95 * 120 - 1000 - 100
    assert report["scenes"][0]["confusion_matrix"] == [[tn, 200], [100, 800]]
    assert report["confusion_matrix"] == [[2 * tn, 400], [200, 1600]]
    overall = report["overall"]
    assert overall["precision"] == pytest.approx(0.8)
    assert overall["recall"] == pytest.approx(800 / 900)
    assert overall["f1"] == pytest.approx(1600 / 1900)
    assert overall["iou"] == pytest.approx(800 / 1100)
    assert report["model_tag"] == "pixel-test" and report["threshold"] == 0.5


def test_label_of_another_size_is_an_error(tmp_path):
    scene, _ = scene_and_label(tmp_path, "one")
    small = write_scene(tmp_path / "small.tif", np.zeros((1, 50, 50), "uint8"))
    with pytest.raises(SceneError, match="labels must be on the scene's grid"):
        evaluate_scenes(PixelEngine(), [(scene, small)], tile_size=64, progress=False)


def test_scene_pairs_need_a_label():
    with pytest.raises(SceneError, match="SCENE:LABEL"):
        parse_scene_pairs(["scene.tif"])


def test_scene_report_table_lists_each_scene_and_the_overall_row(tmp_path):
    from gdcld_zoo.scene.evaluate import format_scene_report

    pair = scene_and_label(tmp_path, "luding")
    table = format_scene_report(evaluate_scenes(PixelEngine(), [pair], tile_size=64, progress=False))
    lines = table.splitlines()
    assert lines[0] == "pixel-test on 1 scene(s) (threshold 0.5)"
    assert lines[3].split()[:4] == ["luding.tif", "80.00", f"{100 * 800 / 900:.2f}", f"{100 * 1600 / 1900:.2f}"]
    assert lines[-1].startswith("Overall")
