"""Display reads, colour maps, error maps, metrics and re-thresholding of scene maps."""

import json

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.metrics import confusion_matrix_metrics
from gdcld_zoo.scene import overview, predict_scene
from gdcld_zoo.scene.overview import ERROR_COLOURS, NODATA_COLOUR
from tests.scene.scenes import PixelEngine, random_scene, write_scene


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    """A 200x300 scene with a nodata corner, its PixelEngine map and a label."""
    folder = tmp_path_factory.mktemp("mapped")
    scene = random_scene(200, 300, seed=5) | 1
    scene[:, :40, :60] = 0
    path = write_scene(folder / "scene.tif", scene, nodata=0)
    result = predict_scene(PixelEngine(), path, folder / "out", tile_size=64, overlap=16, progress=False)
    label = (np.random.default_rng(1).random((200, 300)) < 0.4).astype("uint8")
    label[190:, :] = 255
    label_path = write_scene(folder / "label.tif", label[None])
    with rasterio.open(result.outputs["prob.tif"]) as prob:
        codes = prob.read(1)
    return {"scene": path, "pixels": scene, "result": result, "label": label_path, "truth": label,
            "codes": codes, "folder": folder}


def test_overview_shape_and_zoom_window():
    assert overview.overview_shape(3000, 2000, 1024) == (1024, 683)
    assert overview.overview_shape(100, 50, 1024) == (100, 50)
    assert overview.zoom_window(1000, 2000) == Window(0, 0, 2000, 1000)
    assert overview.zoom_window(1000, 2000, 4, (1.0, 1.0)) == Window(1500, 750, 500, 250)
    assert overview.zoom_window(10, 10, 64, (0.5, 0.5)) == Window(5, 5, 1, 1)
    with pytest.raises(InvalidInputError, match="zoom must be at least 1"):
        overview.zoom_window(10, 10, 0.5)


def test_read_image_is_decimated_and_marks_nodata(mapped):
    image = overview.read_image(mapped["scene"], max_side=100)
    assert image.shape == (67, 100, 3) and image.dtype == np.uint8
    assert (image[:10, :15] == NODATA_COLOUR).all()  # the nodata corner
    full = overview.read_image(mapped["scene"], window=Window(100, 50, 30, 20))
    np.testing.assert_array_equal(full, np.moveaxis(mapped["pixels"][:, 50:70, 100:130], 0, -1))


def test_read_image_stretches_16_bit_and_shows_one_band_in_grey(tmp_path):
    pixels = (np.arange(64 * 64, dtype="uint16").reshape(1, 64, 64) * 3)
    path = write_scene(tmp_path / "grey.tif", pixels)
    image = overview.read_image(path)
    assert image.shape == (64, 64, 3) and (image[..., 0] == image[..., 2]).all()
    assert image.min() == 0 and image.max() == 255


def test_probability_heat_map_and_overlay(mapped):
    codes, valid = overview.read_probability(mapped["result"].outputs["prob.tif"], max_side=150)
    assert codes.shape == (100, 150) and not valid[:10, :20].any() and valid[30:, 40:].all()
    heat = overview.heat_map(codes, valid)
    assert (heat[~valid] == NODATA_COLOUR).all()
    assert tuple(overview.heat_map(np.array([[0, 254]]), np.ones((1, 2), bool))[0, 0]) == tuple(overview.HEAT_LUT[0])
    image = np.full((2, 2, 3), 100, "uint8")
    out = overview.overlay(image, np.array([[True, False], [False, False]]), (200, 0, 0), 0.5)
    assert tuple(out[0, 0]) == (150, 50, 50) and tuple(out[1, 1]) == (100, 100, 100)
    with pytest.raises(InvalidInputError, match="opacity"):
        overview.overlay(image, np.ones((2, 2), bool), opacity=2)


def test_error_map_colours_tp_fp_fn_and_skips_ignored_pixels():
    label = np.array([[1, 1, 0, 0, 255]])
    pred = np.array([[1, 0, 1, 0, 1]], bool)
    assert overview.error_classes(label, pred).tolist() == [[1, 3, 2, 0, 0]]
    image = np.zeros((1, 5, 3), "uint8")
    colours = overview.error_map(image, label, pred, opacity=1.0)
    assert [tuple(c) for c in colours[0, :3]] == [ERROR_COLOURS["TP"], ERROR_COLOURS["FN"], ERROR_COLOURS["FP"]]
    assert len(set(ERROR_COLOURS.values())) == 3
    with pytest.raises(InvalidInputError, match="differ in shape"):
        overview.error_classes(label, pred[:, :3])


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 1.0])
def test_threshold_metrics_equal_the_paper_metrics_on_the_whole_arrays(mapped, threshold, monkeypatch):
    monkeypatch.setattr(overview, "ROWS_PER_READ", 64)  # several windows
    values, counts = overview.threshold_metrics(mapped["result"].outputs["prob.tif"], mapped["label"], threshold)
    codes, truth = mapped["codes"], mapped["truth"].astype("int64")
    truth = np.where(codes == 255, 255, truth)
    predicted = (codes >= overview.threshold_code(threshold)) & (codes != 255)
    expected = confusion_matrix_metrics(truth, predicted[..., None].astype("float32"), threshold=0.5,
                                        from_logits=False)
    assert values == pytest.approx({key: expected[key] for key in values})
    assert sum(counts.values()) == int(((truth != 255)).sum())


