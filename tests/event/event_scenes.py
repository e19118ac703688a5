"""An event of overlapping synthetic scenes in three CRSs, and an HTTP server with range requests.

World layout (UTM 47N metres; 0.5 m pixels, 200 rows from y = 3300000 down):

* A (EPSG:32647, local GeoTIFF): x 500000-500120, a nodata triangle in its top-left corner;
* B (transverse Mercator with false easting 0, a different CRS on the same grid, served as a COG
  over HTTP): x 500060-500180, so A and B share 120 columns;
* C (EPSG:4326, described by a STAC Item): east of B, overlapping its last 10 m.

Landslides are bright rectangles (value 230 on a background of 20, `PixelEngine` gives 0.9 / 0.08):
L1 in A only, L2 in the A-B overlap (seen twice), L5 crossing A's east edge (A sees a part, B all
of it), L3 in B only, L4 in C only.
"""

import functools
import http.server
import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.warp import transform_bounds

RES = 0.5
TOP = 3300000.0
ROWS = 200
B_CRS = "+proj=tmerc +lat_0=0 +lon_0=99 +k=0.9996 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"
# Landslides as (x0, x1, y0, y1) in UTM 47N metres.
L1 = (500010.0, 500020.0, 3299950.0, 3299960.0)
L2 = (500080.0, 500095.0, 3299930.0, 3299945.0)
L5 = (500110.0, 500130.0, 3299970.0, 3299980.0)
L3 = (500150.0, 500160.0, 3299920.0, 3299930.0)
L4_LONLAT = (99.00190, 99.00200, 29.8298, 29.8299)
BRIGHT, DARK = 230, 20


def _paint(x0_world, width, boxes):
    """(3, ROWS, width) uint8 image of a UTM grid starting at x0_world with bright `boxes`."""
    image = np.full((3, ROWS, width), DARK, "uint8")
    for x0, x1, y0, y1 in boxes:
        c0, c1 = int(round((x0 - x0_world) / RES)), int(round((x1 - x0_world) / RES))
        r0, r1 = int(round((TOP - y1) / RES)), int(round((TOP - y0) / RES))
        image[:, max(r0, 0):max(r1, 0), max(c0, 0):max(c1, 0)] = BRIGHT
    return image


def _write(path, image, crs, transform, nodata=None, driver="GTiff"):
    profile = {"driver": driver, "height": image.shape[1], "width": image.shape[2], "count": 3, "dtype": "uint8",
               "crs": crs, "transform": transform, "photometric": "minisblack"}
    if driver == "COG":
        profile.pop("photometric")
        profile.update(blocksize=128, compress="deflate")
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(image)
    return Path(path)


def write_event(folder):
    """Write A.tif, B.tif (COG), C.tif, item.json; returns a dict of paths and the expected areas."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    a = _paint(500000.0, 240, [L1, L2, L5])
    rows, cols = np.mgrid[0:ROWS, 0:240]
    a[:, rows + cols < 30] = 0  # nodata corner, away from every landslide
    a_path = _write(folder / "A.tif", a, "EPSG:32647", Affine(RES, 0, 500000.0, 0, -RES, TOP), nodata=0)
    b = _paint(500060.0, 240, [L2, L5, L3])
    b_path = _write(folder / "B.tif", b, B_CRS, Affine(RES, 0, 60.0, 0, -RES, TOP), driver="COG")
    west, south, east, north = transform_bounds("EPSG:32647", "EPSG:4326", 500170.0, TOP - ROWS * RES,
                                                500260.0, TOP)
    step = 5e-6
    width, height = int((east - west) / step), int((north - south) / step)
    c_transform = Affine(step, 0, west, 0, -step, north)
    c = np.full((3, height, width), DARK, "uint8")
    lon0, lon1, lat0, lat1 = L4_LONLAT
    c[:, int((north - lat1) / step):int((north - lat0) / step), int((lon0 - west) / step):int((lon1 - west) / step)] = BRIGHT
    c_path = _write(folder / "C.tif", c, "EPSG:4326", c_transform)
    item = stac_item("C", "C.tif", (west, south, east, north))
    item_path = folder / "item.json"
    item_path.write_text(json.dumps(item))
    return {"A": a_path, "B": b_path, "C": c_path, "item": item_path}


def stac_item(item_id, href, bbox, asset="visual"):
    """A minimal STAC 1.0 Item whose `asset` points at `href`."""
    west, south, east, north = bbox
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": item_id,
        "geometry": {"type": "Polygon", "coordinates": [ring]}, "bbox": list(bbox),
        "properties": {"datetime": "2024-04-03T00:00:00Z", "platform": "synthetic-sat", "gsd": 0.5},
        "links": [],
        "assets": {asset: {"href": href, "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                           "roles": ["data"]}},
    }


def pixel_area_m2(boxes):
    """Union area in UTM grid units (m²) of landslide boxes on the shared 0.5 m grid."""
    grid = np.zeros((ROWS, 600), bool)
    for x0, x1, y0, y1 in boxes:
        grid[int((TOP - y1) / RES):int((TOP - y0) / RES), int((x0 - 500000) / RES):int((x1 - 500000) / RES)] = True
    return grid.sum() * RES * RES


class RangeRequestHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with HTTP range requests (`Range: bytes=a-b` -> 206), as GDAL's /vsicurl/ needs."""

    def log_message(self, *args):
        pass

    def send_head(self):
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404, "File not found")
            return None
        size = os.path.getsize(path)
        spec = self.headers.get("Range")
        f = open(path, "rb")
        if spec and spec.startswith("bytes="):
            first, _, last = spec[6:].partition("-")
            start = int(first) if first else size - int(last)
            end = min(int(last), size - 1) if first and last else size - 1
            f.seek(start)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.send_header("Content-Length", str(end - start + 1))
            self._remaining = end - start + 1
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self._remaining = size
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return f

    def copyfile(self, source, outputfile):
        outputfile.write(source.read(self._remaining))


def _serve_forever(folder, ports):
    handler = functools.partial(RangeRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    ports.put(server.server_address[1])
    server.serve_forever()


def serve(folder):
    """Serve `folder` on 127.0.0.1 from another process; returns (process, base_url). Call `process.kill()`.

    A process, not a thread: rasterio holds the GIL while GDAL opens a URL, so a server thread
    in the same process would never answer.
    """
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    process = context.Process(target=_serve_forever, args=(str(folder), ports), daemon=True)
    process.start()
    return process, f"http://127.0.0.1:{ports.get(timeout=60)}"
