"""The `gdcld-zoo` command. Each subcommand lives in its own module of this package
and only parses arguments and prints: the work is done by the library."""

import argparse
import sys

from gdcld_zoo.errors import GdcldZooError

# Modules with a `register(subparsers)` function, one per subcommand.
_COMMAND_MODULES = ["gdcld_zoo.cli.models", "gdcld_zoo.cli.weights", "gdcld_zoo.cli.data", "gdcld_zoo.cli.predict", "gdcld_zoo.cli.train", "gdcld_zoo.cli.evaluate", "gdcld_zoo.cli.export", "gdcld_zoo.cli.demo"]


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


def main(argv=None):
    """Entry point: run a subcommand; user errors print one line and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except GdcldZooError as error:
        print(f"gdcld-zoo {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
