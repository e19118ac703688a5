import json

import numpy as np
import pytest
import rasterio
from affine import Affine

from gdcld_zoo.scene import D4Engine, SceneError, SlidingWindowPredictor, predict_scene
from tests.scene.scenes import ColumnEngine, ConvEngine, PixelEngine, box_filter, brightness, random_scene, write_scene


def assemble(predictor, path, **kwargs):
    """The whole probability map and validity from `strips()`, checking strip order."""
    probs, valids, expected_row = [], [], 0
    for strip in predictor.strips(path, **kwargs):
        assert strip.row_offset == expected_row
        expected_row += strip.prob.shape[0]
        probs.append(strip.prob)
        valids.append(strip.valid)
    return np.concatenate(probs), np.concatenate(valids)


@pytest.mark.parametrize("shape", [(200, 300), (45, 30), (97, 64), (64, 64)])
def test_tiled_output_equals_a_per_pixel_model_exactly(tmp_path, shape):
    scene = random_scene(*shape)
    path = write_scene(tmp_path / "scene.tif", scene)
    predictor = SlidingWindowPredictor(PixelEngine(), tile_size=64, overlap=16, batch_size=3, progress=False)
    prob, valid = assemble(predictor, path)
    assert valid.all()
    np.testing.assert_allclose(prob, brightness(np.moveaxis(scene, 0, -1)), atol=1e-6)


def test_tiled_output_equals_the_direct_forward_pass_away_from_edges_without_seams(tmp_path):
    scene = random_scene(200, 300, seed=3)
    path = write_scene(tmp_path / "scene.tif", scene)
    predictor = SlidingWindowPredictor(ConvEngine(), tile_size=64, overlap=16, batch_size=4, progress=False)
    prob, _ = assemble(predictor, path)
    direct = box_filter(brightness(np.moveaxis(scene, 0, -1))[None])[0]
    grid = predictor.last_run.grid
    # Exact wherever every tile covering a pixel saw it at least 2 px (the filter radius) inside.
    deep = np.ones((200, 300), bool)
    for axis, starts, length in ((0, grid.row_starts, 200), (1, grid.col_starts, 300)):
        position = np.arange(length)
        near = np.zeros(length, bool)
        for s in starts:
            inside = (position >= s) & (position < s + grid.tile)
            near |= inside & ((position < s + 2) | (position >= s + grid.tile - 2))
        deep &= ~near[:, None] if axis == 0 else ~near[None, :]
    deep[:2], deep[-2:], deep[:, :2], deep[:, -2:] = False, False, False, False  # zero padding of the scene edge
    assert deep.mean() > 0.8
    np.testing.assert_allclose(prob[deep], direct[deep], atol=1e-5)
    # Near tile borders the blend keeps the error far below what hard stitching leaves (a seam).
    interior = (slice(2, -2), slice(2, -2))
    blended_error = np.abs(prob - direct)[interior].max()
    stitched = SlidingWindowPredictor(ConvEngine(), tile_size=64, overlap=0, batch_size=4, progress=False)
    hard, _ = assemble(stitched, path)
    seam_error = np.abs(hard - direct)[interior].max()
    assert blended_error < 1e-2 and seam_error > 10 * blended_error


def test_d4_test_time_augmentation_undoes_each_transform(tmp_path):
    raw = np.moveaxis(random_scene(32, 32), 0, -1)[None]
    np.testing.assert_allclose(D4Engine(PixelEngine()).predict(raw), brightness(raw), atol=1e-6)
    # A model that only sees columns averages to 0.5 over the 8 symmetries.
    np.testing.assert_allclose(D4Engine(ColumnEngine()).predict(raw), 0.5, atol=1e-6)


def test_nodata_pixels_are_excluded_and_written_as_nodata(tmp_path):
    scene = random_scene(200, 300) | 1  # no real pixel is 0
    scene[:, :, :100] = 0  # a nodata collar on the left third
    scene[:, 150:, 250:] = 0  # and a corner
    path = write_scene(tmp_path / "scene.tif", scene, nodata=0)
    result = predict_scene(PixelEngine(), path, tmp_path / "out", tile_size=64, overlap=16, progress=False)
    with rasterio.open(result.outputs["prob.tif"]) as prob, rasterio.open(result.outputs["mask.tif"]) as mask:
        p, m = prob.read(1), mask.read(1)
        assert prob.nodata == 255 and mask.nodata == 255
    invalid = np.all(scene == 0, axis=0)
    assert (p[invalid] == 255).all() and (m[invalid] == 255).all()
    assert (p[~invalid] <= 254).all() and set(np.unique(m[~invalid])) <= {0, 1}
    summary = result.summary
    assert summary["valid_pixels"] == int((~invalid).sum())
    assert summary["valid_area_km2"] == pytest.approx((~invalid).sum() * 0.25 / 1e6)
    assert summary["n_tiles_skipped_nodata"] > 0  # all-nodata tiles never reach the model


