"""Throughput of the GeoTIFF input pipeline against a plain rasterio loop.

Writes synthetic GDCLD-sized tiles (1024x1024 RGB + label, as the release has),
then measures, on the same files:

1. a single-threaded loop that opens each image and label with rasterio and
   reads every pixel (the simplest correct reader), the same loop that also
   normalises to float32 in numpy (the same work as the pipeline), and the
   plain loop split over one thread per core: what parallel reads alone reach
   on this machine, the ceiling for any pipeline that also normalises;
2. `make_dataset` without augmentation (parallel reads, normalisation,
   batching), in tiles per second: one epoch at a time; the same with tf.data's
   autotuner turned back on (`make_dataset` turns it off, as its optimisation
   thread sometimes holds up an exhausted iterator's teardown for ~0.3 s, a
   large share of a 128-tile epoch); streamed (`repeat=True`, as a training
   epoch of 11,162 tiles sees it: the pipeline fills and drains once per
   epoch); and with `normalize=False` (raw pixels out, normalised on the device);
3. the cost of `SegmentationAugmentation` on one batch on the CPU, and
   `make_dataset` with augmentation in tf.data.

Each figure is measured `--repeats` times (per-epoch figures over `--epochs`
epochs) after a warm-up pass (so the files are
in the page cache for every reader) and the range is printed, with the CPU time
per tile summed over all threads: on a shared machine the wall-clock ratio
depends on the load, while the CPU cost gives the ceiling on idle cores. GPU figures
(augmentation on the device) are printed only when TensorFlow sees a GPU.

`--extra-files N` puts N empty files beside the tiles, as many as a GDCLD split
folder holds (11,162 training tiles), where GDAL's folder listing on every open
costs the plain loop more than the pipeline (see `gdcld_zoo.data.reading.open_raster`).

Usage:
    python benchmarks/pipeline.py --tiles 32 --repeats 3
    python benchmarks/pipeline.py --compress none
    python benchmarks/pipeline.py --extra-files 11000
"""

import argparse
import concurrent.futures
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import rasterio  # noqa: E402
import tensorflow as tf  # noqa: E402

from gdcld_zoo.data import SegmentationAugmentation, make_dataset, tile_pairs, write_synthetic_dataset  # noqa: E402
from gdcld_zoo.data.dataset import batch_to_model_input  # noqa: E402
from gdcld_zoo.preprocessing import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402


def rasterio_loop(pairs, normalise=False):
    """Read every image and label once, one file after another.

    With `normalise`, also do what the pipeline does per tile in numpy
    (float32 ImageNet normalisation), for a same-work comparison.
    """
    scale = 1.0 / (255.0 * np.array(IMAGENET_STD, "float32"))
    shift = -np.array(IMAGENET_MEAN, "float32") / np.array(IMAGENET_STD, "float32")
    for pair in pairs:
        with rasterio.open(pair.image) as src:
            image = src.read()
        with rasterio.open(pair.label) as src:
            label = src.read(1)
        if normalise:
            image = np.moveaxis(image, 0, -1).astype("float32") * scale + shift
        assert image.shape[:2] == label.shape or image.shape[1:] == label.shape


def threaded_loop(pairs, threads):
    """The plain loop with the files split over `threads` threads (GDAL releases the GIL)."""
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(rasterio_loop, [pairs[i::threads] for i in range(threads)]))


def dataset_epoch(ds):
    for _ in ds:
        pass


def stream(iterator, batches):
    """Take `batches` batches from a running (repeated) dataset's iterator."""
    for _ in range(batches):
        next(iterator)


def timed(run, tiles, repeats):
    """(tiles/s wall clock, CPU ms per tile over all threads) for each repeat."""
    rates, cpu = [], []
    for _ in range(repeats):
        wall, used = time.perf_counter(), time.process_time()
        run()
        rates.append(tiles / (time.perf_counter() - wall))
        cpu.append(1e3 * (time.process_time() - used) / tiles)
    return rates, cpu


