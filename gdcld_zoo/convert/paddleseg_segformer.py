"""Convert PaddleSeg SegFormer / MiT `.pdparams` checkpoints into `gdcld_zoo` SegFormer.

The GDCLD authors trained their benchmark models with PaddleSeg, whose
checkpoints are `.pdparams` files: a pickle of a dict of numpy arrays. Pickle
can run arbitrary code, so it is read with a restricted unpickler that only
rebuilds numpy arrays (and the dict holding them) and refuses every other
global with a `ConversionError` before anything is executed.

PaddleSeg names (`paddleseg/models/backbones/mix_transformer.py`,
`paddleseg/models/segformer.py`) are translated into the transformers layout
that `gdcld_zoo.convert.transformers_segformer` already maps onto our layers:
Paddle `Linear` weights are stored `[in, out]` (transposed to torch's
`[out, in]`), the fused `attn.kv` projection is split into key and value, and
batch-norm statistics `_mean` / `_variance` become the running mean/variance.

Fidelity: PaddleSeg's MiT normalises its blocks (`norm1`, `norm2`) and stages
(`backbone.norm{n}`) with layer-norm epsilon 1e-6 (transformers: 1e-5), so
converted models are built with `layer_norm_epsilon=1e-6`. Against PaddleSeg 2.8
itself (with the 1e-5 epsilon), converted MiT-B0 and MiT-B2 SegFormers with
perturbed weights gave logits within 2e-4 and 4e-4 of PaddleSeg's (logits up to
21 and 59) and the same argmax mask; with matching epsilons 4.9e-5 and 2.2e-4.
"""

import codecs
import collections
import pickle
import re
from pathlib import Path

import numpy as np

from gdcld_zoo.convert.state_dict import ConversionError
from gdcld_zoo.convert.transformers_segformer import load_segformer_state
from gdcld_zoo.preprocessing import Preprocessing

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray

# The only globals a pickle of numpy arrays needs, under the module names
# numpy 1.x and 2.x write them with. Resolved here, never imported by name.
_ALLOWED_GLOBALS = {
    (module, name): obj
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name, obj in (("_reconstruct", _multiarray._reconstruct), ("scalar", _multiarray.scalar))
}
_ALLOWED_GLOBALS.update({
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): codecs.encode,  # bytes in protocol-2 pickles
})

# Bookkeeping entries `paddle.save` may add next to the arrays.
_PADDLE_METADATA_KEYS = ("StructuredToParameterName@@",)

# PaddleSeg MiT-B0..B5 all use these heads; head counts leave no trace in the weights.
PADDLESEG_NUM_HEADS = (1, 2, 5, 8)

# Input of a model trained with PaddleSeg's default `Normalize` transform (as its
# SegFormer configs use): 8-bit RGB mapped to [-1, 1]. Weight records of converted
# checkpoints should carry it unless their training config normalised otherwise.
PADDLESEG_PREPROCESSING = Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, dtypes, scalars and (ordered) dicts; nothing else."""

    def __init__(self, file, source):
        super().__init__(file)
        self.source = source

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        raise ConversionError(
            f"{self.source} asks to load {module}.{name}, which a checkpoint of numpy arrays never "
            "needs; refusing to unpickle it (a pickle can run code). Only open .pdparams from sources you trust."
        )

    def persistent_load(self, pid):
        raise ConversionError(f"{self.source} uses pickle persistent ids; it is not a .pdparams file.")


def read_pdparams(path):
    """The arrays of a `.pdparams` file, read without running code from it.

    Returns:
        Dict of parameter name -> numpy array, Paddle layout.

    Raises:
        ConversionError: The file needs anything beyond numpy arrays, or is not
            a dict of arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"No PaddleSeg checkpoint at {path}; give the path of a .pdparams file.")
    with open(path, "rb") as handle:
        try:
            state = _NumpyOnlyUnpickler(handle, path).load()
        except ConversionError:
            raise
        # Corrupt or truncated pickles fail in many ways.
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as error:
            raise ConversionError(f"{path} is not a readable .pdparams file: {error}") from None
    if not isinstance(state, dict):
        raise ConversionError(f"{path} holds a {type(state).__name__}, not a dict of parameters.")
    state = {k: v for k, v in state.items() if k not in _PADDLE_METADATA_KEYS}
    bad = sorted(k for k, v in state.items() if not isinstance(v, np.ndarray))
    if bad:
        raise ConversionError(f"{path}: entries {bad[:5]} are not arrays; is this a model state dict?")
    return state


def _split_prefix(state):
    """Backbone arrays (without `backbone.`) and head arrays, for a whole-model or a
    backbone-only (ImageNet-pretrained MiT) checkpoint."""
    if any(k.startswith("backbone.") for k in state):
        backbone = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
        head = {k: v for k, v in state.items() if not k.startswith("backbone.")}
        return backbone, head
    return dict(state), {}


