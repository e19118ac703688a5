"""Read a batch of tile windows with rasterio straight into one preallocated array.

`make_dataset` hands whole batches of (tile, window) elements to
`TileBatchReader`, which reads the batch's tiles in a thread pool (GDAL decodes
with the GIL released, so reads overlap on all cores) and has GDAL write each
window's pixels directly into the tile's slot of one (B, C, H, W) array: no
per-tile hand-off between tf.data and Python, no crop, pad or batch copies. Only
the window is decoded, so a 512 crop of a 1024 tile costs a quarter of the tile.
This is what lets the pipeline reach close to one core's read rate per core
(`benchmarks/pipeline.py`); a per-tile `tf.numpy_function` followed by
TensorFlow crops and `batch` spent 70 % more CPU per tile than the read itself.

Windows: training takes a random `tile_size` crop of each tile, its offset drawn
from the element's random number (so crops follow tf.data's seeded random
stream); evaluation elements name their own window (`(row, col, height,
width)`, height -1 meaning the whole tile). Windows smaller than the batch's
size are padded: images with raw value 0, masks with 255 (ignored).

Example:
>>> import tempfile
>>> import numpy as np
>>> from gdcld_zoo.data.synthetic import write_synthetic_dataset
>>> from gdcld_zoo.data.layout import tile_pairs
>>> root = write_synthetic_dataset(tempfile.mkdtemp(), n_train=2, n_val=0, tile_size=64, seed=0)
>>> pairs = tile_pairs(root, "train")
>>> reader = TileBatchReader(pairs, [(64, 64)] * 2, tile_size=32, training=True)
>>> images, masks, kept, offsets = reader(np.array([[0, 0, 0, -1, -1], [1, 0, 0, -1, -1]]), np.array([5, 77]))
>>> images.shape, masks.shape, kept.tolist(), offsets.tolist()
((2, 3, 32, 32), (2, 32, 32, 1), [0, 1], [[5, 0], [11, 2]])
"""

import hashlib
import logging
import math
import os
import threading
import weakref
from pathlib import Path

import numpy as np

from gdcld_zoo.data.reading import IGNORE_INDEX, RasterReadError, read_pair, read_thread_pool, resolve_preprocessing
from gdcld_zoo.registry import SIZE_MULTIPLE

logger = logging.getLogger(__name__)


class BatchBufferPool:
    """64-byte-aligned batch arrays whose memory is used again once nothing views it.

    TensorFlow shares a `tf.numpy_function` result's memory, keeping the
    returned array alive for as long as its tensor lives, only when it is
    aligned as Eigen wants (64 bytes); large `np.empty` arrays start 16 bytes
    into their pages, so every batch was copied again (0.2 ms per 1024x1024 RGB
    tile with its mask, measured). Fresh arrays also cost new pages: a batch is
    freed on a tf.data thread, not the one that made it, so glibc handed its
    memory back to the kernel and the next batch had it zeroed again
    (`clear_page_erms` was 4.6 % of `perf` samples of a streamed pipeline).
    Recycling took a streamed `make_dataset` from 290 to 329 tiles/s and 6.75
    to 5.92 ms of CPU per 1024x1024 tile (medians of seven runs alternating
    with and without it).

    Each array is made by `np.frombuffer` over a memoryview of a pooled buffer.
    numpy points a view's base at the first array whose own base is not an
    array, so every view of the batch, however derived (TensorFlow's tensor
    holds one), keeps that array alive; when it is garbage, a
    `weakref.finalize` returns the buffer. At most `keep` idle buffers are
    kept, the rest freed.
    """

    def __init__(self, keep=16, alignment=64):
        self.keep = int(keep)
        self.alignment = int(alignment)
        self._idle = {}  # nbytes -> [raw uint8 buffers]
        # Reentrant: a garbage collection inside `_release` may release another buffer.
        self._lock = threading.RLock()

    def empty(self, shape, dtype):
        """An uninitialised aligned array, like `np.empty(shape, dtype)`."""
        dtype = np.dtype(dtype)
        size = int(np.prod(shape)) * dtype.itemsize
        with self._lock:
            idle = self._idle.get(size)
            raw = idle.pop() if idle else None
        if raw is None:
            raw = np.empty(size + self.alignment, np.uint8)
        start = -raw.ctypes.data % self.alignment
        lease = np.frombuffer(memoryview(raw)[start : start + size], dtype)
        weakref.finalize(lease, self._release, size, raw).atexit = False
        return lease.reshape(shape)

    def idle_count(self):
        """Buffers waiting to be used again."""
        with self._lock:
            return sum(len(idle) for idle in self._idle.values())

    def _release(self, size, raw):
        with self._lock:
            if self.idle_count() < self.keep:
                self._idle.setdefault(size, []).append(raw)


def padded_size(height, width, multiple=SIZE_MULTIPLE):
    """(height, width) rounded up to a multiple of `multiple` (what every model accepts)."""
    return math.ceil(height / multiple) * multiple, math.ceil(width / multiple) * multiple


