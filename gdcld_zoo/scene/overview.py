"""Looking at scene maps: downsampled reads, colour maps, error maps, re-thresholding.

The viewer (`apps/viewer.py`) and notebooks show a scene and its landslide map
without ever loading the full-resolution raster: every picture here is a
decimated rasterio read (`out_shape`) of the whole scene or of a zoom window,
at most `max_side` pixels on its longer side. What needs every pixel — the
confusion matrix against a label, a mask at a new threshold — is computed in
windows of rows, so memory stays bounded whatever the scene size.

Maps are those `predict_scene` writes: `<stem>_prob.tif` holds uint8
`round(254 p)` with 255 as nodata. A threshold `t` on that raster selects the
pixels whose code is at least `threshold_code(t)` (`ceil(254 t)`), so a mask
re-thresholded here equals the one `predict_scene` writes at the same
threshold up to the probability quantisation (1/254).

Error maps colour true positives, false positives and false negatives with the
Okabe-Ito palette (distinguishable with the common colour-vision deficiencies),
as in the paper's Figures 7-10 (Fang et al., 2024).

Example:
>>> import numpy as np
>>> label = np.array([[1, 1, 0, 0]]); pred = np.array([[1, 0, 1, 0]], bool)
>>> error_classes(label, pred).tolist()
[[1, 3, 2, 0]]
>>> threshold_code(0.5)
127
"""

import json
import math
import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from gdcld_zoo.data.reading import label_to_mask
from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.metrics import confusion_matrix, metrics_from_confusion_matrix
from gdcld_zoo.scene.area import GroundArea
from gdcld_zoo.scene.source import SceneError, open_scene, read_pixels
from gdcld_zoo.scene.vectorize import vectorize_mask
from gdcld_zoo.scene.writer import NODATA, PROB_SCALE, AtomicFiles, output_profile

# Longest side, in pixels, of any picture read for display.
MAX_SIDE = 1024
# Rows read at once when a pass needs every pixel.
ROWS_PER_READ = 512
# Okabe-Ito colours: yellow, vermillion, sky blue; apart from each other and from green vegetation
# and bare soil for protan, deutan and tritan vision too (tests/scene/test_overview.py).
ERROR_COLOURS = {"TP": (240, 228, 66), "FP": (213, 94, 0), "FN": (86, 180, 233)}
ERROR_NAMES = {"TP": "true positive (landslide found)", "FP": "false positive (false alarm)",
               "FN": "false negative (landslide missed)"}
MASK_COLOUR = (255, 32, 32)
NODATA_COLOUR = (200, 200, 200)
# Anchors of a perceptually ordered dark-to-bright colour map (after matplotlib's "inferno").
_HEAT_ANCHORS = np.array([
    (0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99),
    (212, 72, 66), (245, 125, 21), (250, 193, 39), (252, 255, 164),
], "float32")
HEAT_LUT = np.stack([
    np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_HEAT_ANCHORS)), _HEAT_ANCHORS[:, k])
    for k in range(3)
], axis=-1).round().astype("uint8")


def threshold_code(threshold):
    """The smallest uint8 probability code selected by `threshold` (codes >= it are landslides)."""
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise InvalidInputError(f"threshold must be a probability in [0, 1], got {threshold}.")
    return int(math.ceil(threshold * PROB_SCALE - 1e-6))