def test_rethreshold_writes_mask_and_polygons_without_the_model(mapped):
    result = mapped["result"]
    out = overview.rethreshold(result.outputs["prob.tif"], 0.6, mapped["folder"] / "t60")
    assert out["mask"].name == "scene_mask.tif" and out["landslides"].name == "scene_landslides.geojson"
    with rasterio.open(out["mask"]) as mask, rasterio.open(result.outputs["prob.tif"]) as prob:
        m = mask.read(1)
        assert mask.crs == prob.crs and mask.transform == prob.transform and mask.nodata == 255
    codes = mapped["codes"]
    np.testing.assert_array_equal(m, np.where(codes == 255, 255, codes >= overview.threshold_code(0.6)))
    features = json.loads(out["landslides"].read_text())["features"]
    assert len(features) == out["n_landslides"] > 0
    assert sum(f["properties"]["area_m2"] for f in features) == pytest.approx(out["landslide_area"], rel=1e-6)
    assert out["units"] == "m2"
    # At the run's own threshold the mask equals predict_scene's up to the 1/254 quantisation.
    same = overview.rethreshold(result.outputs["prob.tif"], result.summary["threshold"], mapped["folder"] / "t50")
    with rasterio.open(same["mask"]) as a, rasterio.open(result.outputs["mask.tif"]) as b:
        assert (a.read(1) != b.read(1)).mean() < 0.01
    rows = overview.read_landslides(out["landslides"])
    assert len(rows) == out["n_landslides"]
    areas = [r["area_m2"] for r in rows]
    assert areas == sorted(areas, reverse=True)
    assert set(rows[0]) == {"id", "area_m2", "pixels", "lon", "lat"}


def test_threshold_code_quantisation():
    assert [overview.threshold_code(t) for t in (0.0, 0.5, 1.0)] == [0, 127, 254]
    assert overview.threshold_code(127 / 254) == 127
    with pytest.raises(InvalidInputError, match="threshold"):
        overview.threshold_code(1.5)


def test_check_label(mapped, tmp_path):
    overview.check_label(mapped["label"], mapped["scene"])
    small = write_scene(tmp_path / "small.tif", np.zeros((1, 20, 30), "uint8"))
    with pytest.raises(InvalidInputError, match="30x20 px but the scene is 300x200 px"):
        overview.check_label(small, mapped["scene"])
    two = write_scene(tmp_path / "two.tif", np.zeros((2, 200, 300), "uint8"))
    with pytest.raises(InvalidInputError, match="2 bands"):
        overview.check_label(two, mapped["scene"])


def test_area_frequency():
    assert overview.area_frequency([]) == []
    bins = overview.area_frequency([10, 20, 900, 1000, 5000], bins_per_decade=2)
    assert sum(n for _, _, n in bins) == 5
    assert bins[0][0] <= 10 and bins[-1][1] > 5000
    assert all(b[1] == pytest.approx(b[0] * 10**0.5) for b in bins)


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(overview)
    assert result.attempted > 0 and result.failed == 0


# Machado et al. (2009) colour-vision-deficiency matrices (severity 1) on linear RGB.
CVD = {
    "normal": np.eye(3),
    "protan": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                        [-0.003882, -0.048116, 1.051998]]),
    "deutan": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                        [-0.011820, 0.042940, 0.968881]]),
    "tritan": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                        [0.004733, 0.691367, 0.303900]]),
}
BACKGROUNDS = {"vegetation": (70, 100, 45), "bare soil": (150, 125, 95)}


def lab(rgb, vision):
    """CIELAB (D65) of an sRGB colour as seen with `vision`."""
    c = np.asarray(rgb, "float64") / 255
    linear = np.clip(CVD[vision] @ np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4), 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    f = np.cbrt(np.maximum(xyz / np.array([0.95047, 1.0, 1.08883]), 0.008856))
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_error_colours_stay_apart_and_off_vegetation_for_colour_blind_eyes():
    colours = list(ERROR_COLOURS.values()) + list(BACKGROUNDS.values())
    for vision in CVD:
        for i, a in enumerate(colours[:3]):
            for b in colours[i + 1:]:
                assert np.linalg.norm(lab(a, vision) - lab(b, vision)) > 20, (vision, a, b)
