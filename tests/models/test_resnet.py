"""The shared ResNet encoder: strides, dilation, configuration."""

import numpy as np
import pytest

from gdcld_zoo.models.resnet import ResNetEncoder

TINY = dict(depths=(1, 1, 2, 3), widths=(4, 8, 8, 16), stem_widths=(8, 8, 8), avg_down=True)


@pytest.mark.parametrize(
    "output_stride, sizes",
    [
        (32, {"stride_2": 32, "stride_4": 16, "stride_8": 8, "stride_16": 4, "stride_32": 2}),
        (16, {"stride_2": 32, "stride_4": 16, "stride_8": 8, "stride_16": 4}),
        (8, {"stride_2": 32, "stride_4": 16, "stride_8": 8}),
    ],
)
def test_features_are_keyed_by_their_real_stride(output_stride, sizes):
    encoder = ResNetEncoder(output_stride=output_stride, **TINY)
    features = encoder(np.zeros((1, 64, 64, 3), "float32"))
    assert {k: v.shape[1] for k, v in features.items()} == sizes
    deepest = max(sizes, key=lambda k: int(k.split("_")[1]))
    assert features[deepest].shape[-1] == 4 * TINY["widths"][-1]


def test_multi_grid_multiplies_the_last_stage_dilation():
    encoder = ResNetEncoder(output_stride=16, multi_grid=(1, 2, 3), **TINY)
    assert [encoder.get_layer(f"stage4_block{b}_conv2").dilation_rate[0] for b in (1, 2, 3)] == [2, 4, 6]
    assert [encoder.get_layer(f"stage3_block{b}_conv2").dilation_rate[0] for b in (1, 2)] == [1, 1]


def test_config_round_trip():
    encoder = ResNetEncoder(output_stride=8, multi_grid=(1, 2, 4), **TINY)
    rebuilt = ResNetEncoder.from_config(encoder.get_config())
    assert rebuilt.get_config() == encoder.get_config()
    assert rebuilt.count_params() == encoder.count_params()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"output_stride": 4}, "output_stride"),
        ({"multi_grid": (1, 2)}, "multi_grid"),
        ({"stem_widths": (8, 8)}, "stem_widths"),
        ({"widths": (4, 8, 8)}, "one entry per stage"),
    ],
)
def test_bad_configurations_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        ResNetEncoder(**{**TINY, **overrides})
