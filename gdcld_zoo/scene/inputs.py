"""Scenes for interactive tools: a confined data folder, checked uploads, a demo scene, progress.

The viewer (`apps/viewer.py`) lets people pick scenes from a folder the
operator chose (`--data DIR`) or upload them. A web page must never reach a
file outside that folder, so `DataFolder` lists only regular raster files
inside it and refuses any name that resolves elsewhere (`..`, absolute paths,
symbolic links leading out). Uploads are size-limited, stored by content hash
and opened with rasterio before anything else sees them, so a bad file becomes
one `SceneError` line instead of a crash.

Example:
>>> import tempfile
>>> folder = DataFolder(tempfile.mkdtemp())
>>> folder.scenes()
[]
>>> folder.resolve("../etc/passwd")
Traceback (most recent call last):
...
gdcld_zoo.scene.source.SceneError: '../etc/passwd' is outside the data folder; choose a file listed in it.
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

from gdcld_zoo.errors import GdcldZooError, InvalidInputError
from gdcld_zoo.files import atomic_path, publish, temporary_path
from gdcld_zoo.scene.engines import Engine
from gdcld_zoo.scene.source import SceneError, open_scene

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img")
LABEL_SUFFIX = "_label"
# Largest upload accepted, in bytes (Streamlit's own default limit is 200 MB).
MAX_UPLOAD_BYTES = 200 * 1024**2
DEMO_SHAPE = (768, 1024)
# What a `predict` summary must hold for the viewer to show its result (`DataFolder.result`).
RESULT_KEYS = ("scene", "model_tag", "threshold", "bands", "tile_size", "overlap", "timings_s")
RESULT_OUTPUTS = ("prob.tif", "landslides.geojson", "summary.json")
DEMO_SEED = 7


class DataFolder:
    """The raster files inside one folder (recursively), and nothing outside it.

    Args:
        root: The folder; must exist.
    """

    def __init__(self, root):
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise InvalidInputError(f"Data folder {root} does not exist or is not a folder.")

    def _rasters(self):
        found = []
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                path = Path(folder) / name
                if name.startswith(".") or not name.lower().endswith(RASTER_SUFFIXES):
                    continue
                if self._inside(path):
                    found.append(path.relative_to(self.root).as_posix())
        return sorted(found)

    def _inside(self, path):
        resolved = Path(path).resolve()
        return resolved.is_file() and resolved.is_relative_to(self.root)

    def scenes(self):
        """Relative names of the scenes (rasters not named `*_label.*`), sorted."""
        return [name for name in self._rasters() if not Path(name).stem.endswith(LABEL_SUFFIX)]

    def _matching(self, pattern):
        """Relative names of the files matching `pattern` anywhere in the folder, hidden parts skipped, sorted."""
        return [path.relative_to(self.root).as_posix() for path in sorted(self.root.rglob(pattern))
                if not any(part.startswith(".") for part in path.relative_to(self.root).parts) and self._inside(path)]

    def results(self):
        """Relative names of the `<stem>_summary.json` files `gdcld-zoo predict` wrote in the folder."""
        return self._matching("*_summary.json")

    def inventories(self):
        """Relative names of the GeoPackages in the folder (`inventory.gpkg` that `gdcld-zoo predict` wrote)."""
        return self._matching("*.gpkg")

    def result(self, name):
        """A `predict` result by its summary JSON `name`: `{"outputs": {kind: absolute path}, "summary": dict}`.

        Raises:
            SceneError: Not a summary `predict` wrote (bad JSON, no `outputs`), or an
                output it names is missing or outside the folder.
        """
        path = self.resolve(name)
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
            files = {kind: str(file) for kind, file in summary["outputs"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise SceneError(f"{name} is not a summary that gdcld-zoo predict wrote ({type(error).__name__}: "
                             f"{error}); choose a <scene>_summary.json next to its _prob.tif.") from None
        missing = [key for key in RESULT_KEYS if key not in summary]
        missing += [f"outputs.{kind}" for kind in RESULT_OUTPUTS if kind not in files]
        if missing:
            raise SceneError(f"{name} has no {', '.join(missing)}; it is not a summary that gdcld-zoo predict wrote.")
        folder = Path(name).parent
        return {"outputs": {kind: str(self.resolve(folder / file)) for kind, file in files.items()}, "summary": summary}

    def results_beside(self, name):
        """The `results()` in the same folder as the file `name` (the scenes of an event's inventory)."""
        return [result for result in self.results() if Path(result).parent == Path(name).parent]

    def labels(self):
        """Relative names of every raster that may serve as a label, `*_label.*` first."""
        rasters = self._rasters()
        return sorted(rasters, key=lambda n: (not Path(n).stem.endswith(LABEL_SUFFIX), n))

    def label_for(self, scene):
        """The relative name of `<stem>_label.<ext>` next to `scene` if it exists, else None."""
        stem = Path(scene).stem
        for name in self._rasters():
            if Path(name).parent == Path(scene).parent and Path(name).stem == stem + LABEL_SUFFIX:
                return name
        return None

    def resolve(self, name):
        """The absolute path of a file listed in the folder; `SceneError` for anything else."""
        candidate = (self.root / str(name)).resolve()
        if not candidate.is_relative_to(self.root):
            raise SceneError(f"{str(name)!r} is outside the data folder; choose a file listed in it.")
        if not candidate.is_file():
            raise SceneError(f"{str(name)!r} is not a file in the data folder {self.root}.")
        return candidate


def save_upload(name, data, folder, max_bytes=None, check=None):
    """Store uploaded bytes under `folder/<sha256[:16]>/<name>` and check they are a raster (or what `check` opens).

    Args:
        name: The uploaded file's name (only its final component is used).
        data: Its bytes.
        folder: Where uploads are kept.
        max_bytes: Size limit; default `MAX_UPLOAD_BYTES`.
        check: Opens the stored path and raises a `GdcldZooError` when it is unusable
            (e.g. `gdcld_zoo.event.inventory.read_inventory`); default: it must be a raster.

    Returns:
        The stored path (the same path for the same content).

    Raises:
        SceneError: Too large, empty, or not a raster rasterio can read.
        GdcldZooError: What `check` raises (the stored file is removed).
    """
    limit = MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
    if len(data) > limit:
        raise SceneError(
            f"{name}: {len(data):,} bytes is above the upload limit of {limit:,} bytes "
            f"({limit / 1024**2:g} MB); put the scene in the data folder (--data DIR) instead."
        )
    safe_name = Path(str(name)).name.lstrip(".") or "upload.tif"
    target = Path(folder) / hashlib.sha256(data).hexdigest()[:16] / safe_name
    if not target.is_file():
        with atomic_path(target) as temporary:
            temporary.write_bytes(data)
    try:
        if check is None:
            open_scene(target).close()
        else:
            check(target)
    except GdcldZooError as error:
        target.unlink(missing_ok=True)  # a rejected upload is not kept
        _remove_empty(target.parent)
        kind = SceneError if isinstance(error, SceneError) else InvalidInputError
        raise kind(str(error).replace(str(target), safe_name)) from None
    return target


def _remove_empty(folder):
    try:
        folder.rmdir()
    except OSError:
        pass  # another upload shares it


def scene_info(path):
    """Size, bands, dtypes, CRS and resolution of a raster, for display."""
    with open_scene(path) as dataset:
        return {
            "width": dataset.width,
            "height": dataset.height,
            "bands": dataset.count,
            "dtypes": sorted(set(dataset.dtypes)),
            "colour_interpretation": [c.name for c in dataset.colorinterp],
            "crs": dataset.crs.to_string() if dataset.crs else None,
            "resolution": tuple(abs(r) for r in dataset.res),
        }


def demo_scene(folder, shape=None, seed=DEMO_SEED):
    """A synthetic RGB scene and its label in `folder` (written once, then reused).

    Returns:
        (scene_path, label_path).
    """
    from gdcld_zoo.data.synthetic import write_synthetic_scene

    height, width = shape or DEMO_SHAPE
    folder = Path(folder)
    scene = folder / f"demo_{height}x{width}_seed{seed}.tif"
    label = folder / f"demo_{height}x{width}_seed{seed}{LABEL_SUFFIX}.tif"
    if not (scene.is_file() and label.is_file()):
        folder.mkdir(parents=True, exist_ok=True)
        temp = temporary_path(folder / scene.stem)  # unique: two sessions may write it at once
        temp.mkdir()
        try:
            written, written_label = write_synthetic_scene(temp / scene.name, height, width,
                                                           label_path=temp / label.name, seed=seed)
            publish(written_label, label)
            publish(written, scene)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
    return scene, label


class ProgressEngine(Engine):
    """Wraps an engine and calls `callback(tiles_done)` after every batch it predicts.

    Lets a user interface show a progress bar without the predictor knowing
    about it; the wrapped engine's attributes are passed through.
    """

    def __init__(self, engine, callback):
        self.engine, self.callback = engine, callback
        self.tiles_done = 0
        for name in ("preprocessing", "threshold", "tag", "tile_size", "input_size"):
            setattr(self, name, getattr(engine, name))

    def predict(self, raw):
        probs = self.engine.predict(raw)
        self.tiles_done += len(raw)
        self.callback(self.tiles_done)
        return probs
