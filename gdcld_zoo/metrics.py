"""Streaming confusion-matrix metrics for landslide segmentation (paper eqs. 2-5).

GDCLD reports Precision, Recall, F1 and mIoU computed from one confusion matrix
accumulated over every pixel of a split (Fang et al., section 4.2). Averaging
per-batch values instead biases the result towards batches with few landslide
pixels, so both tools here only ever accumulate counts:

- `ConfusionMatrixMetrics`: a Keras metric for `model.compile(metrics=[...])`;
  its `result()` is a dict, so Keras logs `precision`, `recall`, `f1`, `iou`,
  `iou_background`, `miou` (and `val_...` for validation data).
- `confusion_matrix_metrics(y_true, y_pred)`: the same numbers from numpy arrays.

Binary segmentation (one logit channel with a threshold, or two softmax
channels): `precision`, `recall`, `f1` and `iou` are those of the landslide class
(class 1), `iou_background` that of class 0 and `miou` the mean of the two IoUs,
as in the paper. With more than two classes, `precision`, `recall`, `f1` and
`miou` are means over classes and per-class values are reported as
`precision_<k>`, `recall_<k>`, `f1_<k>`, `iou_<k>`.

Pixels whose label equals `ignore_index` (255, GDCLD's nodata) are left out.
Empty classes: a ratio whose denominator is zero is 1.0 when the class appears
in neither labels nor predictions (nothing to find, nothing falsely found) and
0.0 otherwise (e.g. precision of a class never predicted but present in labels).
"""

import keras
import numpy as np
from keras import ops

from gdcld_zoo.errors import InvalidInputError

# Counts are kept exactly in float32 as `high * _CARRY + low` (low < _CARRY):
# float32 holds integers exactly only up to 2**24, and a GDCLD split has ~1e10 pixels.
_CARRY = 2.0**20


def _num_matrix_classes(num_classes):
    if not isinstance(num_classes, int) or num_classes < 1:
        raise InvalidInputError(f"num_classes must be a positive integer, got {num_classes!r}.")
    return 2 if num_classes == 1 else num_classes


def _ratio(numerator, denominator, absent):
    """numerator / denominator; 1.0 where the class is absent everywhere, else 0.0."""
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, numerator / safe, np.where(absent, 1.0, 0.0))


def metrics_from_confusion_matrix(confusion_matrix):
    """Precision, recall, F1 and IoU from a (K, K) confusion matrix.

    Args:
        confusion_matrix: Counts with rows = true class, columns = predicted class.

    Returns:
        A flat dict of Python floats (see the module docstring for the keys).

    Example:
    >>> cm = np.array([[6, 1], [2, 3]])  # TN FP / FN TP
    >>> round(metrics_from_confusion_matrix(cm)["precision"], 4)
    0.75
    """
    cm = np.asarray(confusion_matrix, dtype="float64")
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] < 2:
        raise InvalidInputError(f"Expected a square (K, K) confusion matrix with K >= 2, got {cm.shape}.")
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    absent = (tp + fp + fn) == 0
    precision = _ratio(tp, tp + fp, absent)
    recall = _ratio(tp, tp + fn, absent)
    # 2PR / (P + R) == 2TP / (2TP + FP + FN) wherever P and R are defined (eq. 4).
    f1 = _ratio(2 * tp, 2 * tp + fp + fn, absent)
    iou = _ratio(tp, tp + fp + fn, absent)
    if cm.shape[0] == 2:
        return {
            "precision": float(precision[1]),
            "recall": float(recall[1]),
            "f1": float(f1[1]),
            "iou": float(iou[1]),
            "iou_background": float(iou[0]),
            "miou": float(iou.mean()),
        }
    values = {
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
        "miou": float(iou.mean()),
    }
    for k in range(cm.shape[0]):
        values.update(
            {
                f"precision_{k}": float(precision[k]),
                f"recall_{k}": float(recall[k]),
                f"f1_{k}": float(f1[k]),
                f"iou_{k}": float(iou[k]),
            }
        )
    return values


