"""`gdcld-zoo predict WEIGHTS SCENE... --out DIR`: whole-scene landslide maps."""

import sys

from gdcld_zoo.cli import positive_int
from gdcld_zoo.cli.console import quiet_tensorflow


def run_predict(args):
    from gdcld_zoo.cli import error_message, expected_errors
    from gdcld_zoo.demo import DEMO_NOTE, DEMO_TAG
    from gdcld_zoo.files import check_writable_folder
    from gdcld_zoo.scene import SlidingWindowPredictor
    from gdcld_zoo.scene.preflight import preflight

    problems, bad = preflight(args.weights, args.scenes, args.engine, args.tile_size, args.overlap, args.bands)
    scenes = [scene for scene in args.scenes if scene not in bad]
    if len(problems) == len(bad) and scenes:  # the run goes ahead: its folder must be writable too
        try:
            check_writable_folder(args.out)
        except expected_errors() as error:
            problems.append(error_message(error))
    for problem in problems:
        print(f"gdcld-zoo predict: error: {problem}", file=sys.stderr)
    if len(problems) > len(bad) or not scenes:
        return 2
    quiet_tensorflow(args.verbose)
    predictor = SlidingWindowPredictor(
        args.weights, tile_size=args.tile_size, overlap=args.overlap, batch_size=args.batch_size,
        tta=args.tta, engine_name=args.engine, progress=not args.quiet,
    )
    failed = list(bad)
    for scene in scenes:
        try:
            result = predictor.predict(scene, args.out, threshold=args.threshold, bands=args.bands,
                                       min_area_m2=args.min_area)
        except expected_errors() as error:
            if len(args.scenes) == 1:
                raise
            print(f"gdcld-zoo predict: error: {error_message(error)}", file=sys.stderr)
            failed.append(scene)
            continue
        s = result.summary
        area = (f"{s['landslide_area_km2']:.6f} km2" if s["landslide_area_km2"] is not None
                else f"{s['landslide_area_px']} px (no CRS)")
        demo = f" ({DEMO_NOTE})" if s["model_tag"] == DEMO_TAG else ""
        print(f"{scene}: {s['n_landslides']} landslides, {area}{demo}, bands {s['bands']} ({s['bands_from']}), "
              f"{s['n_tiles']} tiles in {s['timings_s']['total']:.1f} s -> {result.outputs['summary.json']}")
    if failed:
        print(f"gdcld-zoo predict: error: {len(failed)} of {len(args.scenes)} scenes failed "
              f"({', '.join(failed)}); the others were written to {args.out}.", file=sys.stderr)
        return 2
    return 0


def register(subparsers):
    parser = subparsers.add_parser(
        "predict",
        help="map landslides over whole GeoTIFF scenes",
        description="Write <stem>_prob.tif, <stem>_mask.tif, <stem>_landslides.geojson (WGS84) and "
        "<stem>_summary.json per scene. Settings and scenes are all checked before the model loads: "
        "every problem is reported at once, and the scenes without one are mapped.",
        examples=["gdcld-zoo predict demo scene.tif --out maps/",
                  "gdcld-zoo predict runs/b4 a.tif b.tif --out maps/ --tile-size 1024 --min-area 100",
                  "gdcld-zoo predict --engine onnx b4.onnx scene.tif --out maps/"],
    )
    parser.add_argument("weights", help="weight tag (e.g. demo), run folder, weight file, or .onnx with --engine onnx")
    parser.add_argument("scenes", nargs="+", metavar="SCENE", help="GeoTIFF scenes")
    parser.add_argument("--out", required=True, help="output folder")
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
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_predict)
