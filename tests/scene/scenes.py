"""Small GeoTIFF scenes and deterministic engines for the scene-inference tests."""

import warnings

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp
from rasterio.errors import NotGeoreferencedWarning

from gdcld_zoo.scene.engines import Engine

UTM_TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 3300000.0)


def write_scene(path, array, crs="EPSG:32647", transform=UTM_TRANSFORM, nodata=None, colorinterp=None, tiled=False):
    """Write (bands, H, W) `array` as a GeoTIFF; `colorinterp` names each band."""
    array = np.asarray(array)
    profile = {
        "driver": "GTiff", "height": array.shape[1], "width": array.shape[2], "count": array.shape[0],
        "dtype": array.dtype.name, "crs": crs, "transform": transform,
    }
    if array.shape[0] in (3, 4) and array.dtype == np.uint8 and colorinterp is None:
        profile["photometric"] = "minisblack"
    if nodata is not None:
        profile["nodata"] = nodata
    if tiled:
        profile.update(tiled=True, blockxsize=64, blockysize=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # scenes without CRS on purpose
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(array)
            if colorinterp is not None:
                dst.colorinterp = [ColorInterp[c] for c in colorinterp]
    return path


def random_scene(height, width, bands=3, seed=0, dtype="uint8"):
    """Smooth random pixels (bands, H, W), so neighbouring pixels are similar."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((bands, height // 8 + 2, width // 8 + 2))
    big = np.kron(coarse, np.ones((8, 8)))[:, :height, :width]
    top = 255 if dtype == "uint8" else 10000
    return (big * top).astype(dtype)


def brightness(raw):
    """Per-pixel probability: mean of the bands / 255."""
    return raw.astype("float32").mean(-1) / 255.0


class PixelEngine(Engine):
    """Probability = mean band value / 255, pixel by pixel: tiling must be exact."""

    tag = "pixel-test"
    tile_size = 64

    def __init__(self, fail_after=None):
        self.calls = 0
        self.fail_after = fail_after

    def predict(self, raw):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("simulated failure in the middle of a scene")
        return brightness(raw)


def box_filter(prob, radius=2):
    """Mean over a (2r+1)² window with zero padding, per image (N, H, W)."""
    padded = np.pad(prob, ((0, 0), (radius, radius), (radius, radius)))
    out = np.zeros_like(prob)
    size = 2 * radius + 1
    for dy in range(size):
        for dx in range(size):
            out += padded[:, dy:dy + prob.shape[1], dx:dx + prob.shape[2]]
    return out / size**2


class ConvEngine(Engine):
    """A fixed 5x5 box filter of the brightness with zero padding, like a conv layer:
    its tile borders differ from a forward pass over the whole scene."""

    tag = "conv-test"
    tile_size = 64

    def predict(self, raw):
        return box_filter(brightness(raw))


class ColumnEngine(Engine):
    """Probability = column index within the tile / (width - 1): not rotation invariant."""

    tag = "column-test"

    def predict(self, raw):
        n, h, w, _ = raw.shape
        return np.broadcast_to(np.arange(w, dtype="float32") / (w - 1), (n, h, w)).copy()
