"""Validate every image/label pair of a dataset before any training.

`check_dataset(root)` opens each file with rasterio and checks what would
otherwise fail (or silently mislead) hours into training: unreadable, corrupt
or truncated TIFFs, files named `.tif` that are another format (a PNG or JPEG
renamed), missing labels, labels without images, band count and dtype against
the `Preprocessing`, NaN or infinite pixels in float images, image/label size,
label values outside {0, 1, 255 or nodata}, and CRS/transform disagreement
between image and label.
It also summarises each split (tile count, positive-tile share, landslide-pixel
share, sizes, dtypes, CRSs), which is what `gdcld-zoo data check ROOT` prints.

Example:
>>> import tempfile
>>> from gdcld_zoo.data.synthetic import write_synthetic_dataset
>>> root = write_synthetic_dataset(tempfile.mkdtemp(), n_train=2, n_val=1, tile_size=32, seed=0)
>>> report = check_dataset(root)
>>> report.ok, report.splits["train"].num_tiles
(True, 2)
"""

import collections
import csv
import dataclasses
import warnings
from pathlib import Path

import numpy as np
from rasterio.errors import RasterioError

from gdcld_zoo.data.layout import SPLIT_NAMES, TIFF_SUFFIXES, DatasetLayoutError, index_split
from gdcld_zoo.data.reading import (
    IGNORE_INDEX,
    RasterReadError,
    band_problem,
    label_value_problem,
    non_finite_problem,
    open_raster,
    read_thread_pool,
    resolve_preprocessing,
)
from gdcld_zoo.errors import InvalidInputError


class BadTileError(InvalidInputError):
    """Image/label pairs that fail validation when a dataset is built or evaluated."""


@dataclasses.dataclass
class PairReport:
    """What `check_pair` found for one pair.

    Attributes:
        pair: The TilePair checked (`pair.image` is None for an orphan label).
        problems: One "<file>: <reason>" line per problem; empty when the pair is good.
        height, width, count, dtype, crs: Image properties (None when unreadable).
        landslide_pixels, labelled_pixels: Label pixels equal to 1 / equal to 0 or 1
            (None when the pixels were not read).
    """

    pair: object
    problems: list = dataclasses.field(default_factory=list)
    height: int | None = None
    width: int | None = None
    count: int | None = None
    dtype: str | None = None
    crs: str | None = None
    landslide_pixels: int | None = None
    labelled_pixels: int | None = None

    @property
    def ok(self):
        return not self.problems

    @property
    def positive(self):
        """Whether the label holds any landslide pixel (None when not read)."""
        return None if self.landslide_pixels is None else self.landslide_pixels > 0


def _open(path, what, report):
    try:
        src = open_raster(path, what)
    except RasterReadError as error:
        report.problems.append(str(error))
        return None
    if Path(path).suffix.lower() in TIFF_SUFFIXES and src.driver != "GTiff":
        report.problems.append(
            f"{path}: named {Path(path).suffix} but it is a {src.driver} file, not a GeoTIFF (renamed?); "
            "convert it with `gdal_translate -of GTiff` or give it its real extension"
        )
        src.close()
        return None
    return src


def _read(src, indexes, what, report):
    try:
        return src.read(indexes)
    except (RasterioError, OSError) as error:
        report.problems.append(f"{src.name}: cannot read {what} pixels (truncated?): {error}")
        return None


def _crs_name(crs):
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()


