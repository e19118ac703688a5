"""make_dataset: shapes, normalisation, crops, determinism, balancing, bad files, metadata."""

import numpy as np
import pytest
import rasterio
import tensorflow as tf

from gdcld_zoo.data.dataset import BadTileError, batch_to_model_input, make_dataset, normalization_layer
from gdcld_zoo.data.layout import tile_pairs
from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.preprocessing import Preprocessing
from tests.data.conftest import TILE
from tests.data.raster_files import truncate, write_tif


def _read(path, bands=None):
    with rasterio.open(path) as src:
        return src.read(bands)


def _arrays(ds):
    return [tuple(np.asarray(t) for t in batch[:2]) for batch in ds]


def test_eval_batches_are_normalised_tiles_in_order(synthetic_root):
    ds = make_dataset(synthetic_root, "val", batch_size=3, tile_size=64, deterministic=True)
    batches = _arrays(ds)
    assert [b[0].shape for b in batches] == [(3, TILE, TILE, 3), (1, TILE, TILE, 3)]
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype == np.uint8
    images = np.concatenate([b[0] for b in batches])
    masks = np.concatenate([b[1] for b in batches])
    for i, pair in enumerate(tile_pairs(synthetic_root, "val")):
        raw = np.moveaxis(_read(pair.image), 0, -1)
        expected = (raw / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
        np.testing.assert_allclose(images[i], expected, atol=1e-5)
        np.testing.assert_array_equal(masks[i, ..., 0], _read(pair.label, 1))


def test_parallelism_is_set_and_the_autotuner_can_come_back(synthetic_root):
    """The autotuner is off (it stalls iterator teardown); turning it on changes no batch."""
    ds = make_dataset(synthetic_root, "val", batch_size=3, tile_size=64, deterministic=True)
    assert ds.options().autotune.enabled is False
    options = tf.data.Options()
    options.autotune.enabled = True
    for (a, m), (b, n) in zip(_arrays(ds), _arrays(ds.with_options(options)), strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(m, n)


def test_training_crops_are_windows_of_their_tile(synthetic_root):
    ds = make_dataset(synthetic_root, "train", 4, 64, augment=False, with_metadata=True, seed=3)
    spec = Preprocessing()
    offsets = set()
    for images, masks, meta in ds:
        assert images.shape == (4, 64, 64, 3) and masks.shape == (4, 64, 64, 1)
        crops = zip(images.numpy(), masks.numpy(), meta["image"].numpy(), meta["row"].numpy(), meta["col"].numpy())
        for image, mask, path, row, col in crops:
            raw = np.moveaxis(_read(path.decode()), 0, -1)
            label = _read(path.decode().replace("/images/", "/labels/"), 1)
            full = spec.apply(raw)
            found = [
                (r, c)
                for r in range(TILE - 63)
                for c in range(TILE - 63)
                if np.allclose(full[r : r + 64, c : c + 64], image, atol=1e-5)
            ]
            assert found == [(row, col)]  # the metadata names the crop
            r, c = found[0]
            np.testing.assert_array_equal(label[r : r + 64, c : c + 64], mask[..., 0])
            offsets.add(found[0])
    assert len(offsets) > 4


def test_same_seed_same_batches_and_epochs_differ(synthetic_root):
    def run(seed):
        ds = make_dataset(synthetic_root, "train", 4, 64, seed=seed, deterministic=True)
        return ds, _arrays(ds)

    ds, first = run(11)
    _, again = run(11)
    _, other = run(12)
    for (a, m), (b, n) in zip(first, again):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(m, n)
    assert not np.array_equal(first[0][0], other[0][0])
    second_epoch = _arrays(ds)
    assert not np.array_equal(first[0][0], second_epoch[0][0])
    assert set(np.unique(np.concatenate([m for _, m in first]))) <= {0, 1, 255}


def test_balance_samples_positive_share(synthetic_root):
    positive = {str(p.image): _read(p.label, 1).any() for p in tile_pairs(synthetic_root, "train")}
    assert 0 < np.mean(list(positive.values())) < 1
    ds = make_dataset(
        synthetic_root, "train", 8, TILE, augment=False, balance=0.25, repeat=True, seed=0, with_metadata=True
    )
    drawn = [positive[p.decode()] for _, _, meta in ds.take(40) for p in meta["image"].numpy()]
    assert len(drawn) == 320
    assert 0.17 < np.mean(drawn) < 0.33  # the split itself is ~75 % positive
    one_epoch = make_dataset(synthetic_root, "train", 8, TILE, augment=False, balance=0.5, seed=0)
    assert sum(int(x.shape[0]) for x, _ in one_epoch) == 8


def test_bad_pairs_raise_or_are_skipped(dataset_copy):
    images = dataset_copy / "train" / "images"
    (images / "tile_00002.tif").write_bytes(b"garbage")
    (dataset_copy / "train" / "labels" / "tile_00005.tif").unlink()
    with pytest.raises(BadTileError, match=r"2 of 8 tile pairs are bad.*tile_00002.tif.*tile_00005.tif") as info:
        make_dataset(dataset_copy, "train", 4, 64)
    assert "on_bad='skip'" in str(info.value)
    with pytest.warns(UserWarning, match="Skipping 2 of 8 bad tile pairs"):
        ds = make_dataset(dataset_copy, "train", 4, 64, on_bad="skip", with_metadata=True)
    names = sorted(p.decode().rsplit("/", 1)[1] for _, _, m in ds for p in m["image"].numpy())
    assert names == [f"tile_{i:05d}.tif" for i in (0, 1, 3, 4, 6, 7)]


def test_file_truncated_after_the_header_is_dropped_or_named(dataset_copy):
    truncate(dataset_copy / "val" / "images" / "tile_00001.tif")
    skip = make_dataset(dataset_copy, "val", 1, 64, on_bad="skip")
    assert sum(1 for _ in skip) == 3
    strict = make_dataset(dataset_copy, "val", 1, 64)
    with pytest.raises(tf.errors.OpError, match=r"tile_00001.tif: cannot read image pixels"):
        list(strict)
    with pytest.raises(BadTileError, match="truncated"):
        make_dataset(dataset_copy, "val", 1, 64, validate="full")


def test_grid_and_center_crops(synthetic_root):
    grid = make_dataset(synthetic_root, "val", 4, 64, eval_crop="grid", with_metadata=True, deterministic=True)
    batches = list(grid)
    assert sum(int(b[0].shape[0]) for b in batches) == 4 * 4  # offsets 0 and 32 per axis
    first_tile = np.moveaxis(_read(tile_pairs(synthetic_root, "val")[0].image), 0, -1)
    images, _, meta = batches[0]
    assert list(zip(meta["row"].numpy(), meta["col"].numpy())) == [(0, 0), (0, 32), (32, 0), (32, 32)]
    np.testing.assert_allclose(images[3], Preprocessing().apply(first_tile[32:, 32:]), atol=1e-5)
    center = make_dataset(synthetic_root, "val", 4, 64, eval_crop="center", deterministic=True)
    (images, _), = list(center)
    np.testing.assert_allclose(images[0], Preprocessing().apply(first_tile[16:80, 16:80]), atol=1e-5)


def test_whole_tiles_of_mixed_sizes_are_padded_with_ignore(tmp_path):
    for name, (h, w) in {"a.tif": (40, 40), "b.tif": (70, 50)}.items():
        write_tif(tmp_path / "images" / name, np.full((3, h, w), 200, "uint8"))
        write_tif(tmp_path / "labels" / name, np.ones((h, w), "uint8"))
    (images, masks), = list(make_dataset(tmp_path, None, 2, 64, deterministic=True))
    assert images.shape == (2, 96, 64, 3)  # each padded to a multiple of 32, then to the batch max
    masks = masks.numpy()[..., 0]
    assert (masks[0, :40, :40] == 1).all() and (masks[0, 40:] == 255).all() and (masks[0, :, 40:] == 255).all()
    assert (masks[1, :70, :50] == 1).all() and (masks[1, 70:] == 255).all()
    padded = Preprocessing().apply(np.zeros((1, 1, 3), "uint8"))[0, 0]
    np.testing.assert_allclose(images.numpy()[0, 50:], np.broadcast_to(padded, (46, 64, 3)), atol=1e-6)


def test_small_tiles_are_padded_for_training(tmp_path):
    write_tif(tmp_path / "train" / "images" / "a.tif", np.zeros((3, 40, 40), "uint8"))
    write_tif(tmp_path / "train" / "labels" / "a.tif", np.ones((40, 40), "uint8"))
    (_, masks), = list(make_dataset(tmp_path, "train", 1, 64, augment=False, seed=0))
    assert masks.shape == (1, 64, 64, 1)
    assert (masks.numpy() == 1).sum() == 40 * 40 and (masks.numpy() == 255).sum() == 64 * 64 - 1600


def test_label_and_image_nodata_become_ignore(tmp_path):
    image = np.full((3, 32, 32), 120, "uint8")
    image[:, 0, :] = 0
    label = np.zeros((32, 32), "uint8")
    label[5:10] = 1
    label[20:] = 9
    write_tif(tmp_path / "images" / "a.tif", image, nodata=0)
    write_tif(tmp_path / "labels" / "a.tif", label, nodata=9)
    (_, masks), = list(make_dataset(tmp_path, None, 1, 32, mask_dtype="float32"))
    masks = masks.numpy()[0, ..., 0]
    assert masks.dtype == np.float32
    assert (masks[0] == 255).all() and (masks[5:10] == 1).all() and (masks[20:] == 255).all()
    assert (masks[1:5] == 0).all()


def test_sixteen_bit_four_band_needs_an_explicit_spec(tmp_path):
    bands = np.stack([np.full((32, 32), v, "uint16") for v in (1000, 2000, 3000, 4000)])
    write_tif(tmp_path / "images" / "a.tif", bands)
    write_tif(tmp_path / "labels" / "a.tif", np.zeros((32, 32), "uint8"))
    with pytest.raises(BadTileError, match=r"4 uint16 band\(s\) but the default spec.*dtype='uint16'"):
        make_dataset(tmp_path, None, 1, 32)
    spec = Preprocessing(bands=(3, 2, 1), dtype="uint16", scale=(1e4,) * 3, mean=(0.1,) * 3, std=(0.5,) * 3)
    (images, _), = list(make_dataset(tmp_path, None, 1, 32, preprocessing=spec))
    np.testing.assert_allclose(images.numpy()[0, 0, 0], [(0.3 - 0.1) / 0.5, (0.2 - 0.1) / 0.5, 0.0], atol=1e-6)


def test_manifest_root_yields_event_and_sensor(synthetic_root):
    ds = make_dataset(synthetic_root / "manifest.csv", "val", 4, 64, with_metadata=True)
    (_, _, meta), = list(ds)
    assert [s.decode() for s in meta["sensor"].numpy()] == ["UAV", "PlanetScope", "Map World", "UAV"]
    assert meta["event"].numpy()[0].decode() == "Luding 2022"
    np.testing.assert_allclose(meta["resolution_m"].numpy(), [0.2, 3.0, 0.5, 0.2])


def test_cache_and_repeat(synthetic_root, tmp_path):
    ds = make_dataset(synthetic_root, "val", 2, 64, cache=True, deterministic=True)
    first, second = _arrays(ds), _arrays(ds)
    for (a, _), (b, _) in zip(first, second):
        np.testing.assert_array_equal(a, b)
    # Cached training tiles still reshuffle and recrop every epoch.
    train = make_dataset(synthetic_root, "train", 8, 64, augment=False, cache=True, with_metadata=True, seed=0)
    epochs = [next(iter(train)) for _ in range(3)]
    orders = {tuple(meta["image"].numpy()) for _, _, meta in epochs}
    crops = {tuple(meta["row"].numpy()) for _, _, meta in epochs}
    assert len(orders) > 1 and len(crops) > 1 and len(orders.pop()) == 8
    repeated = make_dataset(synthetic_root, "val", 2, 64, repeat=True, cache=str(tmp_path / "cache"))
    assert len(list(repeated.take(5))) == 5


def test_tf_data_augmentation_keeps_masks_valid(synthetic_root):
    ds = make_dataset(synthetic_root, "train", 4, 64, augment=True, seed=1)
    for images, masks in ds:
        assert images.shape == (4, 64, 64, 3) and masks.dtype == tf.uint8
        assert set(np.unique(masks.numpy())) <= {0, 1, 255}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(on_bad="ignore"), "on_bad"),
        (dict(eval_crop="tiles"), "eval_crop"),
        (dict(balance=1.5), "balance"),
        (dict(mask_dtype="int64"), "mask_dtype"),
        (dict(augment="yes"), "augment must be"),
    ],
)
def test_bad_arguments_are_named(synthetic_root, kwargs, message):
    with pytest.raises(Exception, match=message):
        make_dataset(synthetic_root, "train", 2, 64, **kwargs)