def overview_shape(height, width, max_side=MAX_SIDE):
    """(rows, cols) of a picture of a (height, width) raster with its longer side <= max_side."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def zoom_window(height, width, zoom=1.0, centre=(0.5, 0.5)):
    """The window of a `zoom`-times enlargement centred at `centre` (row, col fractions).

    The window keeps the scene's aspect ratio, stays inside the scene and is at
    least one pixel. `zoom=1` is the whole scene.

    Example:
    >>> zoom_window(1000, 2000, zoom=4, centre=(0.0, 0.5))
    Window(col_off=750, row_off=0, width=500, height=250)
    """
    if zoom < 1:
        raise InvalidInputError(f"zoom must be at least 1, got {zoom}.")
    rows, cols = max(1, round(height / zoom)), max(1, round(width / zoom))
    row = min(max(0, math.floor(centre[0] * height - rows / 2 + 0.5)), height - rows)
    col = min(max(0, math.floor(centre[1] * width - cols / 2 + 0.5)), width - cols)
    return Window(col, row, cols, rows)


def _open(path):
    """A raster opened quietly (scenes without CRS are fine here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return open_scene(path)


def _read(dataset, bands, window, max_side, resampling):
    window = window or Window(0, 0, dataset.width, dataset.height)
    shape = overview_shape(int(window.height), int(window.width), max_side)
    return read_pixels(dataset, list(bands), window=window, out_shape=(len(bands), *shape), resampling=resampling)


def display_bands(dataset, bands=None):
    """Bands to show as RGB: `bands` if given, the red/green/blue bands, else the first three (or one)."""
    if bands:
        return tuple(bands)
    interp = [c.name for c in dataset.colorinterp]
    if all(interp.count(c) == 1 for c in ("red", "green", "blue")):
        return tuple(interp.index(c) + 1 for c in ("red", "green", "blue"))
    return (1, 2, 3) if dataset.count >= 3 else (1,)


def read_image(path, bands=None, window=None, max_side=MAX_SIDE):
    """An 8-bit RGB picture (rows, cols, 3) of a scene or of a window of it.

    Read decimated with averaging. uint8 bands are shown as they are; other
    dtypes are stretched between their 2nd and 98th percentiles. One band is
    shown in grey. Nodata pixels are light grey.
    """
    with _open(path) as dataset:
        bands = display_bands(dataset, bands)
        if max(bands) > dataset.count:
            raise SceneError(f"{path}: band {max(bands)} requested but the scene has {dataset.count} band(s).")
        data = _read(dataset, bands, window, max_side, Resampling.average)
        window_ = window or Window(0, 0, dataset.width, dataset.height)
        shape = data.shape[1:]
        valid = dataset.dataset_mask(window=window_, out_shape=shape, resampling=Resampling.nearest) > 0
    if data.dtype != np.uint8:
        values = data[:, valid].astype("float64")
        low, high = (np.percentile(values, [2, 98], axis=1) if values.size else (np.zeros(len(bands)),) * 2)
        span = np.maximum(high - low, 1e-9)
        data = (np.clip((data - low[:, None, None]) / span[:, None, None], 0, 1) * 255).round().astype("uint8")
    image = np.repeat(data, 3, axis=0) if len(bands) == 1 else data
    image = np.ascontiguousarray(np.moveaxis(image, 0, -1))
    image[~valid] = NODATA_COLOUR
    return image


def read_probability(prob_path, window=None, max_side=MAX_SIDE):
    """A decimated read of a probability map: (codes uint8, valid bool).

    Nearest-neighbour decimation keeps every value a real pixel's code
    (255 = nodata never mixes into probabilities).
    """
    with _open(prob_path) as dataset:
        codes = _read(dataset, (1,), window, max_side, Resampling.nearest)[0]
    return codes, codes != NODATA


def read_label(label_path, window=None, max_side=MAX_SIDE):
    """A decimated (nearest) read of a label raster: 1 landslide, 0 background, 255 ignored."""
    with _open(label_path) as dataset:
        return _read(dataset, (1,), window, max_side, Resampling.nearest)[0]


def heat_map(codes, valid):
    """RGB (rows, cols, 3) colour picture of probability codes; nodata light grey."""
    image = HEAT_LUT[np.clip(np.asarray(codes).astype("int64") * 255 // PROB_SCALE, 0, 255)]
    image[~valid] = NODATA_COLOUR
    return image


def overlay(image, selected, colour=MASK_COLOUR, opacity=0.5):
    """`image` with the `selected` pixels blended towards `colour` by `opacity`."""
    if not 0.0 <= opacity <= 1.0:
        raise InvalidInputError(f"opacity must be in [0, 1], got {opacity}.")
    out = np.asarray(image, "float32").copy()
    out[selected] = (1 - opacity) * out[selected] + opacity * np.asarray(colour, "float32")
    return out.round().astype("uint8")


def error_classes(label, predicted):
    """Per pixel: 0 true negative or ignored, 1 TP, 2 FP, 3 FN (label 255 is ignored)."""
    label = np.asarray(label)
    predicted = np.asarray(predicted, bool)
    if label.shape != predicted.shape:
        raise InvalidInputError(f"label {label.shape} and prediction {predicted.shape} differ in shape.")
    known = label != NODATA
    truth = known & (label == 1)
    classes = np.zeros(label.shape, "uint8")
    classes[truth & predicted] = 1
    classes[known & ~truth & predicted] = 2
    classes[truth & ~predicted] = 3
    return classes


def error_map(image, label, predicted, opacity=0.75):
    """`image` with TP, FP and FN pixels in `ERROR_COLOURS`; true negatives dimmed."""
    classes = error_classes(label, predicted)
    out = overlay(image, classes == 0, (0, 0, 0), 0.35)
    for code, name in enumerate(("TP", "FP", "FN"), start=1):
        out = overlay(out, classes == code, ERROR_COLOURS[name], opacity)
    return out


def check_label(label_path, scene_path):
    """Raise `InvalidInputError` unless the label is a one-band raster on the scene's grid.

    Both georeferenced: the same CRS and transform, as scene evaluation and
    training require (a label elsewhere on the ground would score wrong pixels).
    """
    with _open(label_path) as label, _open(scene_path) as scene:
        if (label.height, label.width) != (scene.height, scene.width):
            raise InvalidInputError(
                f"The label is {label.width}x{label.height} px but the scene is {scene.width}x{scene.height} px; "
                "choose the label made for this scene."
            )
        if label.count != 1:
            raise InvalidInputError(f"The label has {label.count} bands; it must have one (1 landslide, 0 background).")
        if label.crs and scene.crs and (label.crs != scene.crs or not label.transform.almost_equals(scene.transform)):
            raise InvalidInputError(
                "The label's CRS or transform differs from the scene's, so its pixels are elsewhere on the ground; "
                "warp it onto the scene's grid (gdalwarp) first."
            )


def _row_windows(height, width):
    for row in range(0, height, ROWS_PER_READ):
        yield Window(0, row, width, min(ROWS_PER_READ, height - row))


def threshold_metrics(prob_path, label_path, threshold):
    """Paper metrics (Precision, Recall, F1, IoU, mIoU) of a probability map against a label.

    Every pixel counts; rows are read in windows. Label 255 and probability
    nodata are left out.

    Returns:
        (metrics, counts): `metrics` from `gdcld_zoo.metrics`, `counts` a dict
        of `tp`, `fp`, `fn`, `tn` pixel counts.
    """
    code = threshold_code(threshold)
    cm = np.zeros((2, 2), "int64")
    with _open(prob_path) as prob, _open(label_path) as label:
        if (label.height, label.width) != (prob.height, prob.width):
            raise InvalidInputError(
                f"The label is {label.width}x{label.height} px but the map is {prob.width}x{prob.height} px."
            )
        for window in _row_windows(prob.height, prob.width):
            codes = read_pixels(prob, 1, window=window)
            values = read_pixels(label, 1, window=window, what="label")
            truth = label_to_mask(values, label.nodata, label.name).astype("int64")  # refuses 0.7 or 2
            truth[codes == NODATA] = NODATA
            cm += confusion_matrix(truth, codes >= code, num_classes=2, ignore_index=NODATA)
    counts = {"tn": int(cm[0, 0]), "fp": int(cm[0, 1]), "fn": int(cm[1, 0]), "tp": int(cm[1, 1])}
    return metrics_from_confusion_matrix(cm), counts


def rethreshold(prob_path, threshold, out_dir, min_area_m2=0.0):
    """Mask GeoTIFF and landslide polygons of a probability map at a new threshold, without the model.

    Writes `<stem>_mask.tif` (1 landslide, 0 background, 255 nodata) and
    `<stem>_landslides.geojson` to `out_dir`, where `<stem>` is the map's
    stem without `_prob`; both appear atomically.

    Returns:
        dict with `mask`, `landslides` (paths), `n_landslides`,
        `landslide_area` (in `units`) and `units` (`"m2"`, or `"px"` without CRS).
    """
    prob_path, out_dir = Path(prob_path), Path(out_dir)
    code = threshold_code(threshold)
    stem = prob_path.stem.removesuffix("_prob")
    out_dir.mkdir(parents=True, exist_ok=True)
    mask_path, geojson_path = out_dir / f"{stem}_mask.tif", out_dir / f"{stem}_landslides.geojson"
    files = AtomicFiles(mask_path, geojson_path)
    temp_mask, temp_geojson = files.temps
    try:
        with _open(prob_path) as prob:
            area = GroundArea(prob.crs, prob.transform, prob.width, prob.height)
            profile = output_profile(prob.width, prob.height, prob.crs, prob.transform, 1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.open(temp_mask, "w", **profile) as mask:
                    mask.set_band_description(1, "landslide (1), background (0), nodata (255)")
                    mask.update_tags(THRESHOLD=str(threshold))
                    for window in _row_windows(prob.height, prob.width):
                        codes = read_pixels(prob, 1, window=window)
                        out = (codes >= code).astype("uint8")
                        out[codes == NODATA] = NODATA
                        mask.write(out, 1, window=window)
        polygons = vectorize_mask(temp_mask, temp_geojson, area, min_area_m2)
        files.commit()
    except BaseException:
        files.discard()
        raise
    return {"mask": mask_path, "landslides": geojson_path, "n_landslides": polygons["n_landslides"],
            "landslide_area": polygons["area"], "units": area.units}


def read_landslides(geojson_path):
    """Landslides of a `predict_scene` GeoJSON as rows: id, area, pixels, centroid (lon, lat).

    Rows are sorted by area, largest first; the area key is `area_m2`
    (or `area_px` for scenes without CRS).
    """
    with open(geojson_path, encoding="utf-8") as file:
        features = json.load(file)["features"]
    rows = []
    for feature in features:
        props = feature["properties"]
        ring = np.asarray(feature["geometry"]["coordinates"][0][:-1], "float64")
        key = "area_m2" if "area_m2" in props else "area_px"
        rows.append({"id": props["id"], key: props[key], "pixels": props["pixels"],
                     "lon": round(float(ring[:, 0].mean()), 6), "lat": round(float(ring[:, 1].mean()), 6)})
    return sorted(rows, key=lambda r: -r.get("area_m2", r.get("area_px", 0)))


def area_frequency(areas, bins_per_decade=4):
    """Histogram of landslide areas in logarithmic bins (the area-frequency distribution).

    Args:
        areas: Landslide areas (m² or pixels), all > 0.
        bins_per_decade: Bins per factor of ten.

    Returns:
        list of (low, high, count) for every bin from the smallest to the
        largest area (empty list for no landslides).

    Example:
    >>> [(round(lo), round(hi), n) for lo, hi, n in area_frequency([1, 2, 20, 30], bins_per_decade=1)]
    [(1, 10, 2), (10, 100, 2)]
    """
    areas = np.asarray([a for a in areas if a > 0], "float64")
    if areas.size == 0:
        return []
    low = math.floor(np.log10(areas.min()) * bins_per_decade)
    high = max(low + 1, math.floor(np.log10(areas.max()) * bins_per_decade) + 1)
    edges = 10.0 ** (np.arange(low, high + 1) / bins_per_decade)
    counts, _ = np.histogram(areas, bins=edges)
    return [(float(a), float(b), int(n)) for a, b, n in zip(edges[:-1], edges[1:], counts)]
