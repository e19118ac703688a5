"""Read one image/label pair with rasterio, checked against a band spec.

Every pixel the pipeline, `data check` and evaluation read goes through here, so
the rules live in one place:

* The image must match the `Preprocessing`: its dtype equals
  `Preprocessing.dtype` and it has the selected bands. The default 8-bit RGB
  spec (`preprocessing=None` or `Preprocessing()`) is applied *strictly*: the
  image must have exactly three uint8 bands, so a 16-bit PlanetScope analytic
  or a 4-band file is an error that names the spec to pass, never silently
  misread. Any other spec selects its bands from wider files (e.g. bands
  (3, 2, 1) of a 4-band BGRN file); to take the first three bands of a wider
  8-bit file on purpose, give them your own `band_names` (e.g. b1, b2, b3).
* Label value 255 and the label file's nodata value become 255 (ignored by
  losses and metrics); pixels where every image band equals the image's nodata
  value are ignored too. Any other label value, and NaN or infinite image
  pixels, are an error naming the file.

Example:
>>> import tempfile
>>> from gdcld_zoo.data.synthetic import write_synthetic_dataset
>>> from gdcld_zoo.data.layout import tile_pairs
>>> root = write_synthetic_dataset(tempfile.mkdtemp(), n_train=1, n_val=0, tile_size=32, seed=0)
>>> image, mask = read_pair(tile_pairs(root, "train")[0])
>>> image.shape, image.dtype.name, mask.shape
((32, 32, 3), 'uint8', (32, 32))
"""

import concurrent.futures
import os
import threading

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader
from rasterio.windows import Window

from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.preprocessing import Preprocessing

IGNORE_INDEX = 255
PLANETSCOPE_HINT = (
    "Preprocessing(bands=(3, 2, 1), band_names=('red', 'green', 'blue'), dtype='uint16', "
    "scale=(10000.0, 10000.0, 10000.0)) for PlanetScope analytic surface reflectance (BGRN)"
)


class RasterReadError(InvalidInputError):
    """An image or label file that cannot be opened, read or used as given."""


def resolve_preprocessing(preprocessing):
    """(spec, strict): the default 8-bit RGB spec (None or equal to it) is checked strictly."""
    if preprocessing is None:
        return Preprocessing(), True
    if isinstance(preprocessing, dict):
        preprocessing = Preprocessing.from_dict(preprocessing)
    if not isinstance(preprocessing, Preprocessing):
        raise InvalidInputError(
            f"preprocessing must be a gdcld_zoo.preprocessing.Preprocessing, got {type(preprocessing).__name__}."
        )
    return preprocessing, preprocessing == Preprocessing()


def band_problem(count, dtype, preprocessing, strict):
    """Why an image with `count` bands of `dtype` cannot be read with the spec, or None."""
    if strict and (count != preprocessing.num_bands or dtype != preprocessing.dtype):
        return (
            f"image has {count} {dtype} band(s) but the default spec reads exactly "
            f"{preprocessing.num_bands} {preprocessing.dtype} bands (8-bit RGB); pass an explicit "
            f"Preprocessing naming bands, dtype and scale, e.g. {PLANETSCOPE_HINT}; to use only "
            "bands 1-3 of a wider 8-bit file, pass a spec with your own band_names, e.g. ('b1', 'b2', 'b3')"
        )
    if dtype != preprocessing.dtype:
        return (
            f"image is {dtype} but Preprocessing.dtype is {preprocessing.dtype!r}; set dtype "
            "and scale to match the file"
        )
    if max(preprocessing.bands) > count:
        return (
            f"Preprocessing selects bands {preprocessing.bands} but the image has only "
            f"{count} band(s)"
        )
    return None


def label_value_problem(values):
    """The message for label values outside {0, 1, 255, nodata}."""
    shown = ", ".join(str(v) for v in values[:8]) + (", ..." if len(values) > 8 else "")
    return (
        f"label has values {{{shown}}} outside {{0, 1, 255 or the label's nodata}}; "
        "labels must be 0 background, 1 landslide, 255 ignored"
    )