def test_raw_output_normalised_on_the_device_matches(synthetic_root):
    spec = Preprocessing()
    (normalised, masks), = list(make_dataset(synthetic_root, "val", 4, 64, deterministic=True))
    (raw, raw_masks), = list(make_dataset(synthetic_root, "val", 4, 64, normalize=False, deterministic=True))
    assert raw.dtype == tf.uint8 and raw.shape == (4, TILE, TILE, 3)
    np.testing.assert_array_equal(masks, raw_masks)
    np.testing.assert_allclose(normalization_layer(spec)(raw), normalised, atol=1e-5)
    with pytest.raises(InvalidInputError, match="augment=False"):
        make_dataset(synthetic_root, "train", 4, 64, normalize=False)


def test_batch_to_model_input_normalises_and_transposes():
    raw = np.random.default_rng(0).integers(0, 256, (2, 3, 5, 7)).astype("uint8")
    spec = Preprocessing()
    images = batch_to_model_input(spec)(raw).numpy()
    assert images.shape == (2, 5, 7, 3) and images.dtype == np.float32
    np.testing.assert_allclose(images, spec.apply(raw.transpose(0, 2, 3, 1)), atol=1e-5)
    np.testing.assert_array_equal(batch_to_model_input(spec, normalize=False)(raw), raw.transpose(0, 2, 3, 1))
