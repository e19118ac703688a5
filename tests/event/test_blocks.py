import doctest

import numpy as np
import pytest
import rasterio

import gdcld_zoo.event.blocks
import gdcld_zoo.event.geometry
import gdcld_zoo.event.inventory
import gdcld_zoo.event.sources
from gdcld_zoo.event import map_event
from gdcld_zoo.event.blocks import SUMS, assemble_strips, plan_blocks, predict_block
from gdcld_zoo.scene import predict_scene
from gdcld_zoo.scene.tiling import TileGrid
from tests.scene.scenes import ConvEngine, PixelEngine, random_scene, write_scene


@pytest.mark.parametrize("module", [gdcld_zoo.event.blocks, gdcld_zoo.event.geometry, gdcld_zoo.event.inventory,
                                    gdcld_zoo.event.sources])
def test_docstring_examples(module):
    assert doctest.testmod(module).failed == 0


def test_blocks_give_the_map_of_the_streaming_predictor(tmp_path):
    pixels = random_scene(300, 260, seed=3)
    pixels[:, :40, :50] = 0
    scene = write_scene(tmp_path / "scene.tif", pixels, nodata=0)
    predict_scene(ConvEngine(), scene, tmp_path / "streamed", overlap=16, progress=False)
    map_event(ConvEngine(), [scene], tmp_path / "blocks", overlap=16, block_tiles=2, progress=False)
    for kind in ("prob", "mask"):
        with rasterio.open(tmp_path / "streamed" / f"scene_{kind}.tif") as a, \
                rasterio.open(tmp_path / "blocks" / f"scene_{kind}.tif") as b:
            streamed, blocks = a.read(1).astype(int), b.read(1).astype(int)
        # the same windows and weights, summed in another order: float32 rounding at most
        assert np.abs(streamed - blocks).max() <= 1
        assert np.mean(streamed == blocks) > 0.999
        assert np.all((streamed == 255) == (blocks == 255))


def test_block_sums_leave_the_disk_as_the_strips_pass(tmp_path):
    scene = write_scene(tmp_path / "tall.tif", random_scene(1200, 64))
    grid = TileGrid.for_scene(1200, 64, 64, 16)
    blocks = plan_blocks("tall", str(scene), grid, (1, 2, 3), block_tiles=1)
    engine = PixelEngine()
    waits = [lambda block=block: predict_block(block, engine, 4, tmp_path) for block in blocks]  # as in process
    on_disk, seen = [], []
    for strip in assemble_strips(blocks, waits, tmp_path, on_result=seen.append, strip_rows=128):
        on_disk.append(len(list(tmp_path.glob("tall.*.npy"))))
        rows = slice(strip.row_offset, strip.row_offset + strip.prob.shape[0])
        np.testing.assert_allclose(strip.prob, random_scene(1200, 64)[:, rows].mean(0) / 255, atol=1e-5)
    # 50 blocks of one tile; a 128-row strip and the tiles reaching into the next hold at most 8 of them
    assert len(blocks) == 50 and max(on_disk) <= 8 * len(SUMS)
    assert not list(tmp_path.glob("tall.*.npy")) and [r["index"] for r in seen] == list(range(len(blocks)))
