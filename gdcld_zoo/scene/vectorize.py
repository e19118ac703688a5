"""Landslide polygons as RFC 7946 GeoJSON with ground areas, traced strip by strip.

`rasterio.features.shapes` (GDAL's polygonize) traces one polygon per
4-connected group of landslide pixels. `StripVectorizer` does it on the rows
of the mask as scene inference finishes them (in the writer thread, so it
overlaps the model), re-tracing only the polygons that cross a strip border;
`vectorize_mask` does the same from a mask GeoTIFF. Each feature carries
`area_m2` (true ground area, `gdcld_zoo.scene.area.GroundArea`) and its pixel
count; polygons smaller than `min_area_m2` are dropped.

Coordinates are WGS84 longitude/latitude (RFC 7946, no `crs` member; exterior
rings counter-clockwise), transformed with PROJ (`rasterio.warp.transform`,
many polygons per call). Polygons are not cut at the antimeridian. A scene
without a CRS keeps its own coordinates, says so in a top-level `"gdcld_zoo"`
member, and reports `area_px` instead of `area_m2`.

Limits: memory holds the rows of the current strip plus those of the tallest
landslide crossing a strip border (a polygon spanning the whole scene height
would hold the whole mask), and the vertices of one strip's polygons.

Example:
>>> stats = vectorize_mask("scene_mask.tif", "scene_landslides.geojson", area)  # doctest: +SKIP
>>> stats["n_landslides"]  # doctest: +SKIP
12
"""

import json
import warnings

import numpy as np
import rasterio
from rasterio.features import shapes
from rasterio.warp import transform as warp_points
from rasterio.windows import Window

from gdcld_zoo.scene.area import shoelace

LANDSLIDE = 1
COORDINATE_DECIMALS = 8  # about 1 mm in longitude/latitude


def _oriented(rings):
    """Exterior ring counter-clockwise, holes clockwise (RFC 7946 section 3.1.6), rounded."""
    out = []
    for i, ring in enumerate(rings):
        ring = np.round(ring, COORDINATE_DECIMALS)
        if (shoelace(ring[:, 0], ring[:, 1]) > 0) != (i == 0):
            ring = ring[::-1]
        out.append(ring.tolist())
    return out


