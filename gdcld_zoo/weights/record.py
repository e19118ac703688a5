"""`WeightRecord`: everything needed to use one set of pretrained weights.

One typed record per weight tag, in the spirit of timm's `PretrainedCfg` and
TorchGeo's `WeightsEnum` metadata: which registered model and configuration the
weights belong to, the file and where to download it (pinned URL, sha256, size),
how raw pixels become model input (`gdcld_zoo.preprocessing.Preprocessing`),
the tile size and ground resolution it was trained for, its decision threshold,
metrics with the dataset and split they were measured on, licence and citation.

Records are validated when they are read: a hand-written record only needs
`tag`, `model`, `file` and `sha256` (plus `url` when the file must be
downloaded); every other field has the default documented on `WeightRecord`,
and an unknown key is an error that names it. On disk a registry is JSON:
`{"weights": [record, ...]}`.

Besides our own `.weights.h5`/`.keras` files, a record can describe a published
PyTorch-layout checkpoint (`pytorch_model.bin`, `.pth`, `.safetensors`, usually
an `hf://` URL pinned to a hub commit) that the model's converter loads: the
whole model (`part: "model"`) or only its ImageNet encoder (`part: "encoder"`,
the decoder and head start fresh).
"""

import dataclasses
import json
import math
import numbers
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gdcld_zoo.errors import GdcldZooError
from gdcld_zoo.files import write_text_atomic
from gdcld_zoo.preprocessing import Preprocessing
from gdcld_zoo.weights.hub import SCHEME as HF_SCHEME
from gdcld_zoo.weights.hub import parse_hf_url

_TAG_PATTERN = re.compile(r"^[a-z0-9_\-]+(\.[a-z0-9_\-]+)?$")
_MODEL_PATTERN = re.compile(r"^[a-z0-9_]+$")
_SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
_URL_SCHEMES = ("http://", "https://", "file://", HF_SCHEME)
KERAS_SUFFIXES = (".weights.h5", ".keras")
# PyTorch-layout checkpoints, loaded by the model's converter (gdcld_zoo.convert).
CHECKPOINT_SUFFIXES = (".bin", ".pth", ".pt", ".safetensors")
PARTS = ("model", "encoder")


class InvalidWeightRecordError(GdcldZooError, ValueError):
    """A weight record or registry file that does not follow the record format."""


