"""Imports on first use: module attributes that pull in TensorFlow (PEP 562), and optional extras."""

import importlib

from gdcld_zoo.errors import MissingExtraError


def lazy_attributes(package, sources):
    """A module `__getattr__` that imports `sources[name]` (a module path) when `name` is first read.

    Example:
    >>> __getattr__ = lazy_attributes("demo", {"sqrt": "math"})
    >>> __getattr__("sqrt")(4.0)
    2.0
    """

    def __getattr__(name):
        if name in sources:
            return getattr(importlib.import_module(sources[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def require(module, extra):
    """Import an optional dependency, or raise `MissingExtraError` naming the extra that installs it.

    Example:
    >>> require("math", "dev").sqrt(4.0)
    2.0
    >>> require("no_such_module", "onnx")
    Traceback (most recent call last):
    gdcld_zoo.errors.MissingExtraError: no_such_module is not installed: pip install "gdcld-zoo[onnx]".
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        if error.name is None or not module.startswith(error.name):
            raise
        raise MissingExtraError(f'{module} is not installed: pip install "gdcld-zoo[{extra}]".') from None
