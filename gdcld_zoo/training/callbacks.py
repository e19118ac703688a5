"""Callbacks of a training run: checkpoints, weight record, NaN guard, previews.

Every file is written atomically (`gdcld_zoo.files.atomic_path`: a unique
temporary name in the same folder, then a rename), so a run killed at any moment leaves either the previous or the
new file, never half of one. Files in a run folder:

- `checkpoints/best.weights.h5`: weights of the epoch with the best monitored
  score (validation mIoU); `weight_record.json` describes it (sha256, config,
  preprocessing, metrics) so `load_pretrained(RUN_DIR)` can load it.
- `checkpoints/last.weights.h5`: model weights, optimizer state (moments and
  iteration count, which drives the learning-rate schedule), epochs completed
  and best score so far, in one file: what `--resume` continues from.
- `checkpoints/state.json`: the same epoch and best score, for people.
- `previews/epoch_NNN.png`: a few validation tiles, their labels and predicted
  landslide probabilities after each epoch.

With several workers (`MultiWorkerMirroredStrategy`) only the chief writes.
"""

import json
import math
import os
from pathlib import Path

import keras
import numpy as np

from gdcld_zoo.files import atomic_path, write_text_atomic

CHECKPOINT_DIR = "checkpoints"
BEST_WEIGHTS = "best.weights.h5"
LAST_CHECKPOINT = "last.weights.h5"
STATE_FILE = "state.json"
PREVIEW_DIR = "previews"


def is_chief():
    """True unless `TF_CONFIG` names this process a non-chief worker."""
    try:
        tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except json.JSONDecodeError:
        return True
    task, cluster = tf_config.get("task", {}), tf_config.get("cluster", {})
    task_type, index = task.get("type"), task.get("index", 0)
    if task_type is None or task_type == "chief":
        return True
    return task_type == "worker" and index == 0 and "chief" not in cluster


def save_weights_atomic(model, path):
    """`model.save_weights(path)` through a temporary `.weights.h5` name and a rename."""
    with atomic_path(path, suffix=".weights.h5") as temporary:  # Keras wants the extension
        model.save_weights(temporary, overwrite=True)


def _finite(value):
    return value is not None and math.isfinite(float(value))


class NaNGuard(keras.callbacks.Callback):
    """Stop training at the first batch whose loss is NaN or infinite.

    Unlike `keras.callbacks.TerminateOnNaN` it remembers where it happened, and
    the checkpoint callbacks check `diverged` so the last good checkpoint is
    kept; the trainer then raises `TrainingDivergedError` with that position.
    """

    def __init__(self):
        super().__init__()
        self.diverged = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not _finite(loss):
            self.diverged = {"epoch": self._epoch + 1, "batch": batch + 1, "loss": float(loss)}
            self.model.stop_training = True


class BestCheckpoint(keras.callbacks.Callback):
    """Save the wrapped model's weights when the monitored score improves.

    The best score lives in `TrainingModel.best_score`, so it is saved with the
    last checkpoint and a resumed run only replaces the best weights with
    better ones.

    Args:
        path: The `.weights.h5` file to write.
        monitor: Log key to maximise (default `val_miou`).
        guard: The run's `NaNGuard`; nothing is saved after a divergence.
    """

    def __init__(self, path, monitor="val_miou", guard=None):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.guard = guard
        self.improved_epoch = None
        self.logs = None

    def on_epoch_end(self, epoch, logs=None):
        self.improved_epoch = None
        logs = logs or {}
        if (self.guard and self.guard.diverged) or self.monitor not in logs:
            return
        score = float(logs[self.monitor])
        if _finite(score) and score > float(self.model.best_score.numpy()):
            self.model.best_score.assign(score)
            if is_chief():
                save_weights_atomic(self.model.model, self.path)
            self.improved_epoch = epoch + 1
            self.logs = {k: float(v) for k, v in logs.items()}


class WeightRecordWriter(keras.callbacks.Callback):
    """Write `weight_record.json` for the best weights whenever they change.

    The record (format of `gdcld_zoo.weights`, via `write_run_record`) holds the
    model name and config, preprocessing, tile size, threshold, the weights
    file with its sha256 and size, and the validation metrics of that epoch.

    Args:
        run_dir: The run folder.
        best: The run's `BestCheckpoint` (runs before this callback).
        model_name: Registered model name.
        record_fields: Other `WeightRecord` fields (`config`, `preprocessing`,
            `tile_size`, `threshold`, `description`).
        dataset: Dataset name stored with the metrics.
        split: Split the monitored metrics come from (`val`, or `train` when
            there is no validation data).
    """

    METRIC_KEYS = ("precision", "recall", "f1", "iou", "iou_background", "miou", "loss")

    def __init__(self, run_dir, best, model_name, record_fields, dataset="GDCLD", split="val"):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.best = best
        self.model_name = model_name
        self.record_fields = dict(record_fields)
        self.dataset = dataset
        self.split = split

    def on_epoch_end(self, epoch, logs=None):
        if self.best.improved_epoch != epoch + 1 or not is_chief():
            return
        from gdcld_zoo.weights.record import Metrics
        from gdcld_zoo.weights.run import write_run_record

        prefix = "val_" if self.split == "val" else ""
        values = {
            key: self.best.logs[prefix + key] for key in self.METRIC_KEYS if prefix + key in self.best.logs
        }
        write_run_record(
            self.run_dir,
            self.best.path,
            self.model_name,
            metrics=(Metrics(self.dataset, self.split, values),),
            trained_on=self.dataset,
            description=f"{self.model_name} trained with gdcld-zoo train; best {self.split} "
            f"{self.best.monitor} at epoch {epoch + 1}.",
            **self.record_fields,
        )


