"""How raw GeoTIFF pixels become model input, carried by every weight record.

A `Preprocessing` names the bands to read (1-based, as rasterio numbers them),
divides each by its scale (255 for 8-bit RGB, e.g. 10000 for PlanetScope
surface reflectance) and standardises with a per-band mean and std (ImageNet
statistics by default, which the ImageNet-pretrained encoders expect; PaddleSeg's
SegFormer configs use mean = std = 0.5 instead, so converted PaddleSeg
checkpoints carry that). Weights carry
it so that training, scene inference, ONNX export and the viewer feed a model
exactly what it was trained on.
"""

import dataclasses

import numpy as np

from gdcld_zoo.errors import InvalidInputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """Band selection, per-band scaling and normalisation.

    Attributes:
        bands: 1-based band indexes to read from the raster, in model order.
        band_names: Names of those bands (for records and error messages).
        dtype: The raster data type the scales were chosen for (`uint8`, `uint16`, ...).
        scale: Per-band divisor that maps raw values to [0, 1].
        mean: Per-band mean subtracted after scaling.
        std: Per-band standard deviation divided after subtracting the mean.

    Example:
    >>> pre = Preprocessing()
    >>> pre.apply(np.full((1, 2, 2, 3), 255, "uint8")).shape
    (1, 2, 2, 3)
    """

    bands: tuple[int, ...] = (1, 2, 3)
    band_names: tuple[str, ...] = ("red", "green", "blue")
    dtype: str = "uint8"
    scale: tuple[float, ...] = (255.0, 255.0, 255.0)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __post_init__(self):
        n = len(self.bands)
        for field in ("band_names", "scale", "mean", "std"):
            value = tuple(getattr(self, field))
            object.__setattr__(self, field, value)
            if len(value) != n:
                raise InvalidInputError(
                    f"Preprocessing.{field} has {len(value)} entries but {n} bands are "
                    f"selected ({self.bands}); give one value per band."
                )
        object.__setattr__(self, "bands", tuple(int(b) for b in self.bands))
        if any(b < 1 for b in self.bands):
            raise InvalidInputError(f"Band indexes are 1-based, got {self.bands}.")
        if any(s == 0 for s in self.std) or any(s == 0 for s in self.scale):
            raise InvalidInputError("Preprocessing scale and std must be non-zero.")

    @property
    def num_bands(self):
        return len(self.bands)

    def apply(self, raw):
        """Normalise raw pixels (..., C) in band order to float32 model input."""
        raw = np.asarray(raw)
        if raw.shape[-1] != self.num_bands:
            raise InvalidInputError(
                f"Expected {self.num_bands} bands {self.band_names} in the last axis, "
                f"got an array of shape {raw.shape}."
            )
        scaled = raw.astype("float32") / np.asarray(self.scale, "float32")
        return (scaled - np.asarray(self.mean, "float32")) / np.asarray(self.std, "float32")

    def to_dict(self):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data):
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise InvalidInputError(
                f"Unknown preprocessing keys {sorted(unknown)}; "
                f"allowed: {[f.name for f in dataclasses.fields(cls)]}."
            )
        return cls(**data)
