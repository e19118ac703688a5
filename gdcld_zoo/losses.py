"""Segmentation losses from logits that skip ignored pixels (label 255).

The GDCLD paper trains with binary cross-entropy (eq. 1). Dice, focal and
BCE + Dice are the usual alternatives for the strong landslide/background
imbalance (Milletari et al. 2016; Lin et al. 2017). Every loss here:

- takes logits (B, H, W, K) as every zoo model returns them and labels
  (B, H, W, 1) or (B, H, W) with class indexes, 255 for nodata;
- uses a sigmoid for K = 1 (the paper's setting) and a softmax for K >= 2;
- averages over the valid pixels of the whole batch, so tiles with much nodata
  do not weigh more, and returns 0 for a batch with no valid pixel at all;
- is a registered Keras loss, so a compiled model saves and loads as `.keras`.

`get_loss("bce" | "dice" | "focal" | "bce_dice")` builds one by name.
"""

import keras
from keras import ops

from gdcld_zoo.errors import UnknownNameError


def _prepare(y_true, y_pred, ignore_index):
    """Labels (B, H, W) int32 with ignored pixels set to 0, and a float32 validity mask."""
    y_pred = ops.cast(y_pred, "float32")
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) == len(y_pred.shape):
        y_true = ops.squeeze(y_true, axis=-1)
    y_true = ops.cast(y_true, "int32")
    if ignore_index is None:
        valid = ops.ones_like(y_true, dtype="float32")
    else:
        valid = ops.cast(ops.not_equal(y_true, ignore_index), "float32")
    labels = ops.where(valid > 0, y_true, ops.zeros_like(y_true))
    return labels, y_pred, valid


def _masked_mean(values, valid):
    return ops.sum(values * valid) / ops.maximum(ops.sum(valid), 1.0)


def _per_pixel_cross_entropy(labels, logits):
    """-log p(true class) per pixel: sigmoid for 1 channel, softmax otherwise."""
    if logits.shape[-1] == 1:
        return ops.binary_crossentropy(
            ops.cast(labels, "float32")[..., None], logits, from_logits=True
        )[..., 0]
    return ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)


def _probabilities_and_targets(labels, logits):
    """Per-class probabilities and one-hot targets (B, H, W, C); C = 1 for a sigmoid."""
    if logits.shape[-1] == 1:
        return ops.sigmoid(logits), ops.cast(labels, "float32")[..., None]
    num_classes = logits.shape[-1]
    return ops.softmax(logits, axis=-1), ops.one_hot(labels, num_classes)