class LastCheckpoint(keras.callbacks.Callback):
    """After every epoch save weights + optimizer state + epoch count in one file.

    Args:
        path: The `.weights.h5` file of the training model (with optimizer).
        state_path: A JSON summary `{"epoch", "iterations", "best_score"}`.
        guard: The run's `NaNGuard`; a diverged epoch is never saved.
    """

    def __init__(self, path, state_path, guard=None):
        super().__init__()
        self.path = Path(path)
        self.state_path = Path(state_path)
        self.guard = guard

    def on_epoch_end(self, epoch, logs=None):
        if self.guard and self.guard.diverged:
            return
        self.model.epochs_done.assign(float(epoch + 1))
        if not is_chief():
            return
        save_weights_atomic(self.model, self.path)
        state = {
            "epoch": epoch + 1,
            "iterations": int(self.model.optimizer.iterations.numpy()),
            "best_score": float(self.model.best_score.numpy()),
        }
        write_text_atomic(self.state_path, json.dumps(state, indent=2) + "\n")


class PredictionPreview(keras.callbacks.Callback):
    """A PNG per epoch: validation tiles, their labels and predicted probabilities.

    One row per tile: the image (first three bands, de-normalised), the label
    (white landslide, grey ignored) and the landslide probability (black 0 to
    white 1) with the thresholded outline in red.

    Args:
        folder: Where `epoch_NNN.png` files go.
        images: Normalised model input (N, H, W, C).
        masks: Labels (N, H, W) or (N, H, W, 1) with 0/1/255.
        preprocessing: The `Preprocessing` of `images`, to undo normalisation.
        threshold: Landslide probability threshold.
        guard: The run's `NaNGuard`; no preview is drawn after a divergence.
    """

    def __init__(self, folder, images, masks, preprocessing, threshold=0.5, guard=None):
        super().__init__()
        self.guard = guard
        self.folder = Path(folder)
        self.images = np.asarray(images, "float32")
        self.masks = np.asarray(masks).reshape(self.images.shape[:3])
        self.preprocessing = preprocessing
        self.threshold = threshold

    def _rgb(self, images):
        mean = np.asarray(self.preprocessing.mean, "float32")
        std = np.asarray(self.preprocessing.std, "float32")
        unit = images * std + mean
        unit = unit[..., :3] if unit.shape[-1] >= 3 else np.repeat(unit[..., :1], 3, axis=-1)
        return (np.clip(unit, 0.0, 1.0) * 255).astype("uint8")

    def render(self, probabilities):
        """The preview grid as a (N*H, 3*W, 3) uint8 array."""
        rgb = self._rgb(self.images)
        label = np.where(self.masks == 1, 255, np.where(self.masks == 255, 128, 0)).astype("uint8")
        label = np.repeat(label[..., None], 3, axis=-1)
        prob = (np.clip(probabilities, 0.0, 1.0) * 255).astype("uint8")
        prob = np.repeat(prob[..., None], 3, axis=-1)
        binary = probabilities >= self.threshold
        edge = binary & ~(
            np.roll(binary, 1, 1) & np.roll(binary, -1, 1) & np.roll(binary, 1, 2) & np.roll(binary, -1, 2)
        )
        prob[edge] = (255, 0, 0)
        rows = [np.concatenate([rgb[i], label[i], prob[i]], axis=1) for i in range(len(rgb))]
        return np.concatenate(rows, axis=0)

    def on_epoch_end(self, epoch, logs=None):
        if not is_chief() or not len(self.images) or (self.guard and self.guard.diverged):
            return
        from PIL import Image

        logits = np.asarray(self.model.model.predict_on_batch(self.images), "float32")
        if logits.shape[-1] == 1:
            probabilities = 1.0 / (1.0 + np.exp(-logits[..., 0]))
        else:
            exp = np.exp(logits - logits.max(-1, keepdims=True))
            probabilities = (exp / exp.sum(-1, keepdims=True))[..., 1]
        path = self.folder / f"epoch_{epoch + 1:03d}.png"
        with atomic_path(path) as temporary:
            Image.fromarray(self.render(probabilities)).save(temporary, format="PNG")


class LearningRateLogger(keras.callbacks.Callback):
    """Add the optimizer's current learning rate to the epoch logs as `learning_rate`."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(np.asarray(self.model.optimizer.learning_rate))
