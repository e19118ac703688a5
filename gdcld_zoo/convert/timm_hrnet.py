"""Load timm HRNet ImageNet weights into the `gdcld_zoo` HRNet encoder.

Reads a timm `HighResolutionNet` checkpoint (`model.safetensors` of
`timm/hrnet_w48.ms_in1k`, or any `hrnet_w*` one, including
`hrnet_w48_ssld.paddle_in1k`) with numpy alone (`read_checkpoint`), no torch needed.
`HRNetEncoder` names its layers after timm's module paths (dots replaced by
underscores), so the mapping is read off the model: every convolution and
batch norm of the encoder must find its tensors, and every checkpoint tensor
must find a layer, except timm's ImageNet classification head
(`incre_modules`, `downsamp_modules`, `final_layer`, `classifier`), which
HRNet's segmentation models do not use. Anything missing, unexpected or
mis-shaped raises one `ConversionError` that lists it.

How this was tested: timm needs torchvision, which has no CPU wheel for this
torch, so `tests/convert/test_timm_hrnet.py` writes its own reference: a
torch.nn re-implementation of timm's `HighResolutionNet` module tree (same
module names and order, so the same state-dict keys) with random weights and
batch-norm statistics. For a tiny configuration it checks that the four branch
outputs of the converted encoder agree with the torch reference within 1e-4;
for the W48 layout it checks that every tensor lands in the Keras weight of the
same name (distinct values, read back). Once, outside the suite, timm 1.0.31
itself (torchvision's compiled ops stubbed out) confirmed that the reference's
W48 keys and shapes are exactly timm's, and that the converted encoder's four
branch outputs equal those of timm's `hrnet_w48` with random weights and
batch-norm statistics (128×128 input: largest difference 1.7e-6 of the largest
feature value; tiny configuration: within 2.2e-6).
"""

from keras import layers

from gdcld_zoo.convert.state_dict import assign_torch_weights, read_checkpoint

# timm's ImageNet classification head on top of the four branches.
CLASSIFICATION_HEAD = ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.")


def timm_name(layer_name):
    """timm module path of an `HRNetEncoder` layer (`stage2_0_fuse_layers_1_0_0` →
    `stage2.0.fuse_layers.1.0.0`)."""
    return layer_name.replace("_", ".").replace("fuse.layers", "fuse_layers")


def encoder_mapping(encoder):
    """`(timm_prefix, keras_layer, kind)` for every weighted layer of an `HRNetEncoder`."""
    mapping = []
    for layer in encoder.layers:
        if isinstance(layer, layers.Conv2D):
            mapping.append((timm_name(layer.name), layer, "conv"))
        elif isinstance(layer, layers.BatchNormalization):
            mapping.append((timm_name(layer.name), layer, "batch_norm"))
    return mapping


def load_timm_hrnet_state(encoder, state, source):
    """Assign a timm HRNet state dict (name -> numpy array) to an `HRNetEncoder`.

    Raises:
        ConversionError: listing every missing, unexpected or mis-shaped tensor.
    """
    assign_torch_weights(encoder_mapping(encoder), state, source, ignore=CLASSIFICATION_HEAD)


def load_encoder_weights(model, path):
    """Load a timm HRNet checkpoint (`.safetensors` or `.bin`/`.pth` file, or a folder
    holding one) into the encoder of an `HRNet` model, leaving the FCN
    head as it is.

    Example (with the file from the Hugging Face repo `timm/hrnet_w48.ms_in1k`):
        model = build_model("hrnet_w48", encoder_weights="hrnet_w48/model.safetensors")
    """
    load_timm_hrnet_state(model.get_layer("encoder"), read_checkpoint(path), f"timm HRNet checkpoint {path}")