class _SegmentationLoss(keras.losses.Loss):
    """Shared constructor/config: `ignore_index` and a batch-wide masked mean."""

    def __init__(self, ignore_index=255, name=None, reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.ignore_index = ignore_index

    def get_config(self):
        return {**super().get_config(), "ignore_index": self.ignore_index}


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class BinaryCrossEntropy(_SegmentationLoss):
    """Cross-entropy from logits over valid pixels; the paper's loss (eq. 1).

    Sigmoid binary cross-entropy for one output channel, softmax
    cross-entropy for two or more.

    Args:
        ignore_index: Label value left out of the mean (None keeps every pixel).

    Example:
    >>> loss = BinaryCrossEntropy()
    >>> round(float(loss(np.array([[[1], [255]]]), np.zeros((1, 2, 1, 1)))), 4)
    0.6931
    """

    def __init__(self, ignore_index=255, name="bce", **kwargs):
        super().__init__(ignore_index=ignore_index, name=name, **kwargs)

    def call(self, y_true, y_pred):
        labels, logits, valid = _prepare(y_true, y_pred, self.ignore_index)
        return _masked_mean(_per_pixel_cross_entropy(labels, logits), valid)


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class DiceLoss(_SegmentationLoss):
    """Soft Dice loss over the valid pixels of the batch (Milletari et al., 2016).

    `1 - (2 * sum(p * y) + smooth) / (sum(p) + sum(y) + smooth)` computed over the
    whole batch per class; for one channel only the landslide class counts, for
    several the per-class losses are averaged.

    Args:
        smooth: Added to numerator and denominator; keeps empty batches at 0 loss.
        ignore_index: Label value left out (None keeps every pixel).
    """

    def __init__(self, smooth=1.0, ignore_index=255, name="dice", **kwargs):
        super().__init__(ignore_index=ignore_index, name=name, **kwargs)
        self.smooth = smooth

    def call(self, y_true, y_pred):
        labels, logits, valid = _prepare(y_true, y_pred, self.ignore_index)
        probs, targets = _probabilities_and_targets(labels, logits)
        mask = valid[..., None]
        axes = tuple(range(len(probs.shape) - 1))
        intersection = ops.sum(probs * targets * mask, axis=axes)
        total = ops.sum(probs * mask, axis=axes) + ops.sum(targets * mask, axis=axes)
        dice = (2.0 * intersection + self.smooth) / (total + self.smooth)
        return 1.0 - ops.mean(dice)

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth}


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class FocalLoss(_SegmentationLoss):
    """Focal loss from logits over valid pixels (Lin et al., 2017).

    `-alpha_t * (1 - p_t) ** gamma * log(p_t)` with `p_t` the probability of the
    true class; `gamma=0, alpha=None` is plain cross-entropy.

    Args:
        gamma: Focusing exponent; larger values down-weight easy pixels more.
        alpha: Weight of the landslide class (1 - alpha for background) with one
            channel, or None for no class weighting. Ignored for several channels.
        ignore_index: Label value left out (None keeps every pixel).
    """

    def __init__(self, gamma=2.0, alpha=None, ignore_index=255, name="focal", **kwargs):
        super().__init__(ignore_index=ignore_index, name=name, **kwargs)
        self.gamma = gamma
        self.alpha = alpha

    def call(self, y_true, y_pred):
        labels, logits, valid = _prepare(y_true, y_pred, self.ignore_index)
        cross_entropy = _per_pixel_cross_entropy(labels, logits)
        p_true = ops.exp(-cross_entropy)
        focal = ops.power(1.0 - p_true, self.gamma) * cross_entropy
        if self.alpha is not None and logits.shape[-1] == 1:
            positive = ops.cast(labels, "float32")
            focal = focal * (self.alpha * positive + (1.0 - self.alpha) * (1.0 - positive))
        return _masked_mean(focal, valid)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class BCEDiceLoss(_SegmentationLoss):
    """`bce_weight * BinaryCrossEntropy + dice_weight * DiceLoss`, both ignoring 255."""

    def __init__(self, bce_weight=1.0, dice_weight=1.0, smooth=1.0, ignore_index=255, name="bce_dice", **kwargs):
        super().__init__(ignore_index=ignore_index, name=name, **kwargs)
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight
        self.smooth = smooth
        self._bce = BinaryCrossEntropy(ignore_index=ignore_index)
        self._dice = DiceLoss(smooth=smooth, ignore_index=ignore_index)

    def call(self, y_true, y_pred):
        return self.bce_weight * self._bce.call(y_true, y_pred) + self.dice_weight * self._dice.call(
            y_true, y_pred
        )

    def get_config(self):
        return {
            **super().get_config(),
            "bce_weight": self.bce_weight,
            "dice_weight": self.dice_weight,
            "smooth": self.smooth,
        }


LOSSES = {
    "bce": BinaryCrossEntropy,
    "dice": DiceLoss,
    "focal": FocalLoss,
    "bce_dice": BCEDiceLoss,
}


def get_loss(name, **kwargs):
    """A loss by name (`bce`, `dice`, `focal`, `bce_dice`) with constructor overrides.

    Example:
    >>> get_loss("focal", gamma=1.0).gamma
    1.0
    """
    if name not in LOSSES:
        raise UnknownNameError("loss", name, LOSSES)
    return LOSSES[name](**kwargs)
