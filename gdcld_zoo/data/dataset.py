"""`make_dataset`: GDCLD tiles as a tf.data pipeline with parallel rasterio reads.

The order is: tile list -> (balance) -> shuffle -> repeat -> batch of indices
-> read -> normalise (one XLA-fused pass) -> (augment) -> prefetch. Each batch
is read by one `tf.numpy_function` call into `TileBatchReader`, whose thread
pool reads the batch's tiles at once (GDAL decodes with the GIL released, so
reads overlap on all cores) straight into one preallocated array, only the
crop window of each file; tf.data reads the next batches while the current one
is normalised and consumed. The parallelism is set, not autotuned: tf.data's
autotuner is off for the returned dataset, because its optimisation thread made
the teardown of an exhausted iterator (one per Keras epoch) wait 0.26-0.32 s in
2 to 3 epochs of 16 (`benchmarks/pipeline.py` measures epochs both ways).
Stages you add with `tf.data.AUTOTUNE` run one call per core;
`ds.with_options(...)` turns the autotuner back on. Augmenting in tf.data costs
seconds per 8x1024x1024 batch on a CPU; on a GPU pass `augment=False` and call
`SegmentationAugmentation` on the batch in the training step instead.

Training (split "train" unless `training=` says otherwise) randomly crops each
tile to `tile_size` (GDCLD tiles are 1024x1024, paper section 3); evaluation
keeps tiles whole (`eval_crop="whole"`, padded to a multiple of 32 with ignored
pixels), takes their centre (`"center"`) or cuts them into a grid of
`tile_size` windows (`"grid"`, the last row/column aligned with the edge).
Tiles smaller than `tile_size` are padded: images with raw value 0, masks with
255, so padded pixels are ignored by losses and metrics.

Per-tile metadata (`with_metadata=True`) adds a third element, a dict of
(B,) tensors: `image` (path, string), `event`, `sensor` (strings, "" when
unknown), `resolution_m` (float32, NaN when unknown), `row`, `col` (int32 offset
of the window or training crop in the tile). Evaluation uses it to group metrics by event and sensor
(paper Tables 6-8); `gdcld_zoo.data.tile_pairs(root, split)` gives the same
fields per tile without TensorFlow.

Example:
>>> import tempfile
>>> from gdcld_zoo.data.synthetic import write_synthetic_dataset
>>> root = write_synthetic_dataset(tempfile.mkdtemp(), n_train=4, n_val=2, tile_size=64, seed=0)
>>> ds = make_dataset(root, "train", batch_size=2, tile_size=32, augment=False, seed=0)
>>> images, masks = next(iter(ds))
>>> tuple(images.shape), images.dtype.name, tuple(masks.shape), masks.dtype.name
((2, 32, 32, 3), 'float32', (2, 32, 32, 1), 'uint8')
"""

import math
import warnings

import numpy as np
import tensorflow as tf

from gdcld_zoo.data.augmentation import SegmentationAugmentation
from gdcld_zoo.data.batch_reader import TileBatchReader, padded_size
from gdcld_zoo.data.checks import BadTileError, validate_pairs  # noqa: F401 (BadTileError: public here too)
from gdcld_zoo.data.layout import index_split
from gdcld_zoo.data.reading import IGNORE_INDEX, resolve_preprocessing
from gdcld_zoo.errors import InvalidInputError

EVAL_CROPS = ("whole", "center", "grid")


def _grid_offsets(size, tile):
    if size <= tile:
        return [0]
    count = math.ceil(size / tile)
    return sorted({min(i * tile, size - tile) for i in range(count)})


