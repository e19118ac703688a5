"""`gdcld-zoo data check ROOT`: validate a dataset before training;
`gdcld-zoo data download DIR`: fetch the GDCLD release from Zenodo, then check it."""

import sys

from gdcld_zoo.data.checks import check_dataset, format_report
from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.preprocessing import Preprocessing


def _numbers(text, kind, what):
    try:
        return tuple(kind(v) for v in text.split(","))
    except ValueError:
        raise InvalidInputError(f"{what} must be comma-separated numbers, got {text!r}.") from None


def preprocessing_from_args(args):
    """The band spec named by --bands/--dtype/--scale, or None for strict 8-bit RGB."""
    if args.bands is None and args.dtype is None and args.scale is None:
        return None
    bands = _numbers(args.bands, int, "--bands") if args.bands else (1, 2, 3)
    dtype = args.dtype or "uint8"
    default_scale = 255.0 if dtype == "uint8" else 10000.0
    scale = _numbers(args.scale, float, "--scale") if args.scale else (default_scale,)
    if len(scale) == 1:
        scale = scale * len(bands)
    return Preprocessing(
        bands=bands,
        band_names=tuple(f"band_{b}" for b in bands),
        dtype=dtype,
        scale=scale,
        mean=(0.0,) * len(bands),
        std=(1.0,) * len(bands),
    )


def run_check(args):
    report = check_dataset(
        args.root,
        splits=args.split or None,
        preprocessing=preprocessing_from_args(args),
        read_pixels=not args.headers_only,
        jobs=args.jobs,
    )
    print(format_report(report))
    sys.stdout.flush()
    return 0 if report.ok else 1


def run_download(args):
    from gdcld_zoo.data.download import GDCLD_DOI, download_gdcld

    print(f"Downloading GDCLD (doi:{GDCLD_DOI}, CC BY 4.0) into {args.dir}", file=sys.stderr)
    root = download_gdcld(args.dir, progress=not args.quiet, keep_archives=args.keep_archives)
    report = check_dataset(root, jobs=args.jobs)
    print(format_report(report))
    sys.stdout.flush()
    return 0 if report.ok else 1


def register(subparsers):
    parser = subparsers.add_parser("data", help="inspect and validate datasets",
                                   examples=["gdcld-zoo data check /data/GDCLD", "gdcld-zoo data download /data/GDCLD"])
    commands = parser.add_subparsers(dest="data_command", required=True, metavar="COMMAND", help="check or download")
    check = commands.add_parser(
        "check",
        help="validate every image/label pair and summarise each split",
        description="Open every image and label, report bad files with the reason and a "
        "summary per split. Exit code 1 if any pair is bad.",
        examples=["gdcld-zoo data check /data/GDCLD",
                  "gdcld-zoo data check /data/GDCLD --split val --headers-only",
                  "gdcld-zoo data check manifest.csv --bands 3,2,1 --dtype uint16 --scale 10000"],
    )
    check.add_argument("root", help="dataset root (train/val/test folders), split folder or CSV manifest")
    check.add_argument("--split", action="append", help="split to check (repeatable); default: all present")
    check.add_argument("--bands", help="1-based bands to read, e.g. 3,2,1 (default: exactly 3 uint8 bands)")
    check.add_argument("--dtype", help="expected image dtype, e.g. uint16")
    check.add_argument("--scale", help="per-band divisor(s), e.g. 10000")
    check.add_argument("--headers-only", action="store_true", help="open files without decoding pixels")
    check.add_argument("--jobs", type=int, default=4, help="reader threads (default 4)")
    check.set_defaults(func=run_check)
    download = commands.add_parser(
        "download",
        help="fetch the GDCLD release from Zenodo, verify, unpack and check it",
        description="Download GDCLD (Zenodo record 13612636, CC BY 4.0): every file is checked against "
        "Zenodo's md5, an interrupted run resumes, archives are unpacked into DIR, then DIR is checked "
        "as by `data check`. GDCLD_ZOO_ZENODO_ENDPOINT points at a mirror.",
        examples=["gdcld-zoo data download /data/GDCLD",
                  "GDCLD_ZOO_ZENODO_ENDPOINT=https://mirror.example/api gdcld-zoo data download /data/GDCLD --quiet"],
    )
    download.add_argument("dir", help="folder to create (or to continue filling) as the dataset root")
    download.add_argument("--keep-archives", action="store_true", help="keep the archives after unpacking")
    download.add_argument("--quiet", action="store_true", help="no progress bars")
    download.add_argument("--jobs", type=int, default=4, help="reader threads of the check (default 4)")
    download.set_defaults(func=run_download)
