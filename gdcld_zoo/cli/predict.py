"""`gdcld-zoo predict WEIGHTS SOURCE... --out DIR`: whole-scene landslide maps and one event inventory."""

import argparse
import logging
import sys
from pathlib import Path


def positive_int(text):
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _map(args):
    from gdcld_zoo.event import map_event

    return map_event(
        args.weights, args.scenes, args.out, aoi=args.aoi, scheduler=args.scheduler, asset=args.asset,
        tile_size=args.tile_size, overlap=args.overlap, batch_size=args.batch_size, threshold=args.threshold,
        tta=args.tta, bands=args.bands, min_area_m2=args.min_area, engine=args.engine, block_tiles=args.block_tiles,
        progress=not args.quiet,
    )


def run_predict(args):
    from gdcld_zoo.event import format_event_summary

    # progress lines (stdout) from gdcld_zoo only: Dask and pyogrio log every step at INFO;
    # errors are printed once, on stderr, below
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("gdcld_zoo")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if args.quiet else logging.INFO)
    try:
        result = _map(args)
    finally:
        logger.removeHandler(handler)
    for scene in result.report["scenes"]:
        if scene["status"] == "failed":
            print(f"gdcld-zoo predict: error: {scene['reason']}", file=sys.stderr)
        elif scene["status"] == "done":
            print(f"{scene['source']}: {scene['n_landslides']} landslides, {scene['landslide_area_km2']:.6f} km2, "
                  f"{scene['tiles_predicted']} tiles "
                  f"in {scene['timings_s']['total']:.1f} s -> {Path(args.out) / scene['outputs']['summary.json']}"
                  + (" (finished by an earlier run)" if scene["reason"] else ""))
    print(format_event_summary(result.report))
    print(f"Inventory: {', '.join(str(p) for p in result.outputs.values())}")
    return 2 if result.failed else 0


def register(subparsers):
    parser = subparsers.add_parser(
        "predict",
        help="map landslides over whole scenes and merge them into one event inventory",
        description="Write <id>_prob.tif, <id>_mask.tif, <id>_landslides.geojson (WGS84) and <id>_summary.json "
        "per scene, and inventory.gpkg (layer landslides), inventory.geojson (EPSG:4326) and inventory.json: "
        "every landslide once, overlapping scenes merged.",
        epilog="examples:\n  gdcld-zoo predict demo A.tif https://host/B.tif item.json --aoi aoi.geojson --out event/\n"
        "  gdcld-zoo predict demo scenes/ --out event/ --scheduler processes:2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("weights", help="weight tag (e.g. demo), run folder, weight file, or .onnx with --engine onnx")
    parser.add_argument("scenes", nargs="+", metavar="SOURCE",
                        help="GeoTIFF/VRT, folder of them, http(s) URL of a (C)OG, or STAC Item/ItemCollection JSON")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--aoi", default=None, metavar="FILE",
                        help="GeoJSON or GeoPackage polygons (any CRS): map and clip to them only")
    parser.add_argument("--asset", default="visual", help="STAC asset to read (default visual)")
    parser.add_argument("--scheduler", default=None,
                        help="processes:N (local Dask cluster) or tcp://HOST:PORT (Dask scheduler); default in process")
    parser.add_argument("--block-tiles", type=positive_int, default=4, metavar="N",
                        help="tiles per side of a window block, the unit of work (default 4)")
    parser.add_argument("--tile-size", type=positive_int, default=None,
                        help="window in pixels, a multiple of 32 (default: the weights' tile size)")
    parser.add_argument("--overlap", type=int, default=None,
                        help="overlap of windows in pixels (default 128, or a quarter of smaller tiles)")
    parser.add_argument("--batch-size", type=positive_int, default=4, help="windows per model call (default 4)")
    parser.add_argument("--threshold", type=float, default=None, help="probability threshold (default: the weights')")
    parser.add_argument("--tta", action="store_true", help="average the 8 flips/rotations of each window")
    parser.add_argument("--bands", default=None, help="1-based bands in model order, e.g. 3,2,1")
    parser.add_argument("--min-area", type=float, default=0.0, metavar="M2",
                        help="drop polygons smaller than this ground area in m2")
    parser.add_argument("--engine", choices=("keras", "onnx"), default="keras", help="inference engine")
    parser.add_argument("--quiet", action="store_true", help="no per-scene progress")
    parser.set_defaults(func=run_predict)
