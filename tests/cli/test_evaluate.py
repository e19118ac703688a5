"""`gdcld-zoo evaluate --scenes`: the paper's whole-scene test protocol from the command line."""

import json

from gdcld_zoo.cli import main
from gdcld_zoo.data.synthetic import write_synthetic_scene


def test_scenes_print_per_scene_and_overall_metrics(tmp_path, capsys):
    scene, label = tmp_path / "scene.tif", tmp_path / "label.tif"
    write_synthetic_scene(scene, 256, 192, label_path=label, seed=5)
    report_path = tmp_path / "report.json"
    assert main(["evaluate", "demo", "--scenes", f"{scene}:{label}", "--json", str(report_path)]) == 0
    out = capsys.readouterr().out
    assert "scene.tif" in out and "Overall" in out
    report = json.loads(report_path.read_text())
    assert 0.7 < report["overall"]["miou"] <= 1.0  # the demo model on its own synthetic domain


def test_data_and_scenes_are_exclusive(tmp_path, capsys):
    assert main(["evaluate", "demo"]) == 2
    assert "either --data" in capsys.readouterr().err
