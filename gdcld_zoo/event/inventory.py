"""One landslide inventory for an event: polygons of every scene merged once, with true areas.

Each mapped scene leaves `<id>_landslides.geojson` (WGS84) and `<id>_mask.tif`.
`build_inventory` brings every scene's polygons into one equal-area CRS
centred on the event (`gdcld_zoo.event.geometry.equal_area_crs`), snaps them
to a 1 cm grid and dissolves overlapping or touching detections with
`shapely.union_all`, so a landslide seen by two overlapping scenes is one
polygon, counted once. Each landslide gets

* `id` (1 = largest), `area_m2` (ground area on the WGS84 ellipsoid),
* `probability_mean`, `probability_max` (over its pixels in every scene that saw it),
* `scenes` (source scene ids, `;`-separated) and `n_scenes`,
* `centroid_lon`, `centroid_lat`.

The mapped area is the union of the scenes' valid footprints (pixels that are
not nodata, already clipped to the AOI), traced from their masks at up to
`FOOTPRINT_PIXELS` pixels a side. `write_inventory` writes `inventory.gpkg`
(layer `landslides`, in the equal-area CRS) and `inventory.geojson` (EPSG:4326)
with pyogrio, each atomically. `read_inventory` opens such a GeoPackage again (for the
viewer), checking its layer and columns, with the polygons in EPSG:4326.

Example:
>>> area_histogram([50.0, 120.0, 900.0, 15000.0])
[{'min_m2': 10, 'max_m2': 100, 'count': 1}, {'min_m2': 100, 'max_m2': 1000, 'count': 2}, \
{'min_m2': 1000, 'max_m2': 10000, 'count': 0}, {'min_m2': 10000, 'max_m2': 100000, 'count': 1}]
"""

import dataclasses
import math
import os
from pathlib import Path

import numpy as np
import pyogrio
import rasterio
import shapely
from affine import Affine
from rasterio.enums import Resampling
from rasterio.features import geometry_mask, shapes
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds

from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.event.geometry import WGS84, equal_area_crs, reproject
from gdcld_zoo.scene.writer import NODATA, PROB_SCALE

LAYER = "landslides"
# Polygons are snapped to this grid (metres) before merging, so edges shared by two scenes meet exactly.
SNAP_M = 0.01
# The valid footprint of a scene is traced from its mask read at most this many pixels a side.
FOOTPRINT_PIXELS = 2048
# Columns an inventory must have to be opened (`read_inventory`); the others are shown when present.
REQUIRED_FIELDS = ("id", "area_m2")
FIELDS = ("id", "area_m2", "probability_mean", "probability_max", "scenes", "n_scenes", "centroid_lon",
          "centroid_lat")


@dataclasses.dataclass
class Inventory:
    """Merged landslides of an event.

    Attributes:
        crs: The equal-area CRS of `polygons` (None when nothing was mapped).
        polygons: shapely Polygons, largest first.
        records: One dict of attributes (`FIELDS`) per polygon.
        mapped_area_m2: Area of the union of the scenes' valid footprints.
    """

    crs: object
    polygons: list
    records: list
    mapped_area_m2: float

    @property
    def area_m2(self):
        return float(sum(r["area_m2"] for r in self.records))


@dataclasses.dataclass
class MappedScene:
    """A scene's outputs the inventory reads: id, `_landslides.geojson`, `_mask.tif`, `_prob.tif`."""

    id: str
    landslides: Path
    mask: Path
    prob: Path


def _event_crs(scenes):
    """Equal-area CRS centred on the middle of the scenes' WGS84 extent."""
    bounds = []
    for scene in scenes:
        with rasterio.open(scene.mask) as dataset:
            bounds.append(transform_bounds(dataset.crs, WGS84, *dataset.bounds))
    west, south = min(b[0] for b in bounds), min(b[1] for b in bounds)
    east, north = max(b[2] for b in bounds), max(b[3] for b in bounds)
    return equal_area_crs(round((west + east) / 2, 6), round((south + north) / 2, 6))


def _scene_polygons(scene, crs):
    """The scene's landslide polygons in `crs`."""
    _, _, wkb, _ = pyogrio.raw.read(scene.landslides)
    if wkb is None or len(wkb) == 0:
        return []
    return list(reproject(shapely.from_wkb(wkb), WGS84, crs))


def _valid_footprint(scene, crs):
    """The union of the scene's valid (not nodata) pixels, traced at reduced resolution, in `crs`."""
    with rasterio.open(scene.mask) as dataset:
        step = max(1, math.ceil(max(dataset.width, dataset.height) / FOOTPRINT_PIXELS))
        shape = (math.ceil(dataset.height / step), math.ceil(dataset.width / step))
        valid = (dataset.read(1, out_shape=shape, resampling=Resampling.nearest) != NODATA).astype("uint8")
        t, sx, sy = dataset.transform, dataset.width / shape[1], dataset.height / shape[0]
        transform = Affine(t.a * sx, t.b * sy, t.c, t.d * sx, t.e * sy, t.f)
        parts = [shapely.geometry.shape(g) for g, _ in shapes(valid, mask=valid.astype(bool), transform=transform)]
        scene_crs = dataset.crs
    if not parts:
        return shapely.Polygon()
    pixel = max(abs(transform.a), abs(transform.e))
    return reproject(shapely.segmentize(shapely.union_all(parts), 16 * pixel), scene_crs, crs)


