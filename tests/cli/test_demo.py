"""`gdcld-zoo demo`: maps a synthetic scene offline and prints where and how well."""

import re
from pathlib import Path

import pytest

from gdcld_zoo.cli import main
from gdcld_zoo.weights import sources


def test_demo_command_maps_and_scores_a_synthetic_scene(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(sources.ENV_HOME, str(tmp_path / "home"))
    monkeypatch.delenv(sources.ENV_REGISTRY, raising=False)
    monkeypatch.setenv(sources.ENV_OFFLINE, "1")
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--size", "256", "--quiet"]) == 0
    printed = capsys.readouterr().out
    names = ["demo_scene.tif", "demo_scene_label.tif", "demo_scene_prob.tif", "demo_scene_mask.tif",
             "demo_scene_landslides.geojson", "demo_scene_summary.json"]
    for name in names:
        assert (out / name).is_file()
        assert str(out / name) in printed
    landslides = re.search(r"Landslides: (\d+), area ([0-9.]+) km2", printed)
    assert landslides and int(landslides.group(1)) >= 1 and float(landslides.group(2)) > 0
    scores = dict(re.findall(r"(precision|recall|F1|mIoU) ([0-9.]+)%", printed))
    assert set(scores) == {"precision", "recall", "F1", "mIoU"}
    assert float(scores["F1"]) > 80 and float(scores["mIoU"]) > 80
    assert "demonstration model, synthetic training data" in printed


def test_demo_command_refuses_a_too_small_size(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--out", str(tmp_path), "--size", "32"])
    assert exit_info.value.code == 2
    assert "--size" in capsys.readouterr().err
    assert not any(Path(tmp_path).iterdir())
