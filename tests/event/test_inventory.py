"""`read_inventory`: an inventory.gpkg read back with its polygons in EPSG:4326, checked, filtered by area."""

import numpy as np
import pyogrio
import pytest
import shapely

from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.event.geometry import equal_area_crs
from gdcld_zoo.event.inventory import Inventory, read_inventory, write_inventory
from tests.reliability.bad_files import truncate

CENTRE = (99.0, 29.8)


def record(i, area, scenes):
    return {"id": i, "area_m2": area, "probability_mean": 0.8, "probability_max": 0.9, "scenes": scenes,
            "n_scenes": len(scenes.split(";")), "centroid_lon": CENTRE[0], "centroid_lat": CENTRE[1]}


@pytest.fixture
def gpkg(tmp_path):
    """Two landslides in the event's equal-area CRS: 400 m² seen by A and B, 25 m² by B only."""
    polygons = [shapely.box(0, 0, 20, 20), shapely.box(100, 0, 105, 5)]
    inventory = Inventory(equal_area_crs(*CENTRE), polygons, [record(1, 400.0, "A;B"), record(2, 25.0, "B")], 1e4)
    return write_inventory(inventory, tmp_path)["inventory.gpkg"]


def test_polygons_come_back_in_degrees_where_they_were(gpkg):
    inventory = read_inventory(gpkg)
    assert [r["id"] for r in inventory.records] == [1, 2] and type(inventory.records[0]["id"]) is int
    (south, west), (north, east) = inventory.bounds
    assert south == pytest.approx(CENTRE[1], abs=1e-6) and west == pytest.approx(CENTRE[0], abs=1e-6)
    assert 0 < east - west < 0.002 and 0 < north - south < 0.001  # 105 m x 20 m at 29.8° N
    assert inventory.area_m2 == 425.0 and inventory.scene_counts() == {"A": 1, "B": 2}


def test_minimum_area_keeps_the_larger_landslides(gpkg):
    inventory = read_inventory(gpkg)
    assert [r["id"] for r in inventory.at_least(100).records] == [1]
    assert inventory.at_least(0).records == inventory.records
    empty = inventory.at_least(1e6)
    assert empty.records == [] and empty.bounds is None and empty.area_m2 == 0.0


def test_an_empty_inventory_reads_as_no_landslides(tmp_path):
    inventory = read_inventory(write_inventory(Inventory(None, [], [], 0.0), tmp_path)["inventory.gpkg"])
    assert inventory.records == [] and inventory.bounds is None and inventory.scene_counts() == {}


def write_foreign(path, layer, field):
    pyogrio.raw.write(path, shapely.to_wkb(np.array([shapely.box(0, 0, 1, 1)], dtype=object)),
                      [np.array([1])], [field], layer=layer, driver="GPKG", geometry_type="Polygon",
                      crs="EPSG:4326")
    return path


def test_files_that_are_not_an_inventory_are_one_line_errors(gpkg, tmp_path):
    truncated = tmp_path / "cut.gpkg"
    truncated.write_bytes(gpkg.read_bytes())
    truncate(truncated, keep=0.3)
    cases = [(truncated, "cut.gpkg is not a readable GeoPackage"),
             (tmp_path / "nowhere.gpkg", "nowhere.gpkg is not a readable GeoPackage"),
             (write_foreign(tmp_path / "roads.gpkg", "roads", "id"), "has no layer 'landslides' (it has: roads)"),
             (write_foreign(tmp_path / "other.gpkg", "landslides", "name"), "has no column id, area_m2")]
    for path, message in cases:
        with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
            read_inventory(path)
        assert "\n" not in str(info.value) and "SELECT" not in str(info.value)
