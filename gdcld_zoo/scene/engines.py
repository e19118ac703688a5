"""Engines: what turns a batch of raw tiles into landslide probabilities.

Scene inference never touches a model directly; it talks to an *engine*, a
small object with

* `predict(raw)`: raw pixels (N, H, W, C) in the raster's dtype and the
  engine's band order -> float32 landslide probabilities (N, H, W);
* `preprocessing` (`gdcld_zoo.preprocessing.Preprocessing`), `threshold`,
  `tag`, `tile_size` (preferred window), `input_size` (None when any multiple
  of 32 works, else the one square size the engine accepts) and `num_bands`.

`KerasEngine` runs a Keras model with the preprocessing of its weight record
and the probability head of `gdcld_zoo.inference` (compiled `predict_on_batch`). The ONNX Runtime engine lives in
`gdcld_zoo.scene.onnx_engine` (`OnnxEngine(path)`), so `predict_scene(path.onnx, ...,
engine="onnx")` runs an exported model with the same tiling, blending and
outputs. `D4Engine` wraps any engine with test-time augmentation over the
eight flips and rotations of the dihedral group D4, averaging probabilities
after undoing each transform.

Example:
>>> import numpy as np
>>> class Brightness(Engine):
...     def predict(self, raw):
...         return raw[..., 0].astype("float32") / 255
>>> D4Engine(Brightness()).predict(np.full((1, 32, 32, 3), 255, "uint8")).max()
np.float32(1.0)
"""

import abc
from pathlib import Path

import numpy as np

from gdcld_zoo.errors import GdcldZooError, InvalidInputError, UnknownNameError
from gdcld_zoo.preprocessing import Preprocessing

ENGINES = ("keras", "onnx")


class Engine(abc.ABC):
    """Base class and interface of scene-inference engines.

    Subclasses implement `predict`; the attributes default to an 8-bit RGB
    model with ImageNet normalisation, threshold 0.5 and 1024-pixel tiles.

    Attributes:
        preprocessing: How raw pixels become model input; its `bands` and
            `dtype` say what the scene must provide.
        threshold: Probability above which a pixel is a landslide.
        tag: Name of the weights, recorded in summaries.
        tile_size: Preferred window size in pixels.
        input_size: None when the engine takes any size that is a multiple
            of 32, else the single square tile size it accepts.
    """

    preprocessing = Preprocessing()
    threshold = 0.5
    tag = "unnamed"
    tile_size = 1024
    input_size = None

    @property
    def num_bands(self):
        return self.preprocessing.num_bands

    @abc.abstractmethod
    def predict(self, raw):
        """Landslide probabilities (N, H, W) float32 for raw tiles (N, H, W, C)."""


class KerasEngine(Engine):
    """A Keras model (from `load_pretrained` or `build_model`) as an engine.

    The weight record attached by `load_pretrained` supplies preprocessing,
    threshold, tile size and tag; a model without one uses the `Engine`
    defaults and its Keras name as tag.

    Args:
        model: A `keras.Model` returning logits (B, H, W, num_classes).
        record: A `WeightRecord` overriding the model's own.
    """

    def __init__(self, model, record=None):
        from gdcld_zoo.weights import get_weight_record

        self.model = model
        self._batch = 1
        record = record or get_weight_record(model)
        if record is not None:
            self.preprocessing = record.preprocessing
            self.threshold = float(record.threshold)
            self.tag = record.tag
            self.tile_size = int(record.tile_size)
        else:
            self.tag = model.name
        channels = model.input_shape[-1]
        if channels is not None and channels != self.num_bands:
            raise InvalidInputError(
                f"Model {self.tag!r} takes {channels} input bands but its preprocessing selects "
                f"{self.num_bands} ({self.preprocessing.band_names})."
            )

    def predict(self, raw):
        """Probabilities of tiles whose sides are multiples of 32 (the grid's tiles).

        Same normalisation and sigmoid/softmax as `gdcld_zoo.inference.predict_tile`,
        but through `model.predict_on_batch` (a compiled function, about twice as
        fast on CPU as an eager call), with short batches padded to the largest
        batch seen so that the function is traced once per tile size.
        """
        from gdcld_zoo.inference import logits_to_probabilities

        x = self.preprocessing.apply(raw)
        count = len(x)
        self._batch = max(self._batch, count)
        if count < self._batch:
            x = np.concatenate([x, np.repeat(x[-1:], self._batch - count, axis=0)])
        logits = self.model.predict_on_batch(x)
        return logits_to_probabilities(logits)[:count, ..., 0]


