"""Areas of interest: polygons from a GeoJSON or GeoPackage file, in any CRS.

An event run with an AOI predicts only the windows that touch it, clips the
outputs to it (pixels outside become nodata) and skips scenes that miss it.
The file is read with pyogrio; every polygon of its first layer (or `layer`)
is merged into one (multi)polygon with shapely. The AOI is densified before
it moves to a scene's CRS, so its edges stay true to the original lines.

Example:
>>> aoi = AreaOfInterest.read("aoi.geojson")  # doctest: +SKIP
>>> aoi.in_crs("EPSG:32647").area  # doctest: +SKIP
"""

import hashlib
from pathlib import Path

import pyogrio
import shapely

from gdcld_zoo.event.geometry import reproject
from gdcld_zoo.event.sources import EventError

# Densify AOI edges to this fraction of the AOI's extent before reprojection.
DENSIFY_FRACTION = 1e-3


class AreaOfInterest:
    """Polygons in a CRS, reprojected (and cached) per scene CRS.

    Args:
        geometry: A shapely Polygon or MultiPolygon.
        crs: Its CRS.
        name: Where it came from (for messages and `inventory.json`).
        digest: sha256 of the file it was read from (restart fingerprint).
    """

    def __init__(self, geometry, crs, name="aoi", digest=None):
        self.geometry, self.crs, self.name, self.digest = geometry, crs, name, digest
        self._cache = {}

    @classmethod
    def read(cls, path, layer=None):
        """Read the polygons of a GeoJSON/GeoPackage file; `EventError` when there are none."""
        path = Path(path)
        if not path.is_file():
            raise EventError(f"AOI {path}: no such file; pass a GeoJSON or GeoPackage of polygons.")
        try:
            meta, _, wkb, _ = pyogrio.raw.read(path, layer=layer, read_geometry=True)
        except (RuntimeError, ValueError) as error:  # pyogrio's DataSourceError, DataLayerError, ...
            raise EventError(f"AOI {path}: not a vector file GDAL reads ({error}).") from None
        geometries = shapely.from_wkb(wkb) if wkb is not None else []
        polygons = [g for g in geometries if g is not None and g.geom_type in ("Polygon", "MultiPolygon")]
        if not polygons:
            raise EventError(f"AOI {path}: no polygon in layer {layer or 'one'}; the AOI must be polygons.")
        if not meta.get("crs"):
            raise EventError(f"AOI {path}: the file has no CRS; save it with one (e.g. EPSG:4326).")
        geometry = shapely.make_valid(shapely.union_all(polygons))
        return cls(geometry, meta["crs"], str(path), hashlib.sha256(path.read_bytes()).hexdigest())

    def in_crs(self, crs):
        """The AOI in `crs` (densified, reprojected, made valid)."""
        key = str(crs)
        if key not in self._cache:
            x0, y0, x1, y1 = self.geometry.bounds
            dense = shapely.segmentize(self.geometry, max(x1 - x0, y1 - y0) * DENSIFY_FRACTION or 1.0)
            self._cache[key] = shapely.make_valid(reproject(dense, self.crs, crs))
        return self._cache[key]
