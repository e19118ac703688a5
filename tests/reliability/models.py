"""A tiny trained-run folder (U-Net, 64-pixel tiles) that loads in a second, for in-process CLI tests."""

from gdcld_zoo.registry import build_model
from gdcld_zoo.weights import write_run_record


def tiny_run(folder, **record_fields):
    """A run folder with untrained `unet_tiny` weights and a weight record (tag `unet_tiny.reliability`)."""
    folder.mkdir(parents=True, exist_ok=True)
    model = build_model("unet_tiny", input_shape=(None, None, 3))
    weights = folder / "best.weights.h5"
    model.save_weights(weights)
    write_run_record(folder, weights, "unet_tiny", tag="unet_tiny.reliability", tile_size=64, **record_fields)
    return folder
