"""The window grid over a scene, reflection indexing and smooth blending weights.

Whole-scene inference cuts a scene into square tiles that overlap by `overlap`
pixels, predicts each tile and blends the overlapping predictions with a
weight window that is 1 in the tile interior and falls off smoothly (a
sin² ramp, as in the overlap-tile strategy of U-Net, Ronneberger et al. 2015,
with the smooth blending of Huang et al.'s "tiling artifacts" analysis, 2018)
over the overlap. Ramps of neighbouring tiles add up to exactly one, so the
blend has no seams; a small floor keeps every pixel weighted.

The grid runs over the scene padded by `margin` pixels of reflection on every
side, so pixels at the scene border are not at a tile border and see mirrored
context as GDCLD tiles do (the model never sees zero padding inside a tile).
The last tile of a row or column is flush with the padded edge; a scene
smaller than a tile gets one tile, centred and reflection padded.

Example:
>>> tile_starts(1000, tile=512, overlap=64, margin=32)
[-32, 416, 520]
>>> round(float(blend_weights(8, 2)[0, 0]), 4), float(blend_weights(8, 2)[4, 4])
(0.0214, 1.0)
"""

import dataclasses
import math

import numpy as np

from gdcld_zoo.errors import InvalidInputError

# Smallest blending weight, so a pixel covered only by tile borders still counts.
WEIGHT_FLOOR = 1e-3


