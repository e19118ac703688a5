"""SegFormer B0–B5: the shared model contract and the exact reference sizes."""

import numpy as np
import pytest

from gdcld_zoo import build_model
from gdcld_zoo.models.segformer import MIT_VARIANTS, MixTransformerEncoder
from tests.models.model_checks import check_model_contract, check_param_count


@pytest.mark.backend
def test_contract(tmp_path):
    check_model_contract("segformer_tiny", tmp_path)


def test_contract_softmax_classes(tmp_path):
    check_model_contract("segformer_tiny", tmp_path, size=(32, 64), num_classes=3)


@pytest.mark.parametrize("variant", sorted(MIT_VARIANTS))
def test_param_count_is_exact(variant):
    check_param_count(f"segformer_{variant}")


def test_encoder_returns_features_keyed_by_stride():
    encoder = build_model("segformer_tiny").get_layer("encoder")
    assert isinstance(encoder, MixTransformerEncoder)
    features = encoder(np.zeros((1, 64, 96, 3), "float32"))
    assert {k: tuple(v.shape) for k, v in features.items()} == {
        "stride_4": (1, 16, 24, 8),
        "stride_8": (1, 8, 12, 16),
        "stride_16": (1, 4, 6, 24),
        "stride_32": (1, 2, 3, 32),
    }


def test_training_mode_only_changes_output_when_asked():
    model = build_model("segformer_tiny", drop_path_rate=0.5, dropout_rate=0.5)
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    inference = np.asarray(model(images))
    np.testing.assert_array_equal(np.asarray(model(images, training=False)), inference)
    assert not np.allclose(np.asarray(model(images, training=True)), inference)


def test_full_size_b4_builds_for_paper_tiles():
    for size in (512, 1024):
        model = build_model("segformer_b4", input_shape=(size, size, 3))
        assert model.output_shape == (None, size, size, 1)