def _pixel_window(bounds, dataset):
    """The whole-pixel window of `dataset` covering `bounds`, or None when they do not meet."""
    w = from_bounds(*bounds, transform=dataset.transform)
    col0, row0 = max(math.floor(w.col_off), 0), max(math.floor(w.row_off), 0)
    col1 = min(math.ceil(w.col_off + w.width), dataset.width)
    row1 = min(math.ceil(w.row_off + w.height), dataset.height)
    return Window(col0, row0, col1 - col0, row1 - row0) if col1 > col0 and row1 > row0 else None


def _probabilities(polygons, sources, scenes, crs):
    """(mean, max) probability of each polygon over its pixels in the scenes that saw it."""
    totals = np.zeros(len(polygons))
    counts = np.zeros(len(polygons))
    highest = np.zeros(len(polygons))
    for scene in scenes:
        mine = [i for i, ids in enumerate(sources) if scene.id in ids]
        if not mine:
            continue
        with rasterio.open(scene.prob) as dataset:
            local = reproject(np.array([polygons[i] for i in mine], dtype=object), crs, dataset.crs)
            for i, polygon in zip(mine, local):
                window = _pixel_window(polygon.bounds, dataset)
                if window is None:
                    continue
                values = dataset.read(1, window=window)
                inside = geometry_mask([polygon], values.shape, dataset.window_transform(window), invert=True)
                picked = values[inside & (values != NODATA)] / PROB_SCALE
                if picked.size:
                    totals[i] += picked.sum()
                    counts[i] += picked.size
                    highest[i] = max(highest[i], picked.max())
    means = np.divide(totals, counts, out=np.zeros_like(totals), where=counts > 0)
    return means, highest


def build_inventory(scenes):
    """Merge the landslides of mapped scenes (`MappedScene`s) into one `Inventory`."""
    if not scenes:
        return Inventory(None, [], [], 0.0)
    crs = _event_crs(scenes)
    footprints = [_valid_footprint(scene, crs) for scene in scenes]
    mapped = float(shapely.union_all(footprints).area)
    originals, owners = [], []
    for scene in scenes:
        polygons = _scene_polygons(scene, crs)
        originals.extend(polygons)
        owners.extend([scene.id] * len(polygons))
    if not originals:
        return Inventory(crs, [], [], mapped)
    snapped = shapely.set_precision(np.array(originals, dtype=object), SNAP_M)
    merged = shapely.get_parts(shapely.union_all(snapped))
    merged = [p for p in merged if p.geom_type == "Polygon" and not p.is_empty]
    merged.sort(key=lambda p: (-round(p.area, 3), round(p.centroid.x, 3), round(p.centroid.y, 3)))
    tree = shapely.STRtree(snapped)
    sources = [sorted({owners[j] for j in tree.query(p, predicate="intersects")}) for p in merged]
    means, highest = _probabilities(merged, sources, scenes, crs)
    centroids = reproject(shapely.centroid(np.array(merged, dtype=object)), crs, WGS84)
    records = [{
        "id": i + 1,
        "area_m2": round(float(polygon.area), 3),
        "probability_mean": round(float(means[i]), 4),
        "probability_max": round(float(highest[i]), 4),
        "scenes": ";".join(sources[i]),
        "n_scenes": len(sources[i]),
        "centroid_lon": round(float(centroids[i].x), 7),
        "centroid_lat": round(float(centroids[i].y), 7),
    } for i, polygon in enumerate(merged)]
    return Inventory(crs, merged, records, mapped)


def _write_layer(path, geometries, records, crs, driver, layer_options=None):
    temp = path.with_name(f".{path.stem}.part{path.suffix}")
    temp.unlink(missing_ok=True)
    columns = [np.array([r[f] for r in records], dtype=object if f == "scenes" else None) for f in FIELDS]
    if not records:  # typed empty columns
        columns = [np.array([], dtype="int64" if f in ("id", "n_scenes") else object if f == "scenes" else "float64")
                   for f in FIELDS]
    wkb = shapely.to_wkb(np.array(geometries, dtype=object)) if geometries else np.array([], dtype=object)
    pyogrio.raw.write(temp, wkb, columns, list(FIELDS), layer=LAYER, driver=driver, geometry_type="Polygon",
                      crs=crs.to_wkt(), layer_options=layer_options)
    os.replace(temp, path)
    return path


