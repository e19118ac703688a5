"""Streaming metrics against a hand-written confusion-matrix computation."""

import doctest

import keras
import numpy as np
import pytest

import gdcld_zoo.metrics
from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.metrics import (
    ConfusionMatrixMetrics,
    confusion_matrix_metrics,
    metrics_from_confusion_matrix,
)


def reference_binary(labels, predicted):
    """Paper eqs. 2-5 with explicit TP/FP/FN/TN counting, ignoring 255."""
    labels, predicted = labels.ravel(), predicted.ravel()
    keep = labels != 255
    labels, predicted = labels[keep], predicted[keep]
    tp = int(np.sum((labels == 1) & (predicted == 1)))
    fp = int(np.sum((labels == 0) & (predicted == 1)))
    fn = int(np.sum((labels == 1) & (predicted == 0)))
    tn = int(np.sum((labels == 0) & (predicted == 0)))
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    return {
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall),
        "iou": tp / (tp + fp + fn),
        "iou_background": tn / (tn + fn + fp),
        "miou": (tp / (tp + fp + fn) + tn / (tn + fn + fp)) / 2,
        "confusion_matrix": [[tn, fp], [fn, tp]],
    }


@pytest.fixture
def batch():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, size=(4, 16, 16, 1)).astype("uint8")
    labels[0, :4] = 255
    labels[2, :, :3] = 255
    logits = rng.normal(size=(4, 16, 16, 1)).astype("float32") + (labels == 1) * 1.0
    return labels, logits


def _keras_values(metric):
    return {k: float(v) for k, v in metric.result().items()}


def test_numpy_matches_reference(batch):
    labels, logits = batch
    got = confusion_matrix_metrics(labels, logits)
    want = reference_binary(labels, (logits[..., 0] >= 0).astype(int)[..., None])
    assert got["confusion_matrix"] == want.pop("confusion_matrix")
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


def test_keras_metric_matches_reference_and_streams(batch):
    labels, logits = batch
    want = reference_binary(labels, (logits >= 0).astype(int))
    metric = ConfusionMatrixMetrics()
    for i in range(len(labels)):  # one image per update == one big batch
        metric.update_state(labels[i : i + 1], logits[i : i + 1])
    got = _keras_values(metric)
    np.testing.assert_array_equal(metric.confusion_matrix(), want.pop("confusion_matrix"))
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
    whole = ConfusionMatrixMetrics()
    whole.update_state(labels, logits)
    assert _keras_values(whole) == pytest.approx(got, abs=1e-7)


def test_streaming_is_not_a_mean_of_batches():
    metric = ConfusionMatrixMetrics()
    # batch 1: 1 TP 1 FP; batch 2: 3 TP 0 FP -> precision 4/5, not mean(0.5, 1.0).
    metric.update_state(np.array([1, 0]).reshape(1, 2, 1, 1), np.array([5.0, 5.0]).reshape(1, 2, 1, 1))
    metric.update_state(np.ones((1, 3, 1, 1)), np.full((1, 3, 1, 1), 5.0))
    assert float(metric.result()["precision"]) == pytest.approx(0.8)
    metric.reset_state()
    assert metric.confusion_matrix().sum() == 0


def test_threshold_and_probabilities():
    labels = np.array([0, 1, 1, 0]).reshape(1, 2, 2, 1)
    probs = np.array([0.6, 0.7, 0.4, 0.1]).reshape(1, 2, 2, 1)
    low = confusion_matrix_metrics(labels, probs, threshold=0.5, from_logits=False)
    high = confusion_matrix_metrics(labels, probs, threshold=0.65, from_logits=False)
    assert low["confusion_matrix"] == [[1, 1], [1, 1]]
    assert high["confusion_matrix"] == [[2, 0], [1, 1]]
    metric = ConfusionMatrixMetrics(threshold=0.65, from_logits=False)
    metric.update_state(labels, probs)
    np.testing.assert_array_equal(metric.confusion_matrix(), high["confusion_matrix"])