def check_pair(pair, preprocessing=None, read_pixels=True):
    """Check one `TilePair`; never raises for bad files, returns a `PairReport`.

    Args:
        pair: The TilePair.
        preprocessing: Band spec the images must match; None (or
            `Preprocessing()`) is strict 8-bit RGB (see `gdcld_zoo.data.reading`).
        read_pixels: Also decode every pixel (finds truncated files, label
            values and landslide shares); False only reads headers.
    """
    spec, strict = resolve_preprocessing(preprocessing)
    report = PairReport(pair=pair)
    if not Path(pair.image).is_file():
        report.problems.append(f"{pair.image}: image file does not exist")
        return report
    if pair.label is None:
        report.problems.append(f"{pair.image}: missing label (no label file with stem {pair.image.stem!r})")
    elif not Path(pair.label).is_file():
        report.problems.append(f"{pair.label}: label file does not exist (image {pair.image})")
    image = _open(pair.image, "image", report)
    if image is None:
        return report
    with image:
        report.height, report.width, report.count = image.height, image.width, image.count
        report.dtype, report.crs = image.dtypes[0], _crs_name(image.crs)
        problem = band_problem(image.count, image.dtypes[0], spec, strict)
        if problem:
            report.problems.append(f"{pair.image}: {problem}")
        elif read_pixels:
            pixels = _read(image, list(spec.bands), "image", report)
            problem = None if pixels is None else non_finite_problem(pair.image, pixels)
            if problem:
                report.problems.append(problem)
        if report.problems or pair.label is None:
            return report
        label = _open(pair.label, "label", report)
        if label is None:
            return report
        with label:
            _check_label(pair, image, label, report, read_pixels)
    return report


def _check_label(pair, image, label, report, read_pixels):
    where = f"{pair.label}"
    # Decode first: a truncated file can also lose its georeferencing tags, and
    # "truncated" is the reason to report, not the CRS that went missing with them.
    values = _read(label, 1, "label", report) if read_pixels else None
    if report.problems:
        return
    if label.count != 1:
        report.problems.append(f"{where}: label has {label.count} bands, expected 1")
    if (label.height, label.width) != (image.height, image.width):
        report.problems.append(
            f"{where}: label is {label.height}x{label.width} but image is {image.height}x{image.width}"
        )
    if (label.crs is None) != (image.crs is None) or (label.crs and label.crs != image.crs):
        report.problems.append(
            f"{where}: label CRS {_crs_name(label.crs)} differs from image CRS {_crs_name(image.crs)}"
        )
    elif image.crs is not None and not label.transform.almost_equals(image.transform):
        report.problems.append(
            f"{where}: label transform {tuple(label.transform)[:6]} differs from image "
            f"transform {tuple(image.transform)[:6]}"
        )
    if values is None or report.problems:
        return
    allowed = np.isin(values, [0, 1, IGNORE_INDEX])
    if label.nodata is not None and not np.isnan(label.nodata):
        allowed |= values == label.nodata
    if not allowed.all():
        report.problems.append(f"{where}: {label_value_problem(np.unique(values[~allowed]))}")
        return
    labelled = (values == 0) | (values == 1)
    if label.nodata is not None and not np.isnan(label.nodata):
        labelled &= values != label.nodata
    report.landslide_pixels = int((labelled & (values == 1)).sum())
    report.labelled_pixels = int(labelled.sum())


@dataclasses.dataclass
class SplitReport:
    """Per-pair reports of one split plus its summary figures."""

    split: str
    pairs: list

    @property
    def num_tiles(self):
        return len(self.pairs)

    @property
    def bad(self):
        return [r for r in self.pairs if not r.ok]

    @property
    def positive_tile_share(self):
        read = [r for r in self.pairs if r.positive is not None]
        return sum(r.positive for r in read) / len(read) if read else None

    @property
    def landslide_pixel_share(self):
        read = [r for r in self.pairs if r.labelled_pixels]
        total = sum(r.labelled_pixels for r in read)
        return sum(r.landslide_pixels for r in read) / total if total else None

    def counts(self, field):
        """Counter of an image property ("size", "dtype", "crs", "count") over readable tiles."""
        if field == "size":
            values = [f"{r.height}x{r.width}" for r in self.pairs if r.height is not None]
        else:
            values = [str(getattr(r, field)) for r in self.pairs if r.height is not None]
        return collections.Counter(values)


@dataclasses.dataclass
class DatasetReport:
    """The `SplitReport` of every split checked."""

    root: Path
    splits: dict

    @property
    def ok(self):
        return all(not s.bad for s in self.splits.values())

    @property
    def bad(self):
        return [r for s in self.splits.values() for r in s.bad]


