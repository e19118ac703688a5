"""Sliding-window inference over whole scenes of any size, in bounded memory.

`SlidingWindowPredictor` reads a scene tile by tile with windowed rasterio
reads, predicts batches of tiles with an engine (`gdcld_zoo.scene.engines`),
blends overlapping tiles with smooth weights (`gdcld_zoo.scene.tiling`) and
hands out the scene in strips of rows as soon as no later tile can change them.
Peak memory is a few batches of tiles plus one strip (tile size × scene
width), never the scene.

Three stages run at once: a reader thread fills a bounded prefetch queue with
batches of raw tiles and their validity masks; the calling thread runs the
model and blends; a writer thread encodes, writes, measures and vectorises
finished strips. The model therefore only waits for I/O when the disk is slower than
it. A tqdm bar counts tiles done.

Pixels are invalid where the dataset mask says so (source nodata, alpha band
or internal mask, `rasterio` `dataset_mask`); tiles with no valid pixel are
not predicted, and invalid pixels are written as nodata.
"""

import dataclasses
import json
import logging
import queue
import threading
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from gdcld_zoo.errors import GdcldZooError
from gdcld_zoo.files import OutputLock, check_writable_folder, remove_parts
from gdcld_zoo.scene.area import GroundArea
from gdcld_zoo.scene.engines import D4Engine, make_engine
from gdcld_zoo.scene.source import SceneError, all_valid, open_scene, read_pixels, select_bands
from gdcld_zoo.scene.tiling import StripAccumulator, TileGrid, reflect_index
from gdcld_zoo.scene.vectorize import StripVectorizer
from gdcld_zoo.scene.writer import NODATA, PROB_SCALE, AtomicFiles, StripWriter

log = logging.getLogger("gdcld_zoo.scene")

_END = object()
# GDAL block cache (MB) during a run: enough for the tiles in flight and a row of output blocks.
GDAL_CACHE_MB = 128
# Overlap of neighbouring windows unless told: 128 px, or a quarter of smaller tiles.
DEFAULT_OVERLAP = 128


@dataclasses.dataclass
class Strip:
    """Finished scene rows: blended probabilities and validity.

    Attributes:
        row_offset: Scene row of the first row.
        prob: (rows, width) float32 landslide probability (0 where invalid).
        valid: (rows, width) bool, False for nodata pixels.
    """

    row_offset: int
    prob: np.ndarray
    valid: np.ndarray


@dataclasses.dataclass
class SceneRun:
    """What a pass over a scene used and measured (filled while strips are produced).

    Attributes:
        path: The scene.
        width, height, crs, transform: The scene's grid.
        bands, bands_from: Bands fed to the model (1-based) and how they were chosen.
        grid: The `TileGrid`.
        tiles_predicted, tiles_skipped: Tiles run through the model, and tiles
            skipped because they hold no valid pixel.
        read_s, model_s, wait_s: Reader busy time, model time, and time the
            model waited for the reader.
    """

    path: str
    width: int
    height: int
    crs: object
    transform: object
    bands: tuple
    bands_from: str
    grid: TileGrid
    tiles_predicted: int = 0
    tiles_skipped: int = 0
    read_s: float = 0.0
    model_s: float = 0.0
    wait_s: float = 0.0


def read_tile(dataset, grid, bands, row, col, check_mask):
    """Raw pixels (tile, tile, bands) and validity (tile, tile) of the tile at scene (`row`, `col`).

    Parts of the tile outside the scene are filled by mirror reflection (`reflect_index`);
    without `check_mask` every pixel is valid. In float scenes a pixel with a NaN or
    infinite band is nodata whatever the file declares: it is set to 0 before the model
    sees it (a NaN would spread through every convolution to its valid neighbours).
    """
    rows = reflect_index(np.arange(row, row + grid.tile), grid.height)
    cols = reflect_index(np.arange(col, col + grid.tile), grid.width)
    r0, c0 = int(rows.min()), int(cols.min())
    window = Window(c0, r0, int(cols.max()) + 1 - c0, int(rows.max()) + 1 - r0)
    data = read_pixels(dataset, list(bands), window=window)
    inside = row >= 0 and col >= 0 and row + grid.tile <= grid.height and col + grid.tile <= grid.width
    pick = (lambda a: a) if inside else (lambda a: a[..., rows - r0, :][..., cols - c0])
    raw = np.moveaxis(pick(data), 0, -1)
    if check_mask:
        valid = pick(dataset.dataset_mask(window=window)) > 0
    else:
        valid = np.ones((grid.tile, grid.tile), bool)
    if np.issubdtype(raw.dtype, np.floating):
        finite = np.isfinite(raw).all(axis=-1)
        if not finite.all():
            raw = np.where(finite[..., None], raw, 0).astype(raw.dtype)
            valid = valid & finite
    return raw, valid


