"""`load_pretrained`: a ready model from a weight tag, a run folder or a file.

The model comes back with its `WeightRecord` (`get_weight_record(model)`), so
scene inference, export and the viewer know its preprocessing, tile size and
decision threshold without being told. Nothing is ever unpickled: weights are
`.weights.h5` (HDF5 arrays), `.keras` archives loaded with `safe_mode=True`, or
published PyTorch-layout checkpoints read with numpy through the converters
(`gdcld_zoo.convert.pytorch_file` refuses any pickled code).

A record with `part: "encoder"` (e.g. `segformer_b4.imagenet`, the paper's
starting point) gives the whole model with its encoder loaded and the decoder
and head untrained, and says so in one `UntrainedHeadWarning`. A record whose
licence restricts use (e.g. NVIDIA's SegFormer licence, "other") has the
licence printed once per process.
"""

import dataclasses
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np

from gdcld_zoo.errors import GdcldZooError, InvalidInputError
from gdcld_zoo.registry import build_model, get_model_spec
from gdcld_zoo.weights.cache import WeightsNotFoundError, verify_file, weights_file
from gdcld_zoo.weights.download import sha256_file
from gdcld_zoo.weights.hub import HubError
from gdcld_zoo.weights.record import CHECKPOINT_SUFFIXES, WeightRecord
from gdcld_zoo.weights.run import find_sidecar_record, read_run_record, run_record_path
from gdcld_zoo.weights.sources import get_weights, list_weights

_RECORD_ATTRIBUTE = "weight_record"
# Licences that need no notice when weights are loaded.
PERMISSIVE_LICENSES = ("Apache-2.0", "MIT", "BSD-3-Clause", "CC-BY-4.0", "unspecified")
# Tags whose licence was already printed in this process.
_LICENSES_SHOWN = set()


class UntrainedHeadWarning(UserWarning):
    """Weights that hold an encoder only: the model's decoder and head start untrained."""


class UnsafeModelError(GdcldZooError, ValueError):
    """A `.keras` file that would run arbitrary Python code when loaded."""


def get_weight_record(model):
    """The `WeightRecord` a model was loaded with by `load_pretrained`, else None."""
    return getattr(model, _RECORD_ATTRIBUTE, None)


def load_pretrained(tag_or_path, num_classes=None, input_shape=None, progress=True):
    """Build a model and load pretrained weights into it.

    Args:
        tag_or_path: A weight tag (`"segformer_b4.ade20k"`), a model name for its
            default tag (`"segformer_b4"`: `segformer_b4.imagenet`, the ImageNet
            encoder with an untrained head), a training run folder, or a
            `.weights.h5` / `.keras` file.
        num_classes: Classes of the returned model. Default: those of the
            weights. A different number rebuilds the classifier with fresh
            weights for fine-tuning (with a warning); every other weight loads.
            An encoder record builds the head with this many classes (default 1).
        input_shape: `(H, W, C)` with H and W None or multiples of 32. Default
            `(None, None, bands)`, the bands of the record's preprocessing.
        progress: Show a progress bar while downloading.

    Returns:
        A `keras.Model`; `get_weight_record(model)` is its record.

    Raises:
        UnknownNameError: An unknown tag; the message lists close matches.
        WeightsNotFoundError: The file is not on disk and cannot be downloaded
            (offline, or an unpinned hub record); the message says what to do.
        ChecksumError: The file does not have the record's sha256 (or the
            hub-declared one).
        HubError: The hub is unreachable or has no such file at the pinned commit.

    Example:
    >>> model = load_pretrained("demo")  # doctest: +SKIP
    >>> get_weight_record(model).threshold  # doctest: +SKIP
    0.5
    """
    record, path = _resolve(tag_or_path, progress)
    if record is not None and record.is_checkpoint:
        model = _load_checkpoint(record, path, num_classes, input_shape)
    elif path.name.endswith(".keras"):
        model = _load_keras_file(path, num_classes, input_shape)
        if record is None:  # warned once the file proved to be a model, so a bad file is one error only
            warnings.warn(
                f"No weight record describes {path}; assuming RGB 8-bit input with ImageNet "
                "normalisation and threshold 0.5. Register it with `gdcld-zoo weights add` to record them.",
                stacklevel=2,
            )
            record = _record_for_keras_file(path, model)
    else:
        model = _load_weights_file(record, path, num_classes, input_shape)
    _announce_license(record)
    if num_classes is not None and num_classes != record.num_classes:
        record = dataclasses.replace(
            record, config={**record.config, "num_classes": num_classes}, metrics=(), default=False
        )
    setattr(model, _RECORD_ATTRIBUTE, record)
    return model


