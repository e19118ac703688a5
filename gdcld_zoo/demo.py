"""`run_demo`: the whole pipeline on a synthetic scene with the bundled `demo` weights.

The first thing a new user runs (`gdcld-zoo demo`), offline, on any machine:
write a synthetic georeferenced scene and its label with the landslide
generator (`gdcld_zoo.data.synthetic`), map it with `predict_scene("demo", ...)`
(probability and mask GeoTIFFs, GeoJSON polygons, summary JSON), and score the
mask against the label with the GDCLD paper's metrics (precision, recall, F1,
mIoU; Fang et al., 2024, eqs. 2-5).

The `demo` weights are a DEMONSTRATION model trained on synthetic scenes (see
`weights/train_demo.py`); they are not a landslide detector for real imagery.

Example:
>>> result = run_demo("demo_out", size=512)  # doctest: +SKIP
>>> round(result.metrics["f1"], 2)  # doctest: +SKIP
0.93
"""

import dataclasses
import time
from pathlib import Path

import numpy as np

from gdcld_zoo.errors import InvalidInputError

DEMO_TAG = "demo"
DEFAULT_SIZE = 1024
DEMO_SEED = 2024
# The scene is written at this ground resolution in UTM 47N (metres per pixel).
DEMO_RESOLUTION_M = 0.5
# Shown next to every result of the demo weights (CLI, viewer).
DEMO_NOTE = "demonstration model, synthetic training data"
WARNING = (
    f"Note: the 'demo' weights ({DEMO_NOTE}) are not a landslide detector for real imagery; "
    "train on GDCLD (`gdcld-zoo train`) or convert a PaddleSeg/transformers checkpoint for real maps."
)
# Rows of the mask and label compared at a time (memory stays bounded on big scenes).
_ROWS_PER_READ = 1024


@dataclasses.dataclass
class DemoResult:
    """What `run_demo` produced.

    Attributes:
        scene: The synthetic scene GeoTIFF.
        label: Its landslide label GeoTIFF (1 landslide, 0 background).
        outputs: `predict_scene` outputs: `{"prob.tif": Path, "mask.tif": ...,
            "landslides.geojson": ..., "summary.json": ...}`.
        summary: The content of the summary JSON (`n_landslides`,
            `landslide_area_km2`, ...).
        metrics: Precision, recall, F1, IoU, mIoU of the mask against the label.
        seconds: Wall time of writing, mapping and scoring the scene.
    """

    scene: Path
    label: Path
    outputs: dict
    summary: dict
    metrics: dict
    seconds: float


def mask_metrics(mask_path, label_path):
    """Paper metrics of a `predict_scene` mask GeoTIFF against a label GeoTIFF.

    Pixels that are nodata (255) in the mask or labelled 255 are left out.

    Returns:
        `gdcld_zoo.metrics.metrics_from_confusion_matrix` of the scene plus
        `confusion_matrix` ([[TN, FP], [FN, TP]]).
    """
    import rasterio
    from rasterio.windows import Window

    from gdcld_zoo.metrics import confusion_matrix, metrics_from_confusion_matrix

    matrix = np.zeros((2, 2), "int64")
    with rasterio.open(mask_path) as mask_file, rasterio.open(label_path) as label_file:
        if (mask_file.height, mask_file.width) != (label_file.height, label_file.width):
            raise InvalidInputError(
                f"{mask_path} is {mask_file.width}x{mask_file.height} but {label_path} is "
                f"{label_file.width}x{label_file.height}; compare a mask with the label of its scene."
            )
        for row in range(0, mask_file.height, _ROWS_PER_READ):
            window = Window(0, row, mask_file.width, min(_ROWS_PER_READ, mask_file.height - row))
            predicted = mask_file.read(1, window=window).astype("int64")
            truth = label_file.read(1, window=window).astype("int64")
            truth[predicted == 255] = 255
            matrix += confusion_matrix(truth, np.where(predicted == 255, 0, predicted), num_classes=2)
    return {**metrics_from_confusion_matrix(matrix), "confusion_matrix": matrix.tolist()}


def run_demo(out_dir, size=DEFAULT_SIZE, seed=DEMO_SEED, weights=DEMO_TAG, progress=False):
    """Write a synthetic scene, map its landslides with the demo weights, score the map.

    Args:
        out_dir: Output folder (created): `demo_scene.tif`, `demo_scene_label.tif`,
            and `predict_scene`'s `demo_scene_prob.tif`, `demo_scene_mask.tif`,
            `demo_scene_landslides.geojson`, `demo_scene_summary.json`.
        size: Scene side in pixels (at least 64).
        seed: Seed of the synthetic scene.
        weights: Weight tag, run folder or file (default the bundled `demo`).
        progress: Show `predict_scene`'s progress bar.

    Returns:
        A `DemoResult`.

    Example:
    >>> result = run_demo("demo_out", size=512)  # doctest: +SKIP
    >>> result.summary["n_landslides"] > 0  # doctest: +SKIP
    True
    """
    from gdcld_zoo.data.synthetic import write_synthetic_scene
    from gdcld_zoo.scene import predict_scene

    if not isinstance(size, int) or isinstance(size, bool) or size < 64:
        raise InvalidInputError(f"The demo scene size must be an integer of at least 64 pixels, got {size!r}.")
    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scene, label = write_synthetic_scene(
        out_dir / "demo_scene.tif", size, size, seed=seed, resolution_m=DEMO_RESOLUTION_M
    )
    result = predict_scene(weights, scene, out_dir, progress=progress)
    metrics = mask_metrics(result.outputs["mask.tif"], label)
    return DemoResult(scene, label, dict(result.outputs), result.summary, metrics, time.perf_counter() - start)
