"""`map_event`: many scenes in, per-scene maps and one deduplicated landslide inventory out.

A run goes through every source in order:

1. resolve (`gdcld_zoo.event.sources`) and open it (header only; remote
   rasters through `/vsicurl/`), before any model is loaded: a source that
   cannot be used is `failed` with the reason, a scene that misses the AOI is
   `skipped`;
2. reuse a scene whose outputs a previous run with the same arguments
   finished (`<id>_summary.json` carries a fingerprint of the arguments; the
   rasters must open at the scene's size and the polygons parse), so a killed
   run restarts where it stopped;
3. predict the other scenes in window blocks (`gdcld_zoo.event.blocks`), in
   process or on a Dask cluster (`gdcld_zoo.event.cluster`), and write
   `<id>_prob.tif`, `_mask.tif`, `_landslides.geojson`, `_summary.json`
   exactly as `predict_scene` does, clipped to the AOI;
4. merge every scene's landslides into `inventory.gpkg`, `inventory.geojson`
   (`gdcld_zoo.event.inventory`) and write `inventory.json` (counts, areas,
   one entry per scene with its status and timings, the weights and options).

Example:
>>> result = map_event("demo", ["A.tif", "http://host/B.tif", "item.json"], "event/",
...                    aoi="aoi.geojson", scheduler="processes:2")  # doctest: +SKIP
>>> result.report["landslide_count"]  # doctest: +SKIP
"""

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

import rasterio

from gdcld_zoo.errors import GdcldZooError
from gdcld_zoo.event.aoi import AreaOfInterest
from gdcld_zoo.event.blocks import aoi_clip, assemble_strips, plan_blocks, tile_filter
from gdcld_zoo.event.cluster import block_runner, check_scheduler
from gdcld_zoo.event.geometry import footprint
from gdcld_zoo.event.inventory import MappedScene, area_histogram, build_inventory, write_inventory
from gdcld_zoo.files import OutputLock, check_writable_folder
from gdcld_zoo.event.sources import DEFAULT_ASSET, REMOTE_ENV, EventError, resolve_sources
from gdcld_zoo.scene.area import GroundArea
from gdcld_zoo.scene.predictor import SlidingWindowPredictor
from gdcld_zoo.scene.source import open_scene

log = logging.getLogger("gdcld_zoo.event")

REPORT_NAME = "inventory.json"
BLOCKS_FOLDER = ".blocks"
DEFAULT_BLOCK_TILES = 4
HISTOGRAM_WIDTH = 40


@dataclasses.dataclass
class EventResult:
    """What `map_event` wrote: the `inventory.json` content and the output paths."""

    report: dict
    outputs: dict

    @property
    def failed(self):
        return [s for s in self.report["scenes"] if s["status"] == "failed"]


@dataclasses.dataclass
class _Scene:
    """A source on its way through the run (becomes one entry of `inventory.json`'s `scenes`)."""

    id: str
    source: str
    uri: str = None
    sensor: str = None
    status: str = "pending"
    reason: str = None
    info: dict = dataclasses.field(default_factory=dict)
    summary: dict = None
    grid_info: tuple = None
    blocks: list = None
    run: object = None
    pending: list = None

    def fail(self, reason, status="failed"):
        self.status, self.reason = status, str(reason)
        log.info("%s: %s: %s", self.id, status, reason)  # reported in inventory.json and by the CLI

    def entry(self):
        entry = {"id": self.id, "source": self.source, "status": self.status, "reason": self.reason,
                 "sensor": self.sensor, **self.info}
        if self.summary is not None:
            s = self.summary
            entry.update(n_landslides=s["n_landslides"], landslide_area_km2=s["landslide_area_km2"],
                         valid_area_km2=s["valid_area_km2"], tiles_predicted=s["n_tiles_predicted"],
                         timings_s=s["timings_s"], outputs=s["outputs"])
        return entry


def _weights_name(weights):
    """A weight tag or path as given; an engine or model by its tag or name."""
    if isinstance(weights, (str, os.PathLike)):
        return str(weights)
    return getattr(weights, "tag", None) or getattr(weights, "name", None) or type(weights).__name__


