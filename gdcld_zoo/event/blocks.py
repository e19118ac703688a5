"""Window blocks: the unit of work of an event run, below the scene level.

A scene's tile grid (`gdcld_zoo.scene.tiling.TileGrid`, the same windows and
blending as `SlidingWindowPredictor`) is cut into blocks of up to
`block_tiles × block_tiles` tiles. `predict_block` reads a block's tiles
(windowed rasterio reads, local or `/vsicurl/`), predicts them in batches and
writes the block's blended sums (weighted probability, weight, validity) as
`.npy` files; `assemble_strips` adds the blocks' sums row band by row band,
always in block order, and yields the scene's `Strip`s for the writer while
later blocks are still being predicted. The
same blocks and the same order are used in-process and on a Dask cluster, so
both give identical maps. Memory per block is its tiles' extent
(`block_tiles × tile` pixels square, 9 bytes per pixel); the driver holds one
strip of the scene.

With an AOI (polygon in the scene CRS), tiles that miss it are not planned,
and `aoi_clip` turns pixels outside it into nodata.

Example:
>>> from gdcld_zoo.scene.tiling import TileGrid
>>> grid = TileGrid.for_scene(1000, 1000, 256, 32)
>>> [len(b.tiles) for b in plan_blocks("scene", "scene.tif", grid, (1, 2, 3), block_tiles=4)]
[16, 4, 4, 1]
"""

import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import rasterio
import shapely
from rasterio.features import geometry_mask
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from gdcld_zoo.event.geometry import pixel_polygon
from gdcld_zoo.event.sources import REMOTE_ENV
from gdcld_zoo.scene.predictor import GDAL_CACHE_MB, Strip, read_tile
from gdcld_zoo.scene.source import all_valid, open_scene
from gdcld_zoo.scene.tiling import add_tile, blend_weights

SUMS = ("prob", "weight", "valid")
# Rows of the scene assembled and handed to the writer at a time.
STRIP_ROWS = 512


@dataclasses.dataclass(frozen=True)
class Block:
    """Tiles of one scene predicted together.

    Attributes:
        scene_id, uri: The scene (output stem, what rasterio opens).
        index: Position of the block in the scene's row-major block order.
        grid: The scene's `TileGrid`; bands: 1-based bands fed to the model.
        tiles: Scene offsets (row, col) of the block's tiles, row-major.
        origin, shape: Scene (row, col) and (rows, cols) of the pixels the tiles cover.
    """

    scene_id: str
    uri: str
    index: int
    grid: object
    bands: tuple
    tiles: tuple
    origin: tuple
    shape: tuple

    def files(self, folder):
        """Paths of the block's sum arrays in `folder`."""
        return {kind: Path(folder) / f"{self.scene_id}.{self.index}.{kind}.npy" for kind in SUMS}


def _span(starts, tile, length):
    return max(min(starts), 0), min(max(starts) + tile, length)


def plan_blocks(scene_id, uri, grid, bands, block_tiles=4, keep=None):
    """The blocks of a scene, row-major; `keep(row, col)` drops tiles it returns False for (AOI)."""
    blocks = []
    for i in range(0, len(grid.row_starts), block_tiles):
        for j in range(0, len(grid.col_starts), block_tiles):
            tiles = tuple((r, c) for r in grid.row_starts[i:i + block_tiles] for c in grid.col_starts[j:j + block_tiles]
                          if keep is None or keep(r, c))
            if not tiles:
                continue
            r0, r1 = _span([r for r, _ in tiles], grid.tile, grid.height)
            c0, c1 = _span([c for _, c in tiles], grid.tile, grid.width)
            blocks.append(Block(scene_id, uri, len(blocks), grid, tuple(bands), tiles, (r0, c0), (r1 - r0, c1 - c0)))
    return blocks


