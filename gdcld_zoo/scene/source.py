"""Opening a scene and choosing its bands, with one clear error per bad input.

A scene is any raster GDAL reads (GeoTIFF, COG, VRT, JPEG2000, ...). The bands
fed to the model must match the weights' `Preprocessing` in dtype and count;
they are chosen, in this order, by:

1. `bands` given by the user (`--bands 1,2,3`, 1-based);
2. the scene's colour interpretation, when it names each of the model's bands
   (red, green, blue) exactly once (e.g. an RGBA orthomosaic or a BGR file);
3. the weights' own `Preprocessing.bands`, when the scene has exactly that many
   bands, or when the record selects bands deliberately (not 1..n, e.g.
   PlanetScope BGRN read as 3,2,1).

Anything else (a 4-band scene without colour interpretation for an RGB model,
a 16-bit scene for an 8-bit model) is an error naming what to pass: a scene
is never silently fed as RGB.

Example:
>>> check_bands_argument("3,2,1")
(3, 2, 1)
"""

import os
import warnings
from pathlib import Path

import rasterio
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from gdcld_zoo.errors import InvalidInputError


class SceneError(InvalidInputError):
    """A scene that cannot be read or used with the chosen model."""


def check_bands_argument(bands):
    """1-based band indexes from `"1,2,3"`, a sequence of ints, or None."""
    if bands is None:
        return None
    if isinstance(bands, str):
        try:
            bands = [int(b) for b in bands.replace(" ", "").split(",") if b]
        except ValueError:
            raise SceneError(f"bands must be comma-separated band numbers such as '1,2,3', got {bands!r}.") from None
    bands = tuple(int(b) for b in bands)
    if not bands or any(b < 1 for b in bands):
        raise SceneError(f"bands are 1-based band numbers (1 is the first band), got {bands}.")
    return bands


def open_scene(path):
    """Open a raster for reading, turning every failure into one `SceneError` line.

    GDAL virtual paths (`/vsicurl/https://...`, `/vsizip/...`) are opened as given.
    """
    if str(path).startswith("/vsi"):
        return _open(str(path))
    path = Path(path)
    if not path.exists():
        raise SceneError(f"{path}: no such file.")
    if path.is_dir():
        raise SceneError(f"{path}: is a folder; pass a raster file (GeoTIFF).")
    if not os.access(path, os.R_OK):
        raise SceneError(f"{path}: no read permission; check the file's permissions (chmod +r).")
    if path.stat().st_size == 0:
        raise SceneError(f"{path}: the file is empty (0 bytes); the download or copy did not complete.")
    return _open(path)


def _open(path):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            dataset = rasterio.open(path)
    except (RasterioError, OSError) as error:
        raise SceneError(f"{path}: not a raster rasterio can read (corrupt, truncated or not a GeoTIFF): {error}") from None
    if dataset.width < 1 or dataset.height < 1 or dataset.count < 1:
        dataset.close()
        raise SceneError(f"{path}: the raster is empty ({dataset.width}x{dataset.height}, {dataset.count} bands).")
    return dataset


def read_pixels(dataset, *args, what="pixels", **kwargs):
    """`dataset.read(*args, **kwargs)`, a failure (truncated or corrupt file) as one `SceneError` naming it."""
    try:
        return dataset.read(*args, **kwargs)
    except (RasterioError, OSError) as error:
        raise SceneError(f"{dataset.name}: cannot read the {what} (truncated or corrupt file?): {error}") from None


def select_bands(dataset, preprocessing, bands=None):
    """The scene bands to feed the model, and how they were chosen.

    Args:
        dataset: An open rasterio dataset.
        preprocessing: The engine's `Preprocessing`.
        bands: User's 1-based band numbers (or None).

    Returns:
        (bands, reason): a tuple of 1-based band numbers in model order, and a
        short phrase for logs and summaries ("--bands", "colour interpretation",
        "weights' preprocessing").

    Raises:
        SceneError: naming the scene's bands, dtype and what to pass.
    """
    name = dataset.name
    count, dtypes = dataset.count, set(dataset.dtypes)
    want = preprocessing.num_bands
    bands = check_bands_argument(bands)
    interp = [c.name for c in dataset.colorinterp]
    described = ", ".join(f"{i + 1}={c}" for i, c in enumerate(interp))
    if bands is not None:
        reason = "--bands"
        if len(bands) != want:
            raise SceneError(
                f"{name}: {len(bands)} bands {bands} given but the model takes {want} "
                f"({', '.join(preprocessing.band_names)})."
            )
        if max(bands) > count:
            raise SceneError(f"{name}: bands {bands} requested but the scene has {count} band(s) ({described}).")
    else:
        wanted = [n.lower() for n in preprocessing.band_names]
        by_interp = [interp.index(n) + 1 for n in wanted if interp.count(n) == 1]
        if len(by_interp) == want and all(n in ColorInterp.__members__ for n in wanted):
            bands, reason = tuple(by_interp), "colour interpretation"
        elif count == want or (
            preprocessing.bands != tuple(range(1, want + 1)) and max(preprocessing.bands) <= count
        ):
            bands, reason = preprocessing.bands, "weights' preprocessing"
            if max(bands) > count:
                raise SceneError(
                    f"{name}: the weights read bands {bands} but the scene has {count} band(s); pass --bands."
                )
        else:
            raise SceneError(
                f"{name}: the scene has {count} bands ({described}) and the model takes {want} "
                f"({', '.join(preprocessing.band_names)}); choose them with --bands, e.g. --bands "
                f"{','.join(str(b) for b in range(1, want + 1))}."
            )
    dtype = dataset.dtypes[bands[0] - 1]
    if len({dataset.dtypes[b - 1] for b in bands}) > 1 or dtype != preprocessing.dtype:
        raise SceneError(
            f"{name}: the scene is {'/'.join(sorted(dtypes))} but the model expects {preprocessing.dtype} "
            f"pixels (scale {preprocessing.scale}); convert the scene (e.g. gdal_translate -ot "
            f"{preprocessing.dtype} -scale) or use weights trained on {dtype} data."
        )
    return bands, reason


def all_valid(dataset):
    """Whether every pixel is valid (no nodata, alpha or mask band)."""
    return all(flags == [MaskFlags.all_valid] for flags in dataset.mask_flag_enums)
