"""TileBatchReader: windows, crops, padding, skipping, caches, thread-count independence."""

import numpy as np
import pytest

from gdcld_zoo.data.batch_reader import BatchBufferPool, TileBatchReader, padded_size
from gdcld_zoo.data.layout import TilePair, tile_pairs
from gdcld_zoo.data.reading import RasterReadError
from tests.data.conftest import TILE
from tests.data.raster_files import truncate, write_tif


def _tiles(tmp_path, sizes):
    """Uncompressed tiles whose pixels encode their position, and their labels."""
    pairs, arrays = [], []
    for i, (h, w) in enumerate(sizes):
        image = (np.arange(3 * h * w).reshape(3, h, w) * 7 + i) % 251
        label = (np.arange(h * w).reshape(h, w) % 3 == 0).astype("uint8")
        pairs.append(TilePair(write_tif(tmp_path / "images" / f"t{i}.tif", image.astype("uint8")),
                              write_tif(tmp_path / "labels" / f"t{i}.tif", label)))
        arrays.append((image.astype("uint8"), label))
    return pairs, arrays


def _elements(count):
    return np.array([[i, 0, 0, -1, -1] for i in range(count)], "int64")


def test_training_crops_follow_the_random_numbers(tmp_path):
    pairs, arrays = _tiles(tmp_path, [(80, 96), (64, 64)])
    reader = TileBatchReader(pairs, [(80, 96), (64, 64)], tile_size=48, training=True)
    randoms = np.array([1000, 3], "int64")
    images, masks, kept, offsets = reader(_elements(2), randoms)
    assert images.shape == (2, 3, 48, 48) and masks.shape == (2, 48, 48, 1) and kept.tolist() == [0, 1]
    rows = 80 - 48 + 1
    assert offsets[0].tolist() == [1000 % rows, (1000 // rows) % (96 - 48 + 1)]
    for (image, label), crop, mask, (r, c) in zip(arrays, images, masks, offsets):
        np.testing.assert_array_equal(crop, image[:, r : r + 48, c : c + 48])
        np.testing.assert_array_equal(mask[..., 0], label[r : r + 48, c : c + 48])


def test_small_tiles_are_padded_with_zero_and_ignore(tmp_path):
    pairs, arrays = _tiles(tmp_path, [(20, 30)])
    reader = TileBatchReader(pairs, [(20, 30)], tile_size=32, training=True)
    images, masks, _, offsets = reader(_elements(1), np.array([-5], "int64"))
    assert offsets.tolist() == [[0, 0]]
    np.testing.assert_array_equal(images[0, :, :20, :30], arrays[0][0])
    assert not images[0, :, 20:].any() and not images[0, :, :, 30:].any()
    assert (masks[0, 20:] == 255).all() and (masks[0, :, 30:] == 255).all()
    np.testing.assert_array_equal(masks[0, :20, :30, 0], arrays[0][1])


def test_evaluation_windows_and_batches_padded_to_their_largest_tile(tmp_path):
    pairs, arrays = _tiles(tmp_path, [(40, 40), (70, 50)])
    reader = TileBatchReader(pairs, [(40, 40), (70, 50)], tile_size=32, training=False)
    images, masks, _, offsets = reader(np.array([[0, 0, 0, -1, -1], [1, 5, 6, 30, 20]]), np.zeros(2, "int64"))
    assert images.shape == (2, 3, 64, 64) == (2, 3, *padded_size(40, 40))
    np.testing.assert_array_equal(images[1, :, :30, :20], arrays[1][0][:, 5:35, 6:26])
    assert offsets.tolist() == [[0, 0], [5, 6]] and (masks[1, 30:] == 255).all()
    fixed = TileBatchReader(pairs, [(40, 40), (70, 50)], tile_size=32, training=False, out_size=(96, 64))
    assert fixed(_elements(2), np.zeros(2, "int64"))[0].shape == (2, 3, 96, 64)


def test_unreadable_tiles_raise_or_are_left_out(tmp_path):
    pairs, arrays = _tiles(tmp_path, [(64, 64)] * 3)
    truncate(pairs[1].image, 0.3)
    strict = TileBatchReader(pairs, [(64, 64)] * 3, tile_size=64, training=False)
    with pytest.raises(RasterReadError, match=r"t1.tif: cannot (read image pixels|open image)"):
        strict(_elements(3), np.zeros(3, "int64"))
    skipping = TileBatchReader(pairs, [(64, 64)] * 3, tile_size=64, training=False, skip_bad=True)
    images, masks, kept, offsets = skipping(_elements(3), np.zeros(3, "int64"))
    assert kept.tolist() == [0, 2] and images.shape[0] == masks.shape[0] == offsets.shape[0] == 2
    np.testing.assert_array_equal(images[1], arrays[2][0])


@pytest.mark.parametrize("where", ["memory", "folder"])
def test_cached_tiles_are_read_once_and_cropped_from_the_cache(tmp_path, where):
    pairs, arrays = _tiles(tmp_path, [(64, 80)] * 2)
    cache = True if where == "memory" else tmp_path / "cache"
    reader = TileBatchReader(pairs, [(64, 80)] * 2, tile_size=32, training=True, cache=cache)
    reader(_elements(2), np.array([0, 1], "int64"))
    for pair in pairs:  # later epochs never open the files again
        pair.image.write_bytes(b"gone")
    images, masks, _, offsets = reader(_elements(2), np.array([777, 4321], "int64"))
    for (image, label), crop, mask, (r, c) in zip(arrays, images, masks, offsets):
        np.testing.assert_array_equal(crop, image[:, r : r + 32, c : c + 32])
        np.testing.assert_array_equal(mask[..., 0], label[r : r + 32, c : c + 32])
    if where == "folder":
        assert len(list((tmp_path / "cache").glob("*.npy"))) == 4
        assert not list((tmp_path / "cache").glob("*.partial"))
        # A changed tile has a new key, so it is read again (here: and found broken).
        fresh = TileBatchReader(pairs, [(64, 80)] * 2, tile_size=32, training=True, cache=cache)
        with pytest.raises(RasterReadError, match="t0.tif"):
            fresh(_elements(1), np.zeros(1, "int64"))


def test_thread_count_does_not_change_the_batch(synthetic_root):
    pairs = tile_pairs(synthetic_root, "train")
    elements, randoms = _elements(len(pairs)), np.arange(len(pairs), dtype="int64") * 7919
    one = TileBatchReader(pairs, [(TILE, TILE)] * len(pairs), tile_size=64, training=True, threads=1)
    four = TileBatchReader(pairs, [(TILE, TILE)] * len(pairs), tile_size=64, training=True, threads=4)
    for a, b in zip(one(elements, randoms), four(elements, randoms)):
        np.testing.assert_array_equal(a, b)


def test_batches_are_aligned_for_tensorflow():
    pool = BatchBufferPool()
    for shape, dtype in [((3, 5, 7), "uint8"), ((2, 3, 64, 64), "uint16"), ((1,), "float32")]:
        array = pool.empty(shape, dtype)
        assert array.shape == shape and array.dtype == dtype and array.ctypes.data % 64 == 0
        array[...] = 1  # writable, and the whole extent is its own
        assert array.sum() == np.prod(shape)


def test_buffers_are_reused_only_once_every_view_is_gone():
    pool = BatchBufferPool(keep=1)
    first = pool.empty((4, 64), "uint8")
    address = first.ctypes.data
    view = first[1:].T[::2].view("int8")
    del first
    assert pool.idle_count() == 0  # a view derived from it still uses the memory
    second = pool.empty((4, 64), "uint8")
    assert second.ctypes.data != address
    del view
    assert pool.idle_count() == 1
    assert pool.empty((2, 32), "float32").ctypes.data == address  # same byte size, same memory, now free again
    assert pool.idle_count() == 1
    del second  # keep=1 and one buffer is already idle: this one is freed
    assert pool.idle_count() == 1


def test_tensors_keep_their_batch_memory_while_alive(tmp_path):
    """Batches handed to TensorFlow without a copy are not overwritten while their tensors live."""
    tf = pytest.importorskip("tensorflow")
    pairs, arrays = _tiles(tmp_path, [(32, 32)] * 6)
    reader = TileBatchReader(pairs, [(32, 32)] * 6, tile_size=32, training=False)
    elements = tf.data.Dataset.from_tensor_slices(_elements(6)).batch(2)
    batches = elements.map(
        lambda e: tf.numpy_function(reader, [e, tf.zeros_like(e[:, 0])], [tf.uint8, tf.uint8, tf.int64, tf.int32])[:2]
    )
    kept = list(batches)  # every tensor stays alive while later batches are read
    for b, (images, masks) in enumerate(kept):
        for i in range(2):
            image, label = arrays[2 * b + i]
            np.testing.assert_array_equal(images[i].numpy(), image)
            np.testing.assert_array_equal(masks[i, ..., 0].numpy(), label)
    assert reader._buffers.idle_count() == 0
    del kept, batches
    assert reader._buffers.idle_count() > 0  # the memory comes back once the tensors are gone