def predicted_classes(y_pred, num_classes=1, threshold=0.5, from_logits=True):
    """Class indexes from model outputs (numpy): threshold for 1 channel, argmax otherwise."""
    y_pred = np.asarray(y_pred)
    if num_classes == 1:
        scores = y_pred[..., 0] if y_pred.ndim >= 1 and y_pred.shape[-1] == 1 else y_pred
        if from_logits:
            scores = 1.0 / (1.0 + np.exp(-scores.astype("float64")))
        return (scores >= threshold).astype("int64")
    if y_pred.shape[-1] != num_classes:
        raise InvalidInputError(
            f"Predictions have {y_pred.shape[-1]} channels in the last axis but num_classes={num_classes}."
        )
    return np.argmax(y_pred, axis=-1).astype("int64")


def confusion_matrix(y_true, y_pred_classes, num_classes=2, ignore_index=255):
    """(K, K) int64 confusion matrix of class-index arrays, skipping `ignore_index` labels.

    Labels outside [0, K) other than `ignore_index` raise an error.
    """
    y_true = np.asarray(y_true).reshape(-1).astype("int64")
    y_pred_classes = np.asarray(y_pred_classes).reshape(-1).astype("int64")
    if y_true.shape != y_pred_classes.shape:
        raise InvalidInputError(
            f"Labels and predictions hold different pixel counts ({y_true.size} vs {y_pred_classes.size})."
        )
    keep = y_true != ignore_index if ignore_index is not None else np.ones_like(y_true, bool)
    y_true, y_pred_classes = y_true[keep], y_pred_classes[keep]
    bad = (y_true < 0) | (y_true >= num_classes)
    if bad.any():
        raise InvalidInputError(
            f"Labels must be in [0, {num_classes}) or {ignore_index} (ignored); "
            f"found {sorted(set(np.unique(y_true[bad]).tolist()))[:10]}."
        )
    counts = np.bincount(y_true * num_classes + y_pred_classes, minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes)