def encoder_checkpoint(model, choice="default", progress=True):
    """The local checkpoint to start `model`'s encoder from, or None for from scratch.

    Args:
        model: Registered model name.
        choice: `"default"`: the model's encoder record (the one marked
            default, or its only one; None when it has none or no pretrained
            encoder); `"none"` or None: from scratch; an encoder weight tag; or
            a checkpoint file or folder, used as is.
        progress: Show a progress bar while downloading.

    Raises:
        WeightsNotFoundError: The record's file is not here and cannot be
            downloaded; the message says how to fetch it or to pass "none".
        GdcldZooError: A tag that is not an encoder record of `model`.
    """
    if choice is None or choice == "none":
        return None
    if choice != "default" and Path(choice).expanduser().exists():
        return str(Path(choice).expanduser())
    if "/" in choice or choice.endswith(CHECKPOINT_SUFFIXES):
        raise GdcldZooError(f"No encoder checkpoint at {choice}: give an existing file or folder, a tag, or none.")
    if choice == "default":
        if not get_model_spec(model).encoder_loader:
            return None
        records = [r for r in list_weights() if r.model == model and r.part == "encoder"]
        chosen = [r for r in records if r.default] or (records if len(records) == 1 else [])
        if not chosen:
            return None
        record = chosen[0]
    else:
        record = get_weights(choice)
        if record.part != "encoder" or record.model != model:
            raise GdcldZooError(
                f"{choice!r} is {'an encoder' if record.part == 'encoder' else 'a whole-model'} record of "
                f"{record.model!r}, not an encoder record of {model!r}; pass one of "
                f"{model!r}'s encoder tags (`gdcld-zoo weights list`), a checkpoint path, or none."
            )
    try:
        return str(weights_file(record, progress=progress))
    except (WeightsNotFoundError, HubError) as error:
        raise type(error)(f"{error} To train from scratch instead, pass --encoder-weights none.") from None


def _resolve(tag_or_path, progress):
    """The record and the verified local weight file for a tag or a path.

    A `.keras` file that no registry describes comes back with record None.
    """
    path = Path(tag_or_path).expanduser()
    if path.is_dir() and not (isinstance(tag_or_path, str) and _is_tag_not_run(tag_or_path, path)):
        record = read_run_record(path)
        return record, weights_file(record, progress=progress)
    if path.is_file():
        if not path.name.endswith((".weights.h5", ".keras")):
            raise InvalidInputError(
                f"{path} is not a weight file; pass a '.weights.h5' or '.keras' file, a run folder or a tag."
            )
        record = find_sidecar_record(path)
        if record is not None:
            return record, verify_file(path, record)
        if path.name.endswith(".weights.h5"):
            raise GdcldZooError(
                f"{path} holds weights but not which model they belong to, and no weight_record.json "
                "or registry.json next to it describes it. Register it with "
                "`gdcld-zoo weights add FILE --tag TAG --model MODEL`, or pass its run folder."
            )
        return None, path
    if isinstance(tag_or_path, Path) or str(tag_or_path).endswith((".h5", ".keras", "/")):
        raise GdcldZooError(f"No such weight file or run folder: {path}.")
    record = get_weights(str(tag_or_path))
    return record, weights_file(record, progress=progress)


def _is_tag_not_run(name, folder):
    """A registered tag or model name that names a folder which is not a run
    (`gdcld-zoo demo --out demo`): the tag is meant; `./demo` names the folder."""
    if run_record_path(folder).is_file():
        return False
    return name in {r.tag for r in list_weights()} | {r.model for r in list_weights()}


def _record_for_keras_file(path, model):
    """A record for a bare `.keras` file: its own sha256, default preprocessing."""
    name = "".join(c if c.isalnum() else "_" for c in type(model).__name__.lower())
    return WeightRecord(
        tag=name.replace("_", "-"),
        model=name,
        file=str(path.resolve()),
        sha256=sha256_file(path),
        size=path.stat().st_size,
        config={"num_classes": int(model.output_shape[-1])},
        description=f"{path.name}, loaded without a weight record.",
        origin=str(path),
    )


def _input_shape(record, input_shape):
    bands = record.preprocessing.num_bands
    if input_shape is None:
        return (None, None, bands)
    input_shape = tuple(input_shape)
    if len(input_shape) == 3 and input_shape[-1] != bands:
        raise InvalidInputError(
            f"Weights {record.tag!r} take {bands} bands {record.preprocessing.band_names}, "
            f"but input_shape {input_shape} has {input_shape[-1]} channels."
        )
    return input_shape


def _announce_license(record):
    """Print a restrictive licence once per tag and process (stderr)."""
    if record.license in PERMISSIVE_LICENSES or record.tag in _LICENSES_SHOWN:
        return
    _LICENSES_SHOWN.add(record.tag)
    where = f"; see {record.hub_file.page}" if record.hub_file is not None else ""
    print(f"Weights {record.tag!r} are licensed: {record.license}{where}", file=sys.stderr)


