"""Checks of a whole-scene run's inputs that need no model: every problem at once, in
seconds, instead of one per run after the model has loaded."""

from pathlib import Path

from gdcld_zoo.errors import GdcldZooError
from gdcld_zoo.scene.predictor import DEFAULT_OVERLAP
from gdcld_zoo.scene.source import check_bands_argument, open_scene, select_bands
from gdcld_zoo.scene.tiling import TileGrid


def weights_settings(weights, engine="keras"):
    """(preprocessing, default tile size, fixed input size) of weights, from their record or ONNX
    metadata alone; preprocessing is None for a `.keras` file no record describes."""
    from gdcld_zoo.weights.run import find_sidecar_record, read_run_record
    from gdcld_zoo.weights.sources import get_weights

    path = Path(str(weights)).expanduser()
    if engine == "onnx":
        from gdcld_zoo.export import read_onnx_metadata

        if not path.is_file():
            raise GdcldZooError(f"engine 'onnx' needs an existing .onnx file (made by `gdcld-zoo export`), got {weights!r}.")
        metadata = read_onnx_metadata(path)
        return metadata["preprocessing"], metadata["tile_size"], metadata["tile_size"]
    if path.is_dir():
        record = read_run_record(path)
    elif path.is_file():
        record = find_sidecar_record(path)
    else:
        record = get_weights(str(weights))
    return (record.preprocessing, record.tile_size, None) if record else (None, None, None)


def preflight(weights, scenes, engine="keras", tile_size=None, overlap=None, bands=None):
    """Every problem of a run's weights and settings, and of each scene, as one-line messages.

    Returns:
        (problems, bad_scenes): the messages (none: go ahead), and the scenes they name; a
        problem that names no scene (weights, settings) stops the whole run.

    Example:
    >>> preflight("demo", ["missing.tif"], tile_size=100)
    (['tile_size must be a positive multiple of 32, got 100.', 'missing.tif: no such file.'], ['missing.tif'])
    """
    problems, bad_scenes = [], []
    try:
        preprocessing, default_tile, input_size = weights_settings(weights, engine)
    except GdcldZooError as error:
        problems.append(str(error))
        preprocessing, default_tile, input_size = None, None, None
    tile = tile_size or input_size or default_tile
    if tile:
        if input_size and tile != input_size:
            problems.append(f"{weights} only takes {input_size}-pixel tiles; use --tile-size {input_size}.")
        overlap = min(DEFAULT_OVERLAP, tile // 4) if overlap is None else overlap
        try:
            TileGrid.for_scene(tile, tile, tile, overlap, multiple=None if input_size else 32)
        except GdcldZooError as error:
            problems.append(str(error))
    try:
        bands = check_bands_argument(bands)
    except GdcldZooError as error:
        problems.append(str(error))
        bands = None
    for scene in scenes:
        try:
            with open_scene(scene) as dataset:
                if preprocessing is not None:
                    select_bands(dataset, preprocessing, bands)
        except GdcldZooError as error:
            problems.append(str(error))
            bad_scenes.append(scene)
    return problems, bad_scenes
