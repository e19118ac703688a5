"""ONNX export: ONNX Runtime agrees with Keras, metadata travels, errors are clear."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest

from gdcld_zoo import build_model, list_models
from gdcld_zoo.errors import InvalidInputError, MissingExtraError
from gdcld_zoo.export import ExportError, check_onnx, export_onnx, probability_function, read_onnx_metadata
from gdcld_zoo.preprocessing import Preprocessing
from tests.extras import require

onnxruntime = require("onnxruntime")

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_model():
    return build_model("segformer_tiny")


@pytest.fixture(scope="module")
def tiny_onnx(tiny_model, tmp_path_factory):
    """segformer_tiny exported once with free batch, height and width (and checked)."""
    return export_onnx(tiny_model, tmp_path_factory.mktemp("onnx") / "tiny.onnx")


def _run(path, pixels):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"pixels": pixels})[0]


PIXELS = np.random.default_rng(0).uniform(0, 255, (3, 64, 96, 3)).astype("float32")


def test_dynamic_size_export_matches_keras_on_non_square_tiles(tiny_model, tiny_onnx):
    reference = probability_function(tiny_model, Preprocessing())(PIXELS)
    np.testing.assert_allclose(_run(tiny_onnx, PIXELS), np.asarray(reference), atol=1e-4)
    assert not list(tiny_onnx.parent.glob(".*tmp")), "temporary files left behind"


def test_metadata_describes_the_input(tiny_onnx):
    metadata = read_onnx_metadata(tiny_onnx)
    assert metadata["preprocessing"] == Preprocessing()
    assert metadata["tile_size"] is None and metadata["threshold"] == 0.5 and metadata["num_classes"] == 1
    assert metadata["precision"] == "float32" and metadata["gdcld_zoo_version"]


def test_repeated_exports_compute_identical_outputs(tiny_model, tiny_onnx, tmp_path):
    again = export_onnx(tiny_model, tmp_path / "again.onnx", check=False)
    np.testing.assert_array_equal(_run(again, PIXELS), _run(tiny_onnx, PIXELS))


def test_layer_norms_and_gelus_reach_onnx_runtime_in_forms_it_fuses(tiny_onnx, tmp_path):
    """Decomposed, they were a fifth or more of SegFormer's ONNX Runtime time (docs/onnx_profile.md)."""
    import onnx

    exported = [node.op_type for node in onnx.load(tiny_onnx).graph.node]
    assert "LayerNormalization" in exported and "ReduceMean" not in exported
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    onnxruntime.InferenceSession(str(tiny_onnx), options, providers=["CPUExecutionProvider"])
    optimized = [node.op_type for node in onnx.load(tmp_path / "optimized.onnx").graph.node]
    assert "Gelu" in optimized and "Erf" not in optimized


def test_trained_layer_norms_with_a_shift_become_layer_normalization(tmp_path):
    """Fresh layer norms have beta = 0, which grappler folds away; trained ones keep the `+ beta`."""
    import keras
    import onnx

    model = build_model("swin_unet_tiny")
    rng = np.random.default_rng(0)
    for weight in model.weights:
        if "norm" in weight.path and weight.path.endswith(("gamma", "beta")):
            weight.assign(rng.normal(1.0 if weight.path.endswith("gamma") else 0.0, 0.1, weight.shape))
    assert any(isinstance(layer, keras.layers.LayerNormalization) for layer in model._flatten_layers())
    path = export_onnx(model, tmp_path / "swin.onnx", tile_size=64)  # checked against Keras
    exported = [node.op_type for node in onnx.load(path).graph.node]
    assert "LayerNormalization" in exported and "ReduceMean" not in exported


def test_check_reports_the_difference(tiny_model, tiny_onnx):
    wrong = lambda pixels: probability_function(tiny_model, Preprocessing())(pixels) + 0.01  # noqa: E731
    with pytest.raises(ExportError, match=r"max \|difference\| in probability 0.01"):
        check_onnx(tiny_onnx, wrong, 3, 64, (1,), (255.0,) * 3, 1e-4)