def tile_starts(length, tile, overlap, margin=0):
    """Start offsets (may be negative) of the tiles along one axis.

    Args:
        length: Scene size along the axis, in pixels.
        tile: Tile size.
        overlap: Pixels shared by neighbouring tiles (< tile).
        margin: Reflection padding on both sides of the scene.

    Returns:
        Sorted list of start offsets in scene pixel coordinates; consecutive
        starts differ by at most `tile - overlap` and the tiles cover
        `[-margin, length + margin)` (or the whole scene, centred, when it is
        smaller than one tile).
    """
    lo, hi = -margin, length + margin
    if hi - lo <= tile:
        return [-((tile - length) // 2)]
    stride = tile - overlap
    return list(range(lo, hi - tile, stride)) + [hi - tile]


def reflect_index(index, length):
    """Map pixel indexes outside `[0, length)` into it by mirror reflection.

    Same rule as `numpy.pad(mode="reflect")` (the edge pixel is not repeated),
    applied as often as needed for indexes far outside the scene.

    >>> reflect_index(np.arange(-3, 6), 4).tolist()
    [3, 2, 1, 0, 1, 2, 3, 2, 1]
    """
    index = np.asarray(index)
    if length == 1:
        return np.zeros_like(index)
    period = 2 * (length - 1)
    folded = np.mod(index, period)
    return np.where(folded < length, folded, period - folded)


def ramp(tile, overlap):
    """1-D weights: sin² ramps over `overlap` pixels at both ends, 1 between.

    The ramp of one tile and the reversed ramp of its neighbour, `tile -
    overlap` pixels further, sum to one pixel by pixel.
    """
    weights = np.ones(tile, "float64")
    if overlap > 0:
        up = np.sin(0.5 * np.pi * (np.arange(overlap) + 0.5) / overlap) ** 2
        weights[:overlap] = up
        weights[tile - overlap:] = np.minimum(weights[tile - overlap:], up[::-1])
    return np.maximum(weights, WEIGHT_FLOOR).astype("float32")


def blend_weights(tile, overlap):
    """(tile, tile) float32 blending window: the outer product of two ramps."""
    r = ramp(tile, overlap)
    return np.outer(r, r)


@dataclasses.dataclass(frozen=True)
class TileGrid:
    """Every tile of a scene, in row-major order, grouped in tile rows.

    Attributes:
        height, width: Scene size in pixels.
        tile: Tile size (square tiles).
        overlap: Overlap of neighbouring tiles.
        margin: Reflection padding around the scene.
        row_starts, col_starts: Tile offsets along rows and columns.
    """

    height: int
    width: int
    tile: int
    overlap: int
    margin: int
    row_starts: tuple
    col_starts: tuple

    @classmethod
    def for_scene(cls, height, width, tile, overlap, margin=None, multiple=32):
        """The grid for a scene; tiles shrink (to a multiple of `multiple`) for small scenes.

        Args:
            height, width: Scene size.
            tile: Largest tile size; a multiple of `multiple`.
            overlap: Overlap in pixels, `0 <= overlap < tile`.
            margin: Reflection margin; default `overlap // 2`.
            multiple: Tile sizes the model accepts are multiples of this
                (None: keep `tile` whatever the scene size).
        """
        if height < 1 or width < 1:
            raise InvalidInputError(f"The scene is empty ({height}x{width} pixels).")
        if multiple and (tile < multiple or tile % multiple):
            raise InvalidInputError(f"tile_size must be a positive multiple of {multiple}, got {tile}.")
        if not 0 <= overlap < tile:
            raise InvalidInputError(f"overlap must be in [0, tile_size={tile}), got {overlap}.")
        margin = overlap // 2 if margin is None else margin
        if multiple:
            needed = math.ceil((max(height, width) + 2 * margin) / multiple) * multiple
            tile = min(tile, needed)
            overlap = min(overlap, tile // 2)
        return cls(
            height, width, tile, overlap, margin,
            tuple(tile_starts(height, tile, overlap, margin)),
            tuple(tile_starts(width, tile, overlap, margin)),
        )

    @property
    def num_tiles(self):
        return len(self.row_starts) * len(self.col_starts)

    def tiles(self):
        """(tile_row_index, row_start, col_start) of every tile, row-major."""
        for i, r in enumerate(self.row_starts):
            for c in self.col_starts:
                yield i, r, c

    def final_rows(self, tile_row):
        """Scene rows `[start, stop)` that no later tile row touches once `tile_row` is done."""
        start = 0 if tile_row == 0 else min(max(self.row_starts[tile_row], 0), self.height)
        if tile_row + 1 < len(self.row_starts):
            stop = min(max(self.row_starts[tile_row + 1], 0), self.height)
        else:
            stop = self.height
        return start, stop


def add_tile(grid, window, sums, origin, row, col, prob, valid):
    """Add a tile's blended probabilities to running sums.

    Args:
        grid: The scene's `TileGrid`.
        window: `blend_weights(grid.tile, grid.overlap)`.
        sums: (prob, weight, valid) arrays covering the tile's part of the scene:
            weighted probability sum, weight sum (float32) and validity (bool).
        origin: Scene (row, col) of `sums[...][0, 0]`.
        row, col: Scene offset of the tile (may be negative: reflection margin).
        prob, valid: The tile's (tile, tile) probabilities and validity.
    """
    r0, r1 = max(row, 0), min(row + grid.tile, grid.height)
    c0, c1 = max(col, 0), min(col + grid.tile, grid.width)
    ty, tx = slice(r0 - row, r1 - row), slice(c0 - col, c1 - col)
    part = (slice(r0 - origin[0], r1 - origin[0]), slice(c0 - origin[1], c1 - origin[1]))
    weight = window[ty, tx]
    prob_sum, weight_sum, valid_any = sums
    prob_sum[part] += weight * prob[ty, tx]
    weight_sum[part] += weight
    valid_any[part] |= valid[ty, tx]


class StripAccumulator:
    """Weighted sums of tile probabilities over a band of `tile` scene rows.

    Tiles arrive in row-major order. After the last tile of a tile row,
    `finish_row` returns the rows no later tile can change (blended
    probabilities and validity) and slides the band down, so memory is
    `tile × scene width`, whatever the scene height.
    """

    def __init__(self, grid):
        self.grid = grid
        self.window = blend_weights(grid.tile, grid.overlap)
        shape = (grid.tile, grid.width)
        self.base = 0  # scene row of the band's first row
        self.prob = np.zeros(shape, "float32")
        self.weight = np.zeros(shape, "float32")
        self.valid = np.zeros(shape, bool)

    def add(self, row, col, prob, valid):
        """Add one tile's probabilities (tile, tile) and scene validity (tile, tile)."""
        g = self.grid
        if max(row, 0) < self.base or min(row + g.tile, g.height) - self.base > g.tile:
            raise RuntimeError(f"Tile at row {row} arrived out of order (band starts at {self.base}).")
        add_tile(g, self.window, (self.prob, self.weight, self.valid), (self.base, 0), row, col, prob, valid)

    def finish_row(self, tile_row):
        """Blended (prob, valid, row_offset) of the rows final after `tile_row`; slides the band."""
        start, stop = self.grid.final_rows(tile_row)
        a, b = start - self.base, stop - self.base
        weight = self.weight[a:b]
        covered = weight > 0
        prob = np.divide(self.prob[a:b], weight, out=np.zeros_like(weight), where=covered)
        valid = self.valid[a:b] & covered
        if tile_row + 1 < len(self.grid.row_starts):
            shift = b  # the next band starts at `stop`
            for array in (self.prob, self.weight, self.valid):
                array[: array.shape[0] - shift] = array[shift:].copy()
                array[array.shape[0] - shift:] = 0
            self.base = stop
        return prob, valid, start
