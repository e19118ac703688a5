import numpy as np
import pytest

from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.scene.tiling import StripAccumulator, TileGrid, blend_weights, ramp, reflect_index, tile_starts


@pytest.mark.parametrize("length,tile,overlap,margin", [(1000, 512, 64, 32), (300, 64, 16, 8), (64, 64, 0, 0), (65, 64, 8, 0)])
def test_tiles_cover_the_padded_scene_and_end_flush(length, tile, overlap, margin):
    starts = tile_starts(length, tile, overlap, margin)
    assert starts[0] == -margin
    assert starts[-1] + tile == length + margin
    assert all(0 < b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def test_scene_smaller_than_a_tile_gets_one_centred_tile():
    assert tile_starts(40, 64, 16, 8) == [-12]


def test_reflect_index_matches_numpy_reflect_padding_even_far_outside():
    for length in (1, 2, 5):
        index = np.arange(-13, length + 13)
        expected = np.pad(np.arange(length), 13, mode="reflect") if length > 1 else np.zeros(length + 26, int)
        np.testing.assert_array_equal(reflect_index(index, length), expected)


def test_ramps_of_neighbouring_tiles_sum_to_one():
    tile, overlap = 64, 16
    r = ramp(tile, overlap)
    total = np.zeros(tile + tile - overlap)
    total[:tile] += r
    total[tile - overlap:] += r
    np.testing.assert_allclose(total[overlap:-overlap], 1.0, atol=1e-6)
    assert r.min() > 0 and r.max() == 1.0


def test_blend_weights_are_symmetric_and_floored():
    w = blend_weights(32, 8)
    np.testing.assert_array_equal(w, w.T)
    np.testing.assert_array_equal(w, w[::-1, ::-1])
    assert w.min() >= 1e-6


def test_grid_shrinks_tiles_to_a_multiple_of_32_for_small_scenes():
    grid = TileGrid.for_scene(40, 70, tile=512, overlap=128)
    assert grid.tile == 224 and grid.num_tiles == 1  # 70 + 2 * 64 = 198, rounded up to a multiple of 32


@pytest.mark.parametrize("tile,overlap", [(30, 8), (64, 64), (64, -1)])
def test_grid_rejects_bad_tile_and_overlap(tile, overlap):
    with pytest.raises(InvalidInputError):
        TileGrid.for_scene(100, 100, tile, overlap)


@pytest.mark.parametrize("height,width", [(200, 300), (64, 64), (129, 65), (20, 500)])
def test_accumulator_reproduces_a_per_pixel_function_exactly(height, width):
    rng = np.random.default_rng(0)
    truth = rng.random((height, width)).astype("float32")
    grid = TileGrid.for_scene(height, width, tile=64, overlap=16)
    acc = StripAccumulator(grid)
    out = np.full((height, width), np.nan, "float32")
    for row in range(len(grid.row_starts)):
        for _, r, c in [t for t in grid.tiles() if t[0] == row]:
            rows = reflect_index(np.arange(r, r + grid.tile), height)
            cols = reflect_index(np.arange(c, c + grid.tile), width)
            acc.add(r, c, truth[rows][:, cols], np.ones((grid.tile, grid.tile), bool))
        prob, valid, start = acc.finish_row(row)
        assert valid.all()
        out[start:start + prob.shape[0]] = prob
    np.testing.assert_allclose(out, truth, atol=1e-6)
