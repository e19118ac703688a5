"""`TrainingModel`: the segmentation model plus what a training run adds to it.

Keras `fit` is the training engine on every backend (with `tf.distribute` for
several devices on TensorFlow). This thin wrapper adds two things a plain model
lacks:

- augmentation on the batch inside the training step, so with a GPU the
  random flips, rotations and colour changes run on the GPU after the batch
  was transferred (as TorchGeo does), never in the CPU input pipeline;
- the run state a resumed run needs, as non-trainable variables that land in
  the same checkpoint file as the weights and the optimizer state: epochs
  completed and the best validation score so far.

The wrapped model is `training_model.model`; its weights alone are what the
best checkpoint and the weight record hold.
"""

import keras


class TrainingModel(keras.Model):
    """Wrap `model` for `fit`: on-device augmentation and resumable run state.

    Args:
        model: A built segmentation `keras.Model` (images -> logits).
        augmentation: None, or a layer/callable taking and returning
            `{"images": x, "segmentation_masks": y}` (the Keras image
            augmentation convention), applied with `training=True` to every
            training batch; validation batches are never augmented.

    Example:
    >>> from gdcld_zoo import build_model
    >>> wrapped = TrainingModel(build_model("segformer_tiny"))
    >>> int(wrapped.epochs_done.numpy())
    0
    """

    def __init__(self, model, augmentation=None, **kwargs):
        super().__init__(name=kwargs.pop("name", f"training_{model.name}"), **kwargs)
        self.model = model
        self.augmentation = augmentation
        # float32 counters: exact up to 2**24, and every backend and strategy handles them.
        self.epochs_done = self.add_weight(
            shape=(), initializer="zeros", trainable=False, dtype="float32", name="epochs_done"
        )
        self.best_score = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(-1.0), trainable=False,
            dtype="float32", name="best_score",
        )
        self.built = True

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def _augment(self, x, y):
        augmented = self.augmentation({"images": x, "segmentation_masks": y}, training=True)
        return augmented["images"], augmented["segmentation_masks"]

    def _augment_stateless(self, state, x, y):
        """JAX: augment with the variable values in `state`; return the advanced state."""
        trainable, non_trainable, *rest = state
        variables = self.non_trainable_variables
        with keras.StatelessScope(state_mapping=list(zip(variables, non_trainable))) as scope:
            x, y = self._augment(x, y)
        non_trainable = [scope.get_current_value(v) for v in variables]
        return (trainable, non_trainable, *rest), x, y

    def train_step(self, *args):
        """`train_step(data)` on TensorFlow and torch, `train_step(state, data)` on JAX."""
        *state, data = args
        x, y = data[0], data[1]
        if self.augmentation is not None and state:
            state[0], x, y = self._augment_stateless(state[0], x, y)
        elif self.augmentation is not None:
            x, y = self._augment(x, y)
        return super().train_step(*state, (x, y) + tuple(data[2:]))