def _windows(report, tile_size, mode):
    """(row, col, height, width) windows of one tile; -1 height/width reads it whole."""
    h, w = report.height, report.width
    if mode == "whole":
        return [(0, 0, -1, -1)]
    if mode == "center":
        th, tw = min(h, tile_size), min(w, tile_size)
        return [((h - th) // 2, (w - tw) // 2, th, tw)]
    rows, cols = _grid_offsets(h, tile_size), _grid_offsets(w, tile_size)
    return [(r, c, min(h, tile_size), min(w, tile_size)) for r in rows for c in cols]


def make_dataset(
    root,
    split,
    batch_size,
    tile_size,
    shuffle=None,
    augment=None,
    preprocessing=None,
    *,
    training=None,
    eval_crop="whole",
    mask_dtype="uint8",
    deterministic=None,
    repeat=False,
    balance=None,
    cache=False,
    on_bad="raise",
    validate="header",
    with_metadata=False,
    normalize=True,
    drop_remainder=False,
    seed=None,
    num_parallel_calls=tf.data.AUTOTUNE,
    jobs=8,
):
    """Build the tf.data pipeline of one split.

    Args:
        root: Dataset root (train/val/test folders), a split folder, or a CSV
            manifest (see `gdcld_zoo.data.layout`).
        split: "train", "val", "test" (or a manifest's split value).
        batch_size: Tiles per batch.
        tile_size: Side of the square training crop; for evaluation, of the
            centre crop or grid windows (unused with `eval_crop="whole"`).
        shuffle: Shuffle tiles each epoch; None means True when training.
        augment: True applies `SegmentationAugmentation(preprocessing, seed=seed)`
            to each batch inside tf.data (CPU); pass a `SegmentationAugmentation`
            to configure it, or False to leave augmentation to the device (call
            the layer in the training step). None means `training`.
        preprocessing: The model's `Preprocessing` (bands, dtype, scale,
            mean/std). None is the default 8-bit RGB with ImageNet statistics;
            the default spec requires exactly 3-band uint8 images, so 16-bit or
            4-band imagery needs an explicit spec (see `gdcld_zoo.data.reading`).
        training: Training mode (random crops); None means `split == "train"`.
        eval_crop: Evaluation cropping: "whole", "center" or "grid".
        mask_dtype: "uint8" or "float32" masks (values 0, 1, 255 either way).
        deterministic: Keep element order deterministic in parallel maps (and
            run augmentation sequentially); None leaves tf.data's default.
        repeat: Repeat forever (one `fit` with `steps_per_epoch`).
        balance: Share of positive tiles (with any landslide pixel) to sample,
            e.g. 0.5; reads every label when the dataset is built. Without
            `repeat`, an epoch is as many tiles as the split has.
        cache: Keep decoded tiles after the first epoch, in memory (True) or
            as memory-mapped `.npy` files in this folder (str); crops stay
            random and the order reshuffles. 1024x1024 RGB is 4 MiB per tile
            with its mask.
        on_bad: "raise" a `BadTileError` naming bad pairs found when the
            dataset is built, or "skip" them with a warning; with "skip",
            tiles that fail to read later (e.g. truncated) are dropped and logged.
        validate: "header" opens every file when the dataset is built (sizes,
            bands, dtype, CRS); "full" also decodes every pixel and label value.
        with_metadata: Yield `(images, masks, metadata)`; see the module doc.
        normalize: False yields raw pixels (the file's dtype) instead, for
            normalising on the device with `normalization_layer(preprocessing)`:
            a quarter of the host work and of the host-to-GPU bytes of float32.
            Needs `augment=False` (augmentation expects normalised images).
        drop_remainder: Drop the last incomplete batch.
        seed: Seed for shuffling, crops, balancing and augmentation.
        num_parallel_calls: Tiles read at once, each by rasterio in its own
            thread; tf.data.AUTOTUNE is one per CPU core. Enough batches are
            read at once to keep that many threads busy.
        jobs: Threads used to validate files when the dataset is built.

    Returns:
        A `tf.data.Dataset` of `(images, masks)`: images float32 (B, T, T, C)
        normalised with `preprocessing`, masks (B, T, T, 1) of `mask_dtype`.

    Raises:
        BadTileError: bad pairs with `on_bad="raise"`; DatasetLayoutError: no
        such split; InvalidInputError: bad arguments.
    """
    spec, _ = resolve_preprocessing(preprocessing)
    training = split == "train" if training is None else bool(training)
    shuffle = training if shuffle is None else bool(shuffle)
    augment = training if augment is None else augment
    if on_bad not in ("raise", "skip"):
        raise InvalidInputError(f"on_bad must be 'raise' or 'skip', got {on_bad!r}.")
    if validate not in ("header", "full"):
        raise InvalidInputError(f"validate must be 'header' or 'full', got {validate!r}.")
    if eval_crop not in EVAL_CROPS:
        raise InvalidInputError(f"eval_crop must be one of {EVAL_CROPS}, got {eval_crop!r}.")
    if mask_dtype not in ("uint8", "float32"):
        raise InvalidInputError(f"mask_dtype must be 'uint8' or 'float32', got {mask_dtype!r}.")
    if balance is not None and not 0 < balance < 1:
        raise InvalidInputError(f"balance is the share of positive tiles, in (0, 1); got {balance}.")
    if not (isinstance(augment, bool) or isinstance(augment, SegmentationAugmentation)):
        raise InvalidInputError(
            f"augment must be True, False or a SegmentationAugmentation, got {type(augment).__name__}."
        )
    if not normalize and augment is not False:
        raise InvalidInputError(
            "normalize=False yields raw pixels, which augmentation cannot take; pass augment=False "
            "and augment on the device after normalization_layer(preprocessing)."
        )
    if int(batch_size) < 1 or int(tile_size) < 1:
        raise InvalidInputError(f"batch_size and tile_size must be positive, got {batch_size}, {tile_size}.")
    tile_size = int(tile_size)

    index = index_split(root, split)
    if index.orphan_labels:
        warnings.warn(
            f"{len(index.orphan_labels)} label file(s) have no image, e.g. {index.orphan_labels[0]}.",
            stacklevel=2,
        )
    read_pixels = validate == "full" or balance is not None
    reports = validate_pairs(index.pairs, preprocessing, read_pixels, on_bad, jobs,
                             hint=" or skip them with on_bad='skip' (`gdcld-zoo train --skip-bad`)")

    # One element per (tile, window).
    elements = []
    for tile_index, report in enumerate(reports):
        windows = [(0, 0, -1, -1)] if training else _windows(report, tile_size, eval_crop)
        elements += [(tile_index, *window) for window in windows]
    elements = np.asarray(elements, "int64")

    def order(indices):
        ds = tf.data.Dataset.from_tensor_slices(indices)
        if shuffle:
            ds = ds.shuffle(len(indices), seed=seed, reshuffle_each_iteration=True)
        return ds

    if balance is not None and training:
        positive = np.asarray([r.positive for r in reports])
        element_positive = positive[elements[:, 0]]
        if element_positive.all() or not element_positive.any():
            raise InvalidInputError(
                f"balance={balance} needs both positive and negative tiles, but all "
                f"{len(elements)} are {'positive' if element_positive.all() else 'negative'}."
            )
        parts = [order(elements[element_positive]).repeat(), order(elements[~element_positive]).repeat()]
        ds = tf.data.Dataset.sample_from_datasets(parts, weights=[balance, 1 - balance], seed=seed)
        ds = ds if repeat else ds.take(len(elements))
    else:
        ds = order(elements)
        ds = ds.repeat() if repeat else ds

    sizes = {(r.height, r.width) for r in reports}
    if training or eval_crop != "whole":
        out_size = (tile_size, tile_size)
    elif len(sizes) == 1:
        out_size = padded_size(*next(iter(sizes)))
    else:
        out_size = None  # each batch padded to its largest tile
    skip = on_bad == "skip"
    reader = TileBatchReader(
        [r.pair for r in reports],
        [(r.height, r.width) for r in reports],
        preprocessing,
        tile_size=tile_size,
        training=training,
        out_size=out_size,
        skip_bad=skip,
        cache=cache,
        threads=None if num_parallel_calls == tf.data.AUTOTUNE else num_parallel_calls,
    )
    metadata = _metadata_table(reader.pairs) if with_metadata else None
    # Batches read at once: one more than fills the thread pool, so the next
    # batch's tiles are queued while a batch's last tiles are read.
    in_flight = max(2, math.ceil(reader.threads / int(batch_size)) + 1)

    def read_batch(elements, randoms):
        images, masks, kept, offsets = tf.numpy_function(
            reader, [elements, randoms], [tf.as_dtype(spec.dtype), tf.uint8, tf.int64, tf.int32], stateful=False
        )
        height, width = out_size or (None, None)
        batch = batch_size if drop_remainder and not skip else None
        images.set_shape((batch, spec.num_bands, height, width))
        masks.set_shape((batch, height, width, 1))
        if metadata is None:
            return images, masks
        tiles = tf.gather(elements[:, 0], kept)
        meta = {key: tf.gather(values, tiles) for key, values in metadata.items()}
        offsets.set_shape((None, 2))
        meta["row"], meta["col"] = offsets[:, 0], offsets[:, 1]
        return images, masks, meta

    # Shuffled elements and their crop randomness are batched as indices; each
    # batch is then read by one call that fills one array (see TileBatchReader).
    randomness = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip((ds, randomness)).batch(batch_size, drop_remainder=drop_remainder and not skip)
    ds = ds.map(read_batch, num_parallel_calls=in_flight, deterministic=deterministic)
    if skip:
        # Unreadable tiles leave short batches: refill them to batch_size.
        ds = ds.unbatch()
        if out_size is not None:
            ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        else:
            padding = (tf.constant(0, spec.dtype), tf.constant(IGNORE_INDEX, tf.uint8))
            padding += ({key: None for key in (*metadata, "row", "col")},) if with_metadata else ()
            ds = ds.padded_batch(batch_size, padding_values=padding, drop_remainder=drop_remainder)
    scale_images = batch_to_model_input(spec, normalize)

    def normalise(images, masks, *meta):
        return (scale_images(images), tf.cast(masks, mask_dtype), *meta)

    ds = ds.map(normalise, num_parallel_calls=in_flight, deterministic=deterministic)

    if augment is not False:
        layer = augment if isinstance(augment, SegmentationAugmentation) else SegmentationAugmentation(spec, seed=seed)

        def apply(images, masks, *meta):
            out = layer({"images": images, "segmentation_masks": masks}, training=True)
            return (out["images"], tf.cast(out["segmentation_masks"], mask_dtype), *meta)

        ds = ds.map(apply, num_parallel_calls=None if deterministic else tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.autotune.enabled = False  # see the module docstring
    return ds.prefetch(2).with_options(options)


def batch_to_model_input(preprocessing=None, normalize=True):
    """The function that turns a raw (B, C, H, W) batch into (B, H, W, C) model input.

    With `normalize`, float32 `(raw / scale - mean) / std` per band; without,
    the raw pixels transposed. XLA fuses cast, transpose, scale and shift into
    one pass over the batch (`benchmarks/pipeline.py` measures it per tile);
    TensorFlow's own uint8 transpose alone costs about five times as much, and
    XLA too when it transposes before it casts.
    """
    spec, _ = resolve_preprocessing(preprocessing)
    gain = tf.constant([1.0 / (s * d) for s, d in zip(spec.scale, spec.std)], tf.float32)
    offset = tf.constant([-m / d for m, d in zip(spec.mean, spec.std)], tf.float32)

    @tf.function(jit_compile=True)
    def to_model_input(images):
        if not normalize:
            return tf.transpose(images, (0, 2, 3, 1))
        return tf.transpose(tf.cast(images, tf.float32), (0, 2, 3, 1)) * gain + offset

    return to_model_input


def _metadata_table(pairs):
    """Per-tile metadata as constant tensors, gathered by tile index."""
    return {
        "image": tf.constant([str(p.image) for p in pairs]),
        "event": tf.constant([p.event or "" for p in pairs]),
        "sensor": tf.constant([p.sensor or "" for p in pairs]),
        "resolution_m": tf.constant(
            [np.nan if p.resolution_m is None else p.resolution_m for p in pairs], tf.float32
        ),
    }


def normalization_layer(preprocessing=None):
    """A Keras layer that normalises raw pixels as `Preprocessing` does, on the device.

    Pairs with `make_dataset(..., normalize=False)`: `(raw / scale - mean) / std`
    is `(raw - mean * scale) / (std * scale)`, which is exactly
    `keras.layers.Normalization` with those statistics, a standard layer that
    saves with the model.

    Example:
    >>> import numpy as np
    >>> from gdcld_zoo.preprocessing import Preprocessing
    >>> layer = normalization_layer()
    >>> np.allclose(layer(np.full((1, 2, 2, 3), 255.0)), Preprocessing().apply(np.full((1, 2, 2, 3), 255)))
    True
    """
    import keras

    spec, _ = resolve_preprocessing(preprocessing)
    mean = [m * s for m, s in zip(spec.mean, spec.scale)]
    variance = [(d * s) ** 2 for d, s in zip(spec.std, spec.scale)]
    return keras.layers.Normalization(mean=mean, variance=variance, dtype="float32")