def test_fp16_export_with_fixed_size_and_batch(tiny_model, tmp_path):
    path = export_onnx(tiny_model, tmp_path / "tiny16.onnx", tile_size=64, dynamic_batch=False, fp16=True)
    metadata = read_onnx_metadata(path)
    assert metadata["precision"] == "float16" and metadata["tile_size"] == 64


def test_band_mismatch_is_a_clear_error(tmp_path):
    model = build_model("segformer_tiny", input_shape=(None, None, 4))
    with pytest.raises(InvalidInputError, match="takes 4 bands"):
        export_onnx(model, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_file_without_metadata_is_refused(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(InvalidInputError, match="not a readable ONNX file"):
        read_onnx_metadata(tmp_path / "junk.onnx")


# segformer_tiny is exported by the `tiny_onnx` fixture.
TINY_MODELS = [n for n in list_models(include_tiny=True) if n not in list_models() and n != "segformer_tiny"]


@pytest.mark.parametrize("name", TINY_MODELS)
def test_every_architecture_exports_and_passes_the_check(name, tmp_path):
    export_onnx(build_model(name), tmp_path / f"{name}.onnx", tile_size=64, dynamic_batch=True)


def calibrated_model(name, size=256):
    """`build_model(name)` with its batch-norm statistics set from one batch, as training sets them.

    Freshly initialised, in inference mode (unit statistics), HRNet-W48's logits
    reach 1e11: float32 round-off of 1e-7 relative is then 1e4 absolute, enough
    to flip sigmoid(x) between 0 and 1 wherever x crosses 0, so the ONNX check
    fails on a model no one would export. With statistics from a batch, as any
    trained model has, logits are O(1) and the check measures the export.
    """
    import keras

    keras.utils.set_random_seed(0)
    model = build_model(name)

    def walk(layer):
        yield layer
        for sublayer in getattr(layer, "layers", []):
            yield from walk(sublayer)

    norms = {id(layer): layer for layer in walk(model) if isinstance(layer, keras.layers.BatchNormalization)}
    for layer in norms.values():
        layer.momentum = 0.0  # the moving statistics become this batch's
    model(np.random.default_rng(0).normal(size=(2, size, size, 3)).astype("float32"), training=True)
    for layer in norms.values():
        layer.momentum = 0.9
    return model


def test_calibrated_model_has_batch_statistics():
    model = calibrated_model("segformer_tiny", 64)
    norm = model.get_layer("decoder_batch_norm")
    assert float(np.abs(np.asarray(norm.moving_mean)).max()) > 0 and norm.momentum == 0.9


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in list_models() if not n.startswith("segformer_") or n == "segformer_b0"])
def test_full_size_models_export_at_256(name, tmp_path):
    """Each export in its own process: one process doing all twelve grows past 24 GB.

    One SegFormer (b0): b1-b5 are the same layers with other widths and depths (their
    contract runs full size in tests/models/test_full_size.py), and their exports took 12 minutes.
    """
    script = (
        "from tests.test_export import calibrated_model; from gdcld_zoo.export import export_onnx; "
        f"export_onnx(calibrated_model({name!r}), {str(tmp_path / 'model.onnx')!r}, tile_size=256)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "model.onnx").stat().st_size > 0


def test_onnx_engine_agrees_with_the_keras_engine(tiny_model, tiny_onnx):
    from gdcld_zoo.scene.onnx_engine import OnnxEngine
    from gdcld_zoo.scene.engines import KerasEngine

    raw = np.random.default_rng(2).integers(0, 256, (2, 64, 96, 3)).astype("uint8")
    onnx_engine = OnnxEngine(tiny_onnx)
    assert onnx_engine.threshold == 0.5 and onnx_engine.input_size is None
    np.testing.assert_allclose(onnx_engine.predict(raw), KerasEngine(tiny_model).predict(raw), atol=1e-4)


def test_predict_scene_with_the_onnx_engine_matches_keras(tiny_model, tiny_onnx, tmp_path):
    import rasterio

    from gdcld_zoo.data.synthetic import write_synthetic_scene
    from gdcld_zoo.scene import predict_scene

    scene = tmp_path / "scene.tif"
    write_synthetic_scene(scene, 150, 230, seed=3)
    keras_result = predict_scene(tiny_model, scene, tmp_path / "keras", tile_size=64, overlap=16, progress=False)
    onnx_result = predict_scene(
        tiny_onnx, scene, tmp_path / "onnx", tile_size=64, overlap=16, engine="onnx", progress=False
    )
    assert keras_result and onnx_result
    with rasterio.open(tmp_path / "keras" / "scene_prob.tif") as a, rasterio.open(tmp_path / "onnx" / "scene_prob.tif") as b:
        keras_prob, onnx_prob = a.read(1).astype(int), b.read(1).astype(int)
        assert a.transform == b.transform and a.crs == b.crs
    # Probabilities are stored as round(254 p): 1e-4 agreement allows one step at rounding edges.
    assert np.abs(keras_prob - onnx_prob).max() <= 1


@pytest.mark.parametrize("missing", ["onnx", "tf2onnx"])
def test_a_missing_onnx_extra_is_one_line_naming_it(tiny_model, tmp_path, monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)
    with pytest.raises(MissingExtraError, match=rf'^{missing} is not installed: pip install "gdcld-zoo\[onnx\]"\.$'):
        export_onnx(tiny_model, tmp_path / "tiny.onnx")


def test_a_free_size_export_defaults_to_the_weights_tile_size_as_the_keras_engine(tiny_model, tmp_path):
    import dataclasses

    from gdcld_zoo.scene.onnx_engine import OnnxEngine
    from gdcld_zoo.weights.sources import get_weights

    record = dataclasses.replace(get_weights("demo"), tile_size=96)
    path = export_onnx(tiny_model, tmp_path / "tiny.onnx", record=record, check=False)
    engine = OnnxEngine(path)
    assert (engine.input_size, engine.tile_size) == (None, 96)
    assert read_onnx_metadata(path)["weights_tile_size"] == 96


JAX_TRAIN_SCRIPT = """
import sys
import numpy as np
from gdcld_zoo import load_pretrained, predict_tile
from gdcld_zoo.cli import main
root, run_dir, folder = sys.argv[1:]
flags = ["--data", root, "--out", run_dir, "--epochs", "1", "--batch-size", "2", "--tile-size", "32", "--warmup-steps", "1"]
assert main(["train", "unet_tiny", *flags]) == 0
np.save(f"{folder}/jax.npy", predict_tile(load_pretrained(run_dir), np.load(f"{folder}/raw.npy")))
"""


def test_run_trained_on_jax_exports_on_tensorflow_with_onnx_runtime_parity(tmp_path):
    """The documented path for JAX and torch runs: train there, export the saved weights here."""
    from gdcld_zoo.cli import main
    from gdcld_zoo.data import write_synthetic_dataset
    from gdcld_zoo.scene.onnx_engine import OnnxEngine
    from tests.backends import backend_env

    root = write_synthetic_dataset(tmp_path / "data", n_train=4, n_val=2, tile_size=64, seed=0)
    raw = np.random.default_rng(4).integers(0, 256, (2, 64, 96, 3)).astype("uint8")
    np.save(tmp_path / "raw.npy", raw)
    run_dir = tmp_path / "run"
    result = subprocess.run([sys.executable, "-c", JAX_TRAIN_SCRIPT, str(root), str(run_dir), str(tmp_path)],
                            env=backend_env("jax"), cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert main(["export", str(run_dir), str(tmp_path / "run.onnx")]) == 0  # checked against Keras on TensorFlow
    probabilities = OnnxEngine(tmp_path / "run.onnx").predict(raw)
    np.testing.assert_allclose(probabilities, np.load(tmp_path / "jax.npy")[..., 0], atol=1e-4)