def file_identity(path):
    """Size and modification time of a local file, or of every file in a folder (recursively,
    dot-files skipped); None for what is not a local path (a tag, a URL, a model object).

    Part of the restart fingerprint, so weights retrained into the same run folder or a scene
    file replaced under the same name are mapped again, not taken from the earlier run.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.path.exists(path):
        return None
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")) if path.is_dir() else [path]
    return [(str(p.relative_to(path)) if path.is_dir() else p.name, p.stat().st_size, p.stat().st_mtime_ns)
            for p in files]


def _fingerprint(scene, weights, options, aoi):
    """Digest of everything that decides a scene's outputs (restart check)."""
    key = {"uri": scene.uri, "scene_file": file_identity(scene.uri), "weights": _weights_name(weights),
           "weights_files": file_identity(weights), "aoi": aoi.digest if aoi else None, **options}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def finished_summary(out_dir, scene_id, fingerprint):
    """The summary of a scene finished with the same fingerprint, if all its outputs are complete; else None."""
    out_dir = Path(out_dir)
    try:
        summary = json.loads((out_dir / f"{scene_id}_summary.json").read_text(encoding="utf-8"))
        if summary.get("event", {}).get("fingerprint") != fingerprint:
            return None
        for kind in ("prob.tif", "mask.tif"):
            with rasterio.open(out_dir / f"{scene_id}_{kind}") as dataset:
                if (dataset.width, dataset.height) != (summary["width"], summary["height"]):
                    return None
        json.loads((out_dir / f"{scene_id}_landslides.geojson").read_text(encoding="utf-8"))["features"]
    except (OSError, ValueError, KeyError, TypeError, rasterio.errors.RasterioError):
        return None
    return summary


def _probe(scene, aoi):
    """Open the scene's header: grid, CRS, resolution; skipped when it misses the AOI."""
    with rasterio.Env(**REMOTE_ENV), open_scene(scene.uri) as dataset:
        crs, transform, width, height = dataset.crs, dataset.transform, dataset.width, dataset.height
        scene.info.update(width=width, height=height, bands=dataset.count, dtype=dataset.dtypes[0])
    if crs is None:
        raise EventError(f"{scene.source}: the scene has no CRS, so it cannot join an event inventory; "
                         "georeference it (e.g. gdal_edit.py -a_srs).")
    area = GroundArea(crs, transform, width, height)
    scene.info.update(crs=crs.to_string(), resolution_m=round(math.sqrt(area.pixel_area), 4))
    if aoi is not None and not footprint(transform, width, height).intersects(aoi.in_crs(crs)):
        scene.fail("the scene does not touch the AOI", "skipped")
    return crs, transform, width


def map_event(weights, sources, out_dir, aoi=None, scheduler=None, asset=DEFAULT_ASSET, tile_size=None, overlap=None,
              batch_size=4, threshold=None, tta=False, bands=None, min_area_m2=0.0, engine="keras",
              block_tiles=DEFAULT_BLOCK_TILES, progress=True):
    """Map landslides over every scene of an event and merge them into one inventory.

    Args:
        weights: Weight tag (`"demo"`), run folder, weight file, `.onnx` with
            `engine="onnx"`, or (in process only) a keras.Model or engine.
        sources: Local rasters, folders, VRTs, `http(s)://` (C)OG URLs, STAC
            Item/ItemCollection JSON files or URLs, in any mix.
        out_dir: Output folder: per-scene maps, `inventory.gpkg`,
            `inventory.geojson`, `inventory.json`.
        aoi: GeoJSON/GeoPackage of polygons (any CRS) or an `AreaOfInterest`:
            only windows touching it are predicted, outputs are clipped to it.
        scheduler: None (in process), `"processes:N"` or `"tcp://HOST:PORT"` (Dask).
        asset: STAC asset to read (default `visual`).
        tile_size, overlap, batch_size, threshold, tta, bands, min_area_m2, engine:
            As for `predict_scene`.
        block_tiles: Tiles per side of a window block (the unit of work).
        progress: Log each scene as it finishes.

    Returns:
        An `EventResult`.

    Raises:
        EventError: Bad AOI or scheduler, or no source could be mapped (nothing is written).
    """
    start = time.perf_counter()
    if not sources:
        raise EventError("no source given: pass GeoTIFFs, folders, URLs or STAC items.")
    check_scheduler(scheduler, weights)
    if block_tiles < 1:
        raise EventError(f"block_tiles must be at least 1, got {block_tiles}.")
    if aoi is not None and not isinstance(aoi, AreaOfInterest):
        aoi = AreaOfInterest.read(aoi)
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    try:
        return _map_event_in(out_dir, sources, weights, aoi, scheduler, asset, tile_size, overlap, batch_size,
                             threshold, tta, bands, min_area_m2, engine, block_tiles, progress, start)
    except BaseException:
        if created:  # a run that wrote nothing leaves no folder behind
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise


def _map_event_in(out_dir, sources, weights, aoi, scheduler, asset, tile_size, overlap, batch_size, threshold, tta,
                  bands, min_area_m2, engine, block_tiles, progress, start):
    """`map_event` once its arguments are checked: holds the folder's lock while it maps and writes."""
    check_writable_folder(out_dir)
    with OutputLock(out_dir, "inventory"):  # a second run into this folder refuses, naming this one
        options = {"engine": engine, "tta": bool(tta), "tile_size": tile_size, "overlap": overlap, "threshold": threshold,
                   "bands": bands, "min_area_m2": min_area_m2, "block_tiles": block_tiles}
        scenes = []
        for source in resolve_sources(sources, asset):
            scene = _Scene(source.id, source.origin, source.uri, source.sensor)
            scenes.append(scene)
            if source.error:
                scene.fail(source.error)
                continue
            try:
                scene.grid_info = _probe(scene, aoi)
            except GdcldZooError as error:
                scene.fail(error)
                continue
            if scene.status == "pending":
                scene.info["fingerprint"] = _fingerprint(scene, weights, options, aoi)
                scene.summary = finished_summary(out_dir, scene.id, scene.info["fingerprint"])
                if scene.summary is not None:
                    scene.status, scene.reason = "done", "finished by an earlier run (outputs verified)"
        todo = [s for s in scenes if s.status == "pending"]
        predictor = None
        if todo:
            predictor = SlidingWindowPredictor(weights, tile_size=tile_size, overlap=overlap, batch_size=batch_size,
                                               tta=tta, engine_name=engine, progress=False)
            threshold_used = predictor.check_options(threshold, min_area_m2)
            _map_scenes(todo, predictor, weights, out_dir, aoi, scheduler, engine, tta, bands, threshold_used,
                        min_area_m2, block_tiles, progress)
        done = [s for s in scenes if s.status == "done"]
        if not done and not any(s.status == "skipped" for s in scenes):
            if len(scenes) == 1:
                raise EventError(scenes[0].reason)
            raise EventError(f"no source could be mapped: {'; '.join(s.reason for s in scenes)}")
        return _write_event(scenes, done, out_dir, weights, predictor, threshold, options, aoi, scheduler, asset,
                            batch_size, start)


def _map_scenes(todo, predictor, weights, out_dir, aoi, scheduler, engine, tta, bands, threshold, min_area_m2,
                block_tiles, progress):
    """Queue every scene's blocks (a cluster works ahead of the driver) and write each scene."""
    folder = out_dir / BLOCKS_FOLDER
    shutil.rmtree(folder, ignore_errors=True)  # block sums a killed run left (this run holds the folder's lock)
    folder.mkdir(parents=True)
    try:
        with block_runner(scheduler, weights, engine, tta, predictor.engine) as runner:
            for scene in todo:
                try:
                    scene.run = predictor.prepare(scene.uri, bands)
                except GdcldZooError as error:
                    scene.fail(error)
                    continue
                crs, transform, width = scene.grid_info
                keep = tile_filter(aoi.in_crs(crs), scene.run.grid, transform) if aoi else None
                scene.blocks = plan_blocks(scene.id, scene.uri, scene.run.grid, scene.run.bands, block_tiles, keep)
                if not scene.blocks:
                    scene.fail("no window of the scene touches the AOI", "skipped")
                    continue
                scene.pending = [runner.submit(block, predictor.batch_size, folder) for block in scene.blocks]
            for scene in todo:
                if scene.status == "pending":
                    _finish_scene(scene, predictor, out_dir, folder, aoi, threshold, min_area_m2, runner, progress)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _finish_scene(scene, predictor, out_dir, folder, aoi, threshold, min_area_m2, runner, progress):
    """Wait for a scene's blocks, assemble and write its outputs."""
    start = time.perf_counter()
    run = scene.run

    def count(result):
        run.tiles_predicted += result["tiles_predicted"]
        run.tiles_skipped += result["tiles_skipped"]
        run.read_s += result["read_s"]
        run.model_s += result["model_s"]

    try:
        crs, transform, width = scene.grid_info
        clip = aoi_clip(aoi.in_crs(crs), transform, width) if aoi else None
        extra = {"event": {"fingerprint": scene.info["fingerprint"], "source": scene.source,
                           "blocks": len(scene.blocks), "workers": runner.workers}}
        strips = assemble_strips(scene.blocks, scene.pending, folder, clip, count)
        result = predictor.write_outputs(run, strips, out_dir, scene.id, threshold, min_area_m2, start, extra)
    except Exception as error:  # a scene that fails (HTTP error mid-read, bad pixels) must not stop the event
        scene.fail(error if isinstance(error, GdcldZooError) else f"{type(error).__name__}: {error}")
        return
    finally:
        for block in scene.blocks:
            for path in block.files(folder).values():
                path.unlink(missing_ok=True)
    scene.status, scene.summary = "done", result.summary
    if progress:
        log.info("%s: %d landslides, %d tiles in %d blocks, %.1f s", scene.id, result.summary["n_landslides"],
                 run.tiles_predicted, len(scene.blocks), result.summary["timings_s"]["total"])


