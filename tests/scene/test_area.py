import math

import numpy as np
import pytest
from affine import Affine
from rasterio.warp import transform as warp_points

from gdcld_zoo.scene.area import GroundArea

A, E2 = 6378137.0, 0.00669437999014  # WGS84 semi-major axis and squared eccentricity


def radii(lat_deg):
    """Meridional (M) and prime-vertical (N) radii of curvature of WGS84 at a latitude."""
    s2 = math.sin(math.radians(lat_deg)) ** 2
    return A * (1 - E2) / (1 - E2 * s2) ** 1.5, A / math.sqrt(1 - E2 * s2)


def square(x0, y0, side):
    return {"type": "Polygon", "coordinates": [[(x0, y0), (x0 + side, y0), (x0 + side, y0 - side), (x0, y0 - side), (x0, y0)]]}


def test_utm_area_is_pixel_area_times_count():
    area = GroundArea("EPSG:32647", Affine(0.5, 0, 500000, 0, -0.5, 3300000), 300, 200)
    assert area.method == "planar" and area.units == "m2"
    selected = np.zeros((200, 300), bool)
    selected[10:20, 5:45] = True
    assert area.pixel_area_sum(selected, 0) == 400 * 0.25
    assert area.polygon_area(square(500010, 3299990, 10)) == pytest.approx(100.0)


def test_geographic_pixel_area_is_computed_on_the_ellipsoid():
    step = 1e-4  # degrees, about 11 m
    area = GroundArea("EPSG:4326", Affine(step, 0, 99.0, 0, -step, 40.0 + 100 * step), 200, 200)
    assert area.method == "ellipsoidal"
    m, n = radii(40.0)
    expected = m * n * math.cos(math.radians(40.0)) * math.radians(step) ** 2
    selected = np.zeros((200, 200), bool)
    selected[95:105, 95:105] = True  # around 40 N
    assert area.pixel_area_sum(selected, 0) == pytest.approx(100 * expected, rel=1e-3)
    polygon = square(99.0 + 95 * step, 40.0 + 5 * step, 10 * step)
    assert area.polygon_area(polygon) == pytest.approx(100 * expected, rel=1e-3)


@pytest.mark.parametrize("crs", ["EPSG:3857", "EPSG:3395"])
def test_mercator_scene_at_40_degrees_reports_true_area_not_1_7_times(crs):
    (x0,), (y0,) = warp_points("EPSG:4326", crs, [99.0], [40.0])
    area = GroundArea(crs, Affine(1.0, 0, x0, 0, -1.0, y0 + 100), 200, 200)
    assert area.method == "ellipsoidal"
    selected = np.ones((200, 200), bool)
    mapped = 200 * 200 * 1.0
    true = area.pixel_area_sum(selected, 0)
    m, n = radii(40.0)
    if crs == "EPSG:3857":  # spherical Mercator formulas on WGS84 latitudes
        scale = A**2 / (m * n * math.cos(math.radians(40.0)) ** 2)
    else:  # ellipsoidal Mercator: conformal, areal scale = k² = (N cos φ / a)^-2
        scale = (A / (n * math.cos(math.radians(40.0)))) ** 2
    assert mapped / true == pytest.approx(scale, rel=2e-3)
    assert 1.6 < mapped / true < 1.8  # the map overstates; we do not
    assert area.polygon_area(square(x0, y0 + 100, 200)) == pytest.approx(true, rel=2e-3)


def test_scene_without_crs_reports_pixels_with_a_warning():
    with pytest.warns(UserWarning, match="no CRS"):
        area = GroundArea(None, Affine.identity(), 50, 40)
    assert (area.method, area.units) == ("pixels", "px")
    assert area.pixel_area_sum(np.ones((4, 50), bool), 0) == 200
    assert area.polygon_area(square(0, 10, 5)) == pytest.approx(25)