def _present_splits(root):
    root = Path(root)
    if root.is_file():
        try:
            with open(root, newline="", encoding="utf-8-sig") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError, csv.Error):
            return [None]  # index_split reports why the manifest cannot be read
        names = [(r.get("split") or "").strip() for r in rows]
        ordered = list(dict.fromkeys(n for n in names if n))
        return ordered or [None]
    found = [s for s, aliases in SPLIT_NAMES.items() if any((root / a).is_dir() for a in aliases)]
    return found or [None]


def check_pairs(pairs, preprocessing=None, read_pixels=True, jobs=4):
    """`check_pair` for each pair, in `jobs` threads (rasterio releases the GIL), in order."""
    with read_thread_pool(jobs) as pool:
        return list(pool.map(lambda p: check_pair(p, preprocessing, read_pixels), pairs))


def validate_pairs(pairs, preprocessing=None, read_pixels=True, on_bad="raise", jobs=4, hint=""):
    """The reports of the good pairs; bad ones raise `BadTileError` (or are skipped with a warning).

    The one validation every entry point (training, evaluation) runs before it
    reads a batch. `hint` is appended to the advice of the error.
    """
    reports = check_pairs(pairs, preprocessing, read_pixels, max(1, jobs))
    bad = [r for r in reports if not r.ok]
    if bad:
        problems = [p.rstrip(".") for r in bad for p in r.problems]
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        if on_bad == "raise":
            raise BadTileError(
                f"{len(bad)} of {len(pairs)} tile pairs are bad: {shown}. Fix them (see "
                f"`gdcld-zoo data check ROOT`){hint}."
            )
        warnings.warn(f"Skipping {len(bad)} of {len(pairs)} bad tile pairs: {shown}.", stacklevel=3)
    good = [r for r in reports if r.ok]
    if not good:
        raise BadTileError(f"No usable tile pairs left out of {len(pairs)}.")
    return good


def check_split(root, split, preprocessing=None, read_pixels=True, jobs=4):
    """Check every pair of one split."""
    index = index_split(root, split)
    reports = check_pairs(index.pairs, preprocessing, read_pixels, max(1, jobs))
    for label in index.orphan_labels:
        reports.append(PairReport(pair=None, problems=[f"{label}: label has no image with the same stem"]))
    return SplitReport(split=split or "all", pairs=reports)


def check_dataset(root, splits=None, preprocessing=None, read_pixels=True, jobs=4):
    """Check every split of a dataset root (or CSV manifest).

    Args:
        root: Dataset root, split folder or CSV manifest.
        splits: Split names to check; None checks the train/val/test folders
            present (or the manifest's `split` values).
        preprocessing: Band spec images must match; None is strict 8-bit RGB.
        read_pixels: Decode every pixel (label values, truncation, shares).
        jobs: Reader threads.

    Returns:
        A `DatasetReport`.
    """
    names = list(splits) if splits else _present_splits(root)
    reports = {}
    for name in names:
        report = check_split(root, name, preprocessing, read_pixels, jobs)
        reports[report.split] = report
    if not reports:
        raise DatasetLayoutError(f"No splits found in {root}.")
    return DatasetReport(root=Path(root), splits=reports)


def _share(value):
    return "-" if value is None else f"{100 * value:.2f}%"


def _counter(counter):
    return ", ".join(f"{k} ({v})" for k, v in counter.most_common()) or "-"


def format_report(report):
    """The human-readable summary `gdcld-zoo data check` prints."""
    lines = [f"dataset {report.root}"]
    for split in report.splits.values():
        lines += [
            f"[{split.split}] {split.num_tiles} tiles, {len(split.bad)} bad",
            f"  positive tiles: {_share(split.positive_tile_share)}   "
            f"landslide pixels: {_share(split.landslide_pixel_share)}",
            f"  sizes: {_counter(split.counts('size'))}",
            f"  dtypes: {_counter(split.counts('dtype'))}   bands: {_counter(split.counts('count'))}",
            f"  CRS: {_counter(split.counts('crs'))}",
        ]
    bad = report.bad
    if bad:
        lines.append(f"{sum(len(r.problems) for r in bad)} problem(s) in {len(bad)} pair(s):")
        lines += [f"  BAD {problem}" for r in bad for problem in r.problems]
    else:
        lines.append("all pairs OK")
    return "\n".join(lines)
