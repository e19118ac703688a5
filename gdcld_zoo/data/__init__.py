"""GeoTIFF input pipeline: GDCLD layout, checks, tf.data, augmentation, synthetic data.

* `tile_pairs(root, split)` / `index_split`: find image/label pairs (folder
  layout or CSV manifest) with their event, sensor and resolution.
* `check_dataset(root)`: validate every pair (`gdcld-zoo data check ROOT`).
* `download_gdcld(dir)`: the GDCLD release from Zenodo, md5-verified, resumable,
  unpacked (`gdcld-zoo data download DIR`).
* `read_pair(pair, preprocessing)`: one tile through the band-spec rules.
* `make_dataset(root, split, batch_size, tile_size, ...)`: the tf.data pipeline;
  `normalization_layer(preprocessing)` normalises its `normalize=False` output
  on the device.
* `SegmentationAugmentation`: augmentation of image and mask batches, on the
  device or in tf.data.
* `write_synthetic_dataset`, `write_synthetic_scene`: GDCLD-like test data.
"""

from gdcld_zoo.lazy_imports import lazy_attributes
from gdcld_zoo.data.checks import DatasetReport, PairReport, SplitReport, check_dataset, check_pair, format_report
from gdcld_zoo.data.download import download_gdcld
from gdcld_zoo.data.layout import DatasetLayoutError, SplitIndex, TilePair, index_split, tile_pairs, write_manifest
from gdcld_zoo.data.reading import IGNORE_INDEX, RasterReadError, read_pair
from gdcld_zoo.data.synthetic import synthetic_scene, write_synthetic_dataset, write_synthetic_scene

# TensorFlow and Keras load only when these are first used, so that rasterio-only
# work (layout, checks, `gdcld-zoo data check`) starts in a fraction of a second.
_LAZY = {
    "BadTileError": "gdcld_zoo.data.checks",
    "make_dataset": "gdcld_zoo.data.dataset",
    "normalization_layer": "gdcld_zoo.data.dataset",
    "SegmentationAugmentation": "gdcld_zoo.data.augmentation",
}
__getattr__ = lazy_attributes(__name__, _LAZY)

__all__ = [
    "IGNORE_INDEX",
    "BadTileError",
    "DatasetLayoutError",
    "DatasetReport",
    "PairReport",
    "RasterReadError",
    "SegmentationAugmentation",
    "SplitIndex",
    "SplitReport",
    "TilePair",
    "check_dataset",
    "check_pair",
    "download_gdcld",
    "format_report",
    "index_split",
    "make_dataset",
    "normalization_layer",
    "read_pair",
    "synthetic_scene",
    "tile_pairs",
    "write_manifest",
    "write_synthetic_dataset",
    "write_synthetic_scene",
]
