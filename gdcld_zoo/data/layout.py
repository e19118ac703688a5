"""Find the image/label tile pairs of a GDCLD-style dataset on disk.

GDCLD (Fang et al., 2024, section 8) ships `train_dataset.zip`, `val_dataset.zip`
and `test_dataset.zip`: RGB GeoTIFF images and binary label GeoTIFFs (0
background, 1 landslide). Two ways to point the pipeline at such data:

* A folder layout: a root with one folder per split (`train`, `val`, `test`;
  `train_dataset`, `validation`, ... are accepted too), each holding an image
  folder (`images`, `image` or `img`) and a label folder (`labels`, `label`,
  `masks`, `mask` or `gt`). Images and labels are paired by file stem; `.tif`
  and `.tiff` are both read. A root that itself holds the image and label
  folders is one split.
* A CSV manifest with columns `image,label` and optionally `event`, `sensor`,
  `resolution_m` and `split`. Relative paths are resolved against the folder of
  the CSV. The optional columns carry the per-tile metadata that evaluation
  groups metrics by (paper Tables 6-8); a manifest without a `split` column is
  a single split and all its rows are used.

Example:
>>> import tempfile
>>> from gdcld_zoo.data.synthetic import write_synthetic_dataset
>>> root = write_synthetic_dataset(tempfile.mkdtemp(), n_train=2, n_val=1, tile_size=32, seed=0)
>>> [p.image.name for p in tile_pairs(root, "train")]
['tile_00000.tif', 'tile_00001.tif']
"""

import csv
import dataclasses
import math
from pathlib import Path

from gdcld_zoo.errors import InvalidInputError

IMAGE_DIR_NAMES = ("images", "image", "img")
LABEL_DIR_NAMES = ("labels", "label", "masks", "mask", "gt")
TIFF_SUFFIXES = (".tif", ".tiff")
SPLIT_NAMES = {
    "train": ("train", "training", "train_dataset", "train_data"),
    "val": ("val", "valid", "validation", "val_dataset", "val_data"),
    "test": ("test", "testing", "test_dataset", "test_data"),
}
MANIFEST_COLUMNS = ("image", "label", "event", "sensor", "resolution_m", "split")


class DatasetLayoutError(InvalidInputError):
    """A dataset root, split folder or manifest that cannot be read."""


@dataclasses.dataclass(frozen=True)
class TilePair:
    """One image tile and its label, with the metadata evaluation groups by.

    Attributes:
        image: Path of the image GeoTIFF.
        label: Path of the label GeoTIFF, or None when no label was found.
        event: Event name (e.g. "Luding 2022"), or None when unknown.
        sensor: Sensor name (e.g. "PlanetScope"), or None when unknown.
        resolution_m: Ground sampling distance in metres, or None when unknown.
    """

    image: Path
    label: Path | None
    event: str | None = None
    sensor: str | None = None
    resolution_m: float | None = None

    @property
    def name(self):
        """The tile's name: the image file stem."""
        return self.image.stem


@dataclasses.dataclass(frozen=True)
class SplitIndex:
    """The pairs of one split plus label files that have no image."""

    pairs: tuple[TilePair, ...]
    orphan_labels: tuple[Path, ...] = ()


def _child_dir(folder, names):
    for name in names:
        for child in (folder / name, folder / name.upper(), folder / name.capitalize()):
            if child.is_dir():
                return child
    return None


def _tiffs(folder):
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in TIFF_SUFFIXES)


def _split_dir(root, split):
    if _child_dir(root, IMAGE_DIR_NAMES) is not None:
        return root
    if split is None:
        raise DatasetLayoutError(
            f"{root} has no image folder ({'|'.join(IMAGE_DIR_NAMES)}); pass a split "
            f"name such as 'train' to read {root}/train."
        )
    candidates = SPLIT_NAMES.get(split, (split,))
    found = _child_dir(root, candidates)
    if found is None:
        present = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise DatasetLayoutError(
            f"No folder for split {split!r} in {root} (looked for {', '.join(candidates)}; "
            f"found {', '.join(present) or 'no folders'}). Point ROOT at the folder "
            "that holds the train/val/test folders, or pass a CSV manifest."
        )
    return found