def confusion_matrix_metrics(
    y_true, y_pred, num_classes=1, threshold=0.5, from_logits=True, ignore_index=255
):
    """Paper metrics (eqs. 2-5) of a whole set of predictions, from numpy arrays.

    Args:
        y_true: Labels (N, H, W) or (N, H, W, 1) with class indexes and
            `ignore_index` for pixels to skip.
        y_pred: Model outputs (N, H, W, num_classes): logits (or probabilities
            with `from_logits=False`).
        num_classes: Output channels of the model; 1 means sigmoid + threshold.
        threshold: Probability above which a pixel is landslide (1 channel only).
        from_logits: Whether `y_pred` holds logits rather than probabilities.
        ignore_index: Label value to leave out; None keeps every pixel.

    Returns:
        A dict of floats plus `confusion_matrix` (a nested list of int counts).

    Example:
    >>> labels = np.array([[0, 1], [1, 255]])
    >>> probs = np.array([[0.2, 0.9], [0.3, 0.9]])[..., None]
    >>> confusion_matrix_metrics(labels, probs, from_logits=False)["recall"]
    0.5
    """
    k = _num_matrix_classes(num_classes)
    classes = predicted_classes(y_pred, num_classes, threshold, from_logits)
    y_true = np.asarray(y_true)
    if y_true.ndim == classes.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    if y_true.shape != classes.shape:
        raise InvalidInputError(
            f"Label shape {np.shape(y_true)} does not match prediction shape {np.shape(y_pred)}."
        )
    cm = confusion_matrix(y_true, classes, k, ignore_index)
    return {**metrics_from_confusion_matrix(cm), "confusion_matrix": cm.tolist()}


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class ConfusionMatrixMetrics(keras.metrics.Metric):
    """Precision, recall, F1, IoU and mIoU of a dataset, as one Keras metric.

    Accumulates a confusion matrix over every batch of an epoch (never a mean of
    per-batch values) and reports paper equations 2-5 from it. `result()` is a
    dict, which Keras flattens into the logs: `miou`, `f1`, `val_miou`, ...

    Args:
        num_classes: Output channels of the model. 1: sigmoid + `threshold`
            (the paper's setting); 2 or more: argmax.
        threshold: Landslide probability threshold for 1 channel.
        from_logits: Model outputs are logits (every zoo model's are).
        ignore_index: Label value left out (GDCLD nodata 255). Labels outside
            [0, classes) are never counted (a compiled step cannot raise on them;
            `confusion_matrix_metrics` does).
        name: Metric name (not shown in logs: the dict keys are).

    Example:
    >>> metric = ConfusionMatrixMetrics()
    >>> metric.update_state(np.array([[[[1.0]], [[0.0]]]]), np.array([[[[3.0]], [[-3.0]]]]))
    >>> round(float(metric.result()["miou"]), 2)
    1.0
    """

    def __init__(
        self,
        num_classes=1,
        threshold=0.5,
        from_logits=True,
        ignore_index=255,
        name="confusion_matrix_metrics",
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = num_classes
        self.threshold = threshold
        self.from_logits = from_logits
        self.ignore_index = ignore_index
        self._k = _num_matrix_classes(num_classes)
        shape = (self._k, self._k)
        self.counts_high = self.add_variable(
            shape=shape, initializer="zeros", dtype="float32", aggregation="sum", name="counts_high"
        )
        self.counts_low = self.add_variable(
            shape=shape, initializer="zeros", dtype="float32", aggregation="sum", name="counts_low"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.convert_to_tensor(y_true)
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        y_true = ops.cast(y_true, "int32")
        if self.num_classes == 1:
            scores = ops.cast(y_pred[..., 0], "float32")
            if self.from_logits:
                scores = ops.sigmoid(scores)
            pred = ops.cast(scores >= self.threshold, "int32")
        else:
            pred = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        # Only labels in [0, K) count: this drops `ignore_index` and, since a
        # compiled step cannot raise, any other out-of-range value too.
        in_range = ops.logical_and(ops.greater_equal(y_true, 0), ops.less(y_true, self._k))
        if self.ignore_index is not None:
            in_range = ops.logical_and(in_range, ops.not_equal(y_true, self.ignore_index))
        valid = ops.cast(in_range, "float32")
        y_true = ops.where(in_range, y_true, ops.zeros_like(y_true))
        if sample_weight is not None:
            weight = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
            while len(weight.shape) > len(y_true.shape):
                weight = ops.squeeze(weight, axis=-1)
            while len(weight.shape) < len(y_true.shape):
                weight = ops.expand_dims(weight, -1)
            valid = valid * weight
        true_1h = ops.reshape(ops.one_hot(y_true, self._k) * valid[..., None], (-1, self._k))
        pred_1h = ops.reshape(ops.one_hot(pred, self._k), (-1, self._k))
        batch_counts = ops.matmul(ops.transpose(true_1h), pred_1h)
        low = self.counts_low + batch_counts
        carry = ops.floor(low / _CARRY)
        self.counts_low.assign(low - carry * _CARRY)
        self.counts_high.assign(self.counts_high + carry)

    def confusion_matrix(self):
        """The accumulated (K, K) counts as float64 numpy (rows: true class)."""
        high = np.asarray(ops.convert_to_numpy(self.counts_high), "float64")
        low = np.asarray(ops.convert_to_numpy(self.counts_low), "float64")
        return high * _CARRY + low

    def result(self):
        cm = self.counts_high * _CARRY + self.counts_low
        tp = ops.diagonal(cm)
        fp = ops.sum(cm, axis=0) - tp
        fn = ops.sum(cm, axis=1) - tp
        absent = ops.cast(ops.equal(tp + fp + fn, 0.0), "float32")

        def ratio(numerator, denominator):
            defined = ops.cast(denominator > 0, "float32")
            value = numerator / ops.maximum(denominator, 1.0)
            return defined * value + (1.0 - defined) * absent

        precision = ratio(tp, tp + fp)
        recall = ratio(tp, tp + fn)
        f1 = ratio(2.0 * tp, 2.0 * tp + fp + fn)
        iou = ratio(tp, tp + fp + fn)
        if self._k == 2:
            return {
                "precision": precision[1],
                "recall": recall[1],
                "f1": f1[1],
                "iou": iou[1],
                "iou_background": iou[0],
                "miou": ops.mean(iou),
            }
        values = {
            "precision": ops.mean(precision),
            "recall": ops.mean(recall),
            "f1": ops.mean(f1),
            "miou": ops.mean(iou),
        }
        for k in range(self._k):
            values[f"precision_{k}"] = precision[k]
            values[f"recall_{k}"] = recall[k]
            values[f"f1_{k}"] = f1[k]
            values[f"iou_{k}"] = iou[k]
        return values

    def reset_state(self):
        # ops.zeros, not ops.zeros_like: JAX cannot take a Keras variable's likeness.
        for counts in (self.counts_high, self.counts_low):
            counts.assign(ops.zeros(counts.shape, counts.dtype))

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "threshold": self.threshold,
            "from_logits": self.from_logits,
            "ignore_index": self.ignore_index,
            "name": self.name,
            "dtype": self.dtype,
        }
