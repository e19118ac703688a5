"""`gdcld-zoo weights`: list, inspect, download, verify, add and publish weights."""

import dataclasses
import json
import sys
from pathlib import Path

from gdcld_zoo.errors import GdcldZooError
from gdcld_zoo.weights.cache import find_local, verify_file, weights_file
from gdcld_zoo.weights.download import ChecksumError, sha256_file
from gdcld_zoo.weights.load import check_weight_file
from gdcld_zoo.weights.record import WeightRecord
from gdcld_zoo.weights.run import find_sidecar_record, read_run_record
from gdcld_zoo.weights.sources import add_user_record, get_weights, landslide_records, list_weights


def format_weights_table(records):
    """One row per record: tag (* = default), model, classes (`encoder`: an encoder
    only), bands, licence, what it was trained on, on disk (`unpinned`: never downloaded),
    description."""
    rows = [("tag", "model", "classes", "bands", "licence", "trained on", "local", "description")]
    for r in records:
        rows.append((
            r.tag + (" *" if r.default else ""),
            r.model,
            "encoder" if r.part == "encoder" else str(r.num_classes),
            ",".join(r.preprocessing.band_names),
            r.license,
            r.trained_on or "not stated",
            "yes" if find_local(r) else ("unpinned" if r.hub_file and not r.hub_file.pinned else "no"),
            r.description,
        ))
    last = len(rows[0]) - 1
    widths = [max(len(row[i]) for row in rows) for i in range(last)]
    return "\n".join(
        "  ".join(f"{cell:<{widths[i]}}" for i, cell in enumerate(row[:last])) + "  " + row[last]
        for row in rows
    ).rstrip()


def run_list(args):
    records = list_weights()
    if not records:
        print("No weights registered. Train one with `gdcld-zoo train` and `gdcld-zoo weights add`.")
        return
    print(format_weights_table(records))
    print("* = the model's default weights, used by load_pretrained(<model>)")


def run_info(args):
    record = get_weights(args.tag)
    print(json.dumps(record.to_dict(), indent=2))
    local = find_local(record)
    print(f"registry: {record.origin}", file=sys.stderr)
    print(f"local file: {local if local else 'not downloaded'}", file=sys.stderr)
    if not landslide_records(record.model):
        print(
            f"No landslide-trained {record.model} has been published: {record.tag} is "
            + ("an encoder pretrained on " + (record.trained_on or "other data") + " with an untrained head"
               if record.part == "encoder" else f"trained on {record.trained_on or 'other data'}, not landslides")
            + f". Train one on GDCLD: `gdcld-zoo data download GDCLD`, then `gdcld-zoo train {record.model} "
            f"--data GDCLD --out runs/{record.model}` (it starts from the ImageNet encoder), then "
            f"`gdcld-zoo weights add runs/{record.model} --tag {record.model}.gdcld`.",
            file=sys.stderr,
        )


def run_download(args):
    print(weights_file(get_weights(args.tag), progress=not args.quiet))


def run_verify(args):
    """Check the sha256 of local files; never downloads. Exit 1 on any mismatch."""
    records = [get_weights(args.tag)] if args.tag else list_weights()
    failed = False
    for record in records:
        path = find_local(record)
        if path is None:
            status = "missing"
            failed = failed or bool(args.tag)
        else:
            try:
                verify_file(path, record)
                status = f"ok       {path}"
            except ChecksumError as error:
                status, failed = f"MISMATCH {error}", True
        print(f"{record.tag}: {status}")
    return 1 if failed else 0


