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

    Subclasses set `num_classes`, `input_shape_config` and, when they wrap an
    encoder model, `encoder`; they return their head's arguments from
    `head_config()` and list the encoder arguments they fix themselves in
    `FIXED_ENCODER_ARGUMENTS` (left out of the config).
    """

    FIXED_ENCODER_ARGUMENTS = ()

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
        encoder = getattr(self, "encoder", None)
        if encoder is not None:
            encoder_config = encoder.get_config()
            for key in ("name", "trainable", "input_shape", *self.FIXED_ENCODER_ARGUMENTS):
                encoder_config.pop(key)
            config.update(encoder_config)
        return {**config, **self.head_config()}
