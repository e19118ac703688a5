"""The `gdcld-zoo` command. Each subcommand lives in its own module of this package
and only parses arguments and prints: the work is done by the library.

`main` is the one error boundary: an expected failure (bad input, a file that
cannot be read or written, a full disk) prints one line, `gdcld-zoo
<subcommand>: error: ...`, and exits 2; anything else is a bug, reported in
one line that says to re-run with `--debug`, which shows the traceback.
"""

import argparse
import errno
import sys

from gdcld_zoo.errors import GdcldZooError

DEBUG_HINT = "re-run with --debug for the traceback"
# What to do about an operating-system error, by errno.
_OS_ADVICE = {
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.EROFS: "the file system is read-only; choose another path",
    errno.ENOSPC: "the disk is full; free some space or choose another folder",
    errno.EDQUOT: "the disk quota is exceeded; free some space or choose another folder",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "it is a folder; give a file name",
}

# Modules with a `register(subparsers)` function, one per subcommand.
_COMMAND_MODULES = ["gdcld_zoo.cli.models", "gdcld_zoo.cli.weights", "gdcld_zoo.cli.data", "gdcld_zoo.cli.predict", "gdcld_zoo.cli.train", "gdcld_zoo.cli.evaluate", "gdcld_zoo.cli.export", "gdcld_zoo.cli.demo"]


def positive_int(text):
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def build_parser():
    """The argument parser with every subcommand registered."""
    import importlib

    parser = argparse.ArgumentParser(
        prog="gdcld-zoo", description="Landslide mapping models for the GDCLD benchmark."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def _add_debug_flag(parser, default):
    parser.add_argument("--debug", action="store_true", default=default,
                        help="on an error, show the full Python traceback")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _add_debug_flag(sub, argparse.SUPPRESS)  # accepted after the subcommand too


def expected_errors():
    """Exception types that mean bad input or a bad environment, not a bug in gdcld_zoo."""
    from rasterio.errors import RasterioError

    return (GdcldZooError, OSError, RasterioError)


def error_message(error):
    """One line saying what failed and what to do; None when `error` is not an expected failure."""
    if isinstance(error, GdcldZooError):
        return str(error)
    if isinstance(error, OSError) and error.strerror:
        where = " -> ".join(str(f) for f in (error.filename, error.filename2) if f) or "a file"
        advice = _OS_ADVICE.get(error.errno)
        return f"{where}: {error.strerror}" + (f"; {advice}." if advice else ".")
    if isinstance(error, expected_errors()):
        return " ".join(str(error).split()) or type(error).__name__
    return None


def command_name(args):
    """The full subcommand, e.g. `data check` or `weights add`."""
    words = [args.command]
    sub = getattr(args, f"{args.command}_command", None)
    return " ".join(words + ([sub] if sub else []))


def main(argv=None):
    """Entry point: run a subcommand; every error prints one line (a traceback with --debug) and exits 2."""
    parser = build_parser()
    _add_debug_flag(parser, False)
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print(f"gdcld-zoo {command_name(args)}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        message = error_message(error)
        if message is None:
            message = f"unexpected {type(error).__name__}: {' '.join(str(error).split())[:500]} ({DEBUG_HINT})"
        print(f"gdcld-zoo {command_name(args)}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