class _TileReader(threading.Thread):
    """Reads batches of reflection-padded tiles and validity masks into a queue."""

    def __init__(self, run, batch_size, out_queue, stop):
        super().__init__(daemon=True, name="gdcld-zoo-tile-reader")
        self.run_info, self.batch_size = run, batch_size
        self.out, self.stop = out_queue, stop

    def _put(self, item):
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run(self):
        info = self.run_info
        try:
            with open_scene(info.path) as dataset:
                check_mask = not all_valid(dataset)
                tile, count = info.grid.tile, len(info.bands)
                meta, batch = [], np.empty((self.batch_size, tile, tile, count), dataset.dtypes[info.bands[0] - 1])
                filled = 0
                for tile_row, r, c in info.grid.tiles():
                    if self.stop.is_set():
                        return
                    start = time.perf_counter()
                    raw, valid = read_tile(dataset, info.grid, info.bands, r, c, check_mask)
                    if valid.any():
                        batch[filled] = raw
                        filled += 1
                        meta.append((tile_row, r, c, valid, False))
                    else:
                        meta.append((tile_row, r, c, None, True))
                    info.read_s += time.perf_counter() - start
                    if filled == self.batch_size:
                        if not self._put((meta, batch[:filled].copy())):
                            return
                        meta, filled = [], 0
                if meta and not self._put((meta, batch[:filled].copy() if filled else None)):
                    return
            self._put(_END)
        except BaseException as error:  # handed to the consuming thread
            self._put(error)

