"""The one contract every registered model is checked against.

Each architecture's test calls `check_model_contract` on its tiny variant and
`check_param_count` on its full-size variants (building only, no forward pass).
"""

import numpy as np
import keras

from gdcld_zoo import build_model, get_model_spec


def trainable_param_count(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def _random_batch(batch, height, width, channels, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, height, width, channels)).astype("float32")


def _check_train_step(model, images, num_classes):
    """One fit step runs, gives a finite loss and changes the weights."""
    rng = np.random.default_rng(1)
    if num_classes == 1:
        labels = rng.integers(0, 2, size=images.shape[:3] + (1,)).astype("float32")
        loss = keras.losses.BinaryCrossentropy(from_logits=True)
    else:
        labels = rng.integers(0, num_classes, size=images.shape[:3] + (1,)).astype("int32")
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=1e-3), loss=loss)
    before = [np.array(w) for w in model.trainable_weights]
    history = model.fit(images, labels, batch_size=len(images), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [not np.array_equal(b, np.array(w)) for b, w in zip(before, model.trainable_weights)]
    assert sum(changed) > len(changed) // 2, "a train step changed too few weights"


def check_model_contract(name, tmp_path, size=(64, 96), num_classes=1, **overrides):
    """Shape/dtype, finiteness, training flag, config and save/load round trips,
    a train step, 4-band input and a mixed-precision output dtype."""
    height, width = size
    images = _random_batch(2, height, width, 3)
    model = build_model(name, num_classes=num_classes, **overrides)

    _check_train_step(model, images, num_classes)

    logits = np.asarray(model(images))
    assert logits.shape == (2, height, width, num_classes)
    assert model(images).dtype == "float32"
    assert np.all(np.isfinite(logits))
    np.testing.assert_allclose(np.asarray(model(images, training=False)), logits, atol=1e-6)
    # Compiled predict vs eager: float32 round-off grows with depth (up to ~2e-5 in Swin-Unet).
    np.testing.assert_allclose(model.predict(images, verbose=0), logits, atol=1e-4)

    config = model.get_config()
    rebuilt = model.__class__.from_config(config)
    assert rebuilt.get_config() == config
    assert trainable_param_count(rebuilt) == trainable_param_count(model)

    weights_path = tmp_path / f"{name}.weights.h5"
    model.save_weights(weights_path)
    rebuilt.load_weights(weights_path)
    np.testing.assert_array_equal(np.asarray(rebuilt(images)), logits)

    model_path = tmp_path / f"{name}.keras"
    model.save(model_path)
    loaded = keras.models.load_model(model_path)  # no custom_objects: layers are registered
    np.testing.assert_array_equal(np.asarray(loaded(images)), logits)

    four_band = build_model(name, num_classes=num_classes, input_shape=(None, None, 4), **overrides)
    out = np.asarray(four_band(_random_batch(1, 64, 64, 4)))
    assert out.shape == (1, 64, 64, num_classes) and np.all(np.isfinite(out))

    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = build_model(name, num_classes=num_classes, **overrides)
        assert mixed(_random_batch(1, 64, 64, 3)).dtype == "float32"
    finally:
        keras.config.set_dtype_policy("float32")


def check_param_count(name):
    """The full-size model has exactly the trainable parameters its spec records."""
    spec = get_model_spec(name)
    model = build_model(name)
    assert trainable_param_count(model) == spec.num_params
    keras.backend.clear_session()
