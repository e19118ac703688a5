"""Full-size models pass the shared contract on TensorFlow, JAX and torch, and
the same weights give the same logits on all three.

All twelve models run `check_model_contract` on every backend, in subprocesses
run in two lanes side by side (`LANES`: TensorFlow then JAX, torch then JAX).
Each loops over its models at the smallest input they all
take (32x64 px: stride 32 leaves a 1x2 grid; non-square to catch a swapped
height and width), batch 2, with the train step and `predict` uncompiled
(`run_eagerly`): compiling full-size graphs costs minutes per model and backend
(segformer_b0's train step: 159 s with TensorFlow's XLA against 11 s eagerly),
and the compiled paths are the same layers at other widths and depths, checked
on every backend by the tiny variants. TensorFlow saves each model's weights
after its train step (batch-norm statistics moved off their initial values);
JAX and torch wait for them, load them into the model their contract built and
write the logits of one shared batch, which must match TensorFlow's within 1e-4
(relative to the logits' size) -- the full-size counterpart of
`test_same_weights_give_the_same_logits_on_every_backend`.

What it costs on the idle 2-core machine: 724 s wall in a clean clone's
`pytest -m slow -n 0` with these lanes. CPU seconds per model, from a run of
an earlier split: TensorFlow 5 (unet) to 47 (segformer_b5), 257 for the twelve;
torch 6 to 59, 338; JAX 33 to 134 (hrnet_w48), 740 (XLA compiles each op and
each weight initialiser once per shape and process). Memory: 15.3 GB for the
machine at the peak; one JAX process with upernet_vit_b16 alone takes 10.6 GB.

This test is what lets the slow suite build less elsewhere:
- `test_full_size_models_export_at_256` exports segformer_b0 and every other
  architecture but not segformer_b1-b5: they are the same code as b0 at other
  widths and depths (the same ops reach tf2onnx), none nears ONNX's 2 GB limit
  that the larger upernet_vit_b16 is exported under, and here they build,
  train a step and round-trip on TensorFlow, the backend that exports.
- `test_record_model_builds_full_size` builds only the records whose config
  changes the architecture; the default full-size builds are these.
"""

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from gdcld_zoo import list_models
from tests.backends import ROOT, backend_env

FULL_SIZE_MODELS = list_models()
BACKENDS = ("tensorflow", "jax", "torch")
WRITER = BACKENDS[0]  # saves each model's weights after its train step; the others load them
SEGFORMERS = [name for name in FULL_SIZE_MODELS if name.startswith("segformer")]
# Two lanes, one per core, each running its jobs (a backend and its models, one
# subprocess) one after another, balanced by the CPU seconds in the docstring.
# JAX runs one job per family: models sharing layer shapes share a process
# (JAX compiles each eager op once per shape and process: segformer_b2-b5 cost
# half of b0 after b1), and a process's memory stays that of its largest model
# (upernet_vit_b16 alone: 10.6 GB), so the largest JAX job runs beside the
# smallest ones.
LANES = (
    (
        ("tensorflow", FULL_SIZE_MODELS),
        ("jax", ["upernet_vit_b16"]),
        ("jax", ["hrnet_w48"]),
        ("jax", ["deeplabv3_r50", "resunet_r50"]),
    ),
    (
        ("torch", FULL_SIZE_MODELS),
        ("jax", ["unet"]),
        ("jax", ["swin_unet"]),
        ("jax", SEGFORMERS),
    ),
)


CONTRACT_SCRIPT = """
import os, pathlib, sys, tempfile, time
import keras, numpy as np
from tests.models.model_checks import check_model_contract
folder = pathlib.Path(sys.argv[1])
writer = sys.argv[2]
backend = keras.backend.backend()
images = np.load(folder / "images.npy")
for name in sys.argv[3:]:
    wall, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        model = check_model_contract(name, pathlib.Path(scratch), size=images.shape[1:3], run_eagerly=True)
    weights = folder / f"{name}.weights.h5"
    if backend == writer:
        partial = folder / f"{name}.partial.weights.h5"
        model.save_weights(partial)
        os.replace(partial, weights)  # a reader never sees half a file
    else:
        while not weights.exists():
            if (folder / f"{writer}.ended").exists() and not weights.exists():
                sys.exit(f"{writer} ended without writing {weights.name}")
            time.sleep(1)
        model.load_weights(weights)
    np.save(folder / f"{name}.{backend}.npy", model.predict_on_batch(images))
    print(name, "passed", f"{time.perf_counter() - wall:.0f} s", f"{time.process_time() - cpu:.0f} CPU s", flush=True)
    del model
    keras.backend.clear_session()
"""


def _run_lane(folder, lane):
    """Run a lane's jobs in turn; the reason the first failing one failed, or None."""
    for backend, models in lane:
        log = folder / f"{backend}.{models[0]}.log"
        try:
            with log.open("w") as output:
                run = subprocess.run(
                    [sys.executable, "-c", CONTRACT_SCRIPT, str(folder), WRITER, *models],
                    env=backend_env(backend), cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, timeout=3600,
                )
        finally:
            if backend == WRITER:
                (folder / f"{WRITER}.ended").touch()  # a reader stops waiting for weights that never come
        if run.returncode:
            passed = [line.split()[0] for line in log.read_text().splitlines() if " passed " in line]
            return f"{backend} failed after {passed}: {log.read_text()[-3000:]}"
    return None


def test_every_architecture_has_full_size_models():
    assert len(FULL_SIZE_MODELS) == 12 and not any(name.endswith("_tiny") for name in FULL_SIZE_MODELS)


def test_the_lanes_run_every_full_size_model_once_on_every_backend():
    for backend in BACKENDS:
        models = [name for lane in LANES for job, names in lane if job == backend for name in names]
        assert sorted(models) == sorted(FULL_SIZE_MODELS), backend


@pytest.mark.slow
def test_full_size_models_pass_the_contract_and_agree_on_every_backend(tmp_path):
    images = np.random.default_rng(3).normal(size=(2, 32, 64, 3)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    try:
        with ThreadPoolExecutor(len(LANES)) as lanes:
            failures = [failure for failure in lanes.map(lambda lane: _run_lane(tmp_path, lane), LANES) if failure]
    finally:
        for weights in tmp_path.glob("*.weights.h5"):
            weights.unlink()  # 2.2 GB for the twelve; pytest keeps the last three tmp_path folders
    assert not failures, "\n\n".join(failures)
    for name in FULL_SIZE_MODELS:
        reference = np.load(tmp_path / f"{name}.{WRITER}.npy")
        assert np.ptp(reference) > 0.01, f"{name}: constant logits compare nothing"
        tolerance = 1e-4 * max(1.0, float(np.abs(reference).max()))
        for backend in BACKENDS[1:]:
            logits = np.load(tmp_path / f"{name}.{backend}.npy")
            np.testing.assert_allclose(logits, reference, atol=tolerance, rtol=0, err_msg=f"{name} on {backend}")