_ENCODER_RULES = (
    # (PaddleSeg pattern, transformers name, kind)
    (r"patch_embed(\d+)\.proj\.(weight|bias)", "segformer.stages.{s}.patch_embeddings.proj.{p}", "as_is"),
    (r"patch_embed(\d+)\.norm\.(weight|bias)", "segformer.stages.{s}.patch_embeddings.layer_norm.{p}", "as_is"),
    (r"norm(\d+)\.(weight|bias)", "segformer.stages.{s}.layer_norm.{p}", "as_is"),
    (r"block(\d+)\.(\d+)\.norm1\.(weight|bias)", "segformer.stages.{s}.blocks.{b}.layernorm_before.{p}", "as_is"),
    (r"block(\d+)\.(\d+)\.norm2\.(weight|bias)", "segformer.stages.{s}.blocks.{b}.layernorm_after.{p}", "as_is"),
    (r"block(\d+)\.(\d+)\.attn\.q\.(weight|bias)", "segformer.stages.{s}.blocks.{b}.attention.q_proj.{p}", "linear"),
    (r"block(\d+)\.(\d+)\.attn\.kv\.(weight|bias)", "segformer.stages.{s}.blocks.{b}.attention.{{kv}}.{p}", "kv"),
    (r"block(\d+)\.(\d+)\.attn\.proj\.(weight|bias)", "segformer.stages.{s}.blocks.{b}.attention.o_proj.{p}", "linear"),
    (r"block(\d+)\.(\d+)\.attn\.sr\.(weight|bias)",
     "segformer.stages.{s}.blocks.{b}.attention.sequence_reduction.sequence_reduction.{p}", "as_is"),
    (r"block(\d+)\.(\d+)\.attn\.norm\.(weight|bias)",
     "segformer.stages.{s}.blocks.{b}.attention.sequence_reduction.layer_norm.{p}", "as_is"),
    (r"block(\d+)\.(\d+)\.mlp\.fc1\.(weight|bias)", "segformer.stages.{s}.blocks.{b}.mlp.fc1.{p}", "linear"),
    (r"block(\d+)\.(\d+)\.mlp\.dwconv\.dwconv\.(weight|bias)", "segformer.stages.{s}.blocks.{b}.mlp.dwconv.dwconv.{p}",
     "as_is"),
    (r"block(\d+)\.(\d+)\.mlp\.fc2\.(weight|bias)", "segformer.stages.{s}.blocks.{b}.mlp.fc2.{p}", "linear"),
)
_HEAD_RULES = (
    (r"linear_c(\d+)\.proj\.(weight|bias)", "decode_head.linear_projections.{s}.proj.{p}", "linear"),
    (r"linear_fuse\._conv\.(weight|bias)", "decode_head.linear_fuse.{p}", "as_is"),
    (r"linear_fuse\._batch_norm\.(weight|bias|_mean|_variance)", "decode_head.batch_norm.{p}", "batch_norm"),
    (r"linear_pred\.(weight|bias)", "decode_head.classifier.{p}", "as_is"),
)
_BATCH_NORM_NAMES = {"weight": "weight", "bias": "bias", "_mean": "running_mean", "_variance": "running_var"}


def _translate(name, value, rules, out):
    """Add the transformers-layout tensor(s) for one PaddleSeg array to `out`;
    False when no rule knows the name."""
    for pattern, target, kind in rules:
        match = re.fullmatch(pattern, name)
        if not match:
            continue
        groups = match.groups()
        param = groups[-1]
        numbers = [int(g) for g in groups[:-1]]
        fields = {"p": _BATCH_NORM_NAMES[param] if kind == "batch_norm" else param}
        if numbers:
            fields["s"] = numbers[0] - 1  # PaddleSeg counts stages from 1
        if len(numbers) > 1:
            fields["b"] = numbers[1]
        key = target.format(**fields)
        if kind == "linear" and param == "weight":
            value = value.T  # Paddle Linear stores [in, out]; torch [out, in]
        if kind == "kv":
            key_half, value_half = np.split(value, 2, axis=-1)  # output features: keys, then values
            if param == "weight":
                key_half, value_half = key_half.T, value_half.T
            out[key.format(kv="k_proj")] = np.ascontiguousarray(key_half)
            out[key.format(kv="v_proj")] = np.ascontiguousarray(value_half)
        else:
            out[key] = value
        return True
    return False


