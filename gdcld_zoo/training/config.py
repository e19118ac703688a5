"""`TrainConfig`: everything that describes one training run, read from YAML/JSON or flags.

A run is fully described by this dataclass. `gdcld-zoo train` builds it from a
config file (`--config run.yaml`) and command-line flags (flags win), and the
trainer saves the resolved config as `config.json` in the run folder, so a run
can be repeated, resumed (`--resume` reads it back) and audited.

Defaults are the GDCLD paper's recipe (Fang et al., section 4.3): AdamW with
learning rate 6e-4, beta1 0.9, beta2 0.999, weight decay 0.01, 100 epochs,
binary cross-entropy. PaddleSeg's own SegFormer configs use a learning rate of
6e-5; pass `learning_rate: 6.0e-5` (or `--lr 6e-5`) to follow them instead.
"""

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping

import yaml

from gdcld_zoo.errors import GdcldZooError, InvalidInputError
from gdcld_zoo.preprocessing import Preprocessing
from gdcld_zoo.files import write_text_atomic

CONFIG_FILE = "config.json"
STRATEGIES = ("default", "mirrored", "multi_worker")


class ConfigError(GdcldZooError, ValueError):
    """A run configuration file or value that cannot be used."""


@dataclasses.dataclass
class TrainConfig:
    """One training run.

    Attributes:
        model: Registered model name (`gdcld_zoo.list_models()`).
        data: GDCLD-layout dataset root (`train/`, `val/` folders).
        out: Run folder for config, logs, checkpoints and the weight record.
        model_config: Overrides passed to `build_model` (e.g. `drop_path_rate`).
        encoder_weights: Where the encoder starts from: `"default"`, the
            model's ImageNet encoder record (e.g. `segformer_b4.imagenet`, as
            PaddleSeg's recipe starts from ImageNet-pretrained backbones; models
            without one start from scratch); `"none"`, from scratch; an encoder
            weight tag; or a checkpoint file or folder.
        num_classes: 1: landslide logit with sigmoid (the paper's setting).
        preprocessing: `Preprocessing.to_dict()` of the input bands; default
            8-bit RGB with ImageNet mean/std.
        tile_size: Side of the square training crops in pixels (multiple of 32).
        batch_size: Global batch size (split across replicas by the strategy).
        epochs: Training epochs (paper: 100).
        steps_per_epoch: Batches per epoch; None means one pass over the data.
        validation_steps: Validation batches per epoch; None means all of them.
        learning_rate: Peak AdamW learning rate (paper: 6e-4; PaddleSeg's
            SegFormer configs: 6e-5).
        beta_1, beta_2: AdamW moment decay rates (paper: 0.9, 0.999).
        weight_decay: Decoupled weight decay (paper: 0.01).
        warmup_steps: Linear warm-up steps before the polynomial decay
            (at most the run's total steps).
        end_learning_rate: Learning rate reached at the last step.
        power: Power of the polynomial decay (1.0: linear, PaddleSeg's default).
        loss: `bce` (the paper's), `dice`, `focal` or `bce_dice`.
        threshold: Landslide probability threshold for the metrics and record.
        ignore_index: Label value ignored by losses and metrics (GDCLD nodata).
        augment: Apply the training augmentation (on the device, per batch).
        mixed_precision: Compute in float16 on a GPU (bfloat16 on CPU), keep
            float32 variables and logits.
        strategy: `default` (one device), `mirrored` (all local GPUs) or
            `multi_worker` (`TF_CONFIG` cluster), all `tf.distribute` strategies
            (TensorFlow backend only).
        early_stopping_patience: Stop after this many epochs without a better
            validation mIoU; None never stops early.
        preview_tiles: Validation tiles drawn in each epoch's preview PNG (0: none).
        dataset_name: Name stored with the metrics in the weight record.
        seed: Random seed for weights, shuffling and augmentation.
        skip_bad: Leave out tile pairs that fail validation (with a warning)
            and tiles that cannot be read later, instead of stopping.
    """

    model: str
    data: str | None = None
    out: str = "runs/train"
    model_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    encoder_weights: str | None = "default"
    num_classes: int = 1
    preprocessing: Mapping[str, Any] = dataclasses.field(default_factory=lambda: Preprocessing().to_dict())
    tile_size: int = 512
    batch_size: int = 8
    epochs: int = 100
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    learning_rate: float = 6e-4
    beta_1: float = 0.9
    beta_2: float = 0.999
    weight_decay: float = 0.01
    warmup_steps: int = 1500
    end_learning_rate: float = 0.0
    power: float = 1.0
    loss: str = "bce"
    threshold: float = 0.5
    ignore_index: int = 255
    augment: bool = True
    mixed_precision: bool = False
    strategy: str = "default"
    early_stopping_patience: int | None = None
    preview_tiles: int = 4
    dataset_name: str = "GDCLD"
    seed: int = 0
    skip_bad: bool = False

    def __post_init__(self):
        self.model_config = dict(self.model_config)
        if self.encoder_weights is not None and not isinstance(self.encoder_weights, str):
            raise ConfigError(
                f"encoder_weights must be 'default', 'none', a weight tag or a path, got {self.encoder_weights!r}."
            )
        if self.encoder_weights == "none":
            self.encoder_weights = None
        self.preprocessing = Preprocessing.from_dict(dict(self.preprocessing)).to_dict()
        positive = ("num_classes", "tile_size", "batch_size", "epochs")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
        for name in ("steps_per_epoch", "validation_steps", "early_stopping_patience"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive integer or null, got {value!r}.")
        if self.tile_size % 32:
            raise ConfigError(f"tile_size must be a multiple of 32, got {self.tile_size}.")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}.")
        if self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be >= 0, got {self.warmup_steps}.")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}.")
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold must be a probability in (0, 1), got {self.threshold}.")

    @property
    def input_bands(self):
        return len(self.preprocessing["bands"])

    def to_dict(self):
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data):
        """Build from a mapping; unknown keys are an error naming them."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"A run config must be a mapping of option: value, got {type(data).__name__}.")
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ConfigError(f"Unknown config keys {unknown}; allowed keys: {allowed}.")
        if "model" not in data:
            raise ConfigError("The run config needs a 'model' (see `gdcld-zoo models`).")
        try:
            return cls(**data)
        except InvalidInputError as error:
            raise ConfigError(f"preprocessing: {error}") from None

    @classmethod
    def from_file(cls, path, **overrides):
        """Read a YAML (`.yaml`/`.yml`) or JSON file; non-None `overrides` win."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"Config file {path} does not exist.")
        text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as error:
            raise ConfigError(f"Config file {path} cannot be parsed: {error}".splitlines()[0]) from None
        data = dict(data or {})
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data)

    def save(self, run_dir):
        """Write the resolved config to `run_dir/config.json` atomically; returns the path."""
        path = Path(run_dir) / CONFIG_FILE
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, run_dir, **overrides):
        """The config saved in a run folder, with non-None `overrides` applied.

        `out` is `run_dir`, whatever was saved: a copied run folder continues
        in the copy, never in the folder it was copied from.
        """
        path = Path(run_dir) / CONFIG_FILE
        if not path.is_file():
            raise ConfigError(f"{run_dir} holds no {CONFIG_FILE}; is it a run folder written by `gdcld-zoo train`?")
        return cls.from_file(path, **{**overrides, "out": str(run_dir)})
