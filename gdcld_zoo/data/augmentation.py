"""Segmentation augmentation that runs on the accelerator or in tf.data.

`SegmentationAugmentation` is one Keras layer applied to a batch
`{"images": (B, H, W, C) normalised float32, "segmentation_masks": (B, H, W, 1)}`.
It is built from Keras 3 image preprocessing layers, which take such dicts and
apply the *same* random geometric transform to images and masks, resampling
masks with nearest-neighbour interpolation so their values stay exactly 0, 1
and 255:

* geometry: independent random horizontal and vertical flips
  (`keras.layers.RandomFlip`), a
  random transpose per sample, which with the flips gives every 90-degree
  rotation (the dihedral group of the square; needs square tiles), and
  scale/zoom crops (`keras.layers.RandomZoom`, reflect fill, so no invented
  border needs a label);
* photometry: brightness, contrast, saturation and hue
  (`keras.layers.RandomBrightness`, `RandomContrast`, `RandomSaturation`,
  `RandomHue`), Gaussian blur (`keras.layers.RandomGaussianBlur`) and additive
  Gaussian noise; masks pass through unchanged.

Value range: the photometric Keras layers assume a fixed value range and clip
to it, while the pipeline's images are already normalised with the model's
`Preprocessing` (per-band mean/std). The layer therefore undoes that
normalisation (back to the scaled [0, 1] range, `raw / scale`), applies the
photometric ops with `value_range=(0, 1)`, clips, and normalises again; give it
the same `Preprocessing` as the dataset. Saturation and hue are colour
operations and are applied only to 3-band (RGB) input.

Where it runs: called inside the training step on the batch
(`batch = augment(batch, training=True)`), it runs on the GPU with the rest of
the step, as TorchGeo does with its on-device augmentations. As a DataLayer it
is also safe inside `tf.data` for any Keras backend, which is what
`make_dataset(..., augment=True)` does for CPU-only runs. Masks come back as
float32 in both cases. Inside JAX's jitted (stateless) step its random seed
state, a layer variable, has to travel through the step's state: `TrainingModel`
does that.

Example:
>>> import numpy as np
>>> aug = SegmentationAugmentation(seed=1)
>>> batch = {"images": np.zeros((2, 32, 32, 3), "float32"),
...          "segmentation_masks": np.ones((2, 32, 32, 1), "uint8")}
>>> out = aug(batch, training=True)
>>> tuple(out["images"].shape), sorted(np.unique(np.asarray(out["segmentation_masks"])).tolist())
((2, 32, 32, 3), [1.0])
"""

import keras

# Keras exports no base class for tf.data-safe layers; DataLayer is the one its
# own preprocessing layers use (and its docstring tells users to subclass it).
from keras.src.layers.preprocessing.data_layer import DataLayer

from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.preprocessing import Preprocessing


def _check_range(name, value, high):
    if not 0 <= value <= high:
        raise InvalidInputError(f"SegmentationAugmentation {name}={value} must be in [0, {high}].")


