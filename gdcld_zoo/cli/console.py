"""What reaches the terminal: TensorFlow's log lines only with `--verbose`, warnings as one line each."""

import contextlib
import logging
import os
import sys
import tempfile
import warnings

# TensorFlow's C++ log threshold the CLI uses unless the user set one: errors only are hidden too
# (`cuInit` failing on a machine without a GPU is not the user's error).
QUIET_TF_LEVEL = "3"


@contextlib.contextmanager
def _stderr_captured():
    """File descriptor 2 goes to a temporary file; its text is written back if the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def quiet_tensorflow(verbose):
    """Import TensorFlow and Keras without their start-up log lines, unless `verbose` or the user
    set `TF_CPP_MIN_LOG_LEVEL` (then nothing changes).

    Lines written before absl's logging is initialised (oneDNN, CUDA drivers)
    ignore `TF_CPP_MIN_LOG_LEVEL`, so the import runs with file descriptor 2
    captured; the level set here silences the later ones (`cuInit`). TensorFlow's
    Python warnings (tf.function retracing, deprecations) are raised to ERROR
    whenever not `verbose`, also when TensorFlow was imported before or the
    user set `TF_CPP_MIN_LOG_LEVEL`: they are not the user's to act on.
    """
    if verbose:
        return
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ and "tensorflow" not in sys.modules:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = QUIET_TF_LEVEL
        with _stderr_captured():
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # tf.get_logger(), without importing it
    logging.getLogger("absl").setLevel(logging.ERROR)


class _OneLine(logging.Formatter):
    """`PROG: warning: message` on one line; INFO records (shown with --verbose) as they are."""

    def __init__(self, prog):
        super().__init__()
        self.prog = prog

    def format(self, record):
        text = " ".join(record.getMessage().split())
        return f"{self.prog}: warning: {text}" if record.levelno >= logging.WARNING else text


def _not_gdal_errors(record):
    """GDAL's "signalled an error" lines: the exception rasterio raises with them says the same."""
    return record.levelno < logging.ERROR or not record.name.startswith("rasterio")


@contextlib.contextmanager
def one_line_messages(prog, verbose):
    """Within the block, Python warnings and log records of level WARNING (INFO with `verbose`)
    print as one line each, prefixed with the command (`gdcld-zoo predict: warning: ...`)."""

    def one_line(message, category, filename, lineno, line=None):
        where = f" ({category.__name__}, {filename}:{lineno})" if verbose else ""
        return f"{prog}: warning: {' '.join(str(message).split())}{where}\n"

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine(prog))
    handler.addFilter(_not_gdal_errors)
    handler.setLevel(logging.INFO if verbose else logging.WARNING)  # also for records of loggers set lower
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    formatwarning = warnings.formatwarning  # catch_warnings restores filters and showwarning, not this
    with warnings.catch_warnings():
        warnings.formatwarning = one_line
        try:
            yield
        finally:
            warnings.formatwarning = formatwarning
            root.removeHandler(handler)
            root.setLevel(level)