class TileBatchReader:
    """Reads batches of tile windows into (B, C, H, W) raw pixels and (B, H, W, 1) masks.

    Args:
        pairs: The `TilePair`s that elements index.
        sizes: (height, width) of each pair's tiles, as validated.
        preprocessing: The band spec (`gdcld_zoo.data.reading` rules).
        tile_size: Side of training crops.
        training: Random `tile_size` crops (True) or the elements' own windows.
        out_size: Fixed (height, width) of every batch; None pads each batch to
            its largest window rounded up to a multiple of 32.
        skip_bad: Leave tiles that fail to read out of the batch (logged)
            instead of raising `RasterReadError`.
        cache: Keep every decoded tile after its first read, so later epochs
            crop from it instead of decoding again: True keeps them in memory
            (1024x1024 RGB is 4 MiB with its mask), a folder path as `.npy`
            files that are memory-mapped (keyed by file path, size, mtime and
            band spec, so a changed tile is read again).
        threads: Tiles read at once; None is one per CPU core.

    Batch arrays come from a `BatchBufferPool`: up to 16 of them stay allocated
    between batches, to be filled again.
    """

    def __init__(self, pairs, sizes, preprocessing=None, *, tile_size, training, out_size=None,
                 skip_bad=False, cache=False, threads=None):
        self.pairs = list(pairs)
        self.sizes = [tuple(int(v) for v in size) for size in sizes]
        # The resolved spec is read as strictly as `preprocessing` (see resolve_preprocessing).
        self.spec, _ = resolve_preprocessing(preprocessing)
        self.tile_size = int(tile_size)
        self.training = bool(training)
        self.out_size = out_size
        self.skip_bad = bool(skip_bad)
        self.threads = threads or os.cpu_count() or 1
        if isinstance(cache, (str, os.PathLike)):
            self._cache = Path(cache)
            self._cache.mkdir(parents=True, exist_ok=True)
            self._cache_keys = {}
        else:
            self._cache = {} if cache else None
        self._pool = None
        self._lock = threading.Lock()
        self._buffers = BatchBufferPool()

    def window(self, element, random):
        """(row, col, height, width) read for one element."""
        tile, row, col, height, width = (int(v) for v in element)
        tile_height, tile_width = self.sizes[tile]
        if self.training:
            rows = max(tile_height - self.tile_size, 0) + 1
            cols = max(tile_width - self.tile_size, 0) + 1
            random = int(random) & (2**63 - 1)
            row, col = random % rows, (random // rows) % cols
            return row, col, min(tile_height, self.tile_size), min(tile_width, self.tile_size)
        if height < 0:
            return 0, 0, tile_height, tile_width
        return row, col, height, width

    def __call__(self, elements, randoms):
        """Read one batch.

        Args:
            elements: (B, 5) int64 rows `(tile, row, col, height, width)`.
            randoms: (B,) int64 random numbers that place training crops.

        Returns:
            images: (B', C, H, W) raw pixels of the spec's dtype, 0 where padded.
            masks: (B', H, W, 1) uint8 0/1, 255 ignored or padded.
            kept: (B',) int64 positions in the batch that were read (all of
                them unless `skip_bad` dropped unreadable tiles).
            offsets: (B', 2) int32 (row, col) of each window in its tile.
        """
        windows = [self.window(e, r) for e, r in zip(elements, randoms)]
        if self.out_size is not None:
            height, width = self.out_size
        elif self.training:
            height = width = self.tile_size
        else:
            height, width = padded_size(max(w[2] for w in windows), max(w[3] for w in windows))
        images = self._buffers.empty((len(windows), self.spec.num_bands, height, width), self.spec.dtype)
        masks = self._buffers.empty((len(windows), height, width, 1), np.uint8)

        def read(i):
            tile, (row, col, h, w) = int(elements[i][0]), windows[i]
            image, mask = images[i], masks[i, ..., 0]
            if (h, w) != mask.shape:
                image[:, h:], image[:, :h, w:] = 0, 0
                mask[h:], mask[:h, w:] = IGNORE_INDEX, IGNORE_INDEX
            try:
                self._read_window(tile, (row, col, h, w), image[:, :h, :w], mask[:h, :w])
            except RasterReadError as error:
                if not self.skip_bad:
                    raise
                logger.warning("Skipping unreadable tile: %s", error)
                return False
            return True

        ok = list(self._executor().map(read, range(len(windows))))
        kept = np.flatnonzero(ok)
        offsets = np.asarray([w[:2] for w in windows], np.int32).reshape(-1, 2)
        if len(kept) < len(windows):
            images, masks, offsets = images[kept], masks[kept], offsets[kept]
        return images, masks, kept.astype(np.int64), offsets

    def _read_window(self, tile, window, image_out, mask_out):
        if self._cache is None:
            _, mask = read_pair(self.pairs[tile], self.spec, window, channels_first=True, out=image_out)
            mask_out[...] = mask
            return
        image, mask = self._cached_tile(tile)
        row, col, h, w = window
        image_out[...] = image[:, row : row + h, col : col + w]
        mask_out[...] = mask[row : row + h, col : col + w]

    def _cached_tile(self, tile):
        """The whole decoded tile, from the memory dict or the cache folder (memory-mapped)."""
        if isinstance(self._cache, dict):
            if tile not in self._cache:
                self._cache[tile] = read_pair(self.pairs[tile], self.spec, channels_first=True)
            return self._cache[tile]
        pair = self.pairs[tile]
        if tile not in self._cache_keys:  # files are looked at once per reader
            stamp = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in (pair.image, pair.label)]
            self._cache_keys[tile] = hashlib.sha1(repr((stamp, self.spec.to_dict())).encode()).hexdigest()[:20]
        key = self._cache_keys[tile]
        paths = [self._cache / f"{pair.image.stem}-{key}.{part}.npy" for part in ("image", "mask")]
        if not all(path.exists() for path in paths):
            for path, array in zip(paths, read_pair(pair, self.spec, channels_first=True)):
                partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
                with open(partial, "wb") as file:
                    np.save(file, array, allow_pickle=False)
                os.replace(partial, path)
        return [np.load(path, mmap_mode="r", allow_pickle=False) for path in paths]

    def _executor(self):
        with self._lock:
            if self._pool is None:
                self._pool = read_thread_pool(self.threads, pixels_only=True, name="gdcld-read")
            return self._pool