def _load_checkpoint(record, path, num_classes, input_shape):
    """Build the record's model and load a PyTorch-layout checkpoint with its converter."""
    spec = get_model_spec(record.model)
    if record.part == "model":
        return _load_weights_file(record, path, num_classes, input_shape, lambda m: spec.load_checkpoint(m, path))
    config = dict(record.config)
    config.pop("num_classes", None)
    model = build_model(
        record.model,
        num_classes=num_classes or record.num_classes,
        input_shape=_input_shape(record, input_shape),
        **config,
    )
    spec.load_encoder_weights(model, path)
    trained_on = f" on {record.trained_on}" if record.trained_on else ""
    warnings.warn(
        f"{record.tag}: encoder pretrained{trained_on}; the landslide head is untrained: "
        f"fine-tune with `gdcld-zoo train {record.model}`.",
        UntrainedHeadWarning,
        stacklevel=3,
    )
    return model


def _load_weights_file(record, path, num_classes, input_shape, load=None):
    """Build the record's model and load its file into it (a `.weights.h5` file
    unless `load(model)` says otherwise); a new `num_classes` rebuilds the head."""
    config = dict(record.config)
    config.pop("num_classes", None)
    shape = _input_shape(record, input_shape)
    model = build_model(record.model, num_classes=record.num_classes, input_shape=shape, **config)
    if load is None:
        _load_weights_h5(model, path, record)
    else:
        load(model)
    if num_classes is None or num_classes == record.num_classes:
        return model
    target = build_model(record.model, num_classes=num_classes, input_shape=shape, **config)
    _transfer_weights(model, target, record.num_classes, num_classes, record.tag)
    return target


def _load_weights_h5(model, path, record):
    try:
        model.load_weights(path)
    except OSError as error:  # h5py: truncated, or not HDF5 at all
        raise InvalidInputError(
            f"{path}: cannot read the weights (truncated, or not a .weights.h5 file: {error}); "
            "copy or download the file again."
        ) from None
    except (ValueError, KeyError) as error:
        raise GdcldZooError(
            f"{path} does not fit model {record.model!r} with config {dict(record.config)} "
            f"(weights {record.tag!r}): {error}"
        ) from None


def check_weight_file(record, path):
    """Load `path` the way `load_pretrained` would (into the record's model); raise its error if it fails.

    `gdcld-zoo weights add` calls it so that only files that load are registered.
    """
    path = Path(path)
    if path.name.endswith(".keras"):
        _load_keras_file(path, None, None)
    else:
        _load_weights_file(record, path, None, None)


def _load_keras_file(path, num_classes, input_shape):
    """Load a `.keras` archive in safe mode; rebuild its head if `num_classes` differs."""
    import keras  # Imported here so `import gdcld_zoo` stays fast.

    if not zipfile.is_zipfile(path):
        raise InvalidInputError(
            f"{path}: not a .keras archive (a .keras file is a zip archive; this one is truncated or another "
            "format); copy or download it again."
        )
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except ValueError as error:
        if "arbitrary code" in str(error):
            raise UnsafeModelError(
                f"{path}: contains arbitrary code (a Lambda layer or a pickled function) and gdcld_zoo will "
                "not run it; save the model without Lambda layers, or save its weights (.weights.h5) and "
                "register them with `gdcld-zoo weights add FILE --tag TAG --model MODEL`."
            ) from None
        raise InvalidInputError(f"{path}: cannot be loaded as a Keras model: {error}") from None
    except (TypeError, KeyError, OSError, zipfile.BadZipFile) as error:
        raise InvalidInputError(f"{path}: cannot be loaded as a Keras model: {error}") from None
    want_shape = None if input_shape is None else tuple(input_shape)
    have_classes = model.output_shape[-1]
    if (num_classes is None or num_classes == have_classes) and want_shape is None:
        return model
    config = model.get_config()
    if num_classes is not None:
        config["num_classes"] = num_classes
    if want_shape is not None:
        config["input_shape"] = list(want_shape)
    target = model.__class__.from_config(config)
    _transfer_weights(model, target, have_classes, num_classes or have_classes, path.name)
    return target


def _transfer_weights(source, target, old_classes, new_classes, what):
    """Copy every weight whose shape matches; warn about the ones that start fresh."""
    if len(source.weights) != len(target.weights):
        raise GdcldZooError(
            f"Cannot move weights {what!r} to the rebuilt model: {len(source.weights)} "
            f"variables against {len(target.weights)}."
        )
    skipped = []
    for old, new in zip(source.weights, target.weights):
        if tuple(old.shape) == tuple(new.shape):
            new.assign(np.asarray(old))
        else:
            skipped.append(new.path)
    if skipped and old_classes != new_classes:
        warnings.warn(
            f"Weights {what!r} were trained for {old_classes} class{'es' * (old_classes != 1)}; "
            "the classifier was rebuilt "
            f"for {new_classes} with fresh weights ({', '.join(skipped)}). Fine-tune before use.",
            stacklevel=4,
        )
    elif skipped:
        raise GdcldZooError(
            f"Weights {what!r} do not fit the requested model: {', '.join(skipped)} differ in shape."
        )
