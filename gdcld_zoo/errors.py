"""Errors a user can act on: each message says what was wrong and what to do.

The CLI prints these as one line and exits non-zero instead of a traceback.
"""

import difflib


class GdcldZooError(Exception):
    """Base class for every error gdcld_zoo raises on bad input or configuration."""


class UnknownNameError(GdcldZooError, ValueError):
    """A model, weight tag or option name that is not registered."""

    def __init__(self, kind, name, known):
        close = difflib.get_close_matches(str(name), list(known), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        super().__init__(
            f"Unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(sorted(known))}."
        )
        self.name = name
        self.close_matches = close


class InvalidInputError(GdcldZooError, ValueError):
    """Input data (arrays, rasters, shapes) that the model or pipeline cannot use."""


class MissingExtraError(GdcldZooError, ImportError):
    """An optional dependency that is not installed; the message names the extra to install."""
