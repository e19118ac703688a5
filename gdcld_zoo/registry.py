"""The one place that knows every model: names, builders, descriptions, sizes.

Architectures register themselves when `gdcld_zoo.models` is imported; training,
export, inference and the viewer only ever call `build_model(name)`.
"""

import dataclasses
import importlib
import inspect
from typing import Any, Callable, Mapping

from gdcld_zoo.errors import InvalidInputError, UnknownNameError

# Every encoder downsamples by 32 at most; sizes that are multiples of it keep
# all feature maps aligned so logits come back at exactly the input size.
SIZE_MULTIPLE = 32


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registered model: its builder, default configuration and size.

    Attributes:
        name: Registry name, `<arch>_<size>` (e.g. `segformer_b4`).
        builder: The model class (or a callable) taking
            `num_classes=, input_shape=, **config` and returning a `keras.Model`.
        description: One line for `gdcld-zoo models`.
        config: Default keyword arguments passed to the builder.
        num_params: Trainable parameters with `num_classes=1`; a test builds
            every public model and checks this number exactly.
        public: Listed by `list_models()`; tiny test variants are not.
        encoder_loader: `"module:function"` that loads an ImageNet checkpoint
            into the built model's encoder (`build_model(..., encoder_weights=PATH)`);
            imported only when used, so converters' dependencies stay optional.
        checkpoint_loader: `"module:function"` that loads a whole-model
            checkpoint published for the architecture (e.g. transformers'
            SegFormer fine-tuned on ADE20K) into the built model.
    """

    name: str
    builder: Callable[..., Any]
    description: str
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    num_params: int | None = None
    public: bool = True
    encoder_loader: str | None = None
    checkpoint_loader: str | None = None

    def accepted_arguments(self):
        """Override names `build_model` accepts."""
        params = inspect.signature(self.builder).parameters.values()
        names = {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if isinstance(self.builder, type):
            names |= {"name", "trainable", "dtype"}  # a model class's **kwargs go to keras.Model
        return names | {"encoder_weights"}

    def load_encoder_weights(self, model, path):
        """Load a pretrained encoder checkpoint at `path` into `model`."""
        if not self.encoder_loader:
            raise InvalidInputError(
                f"{self.name} has no pretrained encoder to load (it is trained from scratch, "
                "as in the paper); leave out encoder_weights."
            )
        _call(self.encoder_loader, model, path)

    def load_checkpoint(self, model, path):
        """Load a whole-model checkpoint at `path` (converter layout) into `model`."""
        if not self.checkpoint_loader:
            raise InvalidInputError(
                f"{self.name} has no converter for whole-model checkpoints; load its encoder "
                "with encoder_weights, or convert the checkpoint yourself (gdcld_zoo.convert)."
            )
        _call(self.checkpoint_loader, model, path)


def _call(target, *args):
    """Import `"module:function"` and call it."""
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)(*args)


_MODELS: dict[str, ModelSpec] = {}


def register_model(spec):
    """Add `spec` to the registry; names must be unique."""
    if spec.name in _MODELS:
        raise ValueError(f"Model {spec.name!r} is registered twice.")
    _MODELS[spec.name] = spec
    return spec


def _ensure_models_imported():
    import gdcld_zoo.models  # noqa: F401  (registers every architecture)


def list_models(include_tiny=False):
    """Names of the registered models, sorted; tiny test variants on request."""
    _ensure_models_imported()
    return sorted(n for n, s in _MODELS.items() if s.public or include_tiny)


def get_model_spec(name):
    """The `ModelSpec` for `name`; unknown names list close matches."""
    _ensure_models_imported()
    if name not in _MODELS:
        raise UnknownNameError("model", name, list_models())
    return _MODELS[name]


def validate_input_shape(input_shape):
    """Check a channels-last `(H, W, C)` shape; H and W are None or multiples of 32."""
    shape = tuple(input_shape)
    if len(shape) != 3:
        raise InvalidInputError(
            f"input_shape must be (height, width, channels), got {input_shape!r}."
        )
    height, width, channels = shape
    if not isinstance(channels, int) or channels < 1:
        raise InvalidInputError(
            f"input_shape needs a fixed positive channel count last, got {input_shape!r}."
        )
    for side in (height, width):
        if side is not None and (side <= 0 or side % SIZE_MULTIPLE):
            raise InvalidInputError(
                f"Input height and width must be multiples of {SIZE_MULTIPLE} "
                f"(or None for any size), got {input_shape!r}. Pad or crop the tile."
            )
    return shape


def build_model(name, num_classes=1, input_shape=(None, None, 3), **overrides):
    """Build a registered model with fresh weights.

    Args:
        name: A name from `list_models()` (or a tiny test variant).
        num_classes: 1 for landslide/background with sigmoid + binary
            cross-entropy (the paper's setting); 2 or more for softmax.
        input_shape: Channels-last `(H, W, C)`; H and W may be None.
        **overrides: Replace any of the model's default configuration;
            `encoder_weights=PATH` loads an ImageNet checkpoint into the encoder
            (see each model's converter in `gdcld_zoo.convert`).

    Returns:
        A `keras.Model` mapping normalised float images (B, H, W, C) to float32
        logits (B, H, W, num_classes) at the input resolution.

    Example:
    >>> model = build_model("segformer_tiny", input_shape=(64, 64, 3))
    >>> model.output_shape
    (None, 64, 64, 1)
    """
    spec = get_model_spec(name)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise InvalidInputError(f"num_classes must be a positive integer, got {num_classes!r}.")
    input_shape = validate_input_shape(input_shape)
    accepted = spec.accepted_arguments()
    unknown = sorted(set(overrides) - accepted)
    if unknown:
        raise InvalidInputError(
            f"{name} has no option {', '.join(map(repr, unknown))}; it accepts "
            f"{', '.join(sorted(accepted - {'num_classes', 'input_shape', 'name'}))}."
        )
    encoder_weights = overrides.pop("encoder_weights", None)
    config = {**spec.config, **overrides}
    model = spec.builder(num_classes=num_classes, input_shape=input_shape, **config)
    if encoder_weights is not None:
        spec.load_encoder_weights(model, encoder_weights)
    return model