def test_nan_pixels_of_a_float_scene_without_nodata_are_nodata_and_do_not_spread(tmp_path):
    from gdcld_zoo.preprocessing import Preprocessing

    class FloatConvEngine(ConvEngine):
        preprocessing = Preprocessing(dtype="float32")

    scene = random_scene(96, 128).astype("float32")
    scene[:, 40:50, 60:70] = np.nan  # a cloud-masked patch, the file declares no nodata
    scene[1, 0:5, 0:5] = np.inf
    path = write_scene(tmp_path / "float.tif", scene)
    result = predict_scene(FloatConvEngine(), path, tmp_path / "out", tile_size=64, overlap=16, progress=False)
    with rasterio.open(result.outputs["prob.tif"]) as prob:
        p = prob.read(1)
    invalid = ~np.isfinite(scene).all(axis=0)
    assert (p[invalid] == 255).all() and (p[~invalid] <= 254).all()
    assert result.summary["valid_pixels"] == int((~invalid).sum())
    # Neighbours of the patch see it as zeros (the box filter's padding), never NaN.
    assert p[38, 65] <= 254 and p[51, 65] <= 254


def test_alpha_band_masks_pixels_and_colour_interpretation_picks_rgb(tmp_path):
    rgb = random_scene(100, 120)
    alpha = np.full((1, 100, 120), 255, "uint8")
    alpha[0, 60:, :] = 0
    path = write_scene(tmp_path / "rgba.tif", np.concatenate([rgb, alpha]),
                       colorinterp=["red", "green", "blue", "alpha"])
    result = predict_scene(PixelEngine(), path, tmp_path / "out", tile_size=64, overlap=16, progress=False)
    assert result.summary["bands"] == [1, 2, 3] and result.summary["bands_from"] == "colour interpretation"
    assert result.summary["valid_pixels"] == 60 * 120
    with rasterio.open(result.outputs["mask.tif"]) as mask:
        assert (mask.read(1)[60:] == 255).all()


def test_outputs_are_georeferenced_tiled_and_compressed_like_the_source(tmp_path):
    transform = Affine(0.5, 0.0, 300000.0, 0.0, -0.5, 4500000.0)
    path = write_scene(tmp_path / "luding.tif", random_scene(200, 300), crs="EPSG:32648", transform=transform)
    result = predict_scene(PixelEngine(), path, tmp_path / "out", tile_size=64, overlap=16, progress=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "luding_landslides.geojson", "luding_mask.tif", "luding_prob.tif", "luding_summary.json"]
    for kind in ("prob.tif", "mask.tif"):
        with rasterio.open(result.outputs[kind]) as out:
            assert out.crs.to_epsg() == 32648 and out.transform == transform
            assert (out.width, out.height, out.dtypes[0]) == (300, 200, "uint8")
            assert out.profile["tiled"] and out.compression.value == "DEFLATE"
    with rasterio.open(result.outputs["prob.tif"]) as prob:
        scaled = prob.read(1) * prob.scales[0]
    np.testing.assert_allclose(scaled, brightness(np.moveaxis(random_scene(200, 300), 0, -1)), atol=1 / 254)


def test_polygons_are_wgs84_with_ground_areas_and_summary_adds_up(tmp_path):
    scene = np.full((3, 200, 300), 40, "uint8")
    scene[:, 20:40, 30:80] = 220  # 1000 px = 250 m2
    scene[:, 100:104, 200:205] = 220  # 20 px = 5 m2
    path = write_scene(tmp_path / "scene.tif", scene)
    result = predict_scene(PixelEngine(), path, tmp_path / "out", tile_size=64, overlap=16, min_area_m2=10,
                           threshold=0.5, progress=False)
    collection = json.loads(result.outputs["landslides.geojson"].read_text())
    assert collection["type"] == "FeatureCollection" and "crs" not in collection
    (feature,) = collection["features"]
    assert feature["properties"]["area_m2"] == pytest.approx(250.0)
    assert feature["properties"]["pixels"] == 1000
    lon, lat = np.asarray(feature["geometry"]["coordinates"][0]).T
    assert 98.9 < lon.min() < lon.max() < 99.1 and 29.7 < lat.min() < lat.max() < 29.9  # UTM 47N, not metres
    summary = json.loads(result.outputs["summary.json"].read_text())
    assert summary["n_landslides"] == 1 and summary["n_dropped_below_min_area"] == 1
    assert summary["landslide_area_km2"] == pytest.approx(250e-6)
    assert summary["mask_landslide_area_km2"] == pytest.approx(255e-6)
    assert summary["model_tag"] == "pixel-test" and summary["threshold"] == 0.5
    assert summary["n_tiles"] == result.summary["n_tiles"] > 1 and "model" in summary["timings_s"]