def write_inventory(inventory, out_dir):
    """Write `inventory.gpkg` (equal-area CRS) and `inventory.geojson` (EPSG:4326); returns their paths."""
    out_dir = Path(out_dir)
    crs = inventory.crs or WGS84
    gpkg = _write_layer(out_dir / "inventory.gpkg", inventory.polygons, inventory.records, crs, "GPKG")
    wgs84 = list(reproject(np.array(inventory.polygons, dtype=object), crs, WGS84)) if inventory.polygons else []
    geojson = _write_layer(out_dir / "inventory.geojson", wgs84, inventory.records, WGS84, "GeoJSON",
                           {"RFC7946": "YES"})
    return {"inventory.gpkg": gpkg, "inventory.geojson": geojson}


def area_histogram(areas_m2):
    """Landslide counts per decade of area (m²), from the smallest to the largest decade present."""
    areas = [a for a in areas_m2 if a > 0]
    if not areas:
        return []
    low, high = math.floor(math.log10(min(areas))), math.floor(math.log10(max(areas)))
    edges = [10**k for k in range(low, high + 2)]
    counts = np.histogram(areas, bins=edges)[0]
    return [{"min_m2": a, "max_m2": b, "count": int(n)} for a, b, n in zip(edges[:-1], edges[1:], counts)]


@dataclasses.dataclass
class OpenedInventory:
    """An inventory read back from its GeoPackage (`read_inventory`).

    Attributes:
        path: The GeoPackage.
        polygons: shapely geometries in EPSG:4326, in the file's order.
        records: One dict of the file's attributes per polygon.
    """

    path: Path
    polygons: list
    records: list

    def at_least(self, min_area_m2):
        """The landslides of at least `min_area_m2` (all of them for 0)."""
        keep = [i for i, r in enumerate(self.records) if not min_area_m2 or r["area_m2"] >= min_area_m2]
        return OpenedInventory(self.path, [self.polygons[i] for i in keep], [self.records[i] for i in keep])

    @property
    def area_m2(self):
        return float(sum(r["area_m2"] for r in self.records))

    @property
    def bounds(self):
        """`[[south, west], [north, east]]` of the polygons in degrees, or None without any."""
        if not self.polygons:
            return None
        west, south, east, north = shapely.total_bounds(np.array(self.polygons, dtype=object))
        return [[float(south), float(west)], [float(north), float(east)]]

    def scene_counts(self):
        """Landslides per source scene (`{scene id: count}`, a landslide seen by two scenes counts in both);
        empty when the file has no `scenes` column."""
        counts = {}
        for record in self.records:
            for scene in filter(None, str(record.get("scenes") or "").split(";")):
                counts[scene] = counts.get(scene, 0) + 1
        return dict(sorted(counts.items()))


def read_inventory(path):
    """Open an `inventory.gpkg` (layer `landslides`, polygons in any CRS) with its polygons in EPSG:4326.

    Raises:
        InvalidInputError: Not a GeoPackage pyogrio can read (missing, truncated,
            another format), no `landslides` layer, no CRS, or without the `id`
            and `area_m2` columns; the message names the file.
    """
    path = Path(path)
    name = path.name
    try:
        layers = [str(layer) for layer, _ in pyogrio.list_layers(path)]
    except Exception as error:  # pyogrio raises DataSourceError, OSError or GDAL's own for a broken file
        raise InvalidInputError(f"{name} is not a readable GeoPackage ({_first_line(error)}); "
                                "open the inventory.gpkg that gdcld-zoo predict wrote.") from None
    if LAYER not in layers:
        raise InvalidInputError(f"{name} has no layer '{LAYER}' (it has: {', '.join(layers) or 'none'}); "
                                "open the inventory.gpkg that gdcld-zoo predict wrote.")
    try:
        meta, _, wkb, columns = pyogrio.raw.read(path, layer=LAYER)
    except Exception as error:
        raise InvalidInputError(f"{name}: the layer '{LAYER}' cannot be read ({_first_line(error)}); "
                                "the file may be truncated, write it again with gdcld-zoo predict.") from None
    fields = [str(f) for f in meta["fields"]]
    missing = [f for f in REQUIRED_FIELDS if f not in fields]
    if missing:
        raise InvalidInputError(f"{name}: the layer '{LAYER}' has no column {', '.join(missing)} "
                                f"(it has: {', '.join(fields) or 'none'}); it is not a landslide inventory.")
    if meta.get("crs") is None and wkb is not None and len(wkb):
        raise InvalidInputError(f"{name}: the layer '{LAYER}' has no CRS, so its polygons have no place on a map.")
    polygons = list(shapely.from_wkb(wkb)) if wkb is not None and len(wkb) else []
    if polygons:
        polygons = list(reproject(np.array(polygons, dtype=object), meta["crs"], WGS84))
    records = [{f: _plain(column[i]) for f, column in zip(fields, columns)} for i in range(len(polygons))]
    return OpenedInventory(path, polygons, records)


def _plain(value):
    """A column value as a plain Python value (numpy scalars become int, float or str)."""
    return value.item() if isinstance(value, np.generic) else value


def _first_line(error):
    """The gist of a GDAL error: its last clause (GDAL prefixes the SQL that failed)."""
    text = str(error).strip()
    return text.splitlines()[0].rsplit("; ", 1)[-1] if text else type(error).__name__
