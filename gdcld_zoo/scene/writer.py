"""Writing probability and mask GeoTIFFs strip by strip, atomically, in a thread.

Outputs share the source's CRS, transform and size and are tiled (512-pixel
blocks) and deflate-compressed, so they are cloud-optimised-GeoTIFF friendly
(`gdal_translate -of COG` only has to add overviews):

* `<stem>_prob.tif`: uint8 landslide probability `round(254 × p)`, 255 =
  nodata; the band's GDAL scale is 1/254, so `rasterio`/QGIS "unscaled"
  values are probabilities. uint8 keeps the map 4× smaller than float32 at a
  resolution (0.004) finer than any threshold anyone sets.
* `<stem>_mask.tif`: uint8 1 landslide, 0 background, 255 nodata; a pixel is a
  landslide when its (unquantised) probability is >= the threshold.

Strips are buffered and written in whole rows of blocks, so every compressed
block is written once. Files are written under temporary names unique to the
run (`AtomicFiles`) and renamed only when everything succeeded, the last file
(the summary) last.
"""

import queue
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from gdcld_zoo.files import publish, temporary_path

PROB_SCALE = 254
NODATA = 255
BLOCK = 512
# deflate level 1: ten times faster than the default 6 for ~20 % larger files, so
# compression hides behind the model; `gdal_translate -co ZLEVEL=9` shrinks them later.
ZLEVEL = 1


