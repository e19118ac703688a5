"""`gdcld-zoo evaluate WEIGHTS --data ROOT --split val [--by event,sensor]` (tiles) or
`--scenes SCENE:LABEL ...` (whole scenes, the paper's test protocol): the paper's tables."""

import json
from pathlib import Path

from gdcld_zoo.cli import positive_int
from gdcld_zoo.errors import InvalidInputError


def _fields(text):
    return tuple(f.strip() for f in text.split(",") if f.strip())


def _run_scenes(args):
    from gdcld_zoo.files import write_text_atomic
    from gdcld_zoo.scene.evaluate import evaluate_scenes, format_scene_report

    if args.by or args.csv:
        raise InvalidInputError("--by and --csv apply to --data tiles; with --scenes each scene is a row.")
    report = evaluate_scenes(args.weights, args.scenes, batch_size=args.batch_size, threshold=args.threshold)
    print(format_scene_report(report))
    if args.json:
        write_text_atomic(Path(args.json), json.dumps(report, indent=2, default=str))
    return 0


def run(args):
    from gdcld_zoo.evaluation import evaluate, format_table, report_csv, report_json
    from gdcld_zoo.files import check_writable_file, write_text_atomic
    from gdcld_zoo.weights import load_pretrained

    if bool(args.data) == bool(args.scenes):
        raise InvalidInputError(
            "Give either --data ROOT (labelled tiles) or --scenes SCENE:LABEL ... (whole labelled scenes)."
        )
    for option, path in (("--json", args.json), ("--csv", args.csv)):
        if path:  # before the model runs, not after
            check_writable_file(Path(path), f"{option} file")
    if args.scenes:
        return _run_scenes(args)
    model = load_pretrained(args.weights)
    report = evaluate(
        model, args.data, args.split, by=args.by, batch_size=args.batch_size, threshold=args.threshold, jobs=args.jobs
    )
    print(format_table(report))
    if args.json:
        write_text_atomic(Path(args.json), report_json(report))
    if args.csv:
        write_text_atomic(Path(args.csv), report_csv(report))
    return 0


def register(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="precision, recall, F1 and mIoU of weights on a dataset split or whole scenes",
        description="Print Precision, Recall, F1 and mIoU (%) overall and per group, laid out like "
        "the GDCLD paper's Tables 4-6. --json and --csv hold the same numbers as fractions.",
        examples=["gdcld-zoo evaluate runs/b4 --data /data/GDCLD --split val --by event,sensor",
                  "gdcld-zoo evaluate runs/b4 --data manifest.csv --json b4.json --csv b4.csv",
                  "gdcld-zoo evaluate runs/b4 --scenes scene.tif:label.tif   # whole scenes"],
    )
    parser.add_argument("weights", help="weight tag, run folder, or .weights.h5/.keras file")
    parser.add_argument("--data", help="dataset root, split folder or CSV manifest")
    parser.add_argument(
        "--scenes", nargs="+", metavar="SCENE:LABEL", help="whole scenes and their label GeoTIFFs (paper test protocol)"
    )
    parser.add_argument("--split", default="val", help="split to evaluate (default val)")
    parser.add_argument("--by", type=_fields, default=(), help="group by tile fields, e.g. event,sensor")
    parser.add_argument("--threshold", type=float, help="probability threshold (default: the weights')")
    parser.add_argument("--batch-size", type=positive_int, default=4, help="tiles per model call (default 4)")
    parser.add_argument("--jobs", type=positive_int, default=4, help="threads reading tiles (default 4)")
    parser.add_argument("--json", metavar="FILE", help="write the report as JSON (fractions)")
    parser.add_argument("--csv", metavar="FILE", help="write one row per group as CSV (fractions)")
    parser.set_defaults(func=run)