def _folder_index(root, split):
    folder = _split_dir(root, split)
    image_dir = _child_dir(folder, IMAGE_DIR_NAMES)
    label_dir = _child_dir(folder, LABEL_DIR_NAMES)
    if image_dir is None:
        raise DatasetLayoutError(
            f"{folder} has no image folder; expected one of {', '.join(IMAGE_DIR_NAMES)}."
        )
    images = _tiffs(image_dir)
    if not images:
        raise DatasetLayoutError(f"{image_dir} holds no .tif/.tiff files.")
    labels = {p.stem: p for p in _tiffs(label_dir)} if label_dir is not None else {}
    pairs = tuple(TilePair(image=p, label=labels.pop(p.stem, None)) for p in images)
    return SplitIndex(pairs=pairs, orphan_labels=tuple(sorted(labels.values())))


def _optional(row, key, convert=str):
    value = (row.get(key) or "").strip()
    if not value:
        return None
    try:
        return convert(value)
    except ValueError:
        raise DatasetLayoutError(f"Manifest column {key!r} holds {value!r}, not a number.") from None


def _manifest_index(path, split):
    base = path.parent
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            rows = [{k.strip(): v for k, v in row.items() if k is not None} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetLayoutError(f"Cannot read manifest {path}: {error}.") from None
    missing = [c for c in ("image", "label") if c not in columns]
    if missing:
        raise DatasetLayoutError(
            f"Manifest {path} lacks column(s) {missing}; expected a header "
            f"'image,label[,event,sensor,resolution_m,split]', got {columns}."
        )
    if "split" in columns and split is not None:
        known = sorted({(r.get("split") or "").strip() for r in rows})
        rows = [r for r in rows if (r.get("split") or "").strip() == split]
        if not rows:
            raise DatasetLayoutError(
                f"Manifest {path} has no rows with split {split!r}; splits present: {known}."
            )
    if not rows:
        raise DatasetLayoutError(f"Manifest {path} has no rows.")
    pairs = []
    for row in rows:
        image = (row.get("image") or "").strip()
        if not image:
            raise DatasetLayoutError(f"Manifest {path} has a row without an image path: {row}.")
        label = (row.get("label") or "").strip()
        resolution = _optional(row, "resolution_m", float)
        pairs.append(
            TilePair(
                image=(base / image).resolve(),
                label=(base / label).resolve() if label else None,
                event=_optional(row, "event"),
                sensor=_optional(row, "sensor"),
                resolution_m=None if resolution is None or math.isnan(resolution) else resolution,
            )
        )
    return SplitIndex(pairs=tuple(pairs))


def index_split(root, split=None):
    """The tile pairs of one split and the label files that match no image.

    Args:
        root: Dataset root folder, a split folder, or a CSV manifest.
        split: "train", "val", "test" (or any folder name); for a manifest with a
            `split` column, the rows to keep. None reads a split folder or a whole
            manifest.

    Returns:
        A `SplitIndex`; images without a label have `label=None`.
    """
    root = Path(root).expanduser()
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise DatasetLayoutError(
                f"{root} is a file but not a CSV manifest; pass the dataset folder or a .csv."
            )
        return _manifest_index(root, split)
    if not root.is_dir():
        raise DatasetLayoutError(f"Dataset root {root} does not exist.")
    return _folder_index(root, split)


def tile_pairs(root, split=None):
    """The `TilePair`s (image, label, event, sensor, resolution_m) of one split.

    This is how evaluation finds each tile's event and sensor to group metrics
    by; `make_dataset(..., with_metadata=True)` yields the same fields per tile.
    """
    return list(index_split(root, split).pairs)


def write_manifest(path, pairs, splits=None):
    """Write a CSV manifest for `pairs` (paths relative to the CSV's folder).

    Args:
        path: Destination .csv file.
        pairs: TilePairs to list.
        splits: Optional split name per pair, written as a `split` column.
    """
    path = Path(path)
    base = path.parent.resolve()

    def rel(p):
        p = Path(p).resolve()
        try:
            return p.relative_to(base).as_posix()
        except ValueError:
            return p.as_posix()

    columns = list(MANIFEST_COLUMNS if splits is not None else MANIFEST_COLUMNS[:-1])
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for i, pair in enumerate(pairs):
            row = [
                rel(pair.image),
                rel(pair.label) if pair.label is not None else "",
                pair.event or "",
                pair.sensor or "",
                "" if pair.resolution_m is None else f"{pair.resolution_m:g}",
            ]
            if splits is not None:
                row.append(splits[i])
            writer.writerow(row)
    tmp.replace(path)
    return path
