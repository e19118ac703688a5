"""True ground areas of pixels and polygons in any scene CRS.

Emergency teams ask "how many km² failed?", so areas must be ground areas, not
map areas. `GroundArea` picks the method from the scene's CRS and measured
distortion:

* `"planar"`: a projected CRS whose areal scale over the scene stays within
  1 % of true (UTM, national grids, equal-area projections): pixel area × count,
  polygon areas by the shoelace formula in CRS units (converted to metres).
* `"ellipsoidal"`: a geographic CRS (degrees) or a projection that distorts
  area (Web Mercator EPSG:3857 and World Mercator overstate area by
  1 / cos²(latitude), 1.70× at 40°): geometry is projected to a Lambert
  azimuthal equal-area projection on the WGS84 ellipsoid centred on the scene
  (`rasterio.warp.transform`, PROJ), where planar areas are true ground areas.
  Pixel areas are sampled on a grid over the scene and interpolated
  bilinearly; polygon rings are densified before projection.
* `"pixels"`: no CRS: areas are pixel counts (`units == "px"`) with a
  warning; nothing is claimed in m² or km².

Example:
>>> from affine import Affine
>>> area = GroundArea("EPSG:32647", Affine(0.5, 0, 500000, 0, -0.5, 3300000), 100, 100)
>>> area.method, area.pixel_area_sum(np.ones((10, 100), bool), 0)
('planar', 250.0)
"""

import warnings

import numpy as np
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.warp import transform as warp_points

# Largest areal scale error (relative) accepted for pixel area × count.
PLANAR_TOLERANCE = 0.01
# Samples per axis of the pixel-area grid used for distorting CRSs.
GRID_SAMPLES = 17
# Densify polygon rings so that no segment spans more than this many pixels.
DENSIFY_PIXELS = 8


def shoelace(xs, ys):
    """Signed area of a ring, closed (first point repeated) or not; positive counter-clockwise."""
    xs = np.asarray(xs, "float64")
    ys = np.asarray(ys, "float64")
    xs, ys = xs - xs[0], ys - ys[0]  # small numbers keep float64 exact enough
    if xs[-1] != 0 or ys[-1] != 0:
        xs, ys = np.append(xs, 0.0), np.append(ys, 0.0)
    return 0.5 * float(np.dot(xs[:-1], ys[1:]) - np.dot(ys[:-1], xs[1:]))


def _interpolation_matrix(positions, samples):
    """(len(positions), len(samples)) weights of linear interpolation, clamped at the ends."""
    matrix = np.zeros((len(positions), len(samples)), "float64")
    if len(samples) == 1:
        matrix[:, 0] = 1
        return matrix
    index = np.clip(np.searchsorted(samples, positions) - 1, 0, len(samples) - 2)
    frac = np.clip((positions - samples[index]) / (samples[index + 1] - samples[index]), 0, 1)
    rows = np.arange(len(positions))
    matrix[rows, index] = 1 - frac
    matrix[rows, index + 1] += frac
    return matrix


def _apply(t, col, row):
    """Map pixel coordinates (col, row), scalars or arrays, through affine `t`."""
    return t.a * col + t.b * row + t.c, t.d * col + t.e * row + t.f


def _densify(ring, step):
    """Insert points along each segment of `ring` so segments are at most `step` long."""
    ring = np.asarray(ring, "float64")
    out = [ring[:1]]
    for a, b in zip(ring[:-1], ring[1:]):
        n = max(1, int(np.ceil(np.hypot(*(b - a)) / step)))
        t = (np.arange(1, n + 1) / n)[:, None]
        out.append(a + t * (b - a))
    return np.concatenate(out)