class _FeatureWriter:
    """Writes features in batches, transforming all their coordinates with one PROJ call."""

    def __init__(self, out, crs, batch=2000):
        self.out, self.crs, self.batch = out, crs, batch
        self.pending, self.written = [], 0

    def add(self, properties, rings):
        self.pending.append((properties, rings))
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self):
        if not self.pending:
            return
        rings = [ring for _, polygon in self.pending for ring in polygon]
        if self.crs is not None:
            points = np.concatenate(rings)
            lon, lat = warp_points(self.crs, "EPSG:4326", points[:, 0], points[:, 1])
            points = np.column_stack([lon, lat])
            bounds = np.cumsum([0] + [len(r) for r in rings])
            rings = [points[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        position = 0
        for properties, polygon in self.pending:
            mine = rings[position:position + len(polygon)]
            position += len(polygon)
            self.written += 1
            feature = {
                "type": "Feature",
                "id": self.written,
                "properties": {"id": self.written, **properties},
                "geometry": {"type": "Polygon", "coordinates": _oriented(mine)},
            }
            self.out.write((",\n" if self.written > 1 else "") + json.dumps(feature, separators=(",", ":")))
        self.pending = []


class StripVectorizer:
    """Traces landslide polygons strip by strip while the scene is still being predicted.

    Rows of the landslide mask arrive top to bottom (`add`). Every `chunk_rows`
    new rows, the buffered rows are polygonised (`rasterio.features.shapes`);
    polygons that end above the buffer's last row are complete and written,
    polygons touching it may continue and are traced again, whole, with the
    next rows (the buffer keeps the rows from the top of the highest such
    polygon). A pass waits for at least as many new rows as the buffer holds,
    so a tall polygon is re-traced a logarithmic number of times, not once per
    chunk. Memory is the buffer: `chunk_rows` rows plus the height of the
    tallest landslide that crosses a chunk border, capped at `max_pixels`:
    beyond it the polygons crossing the border are written split there (with
    `"split": true`) and a warning says so.

    Args:
        out_path: GeoJSON destination, written as polygons complete.
        transform, crs: The scene's affine transform and CRS (None: no CRS).
        area: The scene's `GroundArea`.
        min_area_m2: Drop smaller polygons (ignored without a CRS).
        chunk_rows: New rows between two tracing passes.
        max_pixels: Largest buffer (rows × width) before tall polygons are split.
    """

    def __init__(self, out_path, transform, crs, area, min_area_m2=0.0, chunk_rows=1024, max_pixels=2**26):
        self.transform, self.area = transform, area
        self.has_crs = area.units == "m2"
        self.min_area = min_area_m2 if self.has_crs else 0.0
        if min_area_m2 > 0 and not self.has_crs:
            warnings.warn(f"min_area_m2={min_area_m2} is ignored: the scene has no CRS, so no ground area.",
                          stacklevel=3)
        self.key = "area_m2" if self.has_crs else "area_px"
        self.chunk_rows, self.max_pixels = chunk_rows, max_pixels
        self.split_row = None  # scene row above which the last pass split polygons
        self.file = open(out_path, "w", encoding="utf-8")
        header = {"type": "FeatureCollection"}
        if not self.has_crs:
            header["gdcld_zoo"] = {"coordinates": "scene coordinates (the scene has no CRS)"}
        self.file.write(json.dumps(header)[:-1] + ', "features": [\n')
        self.features = _FeatureWriter(self.file, crs if self.has_crs else None)
        self.parts, self.start, self.new_rows = [], 0, 0
        self.finished_row = -1  # last scene row of the previous pass
        self.dropped, self.total = 0, 0.0

    def add(self, landslide, row_offset):
        """Append mask rows (bool, (rows, width)) starting at scene row `row_offset`."""
        if not self.parts:
            self.start = row_offset
        self.parts.append(landslide.astype("uint8"))
        self.new_rows += landslide.shape[0]
        buffered = sum(part.shape[0] for part in self.parts)
        if self.new_rows >= max(self.chunk_rows, buffered - self.new_rows):
            self._trace(final=buffered * landslide.shape[1] > self.max_pixels, split=True)

    def close(self):
        """Trace the remaining rows, finish the file; returns the counts (see `vectorize_mask`)."""
        try:
            if self.parts:
                self._trace(final=True)
            self.features.flush()
            self.file.write("\n]}\n")
        finally:
            self.file.close()
        return {"n_landslides": self.features.written, "n_dropped": self.dropped, "area": self.total}

    def _trace(self, final, split=False):
        """Polygonise the buffer; `final` emits every polygon (`split`: the scene goes on below)."""
        rows = np.concatenate(self.parts) if len(self.parts) > 1 else self.parts[0]
        if final and split:
            warnings.warn(
                f"Landslide polygons crossing scene row {self.start + rows.shape[0]} are taller than the "
                f"vectoriser's buffer ({self.max_pixels} pixels); they are split there (property 'split').",
                stacklevel=2,
            )
        height, top = rows.shape[0], self.start
        carry_from = top + height
        t = self.transform
        for geometry, _ in shapes(rows, mask=rows.astype(bool), connectivity=4):
            rings = [np.asarray(ring, "float64") for ring in geometry["coordinates"]]
            first, last = rings[0][:, 1].min(), rings[0][:, 1].max()  # pixel edges within the buffer
            if not final and last >= height:  # may continue below: trace again with the next rows
                carry_from = min(carry_from, top + int(first))
                continue
            if top + last - 1 < self.finished_row:  # complete and written by the previous pass
                continue
            planar = [abs(shoelace(r[:, 0], r[:, 1])) for r in rings]
            pixels = planar[0] - sum(planar[1:])
            rings = [np.column_stack([t.a * r[:, 0] + t.b * (r[:, 1] + top) + t.c,
                                      t.d * r[:, 0] + t.e * (r[:, 1] + top) + t.f]) for r in rings]
            if self.area.method == "ellipsoidal":
                size = self.area.polygon_area({"type": "Polygon", "coordinates": rings})
            else:
                size = pixels * self.area.pixel_area
            if size < self.min_area:
                self.dropped += 1
                continue
            properties = {self.key: round(size, 3), "pixels": int(round(pixels))}
            if (final and split and last >= height) or (self.split_row is not None and top + first == self.split_row):
                properties["split"] = True
            self.features.add(properties, rings)
            self.total += size
        if final and split:
            self.split_row = top + height
        elif self.split_row is not None and carry_from > self.split_row:
            self.split_row = None
        self.finished_row = top + height - 1
        self.parts = [rows[carry_from - top:]] if carry_from < top + height else []
        self.start, self.new_rows = carry_from, 0


def vectorize_mask(mask_path, out_path, area, min_area_m2=0.0, chunk_rows=1024):
    """Write one GeoJSON feature per landslide of a mask GeoTIFF, reading it in strips.

    Args:
        mask_path: uint8 mask GeoTIFF: 1 landslide, 0 background, 255 nodata.
        out_path: GeoJSON destination.
        area: The scene's `GroundArea`.
        min_area_m2: Drop polygons with a smaller ground area (ignored, with
            the pixel units, for scenes without a CRS).
        chunk_rows: Rows read and traced at a time.

    Returns:
        dict with `n_landslides`, `n_dropped` and `area` (sum over the kept
        polygons, in `area.units`).
    """
    with rasterio.open(mask_path) as dataset:
        vectorizer = StripVectorizer(out_path, dataset.transform, dataset.crs, area, min_area_m2, chunk_rows)
        for row in range(0, dataset.height, chunk_rows):
            count = min(chunk_rows, dataset.height - row)
            rows = dataset.read(1, window=Window(0, row, dataset.width, count))
            vectorizer.add(rows == LANDSLIDE, row)
        return vectorizer.close()