def non_finite_problem(path, values):
    """Why float pixels cannot be used (NaN or infinite values), or None."""
    if not np.issubdtype(values.dtype, np.floating):
        return None
    nan, inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
    if not nan and not inf:
        return None
    return (
        f"{path}: image has {nan} NaN and {inf} infinite pixel value(s), which would make the loss NaN; "
        "replace them with a finite value and declare it as the image's nodata"
    )


def label_to_mask(label, nodata=None, path="label"):
    """Label values to a uint8 mask: 0 and 1 kept, 255 and `nodata` to 255, others an error."""
    unexpected = 2
    has_nodata = nodata is not None and not np.isnan(nodata)
    integer = np.issubdtype(label.dtype, np.integer)
    if integer and not has_nodata and label.size and label.max() <= 1 and label.min() >= 0:
        return label.astype(np.uint8, copy=label.dtype != np.uint8)  # already a 0/1 mask
    if label.dtype == np.uint8:
        # One table lookup instead of several passes over the tile.
        table = np.full(256, unexpected, np.uint8)
        table[[0, 1, IGNORE_INDEX]] = (0, 1, IGNORE_INDEX)
        if nodata is not None and float(nodata).is_integer() and 0 <= nodata <= 255:
            table[int(nodata)] = IGNORE_INDEX
        mask = np.take(table, label)
    else:
        ignore = label == IGNORE_INDEX
        if has_nodata:
            ignore |= label == nodata
        mask = np.where(ignore, IGNORE_INDEX, np.where((label == 0) | (label == 1), label, unexpected))
        mask = mask.astype(np.uint8)
    bad = mask == unexpected
    if bad.any():
        raise RasterReadError(f"{path}: {label_value_problem(np.unique(label[bad]))}.")
    return mask


# GDAL settings every raster open uses (see open_raster).
OPEN_OPTIONS = {"GDAL_DISABLE_READDIR_ON_OPEN": "TRUE"}
# Threads that only read pixels never use the CRS rasterio builds on open: GDAL
# builds it from the file's GeoKeys alone, without looking the EPSG code up in
# PROJ's database.
PIXEL_READ_OPTIONS = {**OPEN_OPTIONS, "GTIFF_SRS_SOURCE": "GEOKEYS"}
_thread = threading.local()


def enter_read_env(pixels_only=False):
    """Enter a rasterio `Env` for the rest of the calling worker thread's life.

    The initializer of thread pools that open many rasters. Without a current
    `Env`, rasterio starts a GDAL environment for every open (looking for GDAL
    and PROJ data files, resetting PROJ's search path) and `open_raster` one
    more for its options; with one per thread, opens go straight to GDAL.
    `pixels_only` adds `PIXEL_READ_OPTIONS` for threads that never look at a
    CRS. Together they cut `TileBatchReader`'s CPU per 1024x1024 tile and
    label from 6.0 to 5.5 ms (a script timing 128 deflate tiles through the
    reader with and without them, five interleaved runs). rasterio keeps worker
    threads' GDAL options thread-local, which is why the main thread is refused.
    """
    if threading.current_thread() is threading.main_thread():
        raise RuntimeError("enter_read_env is a thread-pool initializer; the main thread would change GDAL globally.")
    _thread.env = rasterio.Env(**(PIXEL_READ_OPTIONS if pixels_only else OPEN_OPTIONS))
    _thread.env.__enter__()


def read_thread_pool(workers, pixels_only=False, name=""):
    """A `ThreadPoolExecutor` whose threads each open rasters in one `Env` (see `enter_read_env`)."""
    return concurrent.futures.ThreadPoolExecutor(
        workers, thread_name_prefix=name, initializer=enter_read_env, initargs=(pixels_only,)
    )


