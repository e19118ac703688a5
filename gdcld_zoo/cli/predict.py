"""`gdcld-zoo predict WEIGHTS SOURCE... --out DIR`: whole-scene landslide maps and one event inventory."""

import logging
import sys

from gdcld_zoo.cli import positive_int
from gdcld_zoo.cli.console import quiet_tensorflow


def _map(args, sources):
    from gdcld_zoo.event import map_event

    return map_event(
        args.weights, sources, args.out, aoi=args.aoi, scheduler=args.scheduler, asset=args.asset,
        tile_size=args.tile_size, overlap=args.overlap, batch_size=args.batch_size, threshold=args.threshold,
        tta=args.tta, bands=args.bands, min_area_m2=args.min_area, engine=args.engine, block_tiles=args.block_tiles,
        progress=not args.quiet,
    )


def run_predict(args):
    from gdcld_zoo.cli import error_message, expected_errors
    from gdcld_zoo.demo import DEMO_NOTE, DEMO_TAG
    from gdcld_zoo.files import check_writable_folder
    from gdcld_zoo.scene.preflight import preflight

    # Weights, settings and local rasters are checked before the model loads (all problems at once);
    # URLs, folders and STAC items are resolved by map_event, also before the model loads.
    from gdcld_zoo.event.sources import source_kind

    local = [s for s in args.scenes if source_kind(s) in ("file", "missing")]
    problems, bad = preflight(args.weights, local, args.engine,
                              args.tile_size, args.overlap, args.bands)
    sources = [source for source in args.scenes if source not in bad]
    if len(problems) == len(bad) and sources:  # the run goes ahead: its folder must be writable too
        try:
            check_writable_folder(args.out)
        except expected_errors() as error:
            problems.append(error_message(error))
    for problem in problems:
        print(f"gdcld-zoo predict: error: {problem}", file=sys.stderr)
    if len(problems) > len(bad) or not sources:
        return 2
    quiet_tensorflow(args.verbose)
    from gdcld_zoo.event import format_event_summary

    # progress lines (stdout, one per scene as it is written) from gdcld_zoo only: Dask and
    # pyogrio log every step at INFO; errors are printed once, on stderr, below
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(lambda record: record.levelno < logging.WARNING)  # warnings: one line on stderr
    logger = logging.getLogger("gdcld_zoo")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if args.quiet else logging.INFO)
    try:
        result = _map(args, sources)
    finally:
        logger.removeHandler(handler)
    failed = list(bad)
    for scene in result.report["scenes"]:
        if scene["status"] == "failed":
            print(f"gdcld-zoo predict: error: {scene['reason']}", file=sys.stderr)
            failed.append(scene["source"])
    demo = f" ({DEMO_NOTE})" if result.report["model_tag"] == DEMO_TAG else ""
    print(format_event_summary(result.report) + demo)
    print(f"Inventory: {', '.join(str(p) for p in result.outputs.values())}")
    if failed:
        print(f"gdcld-zoo predict: error: {len(failed)} of {len(bad) + len(result.report['scenes'])} scenes failed "
              f"({', '.join(failed)}); the others were written to {args.out}.", file=sys.stderr)
        return 2
    return 0


def register(subparsers):
    parser = subparsers.add_parser(
        "predict",
        help="map landslides over whole scenes and merge them into one event inventory",
        description="Write <id>_prob.tif, <id>_mask.tif, <id>_landslides.geojson (WGS84) and <id>_summary.json "
        "per scene, and inventory.gpkg (layer landslides), inventory.geojson (EPSG:4326) and inventory.json: "
        "every landslide once, overlapping scenes merged. Settings and sources are all checked before the "
        "model loads: every problem is reported at once, and the sources without one are mapped.",
        examples=["gdcld-zoo predict demo scene.tif --out maps/",
                  "gdcld-zoo predict demo A.tif https://host/B.tif item.json --aoi aoi.geojson --out event/",
                  "gdcld-zoo predict runs/b4 scenes/ --out event/ --scheduler processes:2 --min-area 100",
                  "gdcld-zoo predict --engine onnx b4.onnx scene.tif --out maps/"],
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
