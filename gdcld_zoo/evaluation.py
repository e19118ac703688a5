"""Evaluate a model on a GDCLD split: the paper's tables, overall and per group.

Fang et al. report Precision, Recall, F1 and mIoU on the validation set
(Table 4), the test events (Table 5) and per event and image type (Table 6).
`evaluate` computes exactly those numbers: each tile is read raw with rasterio
(`gdcld_zoo.data.read_pair`) after the same pair validation training
runs (`gdcld_zoo.data.checks.validate_pairs`), predicted through `gdcld_zoo.predict_tile` (the
model's own preprocessing), thresholded at the weights' decision threshold,
and counted into one confusion matrix per group and one overall: metrics of
a group are never means of tile metrics. Pixels labelled 255 or nodata are
left out.
"""

import csv
import io
import json

import numpy as np

from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.inference import predict_tile
from gdcld_zoo.metrics import confusion_matrix, metrics_from_confusion_matrix

GROUP_FIELDS = ("event", "sensor", "resolution_m")
TABLE_METRICS = (("precision", "Precision (%)"), ("recall", "Recall (%)"), ("f1", "F1 (%)"), ("miou", "mIoU (%)"))
REPORTED = ("precision", "recall", "f1", "iou", "iou_background", "miou")


def _model_defaults(model):
    from gdcld_zoo.weights import get_weight_record

    record = get_weight_record(model)
    if record is None:
        return None, 0.5, model.name
    return record.preprocessing, float(record.threshold), record.tag


def _scores(cm, tiles):
    values = metrics_from_confusion_matrix(cm)
    return {
        **{k: values[k] for k in REPORTED},
        "tiles": tiles,
        "pixels": int(cm.sum()),
        "confusion_matrix": cm.astype(int).tolist(),
    }


