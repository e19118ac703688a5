"""`SegmentationModel`: the config every architecture's model shares.

Every architecture is a functional `keras.Model` subclass whose constructor
takes `num_classes`, `input_shape`, its encoder's own arguments (flattened, so
one `build_model(name, depths=...)` call can change any of them) and its head's
arguments. `get_config` is therefore always the same three parts, written once
here so that `from_config` and `.keras` files round-trip for every model.
"""

import keras


class SegmentationModel(keras.Model):
    """Base of the segmentation models: name, classes, input shape, encoder and head config.

    Subclasses build their graph and pass its inputs and outputs here with the
    number of classes, the input shape and, when they wrap an encoder model,
    the encoder; they keep their head's arguments and return them from
    `head_config()`, and list the encoder arguments they fix themselves in
    `FIXED_ENCODER_ARGUMENTS` (left out of the config).
    """

    FIXED_ENCODER_ARGUMENTS = ()

    def __init__(self, inputs, outputs, *, num_classes, input_shape, encoder=None, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.encoder = encoder
        self.num_classes = num_classes
        self.input_shape_config = tuple(input_shape)

    def head_config(self):
        """The constructor arguments of the head (decoder), as stored in the config."""
        return {}

    def get_config(self):
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape_config),
        }
        if self.encoder is not None:
            encoder_config = self.encoder.get_config()
            for key in ("name", "trainable", "input_shape", *self.FIXED_ENCODER_ARGUMENTS):
                encoder_config.pop(key)
            config.update(encoder_config)
        return {**config, **self.head_config()}
