"""`train(config)`: the GDCLD paper's training recipe with Keras `fit` as the engine.

Recipe defaults (Fang et al., section 4.3; `TrainConfig`): AdamW, learning rate
6e-4, beta1 0.9, beta2 0.999, weight decay 0.01, 100 epochs, binary
cross-entropy, with a linear warm-up and polynomial decay as PaddleSeg trains
SegFormer. PaddleSeg's SegFormer configs use a learning rate of 6e-5 instead:
the paper's 6e-4 stays the default; set `learning_rate=6e-5` to follow PaddleSeg.

Training runs on the TensorFlow, JAX and torch backends alike, fed by the
same tf.data pipeline. Distribution uses `tf.distribute` on TensorFlow
(`MirroredStrategy` for the GPUs of one machine, `MultiWorkerMirroredStrategy`
for a `TF_CONFIG` cluster; see `gdcld_zoo.training.backends` for the others),
mixed precision the Keras dtype policy (float16 with loss scaling on a GPU,
bfloat16 on CPU). The trained weights load on any backend.

Run folder after `train`:

    config.json                 resolved TrainConfig
    log.csv                     one row per epoch: loss, metrics, val_ metrics, learning_rate
    tensorboard/                TensorBoard logs
    checkpoints/best.weights.h5 best weights by validation mIoU
    checkpoints/last.weights.h5 weights + optimizer + epoch (for --resume)
    checkpoints/state.json      epoch, optimizer iterations, best score
    weight_record.json          the best weights' record (gdcld_zoo.weights)
    previews/epoch_NNN.png      validation tiles, labels, predictions
"""

import csv
import io
import math
import re
import warnings
from pathlib import Path

import keras
import numpy as np

from gdcld_zoo.errors import GdcldZooError
from gdcld_zoo.files import OutputLock, check_writable_folder, write_text_atomic
from gdcld_zoo.losses import get_loss
from gdcld_zoo.metrics import ConfusionMatrixMetrics
from gdcld_zoo.preprocessing import Preprocessing
from gdcld_zoo.registry import build_model
from gdcld_zoo.training.backends import check_strategy, mixed_precision_policy, strategy_scope
from gdcld_zoo.training.callbacks import (
    BEST_WEIGHTS,
    CHECKPOINT_DIR,
    LAST_CHECKPOINT,
    PREVIEW_DIR,
    STATE_FILE,
    BestCheckpoint,
    LastCheckpoint,
    LearningRateLogger,
    NaNGuard,
    PredictionPreview,
    WeightRecordWriter,
    is_chief,
)
from gdcld_zoo.training.config import CONFIG_FILE
from gdcld_zoo.training.schedule import PolynomialDecayWithWarmup
from gdcld_zoo.training.training_model import TrainingModel
from gdcld_zoo.weights.load import encoder_checkpoint

LOG_FILE = "log.csv"