def _write_event(scenes, done, out_dir, weights, predictor, threshold, options, aoi, scheduler, asset, batch_size,
                 start):
    """Build and write the inventory and `inventory.json`; returns the `EventResult`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    mapped = [MappedScene(s.id, *(out_dir / s.summary["outputs"][k] for k in ("landslides.geojson", "mask.tif",
                                                                              "prob.tif"))) for s in done]
    inventory = build_inventory(mapped)
    outputs = write_inventory(inventory, out_dir)
    areas = [r["area_m2"] for r in inventory.records]
    largest = inventory.records[0] if inventory.records else None
    tags = {s.summary["model_tag"] for s in done}
    thresholds = {s.summary["threshold"] for s in done}
    report = {
        "landslide_count": len(inventory.records),
        "landslide_area_km2": inventory.area_m2 / 1e6,
        "mapped_area_km2": inventory.mapped_area_m2 / 1e6,
        "largest_landslide": None if largest is None else {
            k: largest[k] for k in ("id", "area_m2", "centroid_lon", "centroid_lat", "scenes")},
        "area_histogram_m2": area_histogram(areas),
        "scene_counts": {status: sum(s.status == status for s in scenes) for status in ("done", "skipped", "failed")},
        "scenes": [s.entry() for s in scenes],
        "weights": _weights_name(weights),
        "model_tag": predictor.engine.tag if predictor else (tags.pop() if len(tags) == 1 else sorted(tags)),
        "threshold": thresholds.pop() if len(thresholds) == 1 else sorted(thresholds),
        "options": {**options, "batch_size": batch_size, "asset": asset, "scheduler": scheduler,
                    "aoi": aoi.name if aoi else None},
        "inventory_crs": inventory.crs.to_wkt() if inventory.crs else None,
        "outputs": {name: path.name for name, path in outputs.items()} | {"inventory.json": REPORT_NAME},
        "timings_s": {"total": round(time.perf_counter() - start, 3)},
    }
    report_path = out_dir / REPORT_NAME
    temp = report_path.with_name(f".{REPORT_NAME}.part")
    temp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    os.replace(temp, report_path)
    return EventResult(report, {**outputs, REPORT_NAME: report_path})


def format_event_summary(report):
    """The event summary printed at the end of a run: counts, areas, largest landslide, area-frequency."""
    counts = report["scene_counts"]
    lines = [
        f"Event: {report['landslide_count']} landslides, {report['landslide_area_km2']:.6f} km2 of landslides in "
        f"{report['mapped_area_km2']:.6f} km2 mapped; scenes: {counts['done']} done, {counts['skipped']} skipped, "
        f"{counts['failed']} failed (weights {report['model_tag']}, threshold {report['threshold']})",
    ]
    largest = report["largest_landslide"]
    if largest:
        lines.append(f"Largest landslide: {largest['area_m2']:,.1f} m2 at {largest['centroid_lon']:.6f}, "
                     f"{largest['centroid_lat']:.6f} (seen by {largest['scenes']})")
    if report["area_histogram_m2"]:
        lines.append("Area-frequency (landslides per area decade):")
        for row in report["area_histogram_m2"]:
            bar = "#" * math.ceil(HISTOGRAM_WIDTH * row["count"] / max(r["count"] for r in report["area_histogram_m2"]))
            lines.append(f"  {row['min_m2']:>12,g} - {row['max_m2']:<12,g} m2  {row['count']:6d}  {bar}")
    for scene in report["scenes"]:
        if scene["status"] != "done":
            lines.append(f"  {scene['status']}: {scene['id']} ({scene['source']}): {scene['reason']}")
    return "\n".join(lines)
