"""conv_bn_relu / batch_norm: PyTorch's batch-norm settings and the layer names converters rely on."""

import keras
import numpy as np

from gdcld_zoo.layers import batch_norm, conv_bn_relu


def test_names_settings_and_output():
    inputs = keras.Input((8, 8, 3))
    outputs = conv_bn_relu(inputs, 4, 3, "block", dilation=2, use_bias=False)
    model = keras.Model(inputs, outputs)
    conv, bn, relu = (model.get_layer(f"block_{part}") for part in ("conv", "bn", "relu"))
    assert not conv.use_bias and conv.dilation_rate == (2, 2) and conv.padding == "same"
    assert (bn.epsilon, bn.momentum) == (1e-5, 0.9)
    assert isinstance(relu, keras.layers.ReLU)
    out = model.predict(np.random.default_rng(0).normal(size=(1, 8, 8, 3)), verbose=0)
    assert out.shape == (1, 8, 8, 4) and out.min() >= 0


def test_batch_norm_alone():
    layer_input = keras.Input((4, 4, 2))
    bn = keras.Model(layer_input, batch_norm(layer_input, "norm")).get_layer("norm")
    assert (bn.epsilon, bn.momentum, bn.name) == (1e-5, 0.9, "norm")
