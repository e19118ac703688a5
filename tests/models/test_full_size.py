"""Full-size models pass the shared contract on TensorFlow, JAX and torch, and
the same weights give the same logits on all three.

All twelve run the contract on TensorFlow; JAX and torch run it (and the
logits comparison) on the models of `CONTRACT_MODELS`, what fits CI's time.
The contract's cost per model, CPU seconds measured on the shared 2-core
machine: TensorFlow 9 (unet) to 64 (segformer_b5), 427 for all twelve; torch
about twice TensorFlow (19 unet, 26 segformer_b0, 48 swin_unet); JAX four to
seven times (39 unet, 101 segformer_b0: XLA compiles each op and each weight
initialiser once per shape). All twelve on all three backends is about
40 min of CPU: run it with `GDCLD_ZOO_FULL_SIZE_EVERYWHERE=1 pytest -m slow
tests/models/test_full_size.py`.

One subprocess per backend loops over its models at the smallest input
they all take (32x64 px: stride 32 leaves a 1x2 grid; non-square to catch a
swapped height and width), batch 2. Each runs `check_model_contract` with its
train step and `predict` uncompiled (`run_eagerly`): compiling full-size graphs
costs minutes per model and backend (segformer_b0's train step: 159 s with
TensorFlow's XLA against 11 s eagerly), and the compiled paths are the same
layers at other widths and depths, checked on every backend by the tiny
variants. The TensorFlow process saves each model's weights after its train
step (batch-norm statistics moved off their initial values); the JAX and torch
processes load them into the model their contract built and write the logits
of one shared batch, which must match TensorFlow's within 1e-4 (relative to
the logits' size) -- the full-size counterpart of
`test_same_weights_give_the_same_logits_on_every_backend`.

This test is what lets the slow suite build less elsewhere:
- `test_full_size_models_export_at_256` exports segformer_b0 and every other
  architecture but not segformer_b1-b5: they are the same code as b0 at other
  widths and depths (the same ops reach tf2onnx), none nears ONNX's 2 GB limit
  that the larger upernet_vit_b16 is exported under, and here they build,
  train a step and round-trip on TensorFlow, the backend that exports.
- `test_record_model_builds_full_size` builds only the records whose config
  changes the architecture; the default full-size builds are these.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from gdcld_zoo import list_models
from tests.backends import ROOT, backend_env

FULL_SIZE_MODELS = list_models()
BACKENDS = ("tensorflow", "jax", "torch")  # TensorFlow first: it writes the weights the others load
# One transformer and one CNN on torch; on JAX the cheapest model (unet: 39 s
# against segformer_b0's 101; segformer_tiny's logits are compared by test_backends).
CONTRACT_MODELS = {
    "tensorflow": FULL_SIZE_MODELS,
    "jax": ["unet"],
    "torch": ["segformer_b0", "unet"],
}
if os.environ.get("GDCLD_ZOO_FULL_SIZE_EVERYWHERE"):
    CONTRACT_MODELS = {backend: FULL_SIZE_MODELS for backend in BACKENDS}

CONTRACT_SCRIPT = """
import pathlib, sys, tempfile, time
import keras, numpy as np
from tests.models.model_checks import check_model_contract
folder = pathlib.Path(sys.argv[1])
backend = keras.backend.backend()
images = np.load(folder / "images.npy")
shared = sys.argv[2].split(",")  # the models whose weights TensorFlow saves for the others
for name in sys.argv[3:]:
    wall, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        model = check_model_contract(name, pathlib.Path(scratch), size=images.shape[1:3], run_eagerly=True)
    weights = folder / f"{name}.weights.h5"
    if name in shared:
        if backend == "tensorflow":
            model.save_weights(weights)
        else:
            model.load_weights(weights)
        np.save(folder / f"{name}.{backend}.npy", model.predict_on_batch(images))
    print(name, "passed", f"{time.perf_counter() - wall:.0f}", f"{time.process_time() - cpu:.0f}", flush=True)
    del model
    keras.backend.clear_session()
"""


def test_every_architecture_has_full_size_models():
    assert len(FULL_SIZE_MODELS) == 12 and not any(name.endswith("_tiny") for name in FULL_SIZE_MODELS)


@pytest.mark.slow
def test_full_size_models_pass_the_contract_and_agree_on_every_backend(tmp_path):
    images = np.random.default_rng(3).normal(size=(2, 32, 64, 3)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    compared = sorted(set(CONTRACT_MODELS["jax"]) | set(CONTRACT_MODELS["torch"]))
    # One backend at a time: the models are large, and each process uses every core.
    for backend in BACKENDS:
        run = subprocess.run(
            [sys.executable, "-c", CONTRACT_SCRIPT, str(tmp_path), ",".join(compared), *CONTRACT_MODELS[backend]],
            env=backend_env(backend), cwd=ROOT, capture_output=True, text=True, timeout=3600,
        )
        assert run.returncode == 0, f"{backend} after {run.stdout.split()[-2:]}: {run.stderr[-3000:]}"
    for weights in tmp_path.glob("*.weights.h5"):
        weights.unlink()  # 2.2 GB for the twelve; pytest keeps the last three tmp_path folders
    for name in compared:
        reference = np.load(tmp_path / f"{name}.tensorflow.npy")
        assert np.ptp(reference) > 0.01, f"{name}: constant logits compare nothing"
        tolerance = 1e-4 * max(1.0, float(np.abs(reference).max()))
        for backend in [b for b in BACKENDS[1:] if name in CONTRACT_MODELS[b]]:
            logits = np.load(tmp_path / f"{name}.{backend}.npy")
            np.testing.assert_allclose(logits, reference, atol=tolerance, rtol=0, err_msg=f"{name} on {backend}")