class D4Engine(Engine):
    """Test-time augmentation: mean probability over the 8 symmetries of a square.

    Each batch is predicted 8 times (4 rotations, each with and without a
    horizontal flip); each prediction is transformed back before averaging,
    which removes orientation bias at 8x the compute.

    Args:
        engine: Any engine; its attributes are passed through.
    """

    def __init__(self, engine):
        self.engine = engine
        for name in ("preprocessing", "threshold", "tag", "tile_size", "input_size"):
            setattr(self, name, getattr(engine, name))

    def predict(self, raw):
        raw = np.asarray(raw)
        if raw.shape[1] != raw.shape[2]:
            raise InvalidInputError(f"D4 test-time augmentation needs square tiles, got {raw.shape[1:3]}.")
        total = np.zeros(raw.shape[:3], "float32")
        for k in range(4):
            for flip in (False, True):
                x = np.rot90(raw, k, axes=(1, 2))
                x = x[:, :, ::-1] if flip else x
                p = np.asarray(self.engine.predict(np.ascontiguousarray(x)), "float32")
                p = p[:, :, ::-1] if flip else p
                total += np.rot90(p, -k, axes=(1, 2))
        return total / 8


def is_engine(obj):
    """Whether `obj` follows the engine interface (duck typing)."""
    return callable(getattr(obj, "predict", None)) and isinstance(
        getattr(obj, "preprocessing", None), Preprocessing
    )


def make_engine(model_or_tag, engine="keras", tta=False):
    """The engine for a model, weight tag, run folder, weight or ONNX file.

    Args:
        model_or_tag: An engine (used as is), a `keras.Model`, anything
            `load_pretrained` takes (tag, run folder, `.weights.h5`/`.keras`
            file), or with `engine="onnx"` a `.onnx` file.
        engine: `"keras"` or `"onnx"` (ONNX Runtime, `gdcld_zoo.scene.onnx_engine`).
        tta: Wrap the engine in `D4Engine`.

    Example:
    >>> make_engine("demo").tag  # doctest: +SKIP
    'demo'
    """
    if is_engine(model_or_tag):
        result = model_or_tag
    elif engine == "keras":
        if isinstance(model_or_tag, (str, Path)):
            if str(model_or_tag).endswith(".onnx"):
                raise GdcldZooError(f"{model_or_tag} is an ONNX file; run it with engine='onnx' (--engine onnx).")
            from gdcld_zoo.weights import load_pretrained

            model_or_tag = load_pretrained(model_or_tag)
        if not callable(getattr(model_or_tag, "predict", None)) or not hasattr(model_or_tag, "input_shape"):
            raise InvalidInputError(
                f"Expected a keras.Model, a weight tag or a weight file, got {type(model_or_tag).__name__}."
            )
        result = KerasEngine(model_or_tag)
    elif engine == "onnx":
        path = Path(str(model_or_tag))
        if not path.name.endswith(".onnx") or not path.is_file():
            raise GdcldZooError(
                f"engine='onnx' needs an existing .onnx file (made by `gdcld-zoo export`), got {model_or_tag!r}."
            )
        from gdcld_zoo.scene.onnx_engine import OnnxEngine

        result = OnnxEngine(path)
    else:
        raise UnknownNameError("engine", engine, ENGINES)
    return D4Engine(result) if tta else result