def output_profile(width, height, crs, transform, predictor):
    """GTiff creation options for a single-band uint8 output."""
    block = BLOCK if min(width, height) >= BLOCK else max(16, min(BLOCK, 16 * -(-max(width, height) // 16)))
    return {
        "driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "uint8",
        "crs": crs, "transform": transform, "nodata": NODATA,
        "tiled": True, "blockxsize": block, "blockysize": block,
        "compress": "deflate", "zlevel": ZLEVEL, "predictor": predictor, "BIGTIFF": "IF_SAFER",
    }


class AtomicFiles:
    """Temporary names for a set of outputs, published all at once on `commit`.

    Temporary names are unique to the process and the call
    (`gdcld_zoo.files.temporary_path`), so two runs never write the same
    temporary file. `commit` first removes the old final version of the last
    file (the one that describes the others, e.g. a summary), then renames
    the files in order: at any moment, the last file exists only when every
    file it describes is complete and from the same run. A run that fails or
    is interrupted leaves no file under a final name (`discard` removes the
    temporaries).
    """

    def __init__(self, *finals):
        self.finals = [Path(p) for p in finals]
        self.temps = [temporary_path(p) for p in self.finals]

    def commit(self):
        self.finals[-1].unlink(missing_ok=True)
        for temp, final in zip(self.temps, self.finals):
            publish(temp, final)

    def discard(self):
        for temp in self.temps:
            temp.unlink(missing_ok=True)


class StripWriter(threading.Thread):
    """Consumes `Strip`s from a queue; writes prob and mask files and measures areas.

    Args:
        prob_path, mask_path: Destinations (temporary names).
        width, height, crs, transform: The scene grid.
        threshold: Landslide probability threshold.
        area: The scene's `GroundArea`.
        vectorizer: A `StripVectorizer` fed the landslide rows (optional);
            its counts end up in `polygons`.

    After `join()`, `error` holds an exception if writing failed, and
    `valid_pixels`, `landslide_pixels`, `valid_area`, `landslide_area`
    (in `area.units`), `write_s`, `vectorize_s` and `polygons` the measurements.
    """

    def __init__(self, prob_path, mask_path, width, height, crs, transform, threshold, area, vectorizer=None,
                 max_pending=2):
        super().__init__(daemon=True, name="gdcld-zoo-strip-writer")
        self.paths = (prob_path, mask_path)
        self.grid = (width, height, crs, transform)
        self.threshold, self.area, self.vectorizer = threshold, area, vectorizer
        self.polygons = None
        self.vectorize_s = 0.0
        self.strips = queue.Queue(maxsize=max_pending)
        self.error = None
        self.valid_pixels = self.landslide_pixels = 0
        self.valid_area = self.landslide_area = 0.0
        self.write_s = 0.0
        self._pending = []
        self._pending_start = 0

    def put(self, strip):
        """Queue a strip (blocks while the writer is `max_pending` strips behind)."""
        if self.error is not None:
            raise self.error
        self.strips.put(strip)

    def close(self):
        """Signal the end and wait; re-raise a writing error."""
        self.strips.put(None)
        self.join()
        if self.error is not None:
            raise self.error

    def run(self):
        width, height, crs, transform = self.grid
        try:
            with warnings.catch_warnings():  # a scene without CRS keeps its (identity) transform
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._write(width, height, crs, transform)
            self.write_s -= self.vectorize_s  # vectorising ran inside the timed writing loop
            if self.vectorizer is not None:
                start = time.perf_counter()
                self.polygons = self.vectorizer.close()
                self.vectorize_s += time.perf_counter() - start
        except BaseException as error:
            if self.vectorizer is not None:
                self.vectorizer.file.close()
            self.error = error
            while True:  # keep the producer from blocking on a full queue
                try:
                    if self.strips.get(timeout=1) is None:
                        break
                except queue.Empty:
                    break

    def _write(self, width, height, crs, transform):
        prob_out = rasterio.open(self.paths[0], "w", **output_profile(width, height, crs, transform, 2))
        with prob_out, rasterio.open(self.paths[1], "w", **output_profile(width, height, crs, transform, 1)) as mask_out:
            prob_out.scales, prob_out.offsets = (1.0 / PROB_SCALE,), (0.0,)
            prob_out.set_band_description(1, f"landslide probability x {PROB_SCALE} (255 = nodata)")
            prob_out.update_tags(PROBABILITY_SCALE=str(PROB_SCALE))
            mask_out.set_band_description(1, "landslide (1), background (0), nodata (255)")
            mask_out.update_tags(THRESHOLD=str(self.threshold))
            block = prob_out.block_shapes[0][0]
            while True:
                strip = self.strips.get()
                if strip is None:
                    break
                start = time.perf_counter()
                self._measure(strip)
                self._pending.append(strip)
                self._flush(prob_out, mask_out, block, final=False)
                self.write_s += time.perf_counter() - start
            start = time.perf_counter()
            self._flush(prob_out, mask_out, block, final=True)
        self.write_s += time.perf_counter() - start

    def _measure(self, strip):
        landslide = strip.valid & (strip.prob >= self.threshold)
        self.valid_pixels += int(np.count_nonzero(strip.valid))
        self.landslide_pixels += int(np.count_nonzero(landslide))
        self.valid_area += self.area.pixel_area_sum(strip.valid, strip.row_offset)
        self.landslide_area += self.area.pixel_area_sum(landslide, strip.row_offset)
        if self.vectorizer is not None:
            start = time.perf_counter()
            self.vectorizer.add(landslide, strip.row_offset)
            self.vectorize_s += time.perf_counter() - start

    def _flush(self, prob_out, mask_out, block, final):
        """Write the pending rows in whole block rows (all of them when `final`)."""
        rows = sum(s.prob.shape[0] for s in self._pending)
        count = rows if final else (rows // block) * block
        if count == 0:
            return
        prob = np.concatenate([s.prob for s in self._pending])
        valid = np.concatenate([s.valid for s in self._pending])
        p, v = prob[:count], valid[:count]
        prob_u8 = (np.clip(p, 0, 1) * PROB_SCALE + 0.5).astype("uint8")
        mask_u8 = (p >= self.threshold).astype("uint8")
        prob_u8[~v] = NODATA
        mask_u8[~v] = NODATA
        window = Window(0, self._pending_start, prob.shape[1], count)
        prob_out.write(prob_u8, 1, window=window)
        mask_out.write(mask_u8, 1, window=window)
        self._pending_start += count
        rest = rows - count
        self._pending = [] if rest == 0 else [type(self._pending[0])(self._pending_start, prob[count:], valid[count:])]