@dataclasses.dataclass(frozen=True)
class Metrics:
    """Scores of a set of weights on one dataset split.

    Attributes:
        dataset: What the scores were measured on, e.g. `"GDCLD"` or
            `"synthetic"` for the generator of `gdcld_zoo.data`.
        split: The split of that dataset, e.g. `"val"` or `"test"`.
        values: Metric name to value, e.g. `{"f1": 0.915, "miou": 0.851}`
            (fractions, not percentages).
    """

    dataset: str
    split: str
    values: Mapping[str, float]

    def __post_init__(self):
        for key in ("dataset", "split"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise InvalidWeightRecordError(
                    f"metrics {key!r} must be a non-empty string, got {getattr(self, key)!r}."
                )
        values = self.values
        if not isinstance(values, Mapping) or not all(
            isinstance(k, str) and _is_number(v) for k, v in values.items()
        ):
            raise InvalidWeightRecordError(
                f"metrics 'values' must map metric names to finite numbers, got {values!r}."
            )
        object.__setattr__(self, "values", {k: float(v) for k, v in values.items()})

    @classmethod
    def from_dict(cls, data, where):
        if not isinstance(data, Mapping):
            raise InvalidWeightRecordError(f"{where}: each metrics entry must be an object, got {data!r}.")
        _check_keys(data, cls, where, required=("dataset", "split", "values"))
        try:
            return cls(data["dataset"], data["split"], data["values"])
        except InvalidWeightRecordError as error:
            raise InvalidWeightRecordError(f"{where}: {error}") from None

    def to_dict(self):
        return {"dataset": self.dataset, "split": self.split, "values": dict(self.values)}


@dataclasses.dataclass(frozen=True)
class WeightRecord:
    """One pretrained weight file and everything needed to use it.

    Attributes:
        tag: `<model>.<data>` (e.g. `segformer_b4.gdcld`) or a single word alias
            (e.g. `demo`). Lowercase letters, digits, `_` and `-`.
        model: Registered model name passed to `gdcld_zoo.build_model`.
        file: File name of the `.weights.h5` (or `.keras`) file, or of a
            PyTorch-layout checkpoint (`.bin`, `.pth`, `.pt`, `.safetensors`)
            that the model's converter loads. A relative name is looked for
            next to the registry that lists it, in the shipped `weights/` folder
            and in the download cache; an absolute path is used as is (records
            written by `gdcld-zoo weights add`). For an `hf://` URL, the name of
            the file it points to.
        sha256: Hex digest of the file; checked before every load. May be null
            only for an `hf://` URL: the hub's declared sha256 is checked then.
        url: Pinned download URL (http, https, file, or
            `hf://OWNER/REPO@COMMIT/FILE`, see `gdcld_zoo.weights.hub`).
            Default None: the file must already be on disk.
        size: File size in bytes, used to resume downloads. Default None.
        config: Overrides for `build_model` (e.g. `{"num_classes": 1}`).
            Default `{}`: the model's registered configuration with one class.
        preprocessing: How raw raster pixels become model input (bands, dtype,
            scaling, mean/std). Default `Preprocessing()`: 8-bit RGB with ImageNet
            statistics. (Checkpoints trained with PaddleSeg's default `Normalize`
            use mean = std = 0.5 instead; see `gdcld_zoo.convert.paddleseg_segformer`.)
        tile_size: Side in pixels of the tiles the model was trained on; scene
            inference uses it as its window. Default 1024, the GDCLD tile size.
        resolution_m: `(finest, coarsest)` ground resolution in metres the
            weights were trained on. Default None: not stated.
        threshold: Probability above which a pixel is a landslide. Default 0.5.
        metrics: Scores, each with its dataset and split. Default none.
        license: Licence of the weights. Default `"unspecified"`.
        citation: How to cite the weights or their paper. Default `""`.
        default: Whether `load_pretrained(<model>)` resolves to this tag.
            Default False.
        description: One line for `gdcld-zoo weights list`. Default `""`.
        part: `"model"` (default): the file holds the whole model;
            `"encoder"`: an ImageNet checkpoint for the model's encoder only,
            so the decoder and head start untrained.
        trained_on: What the weights learned from, e.g. `"GDCLD"`,
            `"ImageNet-1k"`. Default `""`: not stated.
        origin: Where the record was read from (a registry path or URL); set by
            the reader, never written to JSON.

    Example:
    >>> record = WeightRecord.from_dict({
    ...     "tag": "segformer_b4.gdcld", "model": "segformer_b4",
    ...     "file": "segformer_b4.gdcld.weights.h5", "sha256": "0" * 64})
    >>> record.threshold, record.preprocessing.band_names
    (0.5, ('red', 'green', 'blue'))
    """

    tag: str
    model: str
    file: str
    sha256: str | None
    url: str | None = None
    size: int | None = None
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    preprocessing: Preprocessing = dataclasses.field(default_factory=Preprocessing)
    tile_size: int = 1024
    resolution_m: tuple[float, float] | None = None
    threshold: float = 0.5
    metrics: tuple[Metrics, ...] = ()
    license: str = "unspecified"
    citation: str = ""
    default: bool = False
    description: str = ""
    part: str = "model"
    trained_on: str = ""
    origin: str | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self):
        where = f"weight record {self.tag!r}" + (f" in {self.origin}" if self.origin else "")
        if not isinstance(self.tag, str) or not _TAG_PATTERN.match(self.tag):
            raise InvalidWeightRecordError(
                f"{where}: tag must look like '<model>.<data>' (e.g. 'segformer_b4.gdcld') "
                "or one lowercase word, using letters, digits, '_' and '-'."
            )
        if not isinstance(self.model, str) or not _MODEL_PATTERN.match(self.model):
            raise InvalidWeightRecordError(
                f"{where}: model must be a registered model name such as 'segformer_b4', "
                f"got {self.model!r}."
            )
        if "." in self.tag and self.tag.split(".", 1)[0] != self.model:
            raise InvalidWeightRecordError(
                f"{where}: a tag '<model>.<data>' must start with its model name "
                f"{self.model!r}; rename it to '{self.model}.{self.tag.split('.', 1)[1]}'."
            )
        if not isinstance(self.file, str) or not self.file.strip():
            raise InvalidWeightRecordError(f"{where}: file must be a non-empty file name.")
        if not self.file.endswith(KERAS_SUFFIXES + CHECKPOINT_SUFFIXES):
            raise InvalidWeightRecordError(
                f"{where}: file must be a '.weights.h5' or '.keras' file, or a PyTorch-layout "
                f"checkpoint ({', '.join(CHECKPOINT_SUFFIXES)}), got {self.file!r}."
            )
        if self.url is not None and (
            not isinstance(self.url, str) or not self.url.startswith(_URL_SCHEMES)
        ):
            raise InvalidWeightRecordError(
                f"{where}: url must start with http://, https://, file:// or hf://, got {self.url!r}."
            )
        from_hub = self.url is not None and self.url.startswith(HF_SCHEME)
        if from_hub:
            try:
                hub_file = parse_hf_url(self.url)
            except ValueError as error:
                raise InvalidWeightRecordError(f"{where}: {error}.") from None
            if hub_file.path.rsplit("/", 1)[-1] != self.file:
                raise InvalidWeightRecordError(
                    f"{where}: file must be the name of the hub file, {hub_file.path.rsplit('/', 1)[-1]!r}."
                )
        if self.sha256 is None and not from_hub:
            raise InvalidWeightRecordError(
                f"{where}: sha256 is required (it may be null only for an hf:// url, whose hash "
                "the hub declares). Compute it with `sha256sum FILE` or `gdcld-zoo weights publish`."
            )
        if self.sha256 is not None:
            if not isinstance(self.sha256, str) or not _SHA256_PATTERN.match(self.sha256.lower()):
                raise InvalidWeightRecordError(
                    f"{where}: sha256 must be 64 hex digits, got {self.sha256!r}. "
                    "Compute it with `sha256sum FILE` or `gdcld-zoo weights publish`."
                )
            object.__setattr__(self, "sha256", self.sha256.lower())
        if self.part not in PARTS:
            raise InvalidWeightRecordError(f"{where}: part must be one of {PARTS}, got {self.part!r}.")
        if self.part == "encoder" and not self.is_checkpoint:
            raise InvalidWeightRecordError(
                f"{where}: an encoder record's file must be a PyTorch-layout checkpoint "
                f"({', '.join(CHECKPOINT_SUFFIXES)}) that the model's converter loads."
            )
        if self.size is not None and (not _is_int(self.size) or self.size < 0):
            raise InvalidWeightRecordError(
                f"{where}: size must be a byte count, got {self.size!r}."
            )
        if not isinstance(self.config, Mapping) or not all(isinstance(k, str) for k in self.config):
            raise InvalidWeightRecordError(
                f"{where}: config must be an object of build_model arguments, got {self.config!r}."
            )
        if "input_shape" in self.config:
            raise InvalidWeightRecordError(
                f"{where}: config must not set input_shape; the band count comes from "
                "'preprocessing' and load_pretrained(input_shape=...) sets the size."
            )
        num_classes = self.config.get("num_classes", 1)
        if not _is_int(num_classes) or num_classes < 1:
            raise InvalidWeightRecordError(
                f"{where}: config num_classes must be a positive integer, got {num_classes!r}."
            )
        object.__setattr__(self, "config", dict(self.config))
        if not isinstance(self.preprocessing, Preprocessing):
            raise InvalidWeightRecordError(
                f"{where}: preprocessing must be a gdcld_zoo.preprocessing.Preprocessing."
            )
        if not _is_int(self.tile_size) or self.tile_size < 1:
            raise InvalidWeightRecordError(
                f"{where}: tile_size must be a positive pixel count, got {self.tile_size!r}."
            )
        if self.resolution_m is not None:
            resolution = tuple(self.resolution_m) if isinstance(self.resolution_m, (list, tuple)) else ()
            if len(resolution) != 2 or not all(_is_number(r) and r > 0 for r in resolution) or (
                resolution[0] > resolution[1]
            ):
                raise InvalidWeightRecordError(
                    f"{where}: resolution_m must be [finest, coarsest] in metres, "
                    f"got {self.resolution_m!r}."
                )
            object.__setattr__(self, "resolution_m", tuple(float(r) for r in resolution))
        if not _is_number(self.threshold) or not 0.0 <= self.threshold <= 1.0:
            raise InvalidWeightRecordError(
                f"{where}: threshold must be a probability in [0, 1], got {self.threshold!r}."
            )
        object.__setattr__(self, "threshold", float(self.threshold))
        object.__setattr__(self, "tile_size", int(self.tile_size))
        if self.size is not None:
            object.__setattr__(self, "size", int(self.size))
        object.__setattr__(self, "metrics", tuple(self.metrics))
        if not all(isinstance(m, Metrics) for m in self.metrics):
            raise InvalidWeightRecordError(f"{where}: metrics must be Metrics entries.")
        for name in ("license", "citation", "description", "trained_on"):
            if not isinstance(getattr(self, name), str):
                raise InvalidWeightRecordError(f"{where}: {name} must be a string.")
        if not isinstance(self.default, bool):
            raise InvalidWeightRecordError(f"{where}: default must be true or false.")

    @property
    def hub_file(self):
        """The `gdcld_zoo.weights.hub.HubFile` of an `hf://` URL, else None."""
        if not (isinstance(self.url, str) and self.url.startswith(HF_SCHEME)):
            return None
        return parse_hf_url(self.url)

    @property
    def is_checkpoint(self):
        """True for a PyTorch-layout checkpoint that a converter loads."""
        return self.file.endswith(CHECKPOINT_SUFFIXES)

    @property
    def num_classes(self):
        """Classes of the weights' head (1: landslide logit with sigmoid)."""
        return self.config.get("num_classes", 1)

    @classmethod
    def from_dict(cls, data, origin=None):
        """Validate a JSON object into a record; `origin` names its registry in errors."""
        tag = data.get("tag") if isinstance(data, Mapping) else None
        where = f"weight record {tag!r}" + (f" in {origin}" if origin else "")
        if not isinstance(data, Mapping):
            raise InvalidWeightRecordError(f"{where}: a record must be a JSON object, got {data!r}.")
        _check_keys(data, cls, where, required=("tag", "model", "file", "sha256"), exclude=("origin",))
        fields = dict(data)
        preprocessing = data.get("preprocessing", {})
        if not isinstance(preprocessing, Mapping):
            raise InvalidWeightRecordError(f"{where}: preprocessing must be a JSON object.")
        try:
            fields["preprocessing"] = Preprocessing.from_dict(preprocessing)
        except (TypeError, ValueError) as error:
            raise InvalidWeightRecordError(f"{where}: preprocessing: {error}") from None
        metrics = data.get("metrics", [])
        if not isinstance(metrics, list):
            raise InvalidWeightRecordError(f"{where}: metrics must be a list of objects.")
        fields["metrics"] = tuple(Metrics.from_dict(m, f"{where}: metrics") for m in metrics)
        return cls(**fields, origin=origin)

    def to_dict(self):
        """The JSON object for this record, every field written out."""
        return {
            "tag": self.tag,
            "model": self.model,
            "file": self.file,
            "sha256": self.sha256,
            "url": self.url,
            "size": self.size,
            "config": dict(self.config),
            "preprocessing": self.preprocessing.to_dict(),
            "tile_size": self.tile_size,
            "resolution_m": list(self.resolution_m) if self.resolution_m else None,
            "threshold": self.threshold,
            "metrics": [m.to_dict() for m in self.metrics],
            "license": self.license,
            "citation": self.citation,
            "default": self.default,
            "description": self.description,
            "part": self.part,
            "trained_on": self.trained_on,
        }


