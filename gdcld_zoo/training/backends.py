"""What training needs from the Keras backend: a device scope and a mixed-precision policy.

`gdcld-zoo train` runs on TensorFlow, JAX and torch with the same config and the
same tf.data pipeline (Keras 3 feeds a `tf.data.Dataset` to `fit` on every
backend). Two things differ:

- several devices: `tf.distribute` strategies (`mirrored`, `multi_worker`) are
  TensorFlow's; on JAX, `keras.distribution.set_distribution(
  keras.distribution.DataParallel())` before `train` shards the batches, and
  torch trains on one device;
- mixed precision: float16 (loss-scaled) where a GPU is visible, else bfloat16;
  each backend is asked about its own GPUs, so TensorFlow is not imported for JAX
  or torch.
"""

import contextlib

import keras

from gdcld_zoo.errors import GdcldZooError


def backend_name():
    return keras.backend.backend()


def gpu_available():
    """Whether the current backend sees a GPU."""
    name = backend_name()
    if name == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU"))
    if name == "jax":
        import jax

        return any(device.platform == "gpu" for device in jax.devices())
    if name == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def mixed_precision_policy():
    """`mixed_float16` where a GPU is visible (tensor cores), else `mixed_bfloat16`."""
    return "mixed_float16" if gpu_available() else "mixed_bfloat16"


def check_strategy(name):
    """Raise a one-line error for a `tf.distribute` strategy on JAX or torch."""
    if name != "default" and backend_name() != "tensorflow":
        raise GdcldZooError(
            f"--strategy {name} is a tf.distribute strategy (TensorFlow only; backend is {backend_name()}): "
            "set KERAS_BACKEND=tensorflow, or on JAX set keras.distribution.DataParallel() before train."
        )


def strategy_scope(name):
    """The scope models are built in: a `tf.distribute` strategy's on TensorFlow.

    `default` is one device on every backend; `mirrored` and `multi_worker` are
    `tf.distribute` strategies (`check_strategy`).
    """
    check_strategy(name)
    if backend_name() != "tensorflow":
        return contextlib.nullcontext()
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy().scope()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy().scope()
    return tf.distribute.get_strategy().scope()