def evaluate(model, root, split="val", by=(), batch_size=4, threshold=None, preprocessing=None, jobs=4):
    """Precision, recall, F1, IoU and mIoU of `model` on one split, overall and per group.

    Args:
        model: A zoo model (ideally from `load_pretrained`, which carries its
            preprocessing and threshold).
        root: Dataset root, split folder or CSV manifest (`gdcld_zoo.data.layout`).
        split: Split to evaluate (`val`, `test`, ...).
        by: Tile fields to group by (`event`, `sensor`, `resolution_m`); one
            group per combination, as paper Table 6 lists event and image type.
        batch_size: Tiles per model call (tiles of equal size are batched).
        threshold: Landslide probability threshold; default the weights' (0.5).
        preprocessing: Override of the model's `Preprocessing`.
        jobs: Threads reading tiles.

    Returns:
        `{"model", "split", "threshold", "tiles", "overall": {...}, "groups": [...]}`;
        `overall` and each group hold `precision`, `recall`, `f1`, `iou`,
        `iou_background`, `miou` (fractions), `tiles`, `pixels` and the
        confusion matrix; each group also holds its `by` field values.

    Example:
    >>> report = evaluate(load_pretrained("demo"), "GDCLD", "val", by=("event",))  # doctest: +SKIP
    >>> round(100 * report["overall"]["miou"], 2)  # doctest: +SKIP
    """
    from gdcld_zoo.data import read_pair, tile_pairs
    from gdcld_zoo.data.checks import validate_pairs
    from gdcld_zoo.data.reading import read_thread_pool

    for name, value in (("batch_size", batch_size), ("jobs", jobs)):
        if not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{name} must be a positive integer, got {value!r}.")
    by = tuple(by)
    unknown = [f for f in by if f not in GROUP_FIELDS]
    if unknown:
        raise InvalidInputError(f"Cannot group by {unknown}; choose from {list(GROUP_FIELDS)}.")
    model_pre, model_threshold, name = _model_defaults(model)
    preprocessing = preprocessing or model_pre
    threshold = model_threshold if threshold is None else float(threshold)
    pairs = tile_pairs(root, split)
    unlabelled = [p.image for p in pairs if p.label is None]
    if unlabelled:
        raise InvalidInputError(
            f"{len(unlabelled)} tile(s) of split {split!r} have no label, e.g. {unlabelled[0]}; "
            "evaluation needs a label for every image."
        )
    if not pairs:
        raise InvalidInputError(f"Split {split!r} of {root} holds no tiles.")
    # The checks training applies (bands, sizes, CRS and transform of image and
    # label) before any model call; pixels are checked as they are read.
    validate_pairs(pairs, preprocessing, read_pixels=False, jobs=jobs)

    overall = np.zeros((2, 2), "int64")
    groups = {}

    def count(batch_pairs, images, masks):
        nonlocal overall
        probs = predict_tile(model, np.stack(images), preprocessing=preprocessing, batch_size=batch_size)
        for pair, prob, mask in zip(batch_pairs, probs, masks):
            cm = confusion_matrix(mask, (prob[..., 0] >= threshold).astype("int64"), 2)
            overall += cm
            if by:
                key = tuple(getattr(pair, field) for field in by)
                group_cm, tiles = groups.get(key, (np.zeros((2, 2), "int64"), 0))
                groups[key] = (group_cm + cm, tiles + 1)

    # Read a bounded chunk of tiles at a time: memory stays at a few batches.
    chunk = batch_size * max(jobs, 1)
    with read_thread_pool(jobs, pixels_only=True) as pool:
        for start in range(0, len(pairs), chunk):
            chunk_pairs = pairs[start : start + chunk]
            pending = []
            for pair, (image, mask) in zip(chunk_pairs, pool.map(lambda p: read_pair(p, preprocessing), chunk_pairs)):
                if pending and (len(pending) == batch_size or pending[0][1].shape != image.shape):
                    count(*zip(*pending))
                    pending = []
                pending.append((pair, image, mask))
            if pending:
                count(*zip(*pending))

    return {
        "model": name,
        "split": split,
        "threshold": threshold,
        "tiles": len(pairs),
        "overall": _scores(overall, len(pairs)),
        "groups": [
            {**dict(zip(by, key)), **_scores(cm, tiles)}
            for key, (cm, tiles) in sorted(groups.items(), key=lambda item: tuple(str(v) for v in item[0]))
        ],
        "by": list(by),
    }


def _rows(report):
    by = report["by"]
    for group in report["groups"]:
        yield [("-" if group[f] is None else str(group[f])) for f in by], group
    yield ["Overall"] + [""] * max(len(by) - 1, 0), report["overall"]


def format_table(report):
    """The report as a text table laid out like paper Tables 4-6 (values in %)."""
    by = report["by"]
    header = [f.replace("_", " ").capitalize() for f in by] or ["Split"]
    header += [title for _, title in TABLE_METRICS] + ["Tiles"]
    rows = [header]
    for labels, scores in _rows(report):
        labels = labels if by else [f"{report['split']}"]
        rows.append(labels + [f"{100 * scores[k]:.2f}" for k, _ in TABLE_METRICS] + [str(scores["tiles"])])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [f"{report['model']} on {report['split']} (threshold {report['threshold']:g})"]
    for n, row in enumerate(rows):
        left = len(by) or 1
        cells = [c.ljust(w) for c, w in zip(row[:left], widths)] + [c.rjust(w) for c, w in zip(row[left:], widths[left:])]
        lines.append("  ".join(cells))
        if n == 0 or (by and n == len(rows) - 2):
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report_csv(report):
    """CSV text: one row per group and an `Overall` row; metric values as fractions."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((report["by"] or ["group"]) + list(REPORTED) + ["tiles", "pixels"])
    for labels, scores in _rows(report):
        writer.writerow(labels + [f"{scores[k]:.6f}" for k in REPORTED] + [scores["tiles"], scores["pixels"]])
    return out.getvalue()


def report_json(report):
    """JSON text of the report (fractions), as `gdcld-zoo evaluate --json` writes it."""
    return json.dumps(report, indent=2) + "\n"