class SlidingWindowPredictor:
    """Predict landslide probabilities over a whole scene, strip by strip.

    Args:
        engine: An engine, or anything `make_engine` takes (keras.Model,
            weight tag, run folder, weight file, `.onnx` file with
            `engine_name="onnx"`).
        tile_size: Window size (multiple of 32). Default: the weights' tile size.
        overlap: Pixels shared by neighbouring windows; blended smoothly.
            Default 128, or a quarter of the tile size when that is smaller.
        batch_size: Tiles per model call.
        tta: D4 test-time augmentation (8× compute).
        engine_name: `"keras"` or `"onnx"` when `engine` is not an engine yet.
        prefetch: Batches the reader may prepare ahead of the model.
        progress: Show a tqdm bar of tiles done.

    Example:
    >>> predictor = SlidingWindowPredictor("demo", tile_size=512, overlap=64)  # doctest: +SKIP
    >>> for strip in predictor.strips("scene.tif"):  # doctest: +SKIP
    ...     print(strip.row_offset, strip.prob.shape)
    """

    def __init__(self, engine, tile_size=None, overlap=None, batch_size=4, tta=False, engine_name="keras",
                 prefetch=2, progress=True):
        self.engine = make_engine(engine, engine_name, tta=tta)
        self.tile_size = int(tile_size or self.engine.input_size or self.engine.tile_size)
        if self.engine.input_size and self.tile_size != self.engine.input_size:
            raise GdcldZooError(
                f"Engine {self.engine.tag!r} only takes {self.engine.input_size}-pixel tiles; "
                f"use tile_size={self.engine.input_size}."
            )
        if int(batch_size) < 1:
            raise GdcldZooError(f"batch_size must be at least 1, got {batch_size}.")
        self.overlap = min(DEFAULT_OVERLAP, self.tile_size // 4) if overlap is None else int(overlap)
        self.batch_size = int(batch_size)
        self.prefetch, self.progress = max(1, int(prefetch)), progress
        self.last_run = None

    def prepare(self, path, bands=None):
        """Open the scene, choose bands and lay out the grid; returns a `SceneRun`."""
        with open_scene(path) as dataset:
            chosen, reason = select_bands(dataset, self.engine.preprocessing, bands)
            multiple = None if self.engine.input_size else 32
            grid = TileGrid.for_scene(dataset.height, dataset.width, self.tile_size, self.overlap, multiple=multiple)
            run = SceneRun(str(path), dataset.width, dataset.height, dataset.crs, dataset.transform,
                           chosen, reason, grid)
        log.info("%s: bands %s (%s), %d tiles of %d px", path, list(chosen), reason, grid.num_tiles, grid.tile)
        return run

    def strips(self, path, bands=None, run=None):
        """Yield the scene as `Strip`s, top to bottom; `self.last_run` holds the `SceneRun`."""
        from tqdm.auto import tqdm

        run = run or self.prepare(path, bands)
        self.last_run = run
        accumulator = StripAccumulator(run.grid)
        tiles = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        reader = _TileReader(run, self.batch_size, tiles, stop)
        # GDAL's block cache defaults to 5 % of RAM and would fill with every block
        # read or written; a small cap keeps memory flat however large the scene.
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
            reader.start()
            bar = tqdm(total=run.grid.num_tiles, unit="tile", desc=str(path).rsplit("/", 1)[-1],
                       disable=not self.progress, leave=False)
            current = 0
            try:
                while True:
                    start = time.perf_counter()
                    item = tiles.get()
                    run.wait_s += time.perf_counter() - start
                    if item is _END:
                        break
                    if isinstance(item, BaseException):
                        raise item
                    meta, raw = item
                    probs = None
                    if raw is not None:
                        start = time.perf_counter()
                        probs = np.asarray(self.engine.predict(raw), "float32")
                        run.model_s += time.perf_counter() - start
                        if probs.shape != raw.shape[:3]:
                            raise GdcldZooError(
                                f"Engine {self.engine.tag!r} returned shape {probs.shape} for tiles {raw.shape}."
                            )
                    done = 0
                    for tile_row, r, c, valid, skipped in meta:
                        while tile_row > current:
                            yield Strip(*self._finish(accumulator, current))
                            current += 1
                        if skipped:
                            run.tiles_skipped += 1
                        else:
                            accumulator.add(r, c, probs[done], valid)
                            done += 1
                    run.tiles_predicted += done
                    if bar.n == 0:
                        _time_from_now(bar, len(meta))
                    else:
                        bar.update(len(meta))
                while current < len(run.grid.row_starts):
                    yield Strip(*self._finish(accumulator, current))
                    current += 1
            finally:
                stop.set()
                bar.close()
                reader.join()

    @staticmethod
    def _finish(accumulator, tile_row):
        prob, valid, start = accumulator.finish_row(tile_row)
        return start, prob, valid

    def predict(self, path, out_dir, threshold=None, bands=None, min_area_m2=0.0):
        """Write the scene's probability map, mask, polygons and summary; see `predict_scene`."""
        start_total = time.perf_counter()
        threshold = self.check_options(threshold, min_area_m2)
        run = self.prepare(path, bands)
        return self.write_outputs(run, self.strips(path, run=run), out_dir, Path(path).stem, threshold,
                                  min_area_m2, start_total)

    def check_options(self, threshold, min_area_m2):
        """The threshold to use (the engine's when None); `GdcldZooError` for out-of-range options."""
        threshold = self.engine.threshold if threshold is None else float(threshold)
        if not 0.0 <= threshold <= 1.0:
            raise GdcldZooError(f"threshold must be a probability in [0, 1], got {threshold}.")
        if min_area_m2 < 0:
            raise GdcldZooError(f"min_area_m2 must be >= 0, got {min_area_m2}.")
        return threshold

    def write_outputs(self, run, strips, out_dir, stem, threshold, min_area_m2, start_total, extra=None):
        """Write `<stem>_prob.tif`, `_mask.tif`, `_landslides.geojson`, `_summary.json` from `strips`.

        `strips` yields the `Strip`s of `run`'s scene top to bottom (from `strips()`, or assembled
        elsewhere, e.g. from window blocks predicted by other processes); files appear atomically.
        `extra` entries are added to the summary.
        """
        out_dir = Path(out_dir)
        area = GroundArea(run.crs, run.transform, run.width, run.height)
        check_writable_folder(out_dir)
        with OutputLock(out_dir, stem) as lock:
            if lock.stale_pid:
                log.info("%s: taking over the lock of run %d, which is no longer running", out_dir, lock.stale_pid)
            if remove_parts(*(out_dir / f"{stem}_{kind}" for kind in OUTPUT_KINDS)):
                log.info("%s: removed temporary files of %s left by an interrupted run", out_dir, stem)
            summary, outputs = self._write_outputs(run, strips, out_dir, stem, area, threshold, min_area_m2,
                                                   start_total, extra)
        log.debug("%s: %d landslides, %s", run.path, summary["n_landslides"], _area_text(summary))
        return SceneResult(Path(run.path), outputs, summary)

    def _write_outputs(self, run, strips, out_dir, stem, area, threshold, min_area_m2, start, extra):
        """Write the scene's files under temporary names, then publish them, summary last."""
        outputs = {kind: out_dir / f"{stem}_{kind}" for kind in OUTPUT_KINDS}
        files = AtomicFiles(*outputs.values())
        temp = dict(zip(OUTPUT_KINDS, files.temps))
        writer = None
        try:
            vectorizer = StripVectorizer(temp["landslides.geojson"], run.transform, run.crs, area, min_area_m2)
            writer = StripWriter(temp["prob.tif"], temp["mask.tif"], run.width, run.height, run.crs, run.transform,
                                 threshold, area, vectorizer)
            writer.start()
            for strip in strips:
                writer.put(strip)
            writer.close()
            if writer.valid_pixels == 0:
                raise SceneError(
                    f"{run.path}: no valid pixels: every pixel is nodata, transparent (alpha 0) or masked."
                )
            summary = _summary(run, self, area, writer, writer.polygons, threshold, min_area_m2, outputs)
            summary["timings_s"]["total"] = round(time.perf_counter() - start, 3)
            summary.update(extra or {})
            temp["summary.json"].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
            files.commit()
        except BaseException:
            if writer is not None and writer.is_alive():
                writer.strips.put(None)
                writer.join()
            files.discard()
            raise
        return summary, outputs


OUTPUT_KINDS = ("prob.tif", "mask.tif", "landslides.geojson", "summary.json")


def _time_from_now(bar, done):
    """Count the first batch as already done and time the rest from now: it includes the model's
    compilation, so a rate taken with it would estimate minutes for seconds of work."""
    bar.reset(total=bar.total)
    bar.initial = bar.n = bar.last_print_n = done
    bar.refresh()


@dataclasses.dataclass
class SceneResult:
    """Outputs of `predict_scene` for one scene.

    Attributes:
        scene: The input path.
        outputs: `{"prob.tif": Path, "mask.tif": ..., "landslides.geojson": ..., "summary.json": ...}`.
        summary: The content of the summary JSON.
    """

    scene: Path
    outputs: dict
    summary: dict


def _area_text(summary):
    if summary["landslide_area_km2"] is None:
        return f"{summary['landslide_area_px']} landslide pixels (no CRS: no ground area)"
    return f"{summary['landslide_area_km2']:.4f} km2 of landslides in {summary['valid_area_km2']:.4f} km2 mapped"


def _summary(run, predictor, area, writer, polygons, threshold, min_area_m2, outputs):
    """The `<stem>_summary.json` content."""
    km2 = area.units == "m2"
    engine = predictor.engine
    pixels = run.width * run.height
    return {
        "scene": run.path,
        "outputs": {kind: path.name for kind, path in outputs.items()},
        "model_tag": engine.tag,
        "engine": type(engine).__name__,
        "tta": isinstance(engine, D4Engine),
        "threshold": threshold,
        "bands": list(run.bands),
        "bands_from": run.bands_from,
        "width": run.width,
        "height": run.height,
        "crs": run.crs.to_string() if run.crs else None,
        "area_method": area.method,
        "pixel_area_m2": round(area.pixel_area, 6) if km2 else None,
        "tile_size": run.grid.tile,
        "overlap": run.grid.overlap,
        "batch_size": predictor.batch_size,
        "n_tiles": run.grid.num_tiles,
        "n_tiles_predicted": run.tiles_predicted,
        "n_tiles_skipped_nodata": run.tiles_skipped,
        "valid_pixels": writer.valid_pixels,
        "nodata_pixels": pixels - writer.valid_pixels,
        "valid_area_km2": writer.valid_area / 1e6 if km2 else None,
        "landslide_pixels": writer.landslide_pixels,
        "landslide_area_px": writer.landslide_pixels if not km2 else None,
        "n_landslides": polygons["n_landslides"],
        "n_dropped_below_min_area": polygons["n_dropped"],
        "min_area_m2": min_area_m2 if km2 else None,
        "landslide_area_km2": polygons["area"] / 1e6 if km2 else None,
        "mask_landslide_area_km2": writer.landslide_area / 1e6 if km2 else None,
        "probability_encoding": f"uint8 round({PROB_SCALE} * p), {NODATA} = nodata",
        "timings_s": {
            "read": round(run.read_s, 3),
            "model": round(run.model_s, 3),
            "model_waited_for_reader": round(run.wait_s, 3),
            "write": round(writer.write_s, 3),
            "vectorize": round(writer.vectorize_s, 3),
        },
    }


def predict_scene(model_or_tag, src, out_dir, tile_size=None, overlap=None, batch_size=4, threshold=None,
                  tta=False, bands=None, min_area_m2=0.0, engine="keras", progress=True):
    """Map landslides over whole georeferenced scenes of any size.

    For each scene `<stem>.tif` writes to `out_dir`:

    * `<stem>_prob.tif`: uint8 probability `round(254 p)`, 255 nodata (GDAL
      scale 1/254), and `<stem>_mask.tif`: uint8 1/0, 255 nodata; both with the
      scene's CRS, transform and size, 512-pixel tiles, deflate (COG-friendly);
    * `<stem>_landslides.geojson`: one polygon per landslide with `area_m2`,
      coordinates in WGS84 (RFC 7946);
    * `<stem>_summary.json`: `landslide_area_km2`, `n_landslides`,
      `valid_area_km2`, tile count, model tag, threshold, bands, timings.

    Each file is written under a temporary name unique to the run and renamed
    when the scene is complete, the summary last: a summary means its maps and
    polygons are complete and from the same run. A lock (`.<stem>.lock` in
    `out_dir`, holding the pid) keeps two runs from writing one scene at once;
    temporaries a killed run left are removed. Memory stays bounded by tile
    size × batch size and one strip of tile rows, whatever the scene size.

    Args:
        model_or_tag: A keras.Model, a weight tag (`"demo"`), run folder or
            weight file (through `load_pretrained`), an engine, or with
            `engine="onnx"` an exported `.onnx` file.
        src: A scene path, or a list of them.
        out_dir: Output folder (created).
        tile_size: Window in pixels, a multiple of 32. Default: the weights'
            `tile_size` (1024 for GDCLD weights).
        overlap: Pixels shared by neighbouring windows, blended smoothly; the
            scene is also padded by reflection of `overlap // 2` pixels.
            Default 128, or a quarter of the tile size when that is smaller.
        batch_size: Windows per model call.
        threshold: Landslide probability threshold. Default: the weights'.
        tta: Average the 8 flips/rotations (D4) of every window.
        bands: 1-based bands to feed the model (`"3,2,1"` or `(3, 2, 1)`).
            Default: from the scene's colour interpretation or the weights'
            preprocessing (see `gdcld_zoo.scene.source`).
        min_area_m2: Drop polygons smaller than this ground area.
        engine: `"keras"` or `"onnx"`.
        progress: Show a progress bar of tiles done.

    Returns:
        A `SceneResult` (a list of them when `src` is a list).

    Raises:
        SceneError: Unreadable or truncated scene, wrong bands or dtype, no valid pixel.
        OutputError: `out_dir` cannot be written; `OutputLockedError`: another
            live run is writing the same scene there.

    Example:
    >>> result = predict_scene("demo", "luding.tif", "maps/")  # doctest: +SKIP
    >>> result.summary["landslide_area_km2"]  # doctest: +SKIP
    0.412
    """
    predictor = SlidingWindowPredictor(model_or_tag, tile_size=tile_size, overlap=overlap, batch_size=batch_size,
                                       tta=tta, engine_name=engine, progress=progress)
    if isinstance(src, (list, tuple)):
        return [predictor.predict(s, out_dir, threshold, bands, min_area_m2) for s in src]
    return predictor.predict(src, out_dir, threshold, bands, min_area_m2)