class TrainingDivergedError(GdcldZooError, RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint was kept."""


class ResumeError(GdcldZooError, ValueError):
    """A run folder that cannot be started or resumed as asked."""


class TrainingDataError(GdcldZooError):
    """A tile that could not be read in the middle of training."""


def _make_datasets(config, preprocessing):
    """Training and validation `tf.data` datasets of the config's GDCLD root.

    Training tiles are random `tile_size` crops, shuffled, not augmented in
    tf.data (augmentation runs in the training step). Validation covers each
    tile with a grid of `tile_size` windows; a root without a `val` split
    trains without validation (best checkpoint by training mIoU, with a warning).
    """
    from gdcld_zoo.data import DatasetLayoutError, make_dataset

    if not config.data:
        raise GdcldZooError("No training data: set `data` in the config or pass --data ROOT.")
    # Every pixel of every pair is checked here, before the first step: a
    # truncated tile or a label value 2 fails now, in one line, not mid-epoch.
    common = dict(batch_size=config.batch_size, tile_size=config.tile_size, preprocessing=preprocessing,
                  validate="full", on_bad="skip" if config.skip_bad else "raise")
    train = make_dataset(config.data, "train", shuffle=True, augment=False, seed=config.seed, **common)
    try:
        val = make_dataset(config.data, "val", shuffle=False, augment=False, eval_crop="grid", **common)
    except DatasetLayoutError as error:
        warnings.warn(f"No validation data ({error}); the best checkpoint follows training mIoU.", stacklevel=3)
        val = None
    return train, val


def _make_augmentation(config, preprocessing):
    from gdcld_zoo.data import SegmentationAugmentation

    return SegmentationAugmentation(preprocessing=preprocessing, seed=config.seed)


def _steps_per_epoch(config, dataset):
    """(steps, fixed): batches per epoch, and whether the data must repeat to give exactly that many.

    Steps set in the config are always run (the dataset repeats). With
    `skip_bad`, bad tiles leave the batch count unknown: an epoch is then as
    many batches as the split's pairs fill, drawn from the good ones.
    """
    if config.steps_per_epoch:
        return config.steps_per_epoch, True
    cardinality = int(dataset.cardinality()) if hasattr(dataset, "cardinality") else -2
    if cardinality > 0:
        return cardinality, False
    if config.skip_bad and config.data:
        from gdcld_zoo.data.layout import index_split

        return math.ceil(len(index_split(config.data, "train").pairs) / config.batch_size), True
    raise GdcldZooError(
        "The training dataset's length is unknown or infinite; set steps_per_epoch in the config."
    )


def _preview_batch(dataset, count):
    """The first `count` (image, mask) tiles of a batched dataset, as numpy."""
    images, masks = [], []
    for batch in dataset:
        images.append(np.asarray(batch[0]))
        masks.append(np.asarray(batch[1]))
        if sum(len(i) for i in images) >= count:
            break
    return np.concatenate(images)[:count], np.concatenate(masks)[:count]


def _truncate_log(path, epochs_done):
    """Keep only the CSV rows of completed epochs, so a resumed log has no duplicates."""
    if not path.is_file():
        return
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) < epochs_done]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(kept)
    write_text_atomic(path, out.getvalue())


def _check_run_dir(run_dir, resume):
    """Refuse a run folder that cannot take this run; returns whether to restore the last checkpoint.

    A folder whose run never finished an epoch (a config but no checkpoint)
    holds nothing to keep: it is started again from scratch, with or without
    `--resume`.
    """
    last = run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT
    started = (run_dir / CONFIG_FILE).is_file()
    if last.is_file():
        if not resume:
            raise ResumeError(
                f"{run_dir} already holds a run; pass --resume to continue it or choose another --out."
            )
        return True
    if resume and not started:
        raise ResumeError(
            f"Cannot resume: {last} does not exist (no epoch of this run finished). "
            "Start the run again without --resume."
        )
    if started:
        warnings.warn(f"{run_dir} holds a run that never finished an epoch; starting it again from epoch 1.",
                      stacklevel=4)
    return False


def _restore_last(training_model, last, run_dir):
    """Load the last checkpoint (weights, optimizer, epoch); a damaged file is one `ResumeError`."""
    training_model.optimizer.build(training_model.trainable_variables)
    try:
        training_model.load_weights(last)
    except (OSError, ValueError, KeyError) as error:
        best = run_dir / CHECKPOINT_DIR / BEST_WEIGHTS
        keep = (f"; the best weights so far are intact in {best} (`gdcld-zoo weights add {run_dir}` keeps them)"
                if best.is_file() else "")
        raise ResumeError(
            f"{last}: cannot read the checkpoint (truncated or corrupt: {' '.join(str(error).split())}). "
            f"To start the run over from epoch 1, delete {last} and run the same command again{keep}."
        ) from None


def _read_error(error):
    """The one-line `RasterReadError` inside an input pipeline's error (e.g. tf.data's), or None."""
    found = re.search(r"RasterReadError: ([^\n]+)", str(error))
    return found.group(1).rstrip(".") if found else None


def build_training_model(config, steps_per_epoch, encoder_weights=None):
    """Model, optimizer (AdamW + schedule), loss and metrics, compiled; call in a strategy scope.

    `encoder_weights` is a checkpoint loaded into the fresh model's encoder.
    """
    preprocessing = Preprocessing.from_dict(config.preprocessing)
    model = build_model(
        config.model,
        num_classes=config.num_classes,
        input_shape=(None, None, preprocessing.num_bands),
        **config.model_config,
        **({"encoder_weights": encoder_weights} if encoder_weights is not None else {}),
    )
    training_model = TrainingModel(
        model, augmentation=_make_augmentation(config, preprocessing) if config.augment else None
    )
    total_steps = config.epochs * steps_per_epoch
    schedule = PolynomialDecayWithWarmup(
        config.learning_rate,
        decay_steps=total_steps,
        warmup_steps=min(config.warmup_steps, total_steps),
        end_learning_rate=config.end_learning_rate,
        power=config.power,
    )
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule,
        beta_1=config.beta_1,
        beta_2=config.beta_2,
        weight_decay=config.weight_decay,
    )
    training_model.compile(
        optimizer=optimizer,
        loss=get_loss(config.loss, ignore_index=config.ignore_index),
        metrics=[
            ConfusionMatrixMetrics(
                num_classes=config.num_classes, threshold=config.threshold, ignore_index=config.ignore_index
            )
        ],
    )
    return training_model


def train(config, train_data=None, val_data=None, resume=False, callbacks=(), verbose="auto"):
    """Train `config.model` with the paper's recipe and return the run folder.

    Args:
        config: A `TrainConfig` (defaults: AdamW lr 6e-4 as in the paper, not
            PaddleSeg's 6e-5; betas 0.9/0.999; weight decay 0.01; 100 epochs; BCE).
        train_data: Optional batched `tf.data.Dataset` of (normalised images,
            masks); default `gdcld_zoo.data.make_dataset(config.data, "train")`.
        val_data: Optional validation dataset; default the `val` split, if any.
        resume: Continue the run in `config.out` from its last checkpoint:
            weights, optimizer moments and iteration count (hence the learning
            rate schedule), epochs done and best score are restored. A run
            folder whose run never finished an epoch starts again from epoch 1.
        callbacks: Extra Keras callbacks.
        verbose: Passed to `fit`.

    Returns:
        The run folder (`Path`) with config, logs, checkpoints and weight record.

    Raises:
        TrainingDivergedError: The loss became NaN/inf; the last checkpoint of
            the previous epoch is kept for `--resume` with other settings.
        ResumeError: The folder holds a finished epoch and `resume` is False,
            or its last checkpoint cannot be read.
        TrainingDataError: A tile could not be read during an epoch.
        OutputError: The run folder cannot be written (checked first).

    Example:
    >>> run_dir = train(TrainConfig("segformer_b0", data="GDCLD", out="runs/b0"))  # doctest: +SKIP
    """
    get_loss(config.loss)  # an unknown name or a strategy the backend lacks fails here, before any data is read
    check_strategy(config.strategy)
    run_dir = check_writable_folder(Path(config.out), "run folder")
    if not is_chief():  # only the chief writes the run folder
        return _train(config, run_dir, train_data, val_data, resume, callbacks, verbose)
    with OutputLock(run_dir, "train"):  # a second run into the same folder refuses, naming this one
        return _train(config, run_dir, train_data, val_data, resume, callbacks, verbose)


def _train(config, run_dir, train_data, val_data, resume, callbacks, verbose):
    """`train` once the run folder is known to be writable and this run holds it."""
    restore = _check_run_dir(run_dir, resume)
    keras.utils.set_random_seed(config.seed)
    # Found (or downloaded) before any data is read; a resumed run restores every weight instead.
    encoder_weights = None if restore else encoder_checkpoint(config.model, config.encoder_weights)
    preprocessing = Preprocessing.from_dict(config.preprocessing)
    if train_data is None:
        train_data, val_data = _make_datasets(config, preprocessing)
    steps_per_epoch, fixed_steps = _steps_per_epoch(config, train_data)
    if fixed_steps:
        # Every epoch runs exactly these steps (the schedule counts on them), however few batches there are.
        train_data = train_data.repeat()

    previous_policy = keras.config.dtype_policy()
    if config.mixed_precision:
        keras.config.set_dtype_policy(mixed_precision_policy())
    try:
        with strategy_scope(config.strategy):
            training_model = build_training_model(config, steps_per_epoch, encoder_weights)
            last = run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT
            if restore:
                _restore_last(training_model, last, run_dir)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    initial_epoch = int(training_model.epochs_done.numpy())
    run_dir.mkdir(parents=True, exist_ok=True)
    config.save(run_dir)
    if restore:
        _truncate_log(run_dir / LOG_FILE, initial_epoch)
    else:
        (run_dir / LOG_FILE).unlink(missing_ok=True)  # a run that never finished an epoch starts afresh
    if initial_epoch >= config.epochs:
        return run_dir

    monitor, split = ("val_miou", "val") if val_data is not None else ("miou", "train")
    guard = NaNGuard()
    best = BestCheckpoint(run_dir / CHECKPOINT_DIR / BEST_WEIGHTS, monitor=monitor, guard=guard)
    record_fields = {
        "config": {"num_classes": config.num_classes, **config.model_config},
        "preprocessing": preprocessing,
        "tile_size": config.tile_size,
        "threshold": config.threshold,
    }
    run_callbacks = [
        guard,
        best,
        WeightRecordWriter(run_dir, best, config.model, record_fields, config.dataset_name, split),
        LastCheckpoint(last, run_dir / CHECKPOINT_DIR / STATE_FILE, guard=guard),
        LearningRateLogger(),
        keras.callbacks.CSVLogger(str(run_dir / LOG_FILE), append=restore),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard")),
    ]
    if config.preview_tiles and val_data is not None:
        images, masks = _preview_batch(val_data, config.preview_tiles)
        run_callbacks.append(
            PredictionPreview(run_dir / PREVIEW_DIR, images, masks, preprocessing, config.threshold, guard)
        )
    if config.early_stopping_patience:
        run_callbacks.append(
            keras.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=config.early_stopping_patience)
        )
    try:
        training_model.fit(
            train_data,
            validation_data=val_data,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch if fixed_steps else None,
            validation_steps=config.validation_steps,
            callbacks=run_callbacks + list(callbacks),
            shuffle=False,  # datasets come shuffled by the pipeline
            verbose=verbose,
        )
    except Exception as error:  # the input pipeline's error type depends on the backend
        cause = _read_error(error)
        if cause is None:
            raise
        raise TrainingDataError(
            f"{cause}; the file changed or broke during training. Fix or remove it (see `gdcld-zoo data check`) "
            "or pass --skip-bad, then continue with --resume."
        ) from None
    if guard.diverged:
        raise TrainingDivergedError(_diverged_message(guard.diverged, int(training_model.epochs_done.numpy()), last))
    return run_dir


def _diverged_message(diverged, done, last):
    """What diverged where, and the checkpoint to go back to (or that there is none yet)."""
    where = f"Loss became {diverged['loss']} at epoch {diverged['epoch']}, batch {diverged['batch']}; stopped."
    advice = "lower --lr, check the data for NaN, or turn off --mixed-precision"
    if done and last.is_file():
        return f"{where} The last good checkpoint (epoch {done}) is in {last}: {advice}, then rerun with --resume."
    return f"{where} No epoch finished, so there is no checkpoint to go back to: {advice}, then start the run again."
