"""predict_tile: the model's preprocessing, padding to 32 and probabilities."""

import doctest

import numpy as np
import pytest
from keras import ops

import gdcld_zoo.inference
from gdcld_zoo import build_model
from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.inference import predict_tile
from gdcld_zoo.preprocessing import Preprocessing
from gdcld_zoo.weights import load_pretrained, write_run_record


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.fixture(scope="module")
def model():
    return build_model("segformer_tiny")


def test_default_rgb_imagenet_preprocessing(model):
    raw = np.random.default_rng(0).integers(0, 256, size=(3, 64, 96, 3)).astype("uint8")
    expected = sigmoid(ops.convert_to_numpy(model(Preprocessing().apply(raw), training=False)))
    got = predict_tile(model, raw, batch_size=2)
    assert got.shape == (3, 64, 96, 1) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(predict_tile(model, raw[0]), expected[0], atol=1e-5)


def test_pads_to_multiple_of_32_and_crops_back(model):
    raw = np.random.default_rng(1).integers(0, 256, size=(1, 40, 50, 3)).astype("uint8")
    padded = np.pad(Preprocessing().apply(raw), ((0, 0), (0, 24), (0, 14), (0, 0)), mode="symmetric")
    expected = sigmoid(ops.convert_to_numpy(model(padded, training=False)))[:, :40, :50]
    np.testing.assert_allclose(predict_tile(model, raw), expected, atol=1e-5)
    assert predict_tile(model, raw[:, :5, :7]).shape == (1, 5, 7, 1)  # pad wider than the tile


def test_uses_the_weight_records_preprocessing(tmp_path):
    spec = Preprocessing(
        bands=(1, 2, 3, 4), band_names=("r", "g", "b", "nir"), dtype="uint16",
        scale=(1e4,) * 4, mean=(0.1,) * 4, std=(0.2,) * 4,
    )
    four_band = build_model("segformer_tiny", input_shape=(None, None, 4))
    four_band.save_weights(tmp_path / "best.weights.h5")
    write_run_record(tmp_path, tmp_path / "best.weights.h5", "segformer_tiny", preprocessing=spec)
    loaded = load_pretrained(tmp_path)
    raw = np.random.default_rng(2).integers(0, 10000, size=(1, 32, 32, 4)).astype("uint16")
    expected = sigmoid(ops.convert_to_numpy(four_band(spec.apply(raw), training=False)))
    np.testing.assert_allclose(predict_tile(loaded, raw), expected, atol=1e-5)
    with pytest.raises(InvalidInputError, match="4 bands"):
        predict_tile(loaded, raw[..., :3])


def test_two_class_softmax_and_more_classes_refused():
    two = build_model("segformer_tiny", num_classes=2)
    raw = np.zeros((1, 32, 32, 3), "uint8")
    logits = ops.convert_to_numpy(two(Preprocessing().apply(raw), training=False))
    expected = np.exp(logits[..., 1:]) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(predict_tile(two, raw), expected, atol=1e-5)
    with pytest.raises(InvalidInputError, match="1 \\(sigmoid\\) or 2"):
        predict_tile(build_model("segformer_tiny", num_classes=3), raw)


def test_bad_shapes(model):
    with pytest.raises(InvalidInputError, match=r"\(N, H, W, C\)"):
        predict_tile(model, np.zeros((32, 32), "uint8"))


def test_docstring_example():
    result = doctest.testmod(gdcld_zoo.inference, extraglobs={"np": np})
    assert result.attempted > 0 and result.failed == 0
