"""Event-mapping throughput: `map_event` in process and on local Dask clusters of 1 and 2 workers.

Writes `--scenes` overlapping synthetic scenes (`gdcld_zoo.data.synthetic`,
`--size`² pixels at 0.5 m, cut from one strip so that each overlaps the next by
half a scene) and maps them with the
`demo` weights, in process and with `--scheduler processes:N` for each N in
`--workers`, each run into a fresh folder. Prints, per run, the wall time,
throughput in Mpx/s and km²/s (at 0.5 m; pixels counted once per scene, so
overlaps count twice, as they are computed twice), the landslide count, and
from the best per-worker figure a sizing estimate for a 100,000 km² event at
0.5 m mapped in 24 hours. Cluster runs include starting the workers and
loading the model in each are timed apart: each cluster, and the in-process
engine, first maps one scene as a warm-up (workers keep the model loaded).

Run from the repository root (CPU: GPUs hidden):

    CUDA_VISIBLE_DEVICES= python benchmarks/event.py                      # 2 scenes of 2048², 1 and 2 workers
    CUDA_VISIBLE_DEVICES= python benchmarks/event.py --size 1024 --workers --figure event.png
"""

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

RESOLUTION_M = 0.5
EVENT_KM2 = 100_000
DAY_S = 24 * 3600


def write_scenes(folder, count, size):
    """`count` scenes cut from one synthetic strip, each overlapping the next by half a scene."""
    from affine import Affine

    from gdcld_zoo.data.synthetic import synthetic_scene, write_geotiff

    image, _ = synthetic_scene(size, size * (count + 1) // 2, seed=0)
    paths = []
    for i in range(count):
        transform = Affine(RESOLUTION_M, 0, 500000.0 + i * size * RESOLUTION_M / 2, 0, -RESOLUTION_M, 3300000.0)
        window = image[:, :, i * size // 2:i * size // 2 + size]
        paths.append(write_geotiff(folder / f"scene{i}.tif", window, transform))
    return paths


def draw_figure(scenes, out_dir, path, width=1200):
    """PNG of the scenes (RGB), their outlines and the inventory's landslides (red) on one canvas."""
    import numpy as np
    import pyogrio
    import rasterio
    import shapely
    from PIL import Image, ImageDraw

    from gdcld_zoo.event.geometry import reproject

    datasets = [rasterio.open(s) for s in scenes]
    crs = datasets[0].crs
    west = min(d.bounds.left for d in datasets)
    north = max(d.bounds.top for d in datasets)
    east = max(d.bounds.right for d in datasets)
    south = min(d.bounds.bottom for d in datasets)
    scale = (east - west) / width  # metres per canvas pixel
    canvas = Image.new("RGB", (width, int((north - south) / scale)), "white")
    to_canvas = lambda x, y: ((x - west) / scale, (north - y) / scale)  # noqa: E731
    for d in datasets:
        x0, y0 = to_canvas(d.bounds.left, d.bounds.top)
        x1, y1 = to_canvas(d.bounds.right, d.bounds.bottom)
        rgb = d.read(out_shape=(3, int(y1 - y0), int(x1 - x0)))
        canvas.paste(Image.fromarray(np.moveaxis(rgb, 0, -1)), (int(x0), int(y0)))
    draw = ImageDraw.Draw(canvas)
    for d, colour in zip(datasets, ["cyan", "yellow", "magenta", "white"]):
        draw.rectangle([to_canvas(d.bounds.left, d.bounds.top), to_canvas(d.bounds.right, d.bounds.bottom)],
                       outline=colour, width=3)
        d.close()
    meta, _, wkb, _ = pyogrio.raw.read(out_dir / "inventory.geojson")
    for polygon in reproject(shapely.from_wkb(wkb), meta["crs"], crs):
        draw.polygon([to_canvas(x, y) for x, y in polygon.exterior.coords], outline="red", width=2)
    draw.text((10, 10), "inventory.geojson (red) over the scenes (outlined); overlaps merged once", fill="white")
    canvas.save(path)
    return path


def run(scenes, out, scheduler, tile_size, block_tiles, weights="demo"):
    from gdcld_zoo.event import map_event

    start = time.perf_counter()
    result = map_event(weights, scenes, out, scheduler=scheduler, tile_size=tile_size, block_tiles=block_tiles,
                       progress=False)
    return time.perf_counter() - start, result.report


def report_line(name, pixels, seconds, report):
    """Print one run's figures; returns its Mpx/s."""
    mpx_s = pixels / seconds / 1e6
    km2_s = pixels * RESOLUTION_M**2 / 1e6 / seconds
    print(f"{name:>14}: {seconds:7.1f} s  {mpx_s:6.3f} Mpx/s  {km2_s:7.4f} km2/s  "
          f"{report['landslide_count']} landslides, {report['landslide_area_km2']:.4f} km2")
    return mpx_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=2)
    parser.add_argument("--size", type=int, default=2048, help="scene side in pixels")
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2], help="Dask worker counts to run")
    parser.add_argument("--tile-size", type=int, default=512)
    parser.add_argument("--block-tiles", type=int, default=2)
    parser.add_argument("--figure", default=None, metavar="PNG", help="also draw the in-process inventory")
    args = parser.parse_args()
    logging.getLogger("pyogrio").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="gdcld-event-bench-") as tmp:
        tmp = Path(tmp)
        scenes = write_scenes(tmp / "scenes", args.scenes, args.size)
        pixels = args.scenes * args.size**2
        print(f"{args.scenes} scenes of {args.size}x{args.size} px at {RESOLUTION_M} m ({pixels / 1e6:.1f} Mpx), "
              f"demo weights, {args.tile_size}-px tiles, blocks of {args.block_tiles}x{args.block_tiles} tiles, "
              f"{os.cpu_count()} CPU cores")
        per_worker = []
        from gdcld_zoo.scene import make_engine

        engine = make_engine("demo")  # loaded and warmed up once, as the cluster workers are
        run(scenes[:1], tmp / "warmup", None, args.tile_size, args.block_tiles, engine)
        seconds, report = run(scenes, tmp / "out-inprocess", None, args.tile_size, args.block_tiles, engine)
        per_worker.append(report_line("in process", pixels, seconds, report))
        if args.figure:
            print(f"{'':>14}figure: {draw_figure(scenes, tmp / 'out-inprocess', args.figure)}")
        for workers in args.workers:
            from distributed import LocalCluster

            start = time.perf_counter()
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                              dashboard_address=":0") as cluster:
                address = cluster.scheduler_address
                run(scenes[:1], tmp / f"warmup-{workers}", address, args.tile_size, args.block_tiles)
                startup = time.perf_counter() - start
                seconds, report = run(scenes, tmp / f"out-{workers}", address, args.tile_size, args.block_tiles)
            print(f"{'':>14}(workers started and model loaded in {startup:.1f} s, not counted)")
            per_worker.append(report_line(f"{workers} worker(s)", pixels, seconds, report) / workers)
        best = max(per_worker)
        event_px = EVENT_KM2 * 1e6 / RESOLUTION_M**2
        needed = event_px / (best * 1e6 * DAY_S)
        print(f"Estimate: a {EVENT_KM2:,} km2 event at {RESOLUTION_M} m is {event_px / 1e9:.0f} Gpx; at "
              f"{best:.2f} Mpx/s per worker (best measured) it needs about {needed:,.0f} such workers for 24 h "
              "(an estimate: scaled linearly from this machine, ignoring I/O limits and overlaps).")


if __name__ == "__main__":
    main()
