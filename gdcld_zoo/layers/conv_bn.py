"""Convolution, batch norm and ReLU: the unit the PyTorch- and Paddle-born decoders share.

The batch-norm settings are PyTorch's and Paddle's `BatchNorm2d` defaults
(epsilon 1e-5; their momentum 0.1 is Keras's 0.9), so converted checkpoints
keep their statistics and training updates them at the rate they were
trained with. Layer names are `{name}_conv`, `{name}_bn`, `{name}_relu`, which
the checkpoint converters map to.
"""

from keras import layers

BATCH_NORM_EPSILON = 1e-5
BATCH_NORM_MOMENTUM = 0.9


def batch_norm(x, name):
    """Batch normalisation with PyTorch's epsilon and momentum."""
    return layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, momentum=BATCH_NORM_MOMENTUM, name=name)(x)


def conv_bn_relu(x, filters, kernel_size, name, *, dilation=1, use_bias=True):
    """`same`-padded convolution (PaddleSeg's `ConvBNReLU`, mmcv's `ConvModule`), batch norm, ReLU."""
    x = layers.Conv2D(
        filters, kernel_size, padding="same", dilation_rate=dilation, use_bias=use_bias, name=f"{name}_conv"
    )(x)
    return layers.ReLU(name=f"{name}_relu")(batch_norm(x, f"{name}_bn"))