def parse_registry(data, origin):
    """Records from a decoded registry document `{"weights": [record, ...]}`."""
    if not isinstance(data, Mapping) or set(data) != {"weights"} or not isinstance(
        data["weights"], list
    ):
        raise InvalidWeightRecordError(
            f"Registry {origin} must be a JSON object with one key, 'weights', "
            'holding a list of records: {"weights": [...]}.'
        )
    records = [WeightRecord.from_dict(item, origin=origin) for item in data["weights"]]
    tags = [r.tag for r in records]
    duplicates = sorted({t for t in tags if tags.count(t) > 1})
    if duplicates:
        raise InvalidWeightRecordError(f"Registry {origin} lists tags {duplicates} more than once.")
    models = [r.model for r in records if r.default]
    several = sorted({m for m in models if models.count(m) > 1})
    if several:
        raise InvalidWeightRecordError(
            f"Registry {origin} marks several weights of {several} as default; keep one."
        )
    return records


def read_registry_file(path):
    """Read and validate a registry JSON file; a missing file is an empty registry."""
    path = Path(path)
    if not path.exists():
        return []
    if path.is_dir():
        raise InvalidWeightRecordError(
            f"Registry {path} is a folder; a registry is a JSON file, e.g. {path / 'registry.json'} "
            "(check GDCLD_ZOO_REGISTRY)."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidWeightRecordError(f"Registry {path} is not valid JSON: {error}.") from None
    return parse_registry(data, str(path))


def write_registry_file(path, records):
    """Write records as `{"weights": [...]}` atomically (temporary file, then rename)."""
    path = Path(path)
    text = json.dumps({"weights": [r.to_dict() for r in records]}, indent=2) + "\n"
    write_text_atomic(path, text)


def _check_keys(data, cls, where, required, exclude=()):
    allowed = [f.name for f in dataclasses.fields(cls) if f.name not in exclude]
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InvalidWeightRecordError(f"{where}: unknown keys {unknown}; allowed keys: {allowed}.")
    missing = [k for k in required if k not in data]
    if missing:
        raise InvalidWeightRecordError(f"{where}: missing required keys {missing}.")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value):
    """Python or numpy reals (not booleans) that are finite."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
