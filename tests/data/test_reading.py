"""read_pair: band spec rules, windows, ignore values, errors naming the file."""

import doctest

import numpy as np
import pytest
from rasterio.env import get_gdal_config

import gdcld_zoo.data.augmentation
import gdcld_zoo.data.batch_reader
import gdcld_zoo.data.checks
import gdcld_zoo.data.dataset
import gdcld_zoo.data.layout
import gdcld_zoo.data.reading
import gdcld_zoo.data.synthetic
from gdcld_zoo.data.layout import TilePair
from gdcld_zoo.data.reading import RasterReadError, enter_read_env, open_raster, read_pair, read_thread_pool
from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.preprocessing import Preprocessing
from tests.data.raster_files import write_tif


@pytest.fixture
def pair(tmp_path):
    image = np.arange(4 * 16 * 16, dtype="uint16").reshape(4, 16, 16)
    label = np.zeros((16, 16), "uint8")
    label[4:8, 4:8] = 1
    label[0, 0] = 255
    return TilePair(write_tif(tmp_path / "i.tif", image), write_tif(tmp_path / "l.tif", label)), image, label


def test_band_selection_and_window(pair):
    tile, image, label = pair
    spec = Preprocessing(bands=(4, 1), band_names=("nir", "red"), dtype="uint16",
                         scale=(1e4, 1e4), mean=(0, 0), std=(1, 1))
    raw, mask = read_pair(tile, spec, window=(2, 3, 8, 5))
    assert raw.shape == (8, 5, 2) and raw.dtype == np.uint16 and mask.shape == (8, 5)
    np.testing.assert_array_equal(raw[..., 0], image[3, 2:10, 3:8])
    np.testing.assert_array_equal(raw[..., 1], image[0, 2:10, 3:8])
    np.testing.assert_array_equal(mask, label[2:10, 3:8])


def test_default_spec_refuses_16_bit_four_band(pair):
    with pytest.raises(RasterReadError, match=r"i.tif: image has 4 uint16 band\(s\).*bands=\(3, 2, 1\)"):
        read_pair(pair[0])


def test_unexpected_label_values_and_missing_label(tmp_path):
    image = write_tif(tmp_path / "i.tif", np.zeros((3, 8, 8), "uint8"))
    label = write_tif(tmp_path / "l.tif", np.full((8, 8), 4, "uint8"))
    with pytest.raises(RasterReadError, match=r"l.tif: label has values \{4\} outside"):
        read_pair(TilePair(image, label))
    with pytest.raises(RasterReadError, match="missing"):
        read_pair(TilePair(image, None))
    small = write_tif(tmp_path / "s.tif", np.zeros((8, 6), "uint8"))
    with pytest.raises(RasterReadError, match="s.tif: label is 8x6 but image"):
        read_pair(TilePair(image, small))


@pytest.mark.parametrize(
    "module",
    [
        gdcld_zoo.data.layout,
        gdcld_zoo.data.reading,
        gdcld_zoo.data.checks,
        gdcld_zoo.data.synthetic,
        gdcld_zoo.data.dataset,
        gdcld_zoo.data.batch_reader,
        gdcld_zoo.data.augmentation,
    ],
    ids=lambda m: m.__name__,
)
def test_docstring_examples_run(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_default_spec_passed_explicitly_is_as_strict_as_none(tmp_path):
    image = write_tif(tmp_path / "i.tif", np.zeros((4, 8, 8), "uint8"))
    label = write_tif(tmp_path / "l.tif", np.zeros((8, 8), "uint8"))
    with pytest.raises(RasterReadError, match="4 uint8 band"):
        read_pair(TilePair(image, label), Preprocessing())
    chosen = Preprocessing(band_names=("b1", "b2", "b3"))
    assert read_pair(TilePair(image, label), chosen)[0].shape == (8, 8, 3)


def test_read_into_a_strided_slot_and_wrong_out_is_named(pair):
    tile, image, _ = pair
    spec = Preprocessing(bands=(1, 2, 3), dtype="uint16", scale=(1.0,) * 3)
    batch = np.zeros((2, 3, 10, 12), "uint16")
    read_pair(tile, spec, window=(2, 3, 8, 5), channels_first=True, out=batch[1, :, :8, :5])
    np.testing.assert_array_equal(batch[1, :, :8, :5], image[:3, 2:10, 3:8])
    assert not batch[0].any() and not batch[1, :, 8:].any() and not batch[1, :, :, 5:].any()
    with pytest.raises(InvalidInputError, match=r"out is uint8 \(3, 8, 5\), the image read needs uint16"):
        read_pair(tile, spec, window=(2, 3, 8, 5), channels_first=True, out=np.zeros((3, 8, 5), "uint8"))


def test_open_raster_names_the_file(tmp_path):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"not a tiff")
    with pytest.raises(RasterReadError, match=r"broken.tif: cannot open label \(corrupt or not a GeoTIFF\)"):
        open_raster(bad, "label")


def test_open_raster_still_finds_sidecar_files(tmp_path):
    """GDAL_DISABLE_READDIR_ON_OPEN=TRUE skips the folder listing, not the `.aux.xml` sidecar."""
    path = write_tif(tmp_path / "label.tif", np.zeros((8, 8), "uint8"))
    for i in range(50):
        (tmp_path / f"other_{i}.txt").touch()
    (tmp_path / "label.tif.aux.xml").write_text(
        '<PAMDataset><PAMRasterBand band="1"><NoDataValue>9</NoDataValue></PAMRasterBand></PAMDataset>'
    )
    with open_raster(path, "label") as src:
        assert src.nodata == 9


def test_read_env_is_per_worker_thread_and_reads_the_same(pair):
    """read_thread_pool's threads get GDAL options that the main thread does not; pixels and CRS read as before."""
    tile, image, label = pair
    spec = Preprocessing(bands=(1, 2, 3), band_names=("b1", "b2", "b3"), dtype="uint16", scale=(1, 1, 1))

    def in_thread():
        with open_raster(tile.image) as src:
            crs = src.crs
        options = {key: get_gdal_config(key) for key in ("GTIFF_SRS_SOURCE", "GDAL_DISABLE_READDIR_ON_OPEN")}
        return options, crs, read_pair(tile, spec)

    expected = read_pair(tile, spec)
    with open_raster(tile.image) as src:
        expected_crs = src.crs
    for pixels_only, source in ((True, "GEOKEYS"), (False, None)):
        with read_thread_pool(1, pixels_only) as pool:
            options, crs, (raw, mask) = pool.submit(in_thread).result()
        assert options == {"GTIFF_SRS_SOURCE": source, "GDAL_DISABLE_READDIR_ON_OPEN": "TRUE"}
        assert crs == expected_crs
        np.testing.assert_array_equal(raw, expected[0])
        np.testing.assert_array_equal(mask, expected[1])
    assert get_gdal_config("GTIFF_SRS_SOURCE") is None
    with pytest.raises(RuntimeError, match="thread-pool initializer"):
        enter_read_env()
