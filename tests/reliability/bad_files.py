"""Bad inputs for the reliability tests: truncated, renamed and NaN rasters, and how to check a failure."""

import contextlib
import subprocess
import sys

import numpy as np
import rasterio
from PIL import Image


def truncate(path, keep=0.5):
    """Cut a file to `keep` of its bytes (a download or copy that stopped)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def png_named_tif(path, size=32, bands=3, fmt="PNG"):
    """A PNG (or JPEG) image saved under a `.tif` name."""
    mode = "RGB" if bands == 3 else "L"
    shape = (size, size, bands) if bands == 3 else (size, size)
    Image.fromarray(np.random.default_rng(0).integers(0, 2, shape, dtype=np.uint8), mode).save(path, format=fmt)
    return path


def rewrite_pixels(path, change, dtype=None):
    """Rewrite a GeoTIFF with `change(array)` applied to its pixels (same grid), optionally as `dtype`."""
    with rasterio.open(path) as src:
        profile, array = src.profile, src.read()
    array = change(array.astype(dtype) if dtype else array)
    profile.update(dtype=array.dtype.name)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
    return path


def assert_one_line_error(code, err, *expected):
    """Non-zero exit, exactly one stderr line with every `expected` text, no traceback.

    Progress bars redraw their line with carriage returns; only what is left visible counts.
    """
    assert code not in (0, None), err
    visible = (line.rsplit("\r", 1)[-1] for line in err.split("\n"))
    lines = [line for line in visible if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    for text in expected:
        assert str(text) in lines[0], err
    return lines[0]


@contextlib.contextmanager
def lock_held_by_another_process(folder, name):
    """Yields the pid of a separate process holding `OutputLock(folder, name)` (a run in progress)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom gdcld_zoo.files import OutputLock\n"
         f"lock = OutputLock({str(folder)!r}, {name!r}).acquire()\nprint('held', flush=True)\ntime.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()