def predict_block(block, engine, batch_size, folder):
    """Predict a block's tiles and write its sums to `folder`; returns counts and timings.

    Tiles without a valid pixel are not predicted. Nothing is written when no
    tile of the block was predicted (`"written": False`).
    """
    grid = block.grid
    sums = (np.zeros(block.shape, "float32"), np.zeros(block.shape, "float32"), np.zeros(block.shape, bool))
    window = blend_weights(grid.tile, grid.overlap)
    stats = {"index": block.index, "tiles_predicted": 0, "tiles_skipped": 0, "read_s": 0.0, "model_s": 0.0}
    pending = []

    def flush():
        start = time.perf_counter()
        probs = np.asarray(engine.predict(np.stack([raw for _, _, raw, _ in pending])), "float32")
        stats["model_s"] += time.perf_counter() - start
        for (r, c, _, valid), prob in zip(pending, probs):
            add_tile(grid, window, sums, block.origin, r, c, prob, valid)
        stats["tiles_predicted"] += len(pending)
        pending.clear()

    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB, **REMOTE_ENV), open_scene(block.uri) as dataset:
        check_mask = not all_valid(dataset)
        for r, c in block.tiles:
            start = time.perf_counter()
            raw, valid = read_tile(dataset, grid, block.bands, r, c, check_mask)
            stats["read_s"] += time.perf_counter() - start
            if not valid.any():
                stats["tiles_skipped"] += 1
                continue
            pending.append((r, c, raw, valid))
            if len(pending) == batch_size:
                flush()
        if pending:
            flush()
    stats["written"] = stats["tiles_predicted"] > 0
    if stats["written"]:
        for kind, array in zip(SUMS, sums):
            _save_atomic(block.files(folder)[kind], array)
    return stats


def _save_atomic(path, array):
    temp = path.with_name(f".{path.name}.part")
    with open(temp, "wb") as f:
        np.save(f, array)
    os.replace(temp, path)


def assemble_strips(blocks, waits, folder, clip=None, on_result=None, strip_rows=STRIP_ROWS):
    """Yield a scene's `Strip`s, top to bottom, from its blocks' sums as they become available.

    Args:
        blocks: The scene's blocks (`plan_blocks`).
        waits: `waits[i]()` returns block i's `predict_block` result (waiting for it if needed).
        folder: Where `predict_block` wrote the sums; a block's files are removed as soon as
            no later strip needs them, so the disk holds about two rows of blocks.
        clip: `clip(row_offset, rows)` -> bool (rows, width), True inside the AOI; None: no clipping.
        on_result: Called with each block's result, in block order.
        strip_rows: Rows per strip.
    """
    grid = blocks[0].grid
    arrays, seen = {}, set()
    for top in range(0, grid.height, strip_rows):
        bottom = min(top + strip_rows, grid.height)
        prob_sum = np.zeros((bottom - top, grid.width), "float32")
        weight_sum = np.zeros_like(prob_sum)
        valid_any = np.zeros(prob_sum.shape, bool)
        for block in blocks:
            (r0, c0), (h, w) = block.origin, block.shape
            a, b = max(top, r0), min(bottom, r0 + h)
            if a >= b:
                continue
            if block.index not in seen:
                seen.add(block.index)
                result = waits[block.index]()
                if on_result is not None:
                    on_result(result)
                if result["written"]:
                    arrays[block.index] = {k: np.load(p, mmap_mode="r") for k, p in block.files(folder).items()}
            if block.index not in arrays:
                continue
            rows, cols = slice(a - top, b - top), slice(c0, c0 + w)
            part = arrays[block.index]
            prob_sum[rows, cols] += part["prob"][a - r0:b - r0]
            weight_sum[rows, cols] += part["weight"][a - r0:b - r0]
            valid_any[rows, cols] |= part["valid"][a - r0:b - r0]
        covered = weight_sum > 0
        prob = np.divide(prob_sum, weight_sum, out=np.zeros_like(prob_sum), where=covered)
        valid = valid_any & covered
        if clip is not None:
            valid &= clip(top, bottom - top)
        yield Strip(top, prob, valid)
        for block in blocks:
            if block.index in arrays and block.origin[0] + block.shape[0] <= bottom:
                del arrays[block.index]
                for path in block.files(folder).values():
                    path.unlink(missing_ok=True)


def aoi_clip(aoi_geometry, transform, width):
    """`clip(row_offset, rows)` for `assemble_strips`: True for pixels whose centre is inside the AOI."""
    def clip(row_offset, rows):
        window = window_transform(Window(0, row_offset, width, rows), transform)
        return geometry_mask([aoi_geometry], (rows, width), window, invert=True)

    return clip


def tile_filter(aoi_geometry, grid, transform):
    """`keep(row, col)` for `plan_blocks`: whether the tile's part of the scene touches the AOI."""
    shapely.prepare(aoi_geometry)

    def keep(row, col):
        r0, r1 = max(row, 0), min(row + grid.tile, grid.height)
        c0, c1 = max(col, 0), min(col + grid.tile, grid.width)
        return bool(aoi_geometry.intersects(pixel_polygon(transform, r0, c0, r1 - r0, c1 - c0)))

    return keep