class GroundArea:
    """Ground areas of a scene's pixels and of polygons in its CRS.

    Args:
        crs: The scene CRS (anything `rasterio.crs.CRS` accepts) or None.
        transform: The scene's affine transform.
        width, height: Scene size in pixels.

    Attributes:
        method: `"planar"`, `"ellipsoidal"` or `"pixels"` (see module docstring).
        units: `"m2"`, or `"px"` when the scene has no CRS.
        pixel_area: Nominal area of one pixel in `units` (mean over the scene
            for the ellipsoidal method).
    """

    def __init__(self, crs, transform, width, height):
        self.transform = transform
        self.width, self.height = width, height
        self.crs = CRS.from_user_input(crs) if crs else None
        self.units = "m2"
        self._grid = None
        self.pixel_area = abs(transform.determinant)
        if self.crs is None:
            warnings.warn(
                "The scene has no CRS: areas are reported in pixels and no km² are claimed. "
                "Georeference the scene (e.g. gdal_edit.py -a_srs) for ground areas.",
                stacklevel=3,
            )
            self.method, self.units, self.pixel_area = "pixels", "px", 1.0
            return
        unit = self.crs.linear_units_factor[1] if self.crs.is_projected else None
        try:
            self._laea, grid = self._sample_pixel_areas()
        except (CRSError, ValueError, RuntimeError) as error:
            if unit is None:
                warnings.warn(f"Cannot relate {self.crs} to the ellipsoid ({error}); areas are in pixels.", stacklevel=3)
                self.method, self.units, self.pixel_area = "pixels", "px", 1.0
                return
            warnings.warn(f"Cannot check the area distortion of {self.crs} ({error}); using planar areas.", stacklevel=3)
            self.method, self.pixel_area = "planar", self.pixel_area * unit**2
            self._unit = unit
            return
        self._unit = unit
        if unit is not None and np.all(np.abs(grid / (self.pixel_area * unit**2) - 1) < PLANAR_TOLERANCE):
            self.method, self.pixel_area = "planar", self.pixel_area * unit**2
        else:
            self.method, self._grid = "ellipsoidal", grid
            self.pixel_area = float(grid.mean())
            self._wx = _interpolation_matrix(np.arange(width) + 0.5, self._sample_cols)

    def _sample_pixel_areas(self):
        """The scene-centred LAEA CRS and ground areas (m²) of pixels on a sample grid."""
        t = self.transform
        cx, cy = _apply(t, self.width / 2, self.height / 2)
        lon, lat = warp_points(self.crs, "EPSG:4326", [cx], [cy])
        if not np.isfinite(lon[0]) or not np.isfinite(lat[0]):
            raise ValueError("the scene centre has no longitude/latitude")
        laea = CRS.from_proj4(f"+proj=laea +lat_0={lat[0]} +lon_0={lon[0]} +ellps=WGS84 +units=m +no_defs")
        self._sample_rows = np.linspace(0.5, self.height - 0.5, min(GRID_SAMPLES, self.height))
        self._sample_cols = np.linspace(0.5, self.width - 0.5, min(GRID_SAMPLES, self.width))
        rows, cols = np.meshgrid(self._sample_rows, self._sample_cols, indexing="ij")
        corners = [(-0.5, -0.5), (-0.5, 0.5), (0.5, 0.5), (0.5, -0.5)]  # (dy, dx), counter-clockwise in pixels
        xs, ys = [], []
        for dy, dx in corners:
            x, y = _apply(t, cols.ravel() + dx, rows.ravel() + dy)
            xs.append(x)
            ys.append(y)
        lx, ly = warp_points(self.crs, laea, np.concatenate(xs), np.concatenate(ys))
        lx = np.asarray(lx).reshape(4, -1)
        ly = np.asarray(ly).reshape(4, -1)
        if not (np.all(np.isfinite(lx)) and np.all(np.isfinite(ly))):
            raise ValueError("part of the scene falls outside the CRS's valid area")
        areas = np.array([abs(shoelace(lx[:, i], ly[:, i])) for i in range(lx.shape[1])])
        return laea, areas.reshape(rows.shape)

    def pixel_area_sum(self, selected, row_offset):
        """Total ground area (in `units`) of the True pixels of rows `row_offset...`.

        Args:
            selected: (rows, width) boolean array, a strip of the scene.
            row_offset: Scene row of the strip's first row.
        """
        if self._grid is None:
            return float(np.count_nonzero(selected)) * self.pixel_area
        rows = np.arange(row_offset, row_offset + selected.shape[0]) + 0.5
        wy = _interpolation_matrix(rows, self._sample_rows)
        per_sample = wy.T @ (selected.astype("float32") @ self._wx.astype("float32"))
        return float(np.sum(per_sample * self._grid))

    def polygon_area(self, geometry):
        """Ground area (in `units`) of a GeoJSON Polygon/MultiPolygon in the scene CRS.

        With no CRS, coordinates are taken as the scene transform's units and the
        result is in pixels.
        """
        polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
        total = 0.0
        for rings in polygons:
            for i, ring in enumerate(rings):
                area = abs(self._ring_area(ring))
                total += area if i == 0 else -area
        return total

    def _ring_area(self, ring):
        ring = np.asarray(ring, "float64")
        if self.method == "pixels":
            return shoelace(ring[:, 0], ring[:, 1]) / abs(self.transform.determinant)
        if self.method == "planar":
            return shoelace(ring[:, 0], ring[:, 1]) * self._unit**2
        step = DENSIFY_PIXELS * np.sqrt(abs(self.transform.determinant))
        dense = _densify(ring, step)
        x, y = warp_points(self.crs, self._laea, dense[:, 0], dense[:, 1])
        return shoelace(x, y)
