"""Bilinear upsampling by integer factors, matching PyTorch `align_corners=False`.

`keras.layers.UpSampling2D(interpolation="bilinear")` resizes with half-pixel
centres (the same sampling grid as PyTorch's `interpolate(..., align_corners=False)`)
and works on dynamic heights and widths. `keras.layers.Resizing` is avoided on
purpose: in Keras 3.15 it defaults to `training=True` and leaks training mode to
the batch-norm layers after it when a model is called without `training=False`.
"""

from keras import layers


def bilinear_upsample(x, factor, name=None, dtype=None):
    """Upsample a (B, H, W, C) tensor by an integer `factor` with bilinear sampling."""
    if factor == 1:
        return x
    return layers.UpSampling2D(size=factor, interpolation="bilinear", name=name, dtype=dtype)(x)


def full_resolution_logits(logits, factor, name="logits"):
    """The output contract of every model: logits at input resolution, float32.

    `logits` are at stride `factor`; the result is (B, factor*H, factor*W, K) in
    float32 even under a mixed-precision policy, so losses and metrics are
    always computed in full precision.
    """
    if factor == 1:
        return layers.Activation("linear", dtype="float32", name=name)(logits)
    return layers.UpSampling2D(size=factor, interpolation="bilinear", dtype="float32", name=name)(logits)
