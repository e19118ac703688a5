"""Losses against hand computations; 255 never contributes."""

import doctest

import keras
import numpy as np
import pytest

import gdcld_zoo.losses
from gdcld_zoo.errors import UnknownNameError
from gdcld_zoo.losses import BCEDiceLoss, BinaryCrossEntropy, DiceLoss, FocalLoss, get_loss


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.fixture
def binary():
    labels = np.array([1, 0, 1, 255, 0, 255], "float32").reshape(1, 2, 3, 1)
    logits = np.array([2.0, -1.0, -0.5, 30.0, 0.5, -30.0], "float32").reshape(1, 2, 3, 1)
    keep = labels.ravel() != 255
    return labels, logits, labels.ravel()[keep], sigmoid(logits.ravel()[keep].astype("float64"))


def test_bce_matches_paper_equation(binary):
    labels, logits, y, p = binary
    want = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert float(BinaryCrossEntropy()(labels, logits)) == pytest.approx(want, rel=1e-5)
    assert float(get_loss("bce")(labels[..., 0], logits)) == pytest.approx(want, rel=1e-5)


def test_ignored_pixels_do_not_matter(binary):
    labels, logits, _, _ = binary
    other = logits.copy()
    other[labels == 255] = -other[labels == 255] * 100
    for name in ("bce", "dice", "focal", "bce_dice"):
        loss = get_loss(name)
        assert float(loss(labels, logits)) == pytest.approx(float(loss(labels, other)), rel=1e-6), name


def test_dice_hand_computation(binary):
    labels, logits, y, p = binary
    want = 1 - (2 * np.sum(p * y) + 1) / (np.sum(p) + np.sum(y) + 1)
    assert float(DiceLoss()(labels, logits)) == pytest.approx(want, rel=1e-5)


def test_focal_hand_computation(binary):
    labels, logits, y, p = binary
    p_t = np.where(y == 1, p, 1 - p)
    want = np.mean(-((1 - p_t) ** 2) * np.log(p_t))
    assert float(FocalLoss()(labels, logits)) == pytest.approx(want, rel=1e-5)
    alpha_t = np.where(y == 1, 0.25, 0.75)
    weighted = np.mean(-alpha_t * (1 - p_t) ** 2 * np.log(p_t))
    assert float(FocalLoss(alpha=0.25)(labels, logits)) == pytest.approx(weighted, rel=1e-5)
    plain = float(BinaryCrossEntropy()(labels, logits))
    assert float(FocalLoss(gamma=0.0)(labels, logits)) == pytest.approx(plain, rel=1e-6)


def test_bce_dice_is_weighted_sum(binary):
    labels, logits, _, _ = binary
    bce, dice = float(BinaryCrossEntropy()(labels, logits)), float(DiceLoss()(labels, logits))
    assert float(BCEDiceLoss(bce_weight=0.5, dice_weight=2.0)(labels, logits)) == pytest.approx(
        0.5 * bce + 2.0 * dice, rel=1e-6
    )


def test_softmax_cross_entropy_and_dice_multiclass():
    labels = np.array([0, 2, 1, 255]).reshape(1, 2, 2)
    logits = np.random.default_rng(0).normal(size=(1, 2, 2, 3)).astype("float32")
    flat = logits.reshape(-1, 3).astype("float64")[:3]
    probs = np.exp(flat) / np.exp(flat).sum(-1, keepdims=True)
    y = labels.ravel()[:3]
    want = -np.mean(np.log(probs[np.arange(3), y]))
    assert float(BinaryCrossEntropy()(labels, logits)) == pytest.approx(want, rel=1e-5)
    onehot = np.eye(3)[y]
    dice = (2 * (probs * onehot).sum(0) + 1) / (probs.sum(0) + onehot.sum(0) + 1)
    assert float(DiceLoss()(labels, logits)) == pytest.approx(1 - dice.mean(), rel=1e-5)


def test_all_ignored_batch_is_zero_not_nan():
    labels = np.full((1, 4, 4, 1), 255, "float32")
    logits = np.ones((1, 4, 4, 1), "float32")
    assert float(BinaryCrossEntropy()(labels, logits)) == 0.0
    assert float(DiceLoss()(labels, logits)) == 0.0


def test_serialisation_round_trip():
    for loss in (BinaryCrossEntropy(ignore_index=None), DiceLoss(smooth=2.0), FocalLoss(gamma=1.5, alpha=0.3), BCEDiceLoss(dice_weight=0.5)):
        clone = keras.losses.deserialize(keras.losses.serialize(loss))
        assert type(clone) is type(loss) and clone.get_config() == loss.get_config()


def test_compiled_model_saves_with_loss(tmp_path):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1)(inputs))
    model.compile("adam", loss=get_loss("bce_dice"))
    model.save(tmp_path / "m.keras")
    assert isinstance(keras.models.load_model(tmp_path / "m.keras").loss, BCEDiceLoss)


def test_unknown_loss_suggests():
    with pytest.raises(UnknownNameError, match="bce_dice"):
        get_loss("bce_dyce")


def test_docstring_examples():
    result = doctest.testmod(gdcld_zoo.losses, extraglobs={"np": np})
    assert result.attempted > 0 and result.failed == 0