def open_raster(path, what="raster"):
    """Open a GeoTIFF for reading, or raise a `RasterReadError` naming it.

    GDAL lists a file's whole folder on open, looking for sidecar files. A GDCLD
    split folder holds 11,162 training tiles: with 11,000 other files beside
    the tiles, the plain rasterio loop of `benchmarks/pipeline.py
    --extra-files 11000` spent 6.4 ms of CPU per 1024x1024 tile and label,
    against 5.2 ms in a folder of 32 tiles. With
    GDAL_DISABLE_READDIR_ON_OPEN=TRUE GDAL probes the few sidecar names
    directly instead, so `.aux.xml`, `.ovr` and `.msk` files are still found.
    In a thread that `enter_read_env` set up, the file opens in that thread's
    environment as a `rasterio.io.DatasetReader`, which is what `rasterio.open`
    returns for a local path: `rasterio.open` also wraps every open in a nested
    `Env` whose exit rebuilds the thread's GDAL environment (looking for GDAL
    and PROJ data files again), 0.23 against 0.17 ms of CPU per open of a
    1024x1024 label (a script opening 64 labels five times each way).
    """
    try:
        if getattr(_thread, "env", None) is not None:
            return DatasetReader(os.fspath(path))
        with rasterio.Env(**OPEN_OPTIONS):
            return rasterio.open(path)
    except (RasterioError, OSError) as error:
        raise RasterReadError(f"{path}: cannot open {what} (corrupt or not a GeoTIFF): {error}") from None


def read_pair(pair, preprocessing=None, window=None, channels_first=False, out=None):
    """Read a `TilePair`: raw image (H, W, C) in band order and mask (H, W) uint8.

    Args:
        pair: A `TilePair` with a label.
        preprocessing: The band spec; None (or `Preprocessing()`) is strict 8-bit RGB.
        window: Optional (row, col, height, width) to read only part of the tile.
        channels_first: Return the image as GDAL reads it fastest, (C, H, W).
        out: Optional array (or strided view) of the file's dtype, shaped as the
            image would be returned, that GDAL decodes the image into; the
            batch reader passes a tile's slot of its batch, saving a copy.

    Returns:
        image: (H, W, C) array of the file's dtype, bands as the spec selects
            ((C, H, W) with `channels_first=True`).
        mask: (H, W) uint8 with 0, 1 and 255 (label 255, label nodata, image nodata).
            Any other label value is an error.

    Raises:
        RasterReadError: naming the file, when it cannot be opened or read, does
            not match the spec, or its label has a different size.
    """
    spec, strict = resolve_preprocessing(preprocessing)
    if pair.label is None:
        raise RasterReadError(f"{pair.image}: missing label (no label file with stem {pair.image.stem!r}).")
    win = Window(window[1], window[0], window[3], window[2]) if window is not None else None
    with open_raster(pair.image, "image") as src:
        problem = band_problem(src.count, src.dtypes[0], spec, strict)
        if problem:
            raise RasterReadError(f"{pair.image}: {problem}.")
        height, width = (window[2], window[3]) if window is not None else (src.height, src.width)
        shape = (spec.num_bands, height, width) if channels_first else (height, width, spec.num_bands)
        if out is not None and (out.shape != shape or out.dtype != src.dtypes[0]):
            raise InvalidInputError(f"out is {out.dtype} {out.shape}, the image read needs {src.dtypes[0]} {shape}.")
        # For (H, W, C), GDAL writes straight into a transposed view: no extra copy.
        image = np.empty(shape, src.dtypes[0]) if out is None else out
        try:
            src.read(list(spec.bands), window=win, out=image if channels_first else image.transpose(2, 0, 1))
        except (RasterioError, OSError) as error:
            raise RasterReadError(f"{pair.image}: cannot read image pixels (truncated?): {error}") from None
        problem = non_finite_problem(pair.image, image)
        if problem:  # NaN would pass through normalisation and the model as NaN, or count as background
            raise RasterReadError(f"{problem}.")
        image_nodata = src.nodata
    with open_raster(pair.label, "label") as src:
        try:
            label = src.read(1, window=win)
        except (RasterioError, OSError) as error:
            raise RasterReadError(f"{pair.label}: cannot read label pixels (truncated?): {error}") from None
        label_nodata = src.nodata
    if label.shape != (height, width):
        raise RasterReadError(
            f"{pair.label}: label is {label.shape[0]}x{label.shape[1]} but image {pair.image} is "
            f"{height}x{width}."
        )
    mask = label_to_mask(label, label_nodata, pair.label)
    if image_nodata is not None and not np.isnan(image_nodata):
        mask[np.all(image == np.asarray(image_nodata, image.dtype), axis=0 if channels_first else -1)] = IGNORE_INDEX
    return image, mask
