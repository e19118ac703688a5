"""The weight record of a training run folder.

`gdcld-zoo train` saves its best weights in the run folder together with
`weight_record.json`, a one-record registry (`{"weights": [record]}`) whose
`file` is relative to the folder. `load_pretrained(run_dir)` reads it, and
`gdcld-zoo weights add RUN_DIR --tag TAG` copies it into the user registry.
"""

import re
from pathlib import Path

from gdcld_zoo.errors import GdcldZooError
from gdcld_zoo.weights.download import sha256_file
from gdcld_zoo.weights.record import WeightRecord, read_registry_file, write_registry_file

RUN_RECORD_FILE = "weight_record.json"


def run_record_path(run_dir):
    """`<run_dir>/weight_record.json`."""
    return Path(run_dir) / RUN_RECORD_FILE


def write_run_record(run_dir, weights_path, model, tag=None, **fields):
    """Describe a run's weight file in `<run_dir>/weight_record.json` (atomically).

    Args:
        run_dir: The training run folder.
        weights_path: The `.weights.h5` (or `.keras`) file, normally inside `run_dir`.
        model: Registered model name the weights were trained with.
        tag: Default `<model>.<run folder name>`, lowercased, other characters as `-`.
        **fields: Any other `WeightRecord` field (`config`, `preprocessing`,
            `tile_size`, `threshold`, `metrics`, `description`, ...).

    Returns:
        The `WeightRecord`, with sha256 and size of the file.

    Example:
    >>> record = write_run_record("runs/exp1", "runs/exp1/best.weights.h5", "segformer_b4",
    ...     config={"num_classes": 1}, tile_size=512)  # doctest: +SKIP
    """
    run_dir, weights_path = Path(run_dir), Path(weights_path)
    try:
        file = weights_path.resolve().relative_to(run_dir.resolve()).as_posix()
    except ValueError:
        file = str(weights_path.resolve())
    if tag is None:
        tag = f"{model}." + (re.sub(r"[^a-z0-9_\-]+", "-", run_dir.resolve().name.lower()).strip("-") or "run")
    record = WeightRecord(
        tag=tag,
        model=model,
        file=file,
        sha256=sha256_file(weights_path),
        size=weights_path.stat().st_size,
        origin=str(run_record_path(run_dir)),
        **fields,
    )
    write_registry_file(run_record_path(run_dir), [record])
    return record


def read_run_record(run_dir):
    """The record of a run folder's best weights (the one marked default if several)."""
    path = run_record_path(run_dir)
    if not path.is_file():
        raise GdcldZooError(
            f"{run_dir} is not a training run folder: it has no {RUN_RECORD_FILE} "
            "(written by `gdcld-zoo train` with its best weights)."
        )
    records = read_registry_file(path)
    if not records:
        raise GdcldZooError(f"{path} lists no weights; train again or pass a weight file.")
    defaults = [r for r in records if r.default]
    return (defaults or records)[0]


def find_sidecar_record(weights_path):
    """The record describing a weight file, from a registry near it, or None.

    Looks in `weight_record.json` and `registry.json` in the file's folder, and
    in `weight_record.json` one folder up (a run's `checkpoints/` folder), for a
    record whose `file` is this file.
    """
    weights_path = Path(weights_path).resolve()
    folder = weights_path.parent
    for registry in (folder / RUN_RECORD_FILE, folder / "registry.json", folder.parent / RUN_RECORD_FILE):
        for record in read_registry_file(registry):
            if (registry.parent / record.file).resolve() == weights_path:
                return record
    return None