def test_empty_classes_all_background():
    labels = np.zeros((2, 8, 8, 1), "uint8")
    labels[1, 0] = 255
    # Nothing to find and nothing found: landslide values count as perfect.
    clean = confusion_matrix_metrics(labels, np.full((2, 8, 8, 1), -4.0))
    assert clean["precision"] == clean["recall"] == clean["f1"] == clean["iou"] == 1.0
    assert clean["iou_background"] == clean["miou"] == 1.0
    # One false alarm: precision, F1 and IoU of landslide drop to 0, recall stays undefined -> 0.
    logits = np.full((2, 8, 8, 1), -4.0)
    logits[0, 0, 0] = 4.0
    false_alarm = confusion_matrix_metrics(labels, logits)
    assert false_alarm["precision"] == 0.0 and false_alarm["iou"] == 0.0 and false_alarm["recall"] == 0.0
    assert false_alarm["iou_background"] == pytest.approx(119 / 120)  # 128 pixels - 8 ignored
    metric = ConfusionMatrixMetrics()
    metric.update_state(labels, logits)
    for key in ("precision", "recall", "f1", "iou", "iou_background", "miou"):
        assert float(metric.result()[key]) == pytest.approx(false_alarm[key]), key
    metric.reset_state()
    metric.update_state(labels, np.full((2, 8, 8, 1), -4.0))
    assert float(metric.result()["miou"]) == 1.0


def test_missed_landslide_precision_zero():
    labels = np.array([1, 0, 0, 0]).reshape(1, 2, 2, 1)
    values = metrics_from_confusion_matrix([[3, 0], [1, 0]])
    assert values["precision"] == 0.0 and values["recall"] == 0.0 and values["f1"] == 0.0
    assert confusion_matrix_metrics(labels, np.full((1, 2, 2, 1), -1.0))["miou"] == pytest.approx(0.375)


def test_multiclass_per_class_and_mean():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(2, 8, 8))
    labels[0, 0] = 255
    logits = rng.normal(size=(2, 8, 8, 3))
    pred = logits.argmax(-1)
    got = confusion_matrix_metrics(labels, logits, num_classes=3)
    keep = labels != 255
    ious = []
    for k in range(3):
        tp = np.sum((labels == k) & (pred == k) & keep)
        fp = np.sum((labels != k) & (pred == k) & keep)
        fn = np.sum((labels == k) & (pred != k) & keep)
        ious.append(tp / (tp + fp + fn))
        assert got[f"iou_{k}"] == pytest.approx(ious[-1])
        assert got[f"precision_{k}"] == pytest.approx(tp / (tp + fp))
    assert got["miou"] == pytest.approx(np.mean(ious))
    metric = ConfusionMatrixMetrics(num_classes=3)
    metric.update_state(labels[..., None], logits)
    np.testing.assert_array_equal(metric.confusion_matrix(), got["confusion_matrix"])
    assert float(metric.result()["miou"]) == pytest.approx(got["miou"], abs=1e-6)


def test_two_class_softmax_is_binary():
    labels = np.array([0, 1, 1, 255]).reshape(1, 2, 2)
    logits = np.array([[2, 0], [0, 2], [2, 0], [0, 2]], "float32").reshape(1, 2, 2, 2)
    got = confusion_matrix_metrics(labels, logits, num_classes=2)
    assert got["confusion_matrix"] == [[1, 0], [1, 1]]
    assert got["recall"] == 0.5 and got["precision"] == 1.0


def test_large_counts_stay_exact():
    metric = ConfusionMatrixMetrics()
    labels = np.ones((1, 2048, 2048, 1), "uint8")
    logits = np.ones((1, 2048, 2048, 1), "float32")
    for _ in range(5):  # 5 * 2**22 > 2**24, where float32 stops counting exactly
        metric.update_state(labels, logits)
    labels[0, 0, 0, 0] = 0
    metric.update_state(labels, logits)
    assert metric.confusion_matrix()[1, 1] == 6 * 2**22 - 1
    assert metric.confusion_matrix()[0, 1] == 1


def test_bad_labels_and_shapes_raise():
    with pytest.raises(InvalidInputError, match="Labels must be in"):
        confusion_matrix_metrics(np.array([[2]]), np.array([[[1.0]]]))
    with pytest.raises(InvalidInputError, match="shape"):
        confusion_matrix_metrics(np.zeros((1, 2, 2)), np.zeros((1, 3, 3, 1)))


def test_keras_compile_logs_and_config(tmp_path):
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1)(inputs))
    model.compile("adam", "mse", metrics=[ConfusionMatrixMetrics()])
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype("float32")
    y = (x > 0).astype("float32")
    history = model.fit(x, y, validation_data=(x, y), epochs=1, verbose=0)
    assert {"miou", "f1", "precision", "val_miou", "val_iou_background"} <= set(history.history)
    metric = ConfusionMatrixMetrics(threshold=0.3, ignore_index=None)
    clone = ConfusionMatrixMetrics.from_config(metric.get_config())
    assert clone.threshold == 0.3 and clone.ignore_index is None


def test_docstring_examples():
    result = doctest.testmod(gdcld_zoo.metrics, extraglobs={"np": np})
    assert result.attempted > 0 and result.failed == 0