@keras.saving.register_keras_serializable(package="gdcld_zoo")
class SegmentationAugmentation(DataLayer):
    """Random geometric and photometric augmentation of images and masks together.

    Args:
        preprocessing: The `Preprocessing` (or its dict) the images were
            normalised with; photometric ops run on the de-normalised [0, 1] scale.
        flip: Random horizontal and vertical flips.
        rotate90: Random transposes, giving all 90-degree rotations with `flip`.
            Needs square images.
        zoom: Maximum relative zoom in/out (0.25 zooms by -25%..+25%); 0 disables.
        brightness: Maximum brightness shift, as a share of the [0, 1] range.
        contrast: Maximum relative contrast change.
        saturation: Maximum relative saturation change (RGB only); None means
            0.2 for 3-band input and off otherwise.
        hue: Maximum hue shift as a share of the hue circle (RGB only); None
            means 0.02 for 3-band input and off otherwise.
        blur: Strength of the random Gaussian blur (0 disables, 1 strongest).
        noise: Maximum standard deviation of additive Gaussian noise on the
            [0, 1] scale (drawn per sample); 0 disables.
        seed: Seed for reproducible augmentation.
    """

    def __init__(
        self,
        preprocessing=None,
        flip=True,
        rotate90=True,
        zoom=0.25,
        brightness=0.15,
        contrast=0.2,
        saturation=None,
        hue=None,
        blur=0.3,
        noise=0.02,
        seed=None,
        **kwargs,
    ):
        # Augmentation works in float32 whatever the global mixed-precision policy.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        # Layers
        if isinstance(preprocessing, dict):
            preprocessing = Preprocessing.from_dict(preprocessing)
        self.preprocessing = preprocessing or Preprocessing()
        rgb = self.preprocessing.num_bands == 3
        for name, value in (("saturation", saturation), ("hue", hue)):
            if value and not rgb:
                raise InvalidInputError(
                    f"SegmentationAugmentation {name}={value} needs 3-band RGB input, but the "
                    f"Preprocessing selects {self.preprocessing.num_bands} bands; pass {name}=0."
                )
        saturation = (0.2 if rgb else 0.0) if saturation is None else saturation
        hue = (0.02 if rgb else 0.0) if hue is None else hue
        for name, value, high in (
            ("zoom", zoom, 0.9),
            ("brightness", brightness, 1),
            ("contrast", contrast, 1),
            ("saturation", saturation, 1),
            ("hue", hue, 1),
            ("blur", blur, 1),
            ("noise", noise, 1),
        ):
            _check_range(name, value, high)
        self.flip, self.rotate90, self.zoom = bool(flip), bool(rotate90), float(zoom)
        self.brightness, self.contrast = float(brightness), float(contrast)
        self.saturation, self.hue = float(saturation), float(hue)
        self.blur, self.noise = float(blur), float(noise)
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

        def layer_seed(offset):
            return None if seed is None else seed + offset

        f32 = dict(dtype="float32")

        geometric, photometric = [], []
        if self.flip:
            # Two layers: "horizontal_and_vertical" draws one decision for both axes.
            geometric.append(keras.layers.RandomFlip("horizontal", seed=layer_seed(1), **f32))
            geometric.append(keras.layers.RandomFlip("vertical", seed=layer_seed(8), **f32))
        if self.zoom:
            geometric.append(
                keras.layers.RandomZoom(
                    (-self.zoom, self.zoom), fill_mode="reflect", interpolation="bilinear", seed=layer_seed(2), **f32
                )
            )
        unit = (0.0, 1.0)
        if self.brightness:
            photometric.append(keras.layers.RandomBrightness(self.brightness, value_range=unit, seed=layer_seed(3), **f32))
        if self.contrast:
            photometric.append(keras.layers.RandomContrast(self.contrast, value_range=unit, seed=layer_seed(4), **f32))
        if self.saturation:
            factor = (0.5 - self.saturation / 2, 0.5 + self.saturation / 2)
            photometric.append(keras.layers.RandomSaturation(factor, value_range=unit, seed=layer_seed(5), **f32))
        if self.hue:
            photometric.append(keras.layers.RandomHue(self.hue, value_range=unit, seed=layer_seed(6), **f32))
        if self.blur:
            photometric.append(
                keras.layers.RandomGaussianBlur(
                    factor=self.blur, kernel_size=5, sigma=(0.1, 1.5), value_range=unit, seed=layer_seed(7), **f32
                )
            )
        self.geometric_layers = geometric
        self.photometric_layers = photometric

    def build(self, input_shape):
        shape = input_shape["images"] if isinstance(input_shape, dict) else input_shape
        height, width = tuple(shape)[-3:-1]
        if self.rotate90 and height is not None and width is not None and height != width:
            raise InvalidInputError(
                f"SegmentationAugmentation(rotate90=True) needs square images, got {height}x{width}; "
                "crop square tiles or pass rotate90=False."
            )
        for layer in self.geometric_layers + self.photometric_layers:
            layer.build(shape)
        self.built = True

    def call(self, data, training=True):
        # Functional graph
        ops = self.backend
        images = ops.cast(data["images"], "float32")
        masks = ops.cast(data["segmentation_masks"], "float32")
        if not training:
            return {"images": images, "segmentation_masks": masks}
        seed = self._get_seed_generator(ops._backend)
        if self.rotate90:
            batch = ops.shape(images)[0]
            swap = ops.random.uniform((batch, 1, 1, 1), seed=seed) < 0.5
            images = ops.numpy.where(swap, ops.numpy.transpose(images, (0, 2, 1, 3)), images)
            masks = ops.numpy.where(swap, ops.numpy.transpose(masks, (0, 2, 1, 3)), masks)
        pair = {"images": images, "segmentation_masks": masks}
        for layer in self.geometric_layers:
            pair = layer(pair, training=True)
        images, masks = pair["images"], pair["segmentation_masks"]
        if self.photometric_layers or self.noise:
            # Normalised = (raw / scale - mean) / std, so unit = raw / scale in [0, 1].
            mean = ops.convert_to_tensor(self.preprocessing.mean, "float32")
            std = ops.convert_to_tensor(self.preprocessing.std, "float32")
            unit = images * std + mean
            for layer in self.photometric_layers:
                unit = layer(unit, training=True)
            if self.noise:
                batch = ops.shape(unit)[0]
                sigma = ops.random.uniform((batch, 1, 1, 1), maxval=self.noise, seed=seed)
                unit = unit + sigma * ops.random.normal(ops.shape(unit), seed=seed)
            images = (ops.numpy.clip(unit, 0.0, 1.0) - mean) / std
        return {"images": images, "segmentation_masks": masks}

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        # Config
        config = super().get_config()
        config.update(
            preprocessing=self.preprocessing.to_dict(),
            flip=self.flip,
            rotate90=self.rotate90,
            zoom=self.zoom,
            brightness=self.brightness,
            contrast=self.contrast,
            saturation=self.saturation,
            hue=self.hue,
            blur=self.blur,
            noise=self.noise,
            seed=self.seed,
        )
        return config
