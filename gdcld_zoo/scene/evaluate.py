"""Paper metrics over whole scenes against label GeoTIFFs (GDCLD's test protocol).

The GDCLD test set is seven whole post-earthquake scenes (Fang et al., 2024,
section 4). `evaluate_scenes` maps each scene with the same sliding-window
predictor as `predict_scene` and compares it, strip by strip, with a label
GeoTIFF on the same grid, accumulating one confusion matrix per scene and one
over all scenes (`gdcld_zoo.metrics`): precision, recall, F1, IoU and mIoU of
eqs. 2-5. Nothing is written and no scene is held in memory.

A label must lie on the scene's grid: same size and, when both are
georeferenced, the same CRS and transform (as training requires of tiles).
Label pixels 255, the label's nodata value and nodata pixels of the scene are
ignored; any other label value than 0 or 1 (a float label with 0.7, a 2) is an
error naming the values, found before any scene is predicted: every label is
read once, strip by strip, and checked with the rules of training labels
(`gdcld_zoo.data.reading.label_to_mask`).

Example:
>>> report = evaluate_scenes("demo", ["luding.tif:luding_label.tif"])  # doctest: +SKIP
>>> round(report["overall"]["f1"], 3)  # doctest: +SKIP
0.874
"""

from pathlib import Path

import numpy as np
from rasterio.windows import Window

from gdcld_zoo.data.reading import RasterReadError, label_to_mask
from gdcld_zoo.scene.predictor import SlidingWindowPredictor
from gdcld_zoo.scene.source import SceneError, open_scene, read_pixels

IGNORE = 255
# Label rows read at a time when labels are checked before any scene is predicted.
LABEL_CHECK_ROWS = 1024


def parse_scene_pairs(pairs):
    """`[(scene, label), ...]` from `"SCENE:LABEL"` strings or pairs."""
    result = []
    for pair in pairs:
        if isinstance(pair, str):
            if ":" not in pair:
                raise SceneError(f"Expected SCENE:LABEL (a scene and its label GeoTIFF), got {pair!r}.")
            pair = pair.rsplit(":", 1)
        scene, label = pair
        result.append((Path(scene), Path(label)))
    if not result:
        raise SceneError("No scenes to evaluate; pass at least one SCENE:LABEL.")
    return result


def _read_label(label_file, row, width, rows):
    """Rows of a label as a uint8 mask (0, 1, 255 ignored); unreadable files and bad values raise `SceneError`."""
    label = read_pixels(label_file, 1, window=Window(0, row, width, rows), what="label")
    try:
        return label_to_mask(label, label_file.nodata, label_file.name)
    except RasterReadError as error:
        raise SceneError(str(error)) from None


def _check_label(scene, label_path, run):
    """Refuse a label not on the scene's grid or holding values other than 0, 1, 255 and nodata."""
    with open_scene(label_path) as label_file:
        if (label_file.height, label_file.width) != (run.height, run.width):
            raise SceneError(
                f"{label_path}: label is {label_file.width}x{label_file.height} but scene {scene} is "
                f"{run.width}x{run.height}; labels must be on the scene's grid."
            )
        if run.crs and label_file.crs and (label_file.crs != run.crs or not label_file.transform.almost_equals(run.transform)):
            raise SceneError(
                f"{label_path}: the label's CRS or transform differs from scene {scene}'s, so its pixels are "
                "elsewhere on the ground; warp it onto the scene's grid (gdalwarp) first."
            )
        for row in range(0, run.height, LABEL_CHECK_ROWS):
            _read_label(label_file, row, run.width, min(LABEL_CHECK_ROWS, run.height - row))


def evaluate_scenes(model_or_tag, scenes, tile_size=None, overlap=None, batch_size=4, threshold=None,
                    tta=False, bands=None, engine="keras", progress=True):
    """Precision, recall, F1, IoU and mIoU of a model over whole labelled scenes.

    Args:
        model_or_tag: As for `predict_scene` (model, tag, run folder, file, engine).
        scenes: `"SCENE:LABEL"` strings or `(scene, label)` pairs; each label is
            a single-band GeoTIFF of the scene's size (0, 1, 255 = ignored).
        tile_size, overlap, batch_size, tta, bands, engine, progress: As for
            `predict_scene`.
        threshold: Landslide probability threshold. Default: the weights'.

    Returns:
        dict with `model_tag`, `threshold`, `scenes` (per scene: paths,
        `confusion_matrix` [[TN, FP], [FN, TP]] and metrics) and `overall`
        (metrics of the summed confusion matrix) plus `confusion_matrix`.
    """
    from gdcld_zoo.metrics import confusion_matrix, metrics_from_confusion_matrix

    predictor = SlidingWindowPredictor(model_or_tag, tile_size=tile_size, overlap=overlap,
                                       batch_size=batch_size, tta=tta, engine_name=engine, progress=progress)
    threshold = predictor.engine.threshold if threshold is None else float(threshold)
    total = np.zeros((2, 2), "int64")
    per_scene = []
    pairs = parse_scene_pairs(scenes)
    runs = [predictor.prepare(scene, bands) for scene, _ in pairs]
    for (scene, label_path), run in zip(pairs, runs):
        _check_label(scene, label_path, run)
    for (scene, label_path), run in zip(pairs, runs):
        matrix = np.zeros((2, 2), "int64")
        with open_scene(label_path) as label_file:
            for strip in predictor.strips(scene, run=run):
                rows = strip.prob.shape[0]
                truth = _read_label(label_file, strip.row_offset, run.width, rows).astype("int64")
                truth[~strip.valid] = IGNORE
                predicted = (strip.prob >= threshold).astype("int64")
                matrix += confusion_matrix(truth, predicted, num_classes=2, ignore_index=IGNORE)
        total += matrix
        per_scene.append({
            "scene": str(scene),
            "label": str(label_path),
            "confusion_matrix": matrix.tolist(),
            **metrics_from_confusion_matrix(matrix),
        })
    return {
        "model_tag": predictor.engine.tag,
        "threshold": threshold,
        "scenes": per_scene,
        "confusion_matrix": total.tolist(),
        "overall": metrics_from_confusion_matrix(total),
    }


SCENE_TABLE = (("precision", "Precision"), ("recall", "Recall"), ("f1", "F1"), ("miou", "mIoU"))


def format_scene_report(report):
    """`evaluate_scenes` output as a text table in %, one row per scene and an Overall row."""
    rows = [["Scene"] + [title for _, title in SCENE_TABLE]]
    for scene in report["scenes"]:
        rows.append([Path(scene["scene"]).name] + [f"{100 * scene[k]:.2f}" for k, _ in SCENE_TABLE])
    rows.append(["Overall"] + [f"{100 * report['overall'][k]:.2f}" for k, _ in SCENE_TABLE])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"{report['model_tag']} on {len(report['scenes'])} scene(s) (threshold {report['threshold']:g})"]
    for n, row in enumerate(rows):
        lines.append("  ".join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]))
        if n == 0 or n == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