def to_transformers_layout(state):
    """PaddleSeg SegFormer / MiT arrays renamed and laid out as transformers' SegFormer.

    Names no rule knows are kept as they are, so the conversion reports them.
    """
    backbone, head = _split_prefix(state)
    out = {}
    for name, value in backbone.items():
        if not _translate(name, value, _ENCODER_RULES, out):
            out[f"backbone.{name}"] = value
    for name, value in head.items():
        if not _translate(name, value, _HEAD_RULES, out):
            out[name] = value
    return out


def segformer_config_from_pdparams(state, num_heads=PADDLESEG_NUM_HEADS):
    """`SegFormer` constructor arguments read from the array shapes of a checkpoint.

    Widths, depths, patch sizes, reduction ratios, MLP ratios, decoder width,
    classes and input bands are all in the shapes; head counts are not, and
    default to PaddleSeg's MiT `(1, 2, 5, 8)`.
    """
    backbone, head = _split_prefix(state)
    stages = sorted(int(m.group(1)) for k in backbone if (m := re.fullmatch(r"patch_embed(\d+)\.proj\.weight", k)))
    if not stages:
        raise ConversionError("No `patch_embed1.proj.weight`: this is not a PaddleSeg SegFormer/MiT checkpoint.")
    hidden_sizes, depths, patch_sizes, sr_ratios, mlp_ratios = [], [], [], [], []
    for s in stages:
        proj = backbone[f"patch_embed{s}.proj.weight"]  # (out, in, kh, kw)
        hidden_sizes.append(int(proj.shape[0]))
        patch_sizes.append(int(proj.shape[2]))
        blocks = {int(m.group(1)) for k in backbone if (m := re.match(rf"block{s}\.(\d+)\.", k))}
        depths.append(len(blocks))
        sr = backbone.get(f"block{s}.0.attn.sr.weight")
        sr_ratios.append(int(sr.shape[2]) if sr is not None else 1)
        fc1 = backbone.get(f"block{s}.0.mlp.fc1.weight")  # (in, hidden)
        mlp_ratios.append(int(fc1.shape[1]) // int(fc1.shape[0]) if fc1 is not None else 4)
    config = {
        "input_shape": (None, None, int(backbone["patch_embed1.proj.weight"].shape[1])),
        "hidden_sizes": tuple(hidden_sizes),
        "depths": tuple(depths),
        "num_heads": tuple(num_heads),
        "sr_ratios": tuple(sr_ratios),
        "patch_sizes": tuple(patch_sizes),
        "strides": (4,) + (2,) * (len(stages) - 1),
        "mlp_ratios": tuple(mlp_ratios),
        "layer_norm_epsilon": 1e-6,
    }
    if "linear_pred.weight" in head:
        config["num_classes"] = int(head["linear_pred.weight"].shape[0])
        config["decoder_hidden_size"] = int(head["linear_pred.weight"].shape[1])
    return config


def from_paddleseg(path, num_heads=PADDLESEG_NUM_HEADS):
    """A `SegFormer` with the weights of a PaddleSeg SegFormer `.pdparams` checkpoint.

    Args:
        path: A whole-model `model.pdparams` saved by PaddleSeg's trainer
            (keys `backbone.*`, `linear_c*`, `linear_fuse.*`, `linear_pred.*`).
        num_heads: Attention heads per stage; PaddleSeg's MiT-B0..B5 use (1, 2, 5, 8).

    Returns:
        `gdcld_zoo.models.segformer.SegFormer` with the checkpoint's configuration
        (read from its array shapes) and weights.

    The weights expect PaddleSeg's input normalisation (`PADDLESEG_PREPROCESSING`
    for its default `Normalize`); state it in the weight record you write.

    Example:
    >>> model = from_paddleseg("output/best_model/model.pdparams")  # doctest: +SKIP
    >>> model.save_weights("segformer_b4.gdcld.weights.h5")  # doctest: +SKIP
    """
    from gdcld_zoo.models.segformer import SegFormer

    state = read_pdparams(path)
    config = segformer_config_from_pdparams(state, num_heads)
    if "num_classes" not in config:
        raise ConversionError(
            f"{path} is a backbone-only (MiT) checkpoint; load it with "
            "`load_paddleseg_encoder(model, path)` into a model you build."
        )
    model = SegFormer(**config)
    load_segformer_state(model, to_transformers_layout(state), f"PaddleSeg checkpoint {path}")
    return model


def load_paddleseg_encoder(model, path):
    """Load the MiT encoder of a PaddleSeg checkpoint (backbone-only or whole model) into
    a `SegFormer`, leaving its decoder as is."""
    state = read_pdparams(path)
    backbone, _ = _split_prefix(state)
    load_segformer_state(
        model, to_transformers_layout(backbone), f"PaddleSeg checkpoint {path}", encoder_only=True
    )