def test_scene_without_crs_warns_and_reports_pixels(tmp_path):
    scene = np.full((3, 64, 96), 40, "uint8")
    scene[:, 10:20, 10:30] = 220
    path = write_scene(tmp_path / "plain.tif", scene, crs=None, transform=Affine.identity())
    with pytest.warns(UserWarning, match="no CRS"):
        result = predict_scene(PixelEngine(), path, tmp_path / "out", tile_size=64, overlap=16, progress=False)
    summary = result.summary
    assert summary["landslide_area_km2"] is None and summary["valid_area_km2"] is None
    assert summary["landslide_area_px"] == 200 and summary["area_method"] == "pixels"
    feature = json.loads(result.outputs["landslides.geojson"].read_text())["features"][0]
    assert feature["properties"]["area_px"] == 200 and "area_m2" not in feature["properties"]


def test_interrupted_run_leaves_no_file_that_looks_finished(tmp_path):
    path = write_scene(tmp_path / "scene.tif", random_scene(300, 300))
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="simulated failure"):
        predict_scene(PixelEngine(fail_after=3), path, out, tile_size=64, overlap=16, batch_size=2, progress=False)
    assert list(out.iterdir()) == []


def test_scene_with_no_valid_pixel_is_an_error_and_writes_nothing(tmp_path):
    path = write_scene(tmp_path / "empty.tif", np.zeros((3, 50, 60), "uint8"), nodata=0)
    with pytest.raises(SceneError, match="no valid pixels"):
        predict_scene(PixelEngine(), path, tmp_path / "out", tile_size=64, overlap=16, progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_four_band_scene_is_never_silently_read_as_rgb(tmp_path):
    path = write_scene(tmp_path / "rgbn.tif", random_scene(64, 64, bands=4))
    with pytest.raises(SceneError, match="--bands"):
        predict_scene(PixelEngine(), path, tmp_path / "out", tile_size=64, overlap=16, progress=False)
    result = predict_scene(PixelEngine(), path, tmp_path / "out", tile_size=64, overlap=16, bands="3,2,1",
                           progress=False)
    assert result.summary["bands"] == [3, 2, 1] and result.summary["bands_from"] == "--bands"


@pytest.mark.parametrize("bands,message", [("1,2", "model takes 3"), ("1,2,5", "has 3 band"), ("a,b", "comma-separated"),
                                           ("0,1,2", "1-based")])
def test_bad_band_selection_is_one_clear_error(tmp_path, bands, message):
    path = write_scene(tmp_path / "scene.tif", random_scene(64, 64))
    with pytest.raises(SceneError, match=message):
        predict_scene(PixelEngine(), path, tmp_path / "out", bands=bands, tile_size=64, progress=False)


def test_sixteen_bit_scene_does_not_feed_an_eight_bit_model(tmp_path):
    path = write_scene(tmp_path / "planet.tif", random_scene(64, 64, dtype="uint16"))
    with pytest.raises(SceneError, match="uint16 but the model expects uint8"):
        predict_scene(PixelEngine(), path, tmp_path / "out", tile_size=64, progress=False)


@pytest.mark.parametrize("make", [
    lambda p: p.write_bytes(b""),
    lambda p: p.write_text("not a raster"),
    lambda p: None,
])
def test_unreadable_inputs_are_scene_errors(tmp_path, make):
    path = tmp_path / "bad.tif"
    make(path)
    with pytest.raises(SceneError, match="bad.tif"):
        predict_scene(PixelEngine(), path, tmp_path / "out", tile_size=64, progress=False)


def test_progress_bar_times_the_tiles_after_the_first_batch(tmp_path, monkeypatch):
    import io
    import time

    import tqdm.auto

    bars = []

    class Recording(tqdm.auto.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "disable": False, "file": io.StringIO()})
            bars.append(self)

    class SlowFirstCall(PixelEngine):
        def predict(self, raw):
            if self.calls == 0:
                time.sleep(1.0)  # a model compiling on its first batch
            return super().predict(raw)

    monkeypatch.setattr(tqdm.auto, "tqdm", Recording)
    path = write_scene(tmp_path / "scene.tif", random_scene(128, 256))
    predictor = SlidingWindowPredictor(SlowFirstCall(), tile_size=64, overlap=0, batch_size=2, progress=True)
    assemble(predictor, path)
    bar = bars[0]
    assert bar.n == bar.total == 8 and bar.initial == 2
    assert bar.format_dict["elapsed"] < 0.5, "the clock started before the first, slow batch finished"
