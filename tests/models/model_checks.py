"""The one contract every registered model is checked against, on every Keras backend.

Each architecture's test calls `check_model_contract` on its tiny variant and
`check_param_count` on its full-size variants (building only, no forward pass).
The contract tests carry the `backend` marker, which CI runs under JAX and torch
too; the full-size models pass the same contract in tests/models/test_full_size.py
(`slow`: all on TensorFlow, some on JAX and torch). Models whose shapes are decided inside the graph also check
a TensorFlow graph with unknown sizes and its JAX equivalent (`graph_size_tests`).
"""

import inspect

import keras
import numpy as np
import pytest
from keras import ops

from gdcld_zoo import build_model, get_model_spec


BACKEND = keras.backend.backend()
tensorflow_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="a tf.function graph test (TensorFlow backend)")
jax_only = pytest.mark.skipif(BACKEND != "jax", reason="a jax.jit test (JAX backend)")


def to_numpy(x):
    """A backend tensor as numpy (a torch output that requires grad included)."""
    return ops.convert_to_numpy(x)


def trainable_param_count(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def _random_batch(batch, height, width, channels, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, height, width, channels)).astype("float32")


def _check_train_step(model, images, num_classes, run_eagerly=False):
    """One fit step runs, gives a finite loss and changes the weights."""
    rng = np.random.default_rng(1)
    if num_classes == 1:
        labels = rng.integers(0, 2, size=images.shape[:3] + (1,)).astype("float32")
        loss = keras.losses.BinaryCrossentropy(from_logits=True)
    else:
        labels = rng.integers(0, num_classes, size=images.shape[:3] + (1,)).astype("int32")
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=1e-3), loss=loss, run_eagerly=run_eagerly)
    before = [to_numpy(w) for w in model.trainable_weights]
    history = model.fit(images, labels, batch_size=len(images), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [not np.array_equal(b, to_numpy(w)) for b, w in zip(before, model.trainable_weights)]
    assert sum(changed) > len(changed) // 2, "a train step changed too few weights"


def check_model_contract(name, tmp_path, size=(64, 96), num_classes=1, run_eagerly=False, **overrides):
    """Shape/dtype, finiteness, training flag, config and save/load round trips,
    a train step, 4-band input and a mixed-precision output dtype. Returns the
    model (after its train step).

    `run_eagerly=True` runs the train step and `predict` without compiling them
    (full-size models: compiling segformer_b5's train step at 32x64 px takes
    minutes with XLA; the compiled paths are the same code at other widths and
    depths, checked by the tiny variants).
    """
    height, width = size
    images = _random_batch(2, height, width, 3)
    model = build_model(name, num_classes=num_classes, **overrides)

    _check_train_step(model, images, num_classes, run_eagerly)

    outputs = model(images)
    logits = to_numpy(outputs)
    assert logits.shape == (2, height, width, num_classes)
    assert keras.backend.standardize_dtype(outputs.dtype) == "float32"
    assert np.all(np.isfinite(logits))
    np.testing.assert_allclose(to_numpy(model(images, training=False)), logits, atol=1e-6)
    # Compiled predict vs eager: float32 round-off grows with depth (up to ~2e-5 in Swin-Unet).
    np.testing.assert_allclose(model.predict(images, verbose=0), logits, atol=1e-4)

    config = model.get_config()
    rebuilt = model.__class__.from_config(config)
    assert rebuilt.get_config() == config
    assert trainable_param_count(rebuilt) == trainable_param_count(model)

    weights_path = tmp_path / f"{name}.weights.h5"
    model.save_weights(weights_path)
    rebuilt.load_weights(weights_path)
    np.testing.assert_array_equal(to_numpy(rebuilt(images)), logits)

    model_path = tmp_path / f"{name}.keras"
    model.save(model_path)
    loaded = keras.models.load_model(model_path)  # no custom_objects: layers are registered
    np.testing.assert_array_equal(to_numpy(loaded(images)), logits)
    del rebuilt, loaded  # one extra copy alive at a time: full-size models run this contract too

    # The same batch shape as above: JAX compiles eager ops per shape, so only the first layer is new.
    four_band = build_model(name, num_classes=num_classes, input_shape=(None, None, 4), **overrides)
    out = to_numpy(four_band(_random_batch(2, height, width, 4)))
    assert out.shape == (2, height, width, num_classes) and np.all(np.isfinite(out))
    del four_band

    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = build_model(name, num_classes=num_classes, **overrides)
        assert keras.backend.standardize_dtype(mixed(_random_batch(1, 64, 64, 3)).dtype) == "float32"
    finally:
        keras.config.set_dtype_policy("float32")
    return model


def check_param_count(name):
    """The full-size model has exactly the trainable parameters its spec records."""
    spec = get_model_spec(name)
    model = build_model(name)
    assert trainable_param_count(model) == spec.num_params
    keras.backend.clear_session()


def _batches(shapes):
    return [np.random.default_rng(0).normal(size=shape).astype("float32") for shape in shapes]


def check_tf_function_matches_eager(layer, shapes, atol):
    """One `tf.function` with unknown batch, height and width (as tf.data with
    varied tiles and the ONNX export need) equals eager calls."""
    import tensorflow as tf

    graph = tf.function(lambda x: layer(x, training=False), input_signature=[tf.TensorSpec((None, None, None, shapes[0][-1]))])
    for images in _batches(shapes):
        np.testing.assert_allclose(to_numpy(graph(images)), to_numpy(layer(images, training=False)), atol=atol)


def check_jax_jit_matches_eager(layer, shapes, atol):
    """JAX's equivalent: a jitted stateless call, traced once per input shape
    (JAX shapes are static), equals eager calls."""
    import jax

    batches = _batches(shapes)
    eager = [to_numpy(layer(images, training=False)) for images in batches]  # builds the layer too
    mode = {"training": False} if "training" in inspect.signature(layer.call).parameters else {}
    jitted = jax.jit(lambda trainable, other, x: layer.stateless_call(trainable, other, x, **mode)[0])
    trainable = [v.value for v in layer.trainable_variables]
    other = [v.value for v in layer.non_trainable_variables]
    for images, expected in zip(batches, eager):
        np.testing.assert_allclose(to_numpy(jitted(trainable, other, images)), expected, atol=atol)
    assert jitted._cache_size() == len(set(shapes))


def graph_size_tests(build, shapes, atol):
    """The two tests of a layer whose shapes are decided in the graph, for a test module:

    `test_tf_function_with_unknown_sizes_matches_eager` (TensorFlow only) and
    `test_jax_jit_retraced_per_size_matches_eager` (JAX only, in CI's `-m backend` run);
    torch has no graph with symbolic sizes to check.
    """

    @tensorflow_only
    def test_tf_function_with_unknown_sizes_matches_eager():
        check_tf_function_matches_eager(build(), shapes, atol)

    @pytest.mark.backend
    @jax_only
    def test_jax_jit_retraced_per_size_matches_eager():
        check_jax_jit_matches_eager(build(), shapes, atol)

    return test_tf_function_with_unknown_sizes_matches_eager, test_jax_jit_retraced_per_size_matches_eager
