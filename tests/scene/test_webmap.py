"""webmap: the viewer's map pictures in their place on Earth, polygons with their numbers, offline assets."""

import doctest
import json
import re

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.warp import transform_bounds

import gdcld_zoo.scene.webmap
from gdcld_zoo.data.synthetic import write_synthetic_scene
from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.scene import overview, predict_scene, webmap
from tests.extras import require
from tests.scene.scenes import PixelEngine, random_scene, write_scene

require("folium")


def test_docstring_example():
    assert doctest.testmod(gdcld_zoo.scene.webmap).failed == 0


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    """A synthetic UTM scene, its label and a probability map of it (pixel brightness)."""
    folder = tmp_path_factory.mktemp("webmap")
    scene, label = write_synthetic_scene(folder / "scene.tif", 128, 160, seed=2)
    result = predict_scene(PixelEngine(), scene, folder / "out", tile_size=64, overlap=16, progress=False)
    return scene, label, result


def test_layers_lie_where_the_scene_is_on_earth(mapped):
    scene, label, result = mapped
    layers, bounds = webmap.picture_layers(result.outputs["prob.tif"], 0.5, 0.6, scene, (1, 2, 3), label)
    assert [name for name, _, _ in layers] == ["Scene", "Landslide probability", "Mask at threshold 0.50",
                                              "Errors against the label (TP/FP/FN)"]
    assert [shown for _, _, shown in layers] == [True, False, False, True]
    with rasterio.open(scene) as dataset:
        west, south, east, north = transform_bounds(dataset.crs, "EPSG:4326", *dataset.bounds)
    np.testing.assert_allclose(np.ravel(bounds), [south, west, north, east], atol=2e-6)
    mask = layers[2][1]
    assert mask.dtype == np.uint8 and mask.shape[-1] == 4
    assert set(np.unique(mask[..., 3])) <= {0, round(0.6 * 255)}
    errors = layers[3][1]
    colours = {tuple(c) for c in errors[errors[..., 3] > 0][:, :3]}
    assert colours and colours <= {overview.ERROR_COLOURS[k] for k in ("TP", "FP", "FN")}


def test_a_scene_without_crs_has_no_map(tmp_path):
    path = write_scene(tmp_path / "plain.tif", random_scene(64, 64), crs=None)
    with pytest.warns(UserWarning, match="no CRS"):
        result = predict_scene(PixelEngine(), path, tmp_path / "out", tile_size=64, progress=False)
    with pytest.raises(InvalidInputError, match="no CRS"):
        webmap.picture_layers(result.outputs["prob.tif"], 0.5, 0.5)


def test_mean_probability_of_each_polygon(mapped):
    _, _, result = mapped
    polygons = json.loads(result.outputs["landslides.geojson"].read_text())
    means = webmap.mean_probabilities(polygons, result.outputs["prob.tif"])
    assert means and set(means) <= {f["properties"]["id"] for f in polygons["features"]}
    assert all(0.5 - 1 / 254 <= m <= 1.0 for m in means.values())  # every polygon is above the threshold


def test_map_has_its_controls_and_no_web_address_without_a_basemap(mapped):
    scene, label, result = mapped
    layers, bounds = webmap.picture_layers(result.outputs["prob.tif"], 0.5, 0.5, scene, (1, 2, 3), label)
    polygons = json.loads(result.outputs["landslides.geojson"].read_text())
    for feature in polygons["features"]:
        feature["properties"]["area"] = webmap.format_area(feature["properties"]["area_m2"])
    html = webmap.build_map(layers, bounds, polygons, "None", (["id", "area"], ["landslide", "area"])).get_root().render()
    assert not re.findall(r"https?://(?!www\.w3\.org)", html)  # Leaflet itself is inline
    assert "L.control.scale" in html and "gdcld-coordinates" in html and "Landslide probability" in html
    assert html.count("L.imageOverlay") == 4 and "Errors against the label" in html
    assert '"landslide"' in html or "landslide" in html.split("geoJsonTooltip")[-1]
    with_basemap = webmap.build_map(layers, bounds, polygons, "OpenStreetMap").get_root().render()
    assert "tile.openstreetmap.org" in with_basemap


def test_inventory_polygons_carry_readable_tooltips(tmp_path):
    from gdcld_zoo.event.geometry import equal_area_crs
    from gdcld_zoo.event.inventory import Inventory, read_inventory, write_inventory

    records = [{"id": 1, "area_m2": 12345.0, "probability_mean": 0.8123, "probability_max": 0.9, "scenes": "A;B",
                "n_scenes": 2, "centroid_lon": 99.0, "centroid_lat": 29.8}]
    write_inventory(Inventory(equal_area_crs(99.0, 29.8), [shapely.box(0, 0, 150, 82.3)], records, 1e5), tmp_path)
    geojson = webmap.inventory_polygons(read_inventory(tmp_path / "inventory.gpkg"))
    (feature,) = geojson["features"]
    assert feature["properties"] == {"id": 1, "area": "1.23 ha", "mean probability": "0.81", "scenes": "A, B"}
    lon, lat = np.array(feature["geometry"]["coordinates"][0]).T
    assert 98.9999 < lon.min() < lon.max() < 99.01 and 29.7999 < lat.min() < lat.max() < 29.81  # 150 m x 82 m
    assert set(webmap.INVENTORY_TOOLTIP[0]) == set(feature["properties"])
    fmap = webmap.build_map([], [[lat.min(), lon.min()], [lat.max(), lon.max()]], geojson,
                            polygon_tooltip=webmap.INVENTORY_TOOLTIP)
    assert "Landslides (polygons)" in fmap.get_root().render()
