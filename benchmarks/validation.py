"""Cost of validating every training pair before the first step, against reading headers only.

`train` runs `gdcld_zoo.data.checks.check_pairs` with `read_pixels=True` on
every pair (as `make_dataset(validate="full")` does) before the first step.
This script writes synthetic GDCLD-sized tiles (1024x1024 RGB + label), then
times full and header-only validation twice each, with the tiles in the page
cache, and scales the time per pair to GDCLD's 11,162 training tiles.

    python benchmarks/validation.py --tiles 300 --root /tmp/validation_bench
"""

import argparse
import time
from pathlib import Path

from gdcld_zoo.data.checks import check_pairs
from gdcld_zoo.data.layout import index_split
from gdcld_zoo.data.synthetic import write_synthetic_dataset

GDCLD_TRAIN_TILES = 11162


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=300, help="synthetic 1024x1024 tiles to write")
    parser.add_argument("--root", type=Path, required=True, help="folder for the tiles (reused if present)")
    parser.add_argument("--jobs", type=int, default=8, help="validation threads (make_dataset's default: 8)")
    args = parser.parse_args()
    if not (args.root / "train").is_dir():
        write_synthetic_dataset(args.root, n_train=args.tiles, n_val=0, tile_size=1024, seed=0)
    pairs = index_split(args.root, "train").pairs
    check_pairs(pairs, None, True, jobs=args.jobs)  # warm the page cache
    for read_pixels in (False, True, False, True):
        start = time.perf_counter()
        reports = check_pairs(pairs, None, read_pixels, jobs=args.jobs)
        seconds = time.perf_counter() - start
        assert all(r.ok for r in reports)
        per_pair = seconds / len(pairs)
        print(f"{'full' if read_pixels else 'headers'}: {1000 * per_pair:.1f} ms per pair, "
              f"{per_pair * GDCLD_TRAIN_TILES / 60:.1f} min for {GDCLD_TRAIN_TILES} tiles")


if __name__ == "__main__":
    main()
