"""The `gdcld-zoo` command. Each subcommand lives in its own module of this package
and only parses arguments and prints: the work is done by the library.

`main` is the one error boundary: an expected failure (bad input, a file that
cannot be read or written, a full disk) prints one line, `gdcld-zoo
<subcommand>: error: ...`, and exits 2; anything else is a bug, reported in
one line that says to re-run with `--debug`, which shows the traceback.
"""

import argparse
import difflib
import errno
import sys

from gdcld_zoo.cli.console import one_line_messages, quiet_tensorflow
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
# Subcommands that build or load a model: TensorFlow is imported quietly before they run
# (`predict` does it itself, after checking its inputs).
_TENSORFLOW_COMMANDS = {"gdcld-zoo " + c for c in ("train", "evaluate", "export", "demo", "models", "weights add")}
VERBOSE_HELP = "show TensorFlow's log lines and where each warning comes from"
DEBUG_HELP = "on an error, show the full Python traceback"


class _HelpFormatter(argparse.HelpFormatter):
    """Descriptions wrapped as usual; the examples epilog kept line by line."""

    def _fill_text(self, text, width, indent):
        return text if text.startswith("examples:\n") else super()._fill_text(text, width, indent)


class Parser(argparse.ArgumentParser):
    """An argument parser whose unknown flags are reported by the subcommand that got them,
    with its usage and the closest flag it has ("did you mean --tile-size?")."""

    def __init__(self, *args, examples=(), **kwargs):
        if examples:
            kwargs["epilog"] = "examples:\n" + "\n".join(f"  {example}" for example in examples)
            kwargs["formatter_class"] = _HelpFormatter
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras and self._subparsers is None:
            flags = [s for action in self._actions for s in action.option_strings if s.startswith("--")]
            close = difflib.get_close_matches(extras[0].split("=")[0], flags, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return namespace, extras


def _version():
    from importlib.metadata import PackageNotFoundError, version

    from gdcld_zoo import __version__

    found = []
    for package in ("keras", "tensorflow"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            found.append(f"{package} not installed")
    return f"gdcld-zoo {__version__} ({', '.join(found)}, Python {sys.version.split()[0]})"


def int_at_least(minimum, what="a positive integer"):
    """argparse type: an integer >= `minimum`, else "must be <what>, got ..."."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    return parse


positive_int = int_at_least(1)


def build_parser():
    """The argument parser with every subcommand registered."""
    import importlib

    parser = Parser(
        prog="gdcld-zoo", description="Landslide mapping models for the GDCLD benchmark.",
        examples=["gdcld-zoo demo", "gdcld-zoo predict demo scene.tif --out maps/", "gdcld-zoo predict --help"],
    )
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                       help="`gdcld-zoo COMMAND --help` for its arguments and examples")
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    _add_everywhere(parser, "--verbose", VERBOSE_HELP)
    _add_everywhere(parser, "--debug", DEBUG_HELP)
    return parser


def _add_everywhere(parser, flag, help):
    """`flag` accepted after any (sub)command too, unless it has its own."""
    if flag not in parser._option_string_actions:
        parser.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=help)
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        for child in action.choices.values():
            _add_everywhere(child, flag, help)


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
    """The full subcommand, e.g. `gdcld-zoo data check`."""
    words = ["gdcld-zoo", args.command, getattr(args, f"{args.command}_command", None)]
    return " ".join(w for w in words if w)


def main(argv=None):
    """Entry point: run a subcommand; every error prints one line (a traceback with --debug) and exits 2."""
    args = build_parser().parse_args(argv)
    name = command_name(args)
    if name in _TENSORFLOW_COMMANDS:
        quiet_tensorflow(args.verbose)
    try:
        with one_line_messages(name, args.verbose):
            return args.func(args) or 0
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        message = error_message(error)
        if message is None:
            message = f"unexpected {type(error).__name__}: {' '.join(str(error).split())[:500]} ({DEBUG_HINT})"
        print(f"{name}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
