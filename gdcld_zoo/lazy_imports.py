"""Module attributes imported on first use (PEP 562), for names that pull in TensorFlow."""

import importlib


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
