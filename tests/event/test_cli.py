"""The issue's command, in process and on a local 2-process Dask cluster, with the demo weights."""

import json

import numpy as np
import pyogrio
import pytest
import rasterio

from gdcld_zoo.cli import main
from tests.event.event_scenes import RES, ROWS, TOP
from tests.event.test_mapping import write_aoi

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def both_runs(event, tmp_path_factory):
    """`gdcld-zoo predict demo A.tif http://.../B.tif item.json --aoi aoi.geojson` in process and on 2 workers."""
    folder = tmp_path_factory.mktemp("cli")
    aoi = write_aoi(folder / "aoi.geojson", (500000.0, TOP - ROWS * RES, 500240.0, TOP), crs="EPSG:4326")
    runs = {}
    for name, extra in (("in_process", []), ("cluster", ["--scheduler", "processes:2"])):
        out = folder / name
        args = ["predict", "demo", str(event["A"]), event["B_url"], str(event["item"]), "--aoi", str(aoi),
                "--out", str(out), "--tile-size", "64", "--block-tiles", "2", "--quiet", *extra]
        runs[name] = (main(args), out)
    return runs


def test_the_event_command_writes_one_inventory(both_runs, capsys):
    code, out = both_runs["in_process"]
    assert code == 0
    report = json.loads((out / "inventory.json").read_text())
    assert [s["status"] for s in report["scenes"]] == ["done", "done", "done"]
    assert report["model_tag"] == "demo" and report["options"]["aoi"].endswith("aoi.geojson")
    assert pyogrio.read_info(out / "inventory.gpkg", layer="landslides")["features"] == report["landslide_count"]


def test_a_two_worker_dask_cluster_gives_the_same_masks_and_polygons(both_runs):
    (code_a, a), (code_b, b) = both_runs["in_process"], both_runs["cluster"]
    assert code_a == code_b == 0
    report_a, report_b = (json.loads((d / "inventory.json").read_text()) for d in (a, b))
    assert report_b["options"]["scheduler"] == "processes:2"
    assert [json.loads((b / f"{s}_summary.json").read_text())["event"]["workers"] for s in "ABC"] == [2, 2, 2]
    for scene in "ABC":
        for kind in ("mask", "prob"):
            with rasterio.open(a / f"{scene}_{kind}.tif") as x, rasterio.open(b / f"{scene}_{kind}.tif") as y:
                np.testing.assert_array_equal(x.read(), y.read())
    for key in ("landslide_count", "landslide_area_km2", "mapped_area_km2", "largest_landslide"):
        assert report_a[key] == report_b[key]
    geometry_a, geometry_b = (pyogrio.raw.read(d / "inventory.gpkg")[2] for d in (a, b))
    assert list(geometry_a) == list(geometry_b)
