"""Helpers that write small GeoTIFFs, good and deliberately broken, for the data tests."""

import numpy as np
from affine import Affine

from gdcld_zoo.data.synthetic import write_geotiff

DEFAULT_TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 3300000.0)


def write_tif(path, array, transform=None, crs="EPSG:32647", nodata=None):
    """Write a (bands, H, W) or (H, W) array as an uncompressed GeoTIFF."""
    return write_geotiff(path, np.asarray(array), transform or DEFAULT_TRANSFORM, crs, compress=None, nodata=nodata)


def truncate(path, fraction=0.6):
    """Cut a file to `fraction` of its bytes, as an interrupted copy would."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