def run_add(args):
    source = Path(args.source).expanduser()
    if source.is_dir():
        base, weights_path = read_run_record(source), None
    elif source.is_file():
        base, weights_path = find_sidecar_record(source), source
    else:
        raise GdcldZooError(f"No such run folder or weight file: {source}.")
    if base is None and args.model is None:
        raise GdcldZooError(
            f"No weight record describes {source}; pass --model with the registered model name."
        )
    path = (weights_path or Path(base.origin).parent / base.file).resolve()
    fields = {
        "tag": args.tag,
        "model": args.model or base.model,
        "file": str(path),
        "sha256": sha256_file(path),
        "size": path.stat().st_size,
        "url": None,
        "default": args.default,
        "origin": None,
    }
    if args.description:
        fields["description"] = args.description
    if args.num_classes is not None:
        fields["config"] = {**(base.config if base else {}), "num_classes": args.num_classes}
    record = dataclasses.replace(base, **fields) if base else WeightRecord(**fields)
    check_weight_file(record, path)  # only files that load are registered
    registry = add_user_record(record, replace=args.force)
    print(f"Added {record.tag} ({path}) to {registry}")


def run_publish(args):
    """Print the record to host next to the file: file name, URL, sha256 and size."""
    record = get_weights(args.tag)
    path = weights_file(record, progress=False)
    published = dataclasses.replace(
        record,
        file=Path(record.file).name,
        url=args.url,
        sha256=sha256_file(path),
        size=path.stat().st_size,
        origin=None,
    )
    print(json.dumps({"weights": [published.to_dict()]}, indent=2))
    print(f"Upload {path} to {args.url}, then list this record in a registry "
          "(weights/registry.json or a file in GDCLD_ZOO_REGISTRY).", file=sys.stderr)


def register(subparsers):
    parser = subparsers.add_parser("weights", help="pretrained weights: list, download, verify, add",
                                   examples=["gdcld-zoo weights list", "gdcld-zoo weights info demo"])
    commands = parser.add_subparsers(dest="weights_command", required=True, metavar="COMMAND",
                                     help="list, info, download, verify, add or publish")
    tag_help = "weight tag (see `gdcld-zoo weights list`), or a model name for its default"

    sub = commands.add_parser("list", help="every registered weight tag", examples=["gdcld-zoo weights list"])
    sub.set_defaults(func=run_list)

    sub = commands.add_parser("info", help="the full record of a tag", examples=["gdcld-zoo weights info demo"])
    sub.add_argument("tag", help=tag_help)
    sub.set_defaults(func=run_info)

    sub = commands.add_parser("download", help="download and verify a tag's file; prints its path",
                              examples=["gdcld-zoo weights download segformer_b4.gdcld"])
    sub.add_argument("tag", help=tag_help)
    sub.add_argument("--quiet", action="store_true", help="no progress bar")
    sub.set_defaults(func=run_download)

    sub = commands.add_parser("verify", help="check the sha256 of local files (all tags by default)",
                              examples=["gdcld-zoo weights verify", "gdcld-zoo weights verify demo"])
    sub.add_argument("tag", nargs="?", help="check only this tag (default: every tag with a local file)")
    sub.set_defaults(func=run_verify)

    sub = commands.add_parser(
        "add", help="register a trained model in the user registry",
        examples=["gdcld-zoo weights add runs/b4 --tag segformer_b4.mylab",
                  "gdcld-zoo weights add b4.weights.h5 --tag segformer_b4.gdcld --model segformer_b4 --num-classes 2"],
    )
    sub.add_argument("source", metavar="RUN_DIR_OR_FILE",
                     help="a `gdcld-zoo train` run folder, or a .weights.h5/.keras file")
    sub.add_argument("--tag", required=True, help="'<model>.<data>', e.g. segformer_b4.mylab")
    sub.add_argument("--model", help="registered model name (needed for a bare weight file)")
    sub.add_argument("--num-classes", type=int, help="classes of the weights' head (default: the record's, else 1)")
    sub.add_argument("--description", help="one line shown by `weights list`")
    sub.add_argument("--default", action="store_true", help="make it the model's default weights")
    sub.add_argument("--force", action="store_true", help="replace an existing tag")
    sub.set_defaults(func=run_add)

    sub = commands.add_parser("publish", help="print a tag's record to host alongside its file",
                              examples=["gdcld-zoo weights publish segformer_b4.mylab --url https://example.org/b4.weights.h5"])
    sub.add_argument("tag", help=tag_help)
    sub.add_argument("--url", required=True, help="where the file will be downloaded from (pinned)")
    sub.set_defaults(func=run_publish)
