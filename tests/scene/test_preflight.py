"""preflight: a run's weights, settings and scenes checked without a model, every problem at once."""

import doctest

import gdcld_zoo.scene.preflight
from gdcld_zoo.scene.preflight import preflight
from tests.scene.scenes import random_scene, write_scene


def test_docstring_example():
    assert doctest.testmod(gdcld_zoo.scene.preflight).failed == 0


def test_good_inputs_have_no_problem(tmp_path):
    scene = write_scene(tmp_path / "scene.tif", random_scene(64, 64))
    assert preflight("demo", [scene], tile_size=64, overlap=16) == ([], [])


def test_weights_and_settings_problems_name_no_scene(tmp_path):
    scene = write_scene(tmp_path / "bgrn.tif", random_scene(64, 64, bands=4))
    problems, bad = preflight("no_such_weights", [scene], bands="3,2,x")
    assert bad == [] and len(problems) == 2
    assert "Unknown weight" in problems[0] and "no_such_weights" in problems[0]
    assert "bands must be comma-separated" in problems[1]
    problems, bad = preflight("demo", [scene], tile_size=64, overlap=64)
    assert bad == [scene] and "overlap must be in [0, tile_size=64)" in problems[0] and "4 bands" in problems[1]
