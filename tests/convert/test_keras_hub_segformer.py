"""from_keras_hub: a randomly initialised keras-hub SegFormer, at its fixed size, then ours at others."""

import numpy as np
import pytest

from tests.extras import require

keras_hub = require("keras_hub")
import keras  # noqa: E402

from gdcld_zoo.convert import ConversionError, from_keras_hub  # noqa: E402
from gdcld_zoo.errors import MissingExtraError  # noqa: E402

# Not a preset: other widths, depths, heads and reduction ratios, 3 classes.
MIT = dict(num_layers=4, hidden_dims=[16, 24, 40, 64], layerwise_depths=[1, 2, 1, 1],
           layerwise_num_heads=[1, 2, 5, 8], layerwise_sr_ratios=[4, 2, 2, 1],
           layerwise_patch_sizes=[7, 3, 3, 3], layerwise_strides=[4, 2, 2, 2], max_drop_path_rate=0.1)


def segmenter(size, weights=None):
    """A keras-hub SegFormerImageSegmenter at `size` x `size`: random weights (moving variances
    positive, so layout mistakes show), or `weights`."""
    mit = keras_hub.models.MiTBackbone(image_shape=(size, size, 3), **MIT)
    backbone = keras_hub.models.SegFormerBackbone(image_encoder=mit, projection_filters=32)
    model = keras_hub.models.SegFormerImageSegmenter(backbone=backbone, num_classes=3)
    if weights is None:
        rng = np.random.default_rng(0)
        weights = [np.abs(rng.normal(size=w.shape)) * 0.5 + 0.5 if "moving_variance" in w.path
                   else rng.normal(size=w.shape) * 0.5 for w in model.weights]
    model.set_weights(weights)
    return model


@pytest.fixture(scope="module")
def reference():
    return segmenter(64)


def images(height, width, seed=1):
    return np.random.default_rng(seed).normal(size=(2, height, width, 3)).astype("float32")


def test_logits_equal_keras_hubs_at_its_size(reference):
    model = from_keras_hub(reference)
    x = images(64, 64)
    expected = np.asarray(reference(x, training=False))
    np.testing.assert_allclose(np.asarray(model(x, training=False)), expected, atol=1e-4)
    assert model.output_shape == (None, None, None, 3)


def test_other_sizes_square_as_keras_hub_rebuilt_and_non_square_which_it_cannot_take(reference):
    model = from_keras_hub(reference)
    at_96 = segmenter(96, reference.get_weights())
    x = images(96, 96, seed=2)
    np.testing.assert_allclose(np.asarray(model(x, training=False)), np.asarray(at_96(x, training=False)),
                               atol=1e-4)
    with pytest.raises(Exception):
        keras_hub.models.MiTBackbone(image_shape=(64, 96, 3), **MIT)(images(64, 96))
    out = np.asarray(model(images(64, 96), training=False))
    assert out.shape == (2, 64, 96, 3) and np.isfinite(out).all()


def test_backbones_bring_what_they_have(reference):
    encoder_only = from_keras_hub(reference.backbone.image_encoder)
    assert encoder_only.output_shape[-1] == 1
    ours, theirs = encoder_only.get_layer("encoder"), from_keras_hub(reference).get_layer("encoder")
    for a, b in zip(ours.weights, theirs.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    two = from_keras_hub(reference.backbone, num_classes=2)
    np.testing.assert_array_equal(np.asarray(two.get_layer("decoder_linear_fuse").kernel),
                                  np.asarray(reference.backbone.linear_fuse.layers[0].kernel))


def test_other_models_are_refused():
    with pytest.raises(ConversionError, match="Expected a keras-hub SegFormerImageSegmenter"):
        from_keras_hub(keras.Sequential([keras.layers.Dense(1)]))


def test_without_keras_hub_the_error_names_the_extra(monkeypatch, reference):
    import sys

    monkeypatch.setitem(sys.modules, "keras_hub", None)
    with pytest.raises(MissingExtraError, match=r'pip install "gdcld-zoo\[keras-hub\]"'):
        from_keras_hub(reference)
