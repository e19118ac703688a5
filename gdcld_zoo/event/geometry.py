"""Vector geometry across CRSs for event mapping: reprojection, footprints, equal-area frames.

Geometries are shapely 2 objects (or arrays of them); coordinates move between
CRSs with PROJ through `rasterio.warp.transform`, one call per array. Event
areas are measured in a Lambert azimuthal equal-area projection on the WGS84
ellipsoid centred on the event (`equal_area_crs`), where planar areas are
ground areas, the method `gdcld_zoo.scene.area.GroundArea` uses for scenes.

Example:
>>> import shapely
>>> box = reproject(shapely.box(500000, 3300000, 500010, 3300010), "EPSG:32647", "EPSG:4326")
>>> [round(v, 4) for v in box.bounds]
[99.0, 29.8305, 99.0001, 29.8306]
"""

import numpy as np
import shapely
from rasterio.crs import CRS
from rasterio.warp import transform as warp_points

WGS84 = CRS.from_epsg(4326)


def reproject(geometries, src_crs, dst_crs):
    """Shapely geometries (one or an array) with coordinates moved from `src_crs` to `dst_crs`."""
    src, dst = CRS.from_user_input(src_crs), CRS.from_user_input(dst_crs)
    if src == dst:
        return geometries

    def move(xy):
        if len(xy) == 0:
            return xy
        x, y = warp_points(src, dst, xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geometries, move)


def equal_area_crs(lon, lat):
    """Lambert azimuthal equal-area CRS on the WGS84 ellipsoid centred on (`lon`, `lat`)."""
    return CRS.from_proj4(f"+proj=laea +lat_0={lat:.6f} +lon_0={lon:.6f} +ellps=WGS84 +units=m +no_defs")


def _apply(t, cols, rows):
    """Scene coordinates of pixel positions (arrays) through the affine transform `t`."""
    return t.a * cols + t.b * rows + t.c, t.d * cols + t.e * rows + t.f


def footprint(transform, width, height, points_per_side=16):
    """The scene's outline (a polygon in its CRS), with `points_per_side` points along each edge."""
    t = np.linspace(0, 1, points_per_side, endpoint=False)
    cols = np.concatenate([t * width, np.full_like(t, width), (1 - t) * width, np.zeros_like(t)])
    rows = np.concatenate([np.zeros_like(t), t * height, np.full_like(t, height), (1 - t) * height])
    xs, ys = _apply(transform, cols, rows)
    return shapely.Polygon(np.column_stack([xs, ys]))


def pixel_polygon(transform, row0, col0, rows, cols):
    """The polygon of the pixel rectangle [row0, row0 + rows) × [col0, col0 + cols) in scene coordinates."""
    cols_ = np.array([col0, col0 + cols, col0 + cols, col0])
    rows_ = np.array([row0, row0, row0 + rows, row0 + rows])
    xs, ys = _apply(transform, cols_, rows_)
    return shapely.Polygon(np.column_stack([xs, ys]))
