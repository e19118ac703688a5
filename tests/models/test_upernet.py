"""UperNet on ViT-B/16: the shared model contract, its size and its resizing parts."""

import keras
import numpy as np
import pytest

from gdcld_zoo import build_model
from gdcld_zoo.models.vit import ViTEncoder
from tests.models.model_checks import check_model_contract, check_param_count, graph_size_tests, trainable_param_count


@pytest.mark.backend
def test_contract(tmp_path):
    check_model_contract("upernet_vit_tiny", tmp_path)


@pytest.mark.slow
def test_contract_softmax_classes(tmp_path):
    check_model_contract("upernet_vit_tiny", tmp_path, size=(32, 64), num_classes=3)


def test_param_count_is_exact():
    check_param_count("upernet_vit_b16")


def test_size_matches_the_paper_setting():
    """142.3 M (±5 %) as reported; mmsegmentation's count, with position
    embeddings built for 512 pixels, is 142.29 M."""
    model = build_model("upernet_vit_b16")
    assert abs(trainable_param_count(model) - 142.3e6) / 142.3e6 < 0.05
    assert round(trainable_param_count(build_model("upernet_vit_b16", image_size=512)) / 1e5) == 1423


def test_full_size_builds_for_paper_tiles():
    for size in (512, 1024):
        model = build_model("upernet_vit_b16", input_shape=(size, size, 3))
        assert model.output_shape == (None, size, size, 1)


def test_neck_makes_a_stride_4_to_32_pyramid():
    model = build_model("upernet_vit_tiny")
    assert isinstance(model.get_layer("encoder"), ViTEncoder)
    shapes = {name: model.get_layer(f"neck_conv{i}").output.shape for i, name in enumerate((4, 8, 16, 32))}
    assert {s: shape[-1] for s, shape in shapes.items()} == {4: 16, 8: 16, 16: 16, 32: 16}
    probe = keras.Model(model.input, [model.get_layer(f"neck_conv{i}").output for i in range(4)])
    outs = probe(np.zeros((1, 64, 96, 3), "float32"))
    assert [tuple(o.shape[1:3]) for o in outs] == [(16, 24), (8, 12), (4, 6), (2, 3)]


def test_one_model_runs_on_several_sizes():
    """Position embeddings follow the token grid: any multiple of 32, not square."""
    model = build_model("upernet_vit_tiny")
    for size in ((32, 32), (64, 160), (96, 64)):
        out = np.asarray(model(np.ones((1, *size, 3), "float32")))
        assert out.shape == (1, *size, 1) and np.all(np.isfinite(out))


def test_position_embeddings_unchanged_on_their_own_grid():
    encoder = build_model("upernet_vit_tiny").get_layer("encoder")
    embeddings = encoder.get_layer("embeddings")
    patches = np.zeros((1, 4, 4, 32), "float32")  # image_size 64 / patch 16
    tokens = np.asarray(embeddings(patches))
    position = np.asarray(embeddings.position_embedding)
    np.testing.assert_allclose(tokens[0, 1:], position[0, 1:], atol=1e-6)
    np.testing.assert_allclose(tokens[0, 0], position[0, 0] + np.asarray(embeddings.cls_token)[0, 0], atol=1e-6)


def test_neck_scales_are_validated():
    with pytest.raises(ValueError, match="neck"):
        build_model("upernet_vit_tiny", neck_scales=(4, 2, 1))
    with pytest.raises(ValueError, match="neck_scales"):
        build_model("upernet_vit_tiny", neck_scales=(4, 2, 1, 0.25))


def test_docstring_examples_run():
    import doctest

    from gdcld_zoo.models import upernet, vit

    for module in (vit, upernet):
        result = doctest.testmod(module, raise_on_error=True)
        assert result.attempted >= 2


# Position embeddings and pyramid pooling follow sizes known only in the graph.
test_tf_function_with_unknown_sizes_matches_eager, test_jax_jit_retraced_per_size_matches_eager = graph_size_tests(
    lambda: build_model("upernet_vit_tiny"), ((1, 96, 160, 3), (1, 64, 64, 3)), atol=1e-4
)
