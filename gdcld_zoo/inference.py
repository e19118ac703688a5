"""`predict_tile`: landslide probabilities from raw image tiles, the one inference entry.

Evaluation, scene inference and the viewer all go through this function, so
every path feeds a model exactly what it was trained on: the raw pixels of a
GeoTIFF (as rasterio reads them, moved to channels-last) are normalised with the
model's own `Preprocessing` (from its weight record, else 8-bit RGB with
ImageNet statistics), padded to a multiple of 32 (reflecting the border, so the
model sees plausible context, never a frame of zeros), predicted, cropped back
and turned into probabilities.
"""

import numpy as np

from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.preprocessing import Preprocessing
from gdcld_zoo.registry import SIZE_MULTIPLE


def _model_preprocessing(model):
    from gdcld_zoo.weights import get_weight_record

    record = get_weight_record(model)
    return record.preprocessing if record is not None else Preprocessing()


def _pad(images, multiple):
    """Pad (N, H, W, C) at the bottom/right to multiples of `multiple`, mirroring the border."""
    height, width = images.shape[1:3]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not pad_h and not pad_w:
        return images
    widths = ((0, 0), (0, pad_h), (0, pad_w), (0, 0))
    # "symmetric" repeats the edge row too and works up to a pad as wide as the tile.
    mode = "symmetric" if pad_h <= height and pad_w <= width else "edge"
    return np.pad(images, widths, mode=mode)


def logits_to_probabilities(logits):
    """Landslide probability (N, H, W, 1): sigmoid of 1 channel, softmax class 1 of 2."""
    logits = np.asarray(logits, "float32")
    if logits.shape[-1] == 1:
        return 1.0 / (1.0 + np.exp(-logits))
    if logits.shape[-1] == 2:
        shifted = logits - logits.max(axis=-1, keepdims=True)
        exp = np.exp(shifted)
        return exp[..., 1:2] / exp.sum(axis=-1, keepdims=True)
    raise InvalidInputError(
        f"Landslide probabilities need a model with 1 (sigmoid) or 2 (softmax) output channels, "
        f"got {logits.shape[-1]}; use the logits of a multi-class model directly."
    )


def predict_tile(model, images, preprocessing=None, batch_size=8):
    """Landslide probabilities of raw image tiles.

    Args:
        model: A zoo `keras.Model` (images -> logits), e.g. from `load_pretrained`.
        images: Raw pixels (N, H, W, C) or one tile (H, W, C), bands in model
            order, any H and W, dtype as in the GeoTIFF (uint8, uint16, ...).
        preprocessing: Override the model's `Preprocessing`; default the one of
            its weight record (`get_weight_record(model)`), else 8-bit RGB with
            ImageNet mean/std.
        batch_size: Tiles per model call.

    Returns:
        float32 probabilities (N, H, W, 1) (or (H, W, 1) for one tile).

    Example:
    >>> from gdcld_zoo import build_model
    >>> model = build_model("segformer_tiny")
    >>> predict_tile(model, np.zeros((2, 40, 50, 3), "uint8")).shape
    (2, 40, 50, 1)
    """
    images = np.asarray(images)
    single = images.ndim == 3
    if single:
        images = images[None]
    if images.ndim != 4 or 0 in images.shape:
        raise InvalidInputError(
            f"predict_tile expects raw tiles (N, H, W, C) or one tile (H, W, C), got shape {images.shape}."
        )
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be positive, got {batch_size}.")
    from keras import ops

    preprocessing = preprocessing or _model_preprocessing(model)
    height, width = images.shape[1:3]
    inputs = _pad(preprocessing.apply(images), SIZE_MULTIPLE)
    # convert_to_numpy: a torch output requires grad, np.asarray cannot take it.
    chunks = [
        np.asarray(ops.convert_to_numpy(model(inputs[start : start + batch_size], training=False)), "float32")
        for start in range(0, len(inputs), batch_size)
    ]
    probabilities = logits_to_probabilities(np.concatenate(chunks))[:, :height, :width]
    return probabilities[0] if single else probabilities