def span(values, unit, digits=1):
    return f"{min(values):.{digits}f}-{max(values):.{digits}f} {unit} (median {statistics.median(values):.{digits}f})"


def normalisation_cpu_ms(batch, tile, repeats):
    """CPU ms per tile of `make_dataset`'s batch normalisation (uint8 CHW -> float32 NHWC)."""
    to_input = batch_to_model_input()
    raw = tf.constant(np.random.default_rng(0).integers(0, 256, (batch, 3, tile, tile), dtype=np.uint8))
    to_input(raw)  # compile
    used = time.process_time()
    for _ in range(repeats):
        to_input(raw)  # stays a tensor, as the pipeline hands it on
    return 1e3 * (time.process_time() - used) / (repeats * batch)


def augmentation_seconds(batch, tile, repeats, device):
    layer = SegmentationAugmentation(seed=0)
    with tf.device(device):
        data = {
            "images": tf.random.normal((batch, tile, tile, 3)),
            "segmentation_masks": tf.cast(tf.random.uniform((batch, tile, tile, 1)) < 0.1, tf.uint8),
        }
        step = tf.function(lambda d: layer(d, training=True))
        step(dict(data))["images"].numpy()  # trace and warm up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step(dict(data))["images"].numpy()
            times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=32, help="synthetic tiles to write (default 32)")
    parser.add_argument("--tile-size", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8, help="epochs timed for the per-epoch figures (default 8)")
    parser.add_argument("--compress", default="deflate", help="GeoTIFF compression: deflate, lzw or none")
    parser.add_argument("--workdir", help="reuse/keep the synthetic tiles here")
    parser.add_argument("--extra-files", type=int, default=0, help="empty files to add to each tile folder")
    args = parser.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gdcld_bench_"))
    root = workdir / f"tiles_{args.tiles}x{args.tile_size}_{args.compress}"
    if not (root / "train").is_dir():
        compress = None if args.compress == "none" else args.compress
        write_synthetic_dataset(root, n_train=args.tiles, n_val=0, tile_size=args.tile_size, seed=0, compress=compress)
    for folder in (root / "train" / "images", root / "train" / "labels"):
        for i in range(args.extra_files):
            (folder / f"other_{i:05d}.txt").touch()
    pairs = tile_pairs(root, "train")
    print(f"{len(pairs)} tiles of {args.tile_size}x{args.tile_size} RGB uint8 ({args.compress}), "
          f"{os.cpu_count()} CPU cores, batch {args.batch}, "
          f"{len(list(pairs[0].image.parent.iterdir()))} files in the image folder")

    n = len(pairs)
    rasterio_loop(pairs)  # warm the page cache
    loop, loop_cpu = timed(lambda: rasterio_loop(pairs), n, args.repeats)
    same, same_cpu = timed(lambda: rasterio_loop(pairs, normalise=True), n, args.repeats)
    cores = os.cpu_count()
    ceiling, ceiling_cpu = timed(lambda: threaded_loop(pairs, cores), n, args.repeats)
    ds = make_dataset(root, "train", args.batch, args.tile_size, shuffle=True, augment=False, seed=0)
    dataset_epoch(ds)  # trace the graph and warm up
    piped, piped_cpu = timed(lambda: dataset_epoch(ds), n, args.epochs)
    autotuned_options = tf.data.Options()
    autotuned_options.autotune.enabled = True
    autotuned = ds.with_options(autotuned_options)
    dataset_epoch(autotuned)
    tuned, tuned_cpu = timed(lambda: dataset_epoch(autotuned), n, args.epochs)
    streamed = iter(make_dataset(root, "train", args.batch, args.tile_size, augment=False, repeat=True, seed=0))
    batches = max(n // args.batch, 1)
    stream(streamed, batches)
    streaming, streaming_cpu = timed(lambda: stream(streamed, batches), batches * args.batch, args.repeats)
    raw = make_dataset(root, "train", args.batch, args.tile_size, augment=False, normalize=False, seed=0)
    dataset_epoch(raw)
    raw_rates, raw_cpu = timed(lambda: dataset_epoch(raw), n, args.epochs)
    median = statistics.median
    print(f"single-thread rasterio loop:        {span(loop, 'tiles/s')}, CPU {span(loop_cpu, 'ms/tile')}")
    print(f"  same loop + numpy normalisation:  {span(same, 'tiles/s')}, CPU {span(same_cpu, 'ms/tile')}")
    print(f"  plain loop in {cores} threads:          {span(ceiling, 'tiles/s')}, CPU {span(ceiling_cpu, 'ms/tile')}, "
          f"{span([c / median(loop) for c in ceiling], 'x', 2)} the plain loop (parallel reads alone)")
    print(f"make_dataset (no augment):          {span(piped, 'tiles/s')}, CPU {span(piped_cpu, 'ms/tile')}")
    print(f"  speed-up vs plain loop:           {span([p / median(loop) for p in piped], 'x', 2)}")
    print(f"  speed-up vs loop + normalisation: {span([p / median(same) for p in piped], 'x', 2)}")
    print(f"  share of the threaded plain loop: {median(piped) / median(ceiling):.0%}")
    print(f"  with tf.data's autotuner on:      {span(tuned, 'tiles/s')}, CPU {span(tuned_cpu, 'ms/tile')}, "
          f"{span([p / median(loop) for p in tuned], 'x', 2)} the plain loop")
    print(f"make_dataset streamed (repeat=True): {span(streaming, 'tiles/s')}, CPU {span(streaming_cpu, 'ms/tile')}, "
          f"{span([p / median(loop) for p in streaming], 'x', 2)} the plain loop, "
          f"{median(streaming) / median(ceiling):.0%} of the threaded loop")
    print(f"make_dataset(normalize=False):      {span(raw_rates, 'tiles/s')}, CPU {span(raw_cpu, 'ms/tile')}")
    print(f"  (raw uint8 out, normalised on the device) vs plain loop: "
          f"{span([p / median(loop) for p in raw_rates], 'x', 2)}")
    print(f"  ceiling on {cores} idle cores from CPU cost: {cores * median(loop_cpu) / median(piped_cpu):.2f}x the "
          f"plain loop ({cores * median(loop_cpu) / median(raw_cpu):.2f}x with normalize=False), "
          f"{cores * median(same_cpu) / median(piped_cpu):.2f}x the same-work loop")
    print(f"  of which normalisation (XLA, one batch): {normalisation_cpu_ms(args.batch, args.tile_size, 10):.2f} ms/tile CPU")
    if hasattr(os, "getloadavg"):
        print(f"  load average during the run: {os.getloadavg()[0]:.1f} on {cores} cores")

    aug = augmentation_seconds(args.batch, args.tile_size, args.repeats, "/CPU:0")
    print(f"augmentation, CPU, {args.batch}x{args.tile_size}x{args.tile_size}: {span([1e3 * t for t in aug], 'ms/batch', 0)}")
    ds_aug = make_dataset(root, "train", args.batch, args.tile_size, augment=True, seed=0)
    dataset_epoch(ds_aug)
    with_aug, _ = timed(lambda: dataset_epoch(ds_aug), n, args.repeats)
    print(f"make_dataset + tf.data augmentation (CPU): {span(with_aug, 'tiles/s')}")

    if tf.config.list_logical_devices("GPU"):
        gpu = augmentation_seconds(args.batch, args.tile_size, args.repeats, "/GPU:0")
        print(f"augmentation, GPU, {args.batch}x{args.tile_size}x{args.tile_size}: {span([1e3 * t for t in gpu], 'ms/batch', 1)}")
    else:
        print("GPU figures not measured: TensorFlow sees no GPU on this machine.")


if __name__ == "__main__":
    main()
