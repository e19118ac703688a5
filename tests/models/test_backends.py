"""The same weights give the same logits on TensorFlow, JAX and torch, for every architecture.

Weights are saved once (tiny configs, batch-norm statistics calibrated so that
they matter); one subprocess per backend loads them into a freshly built model
and writes its logits from `predict_on_batch`, the compiled call scene inference
makes (JAX's eager op-by-op calls would take minutes; the contract compares eager
with compiled calls on each backend).
"""

import subprocess
import sys

import keras
import numpy as np
import pytest

from gdcld_zoo import list_models
from tests.backends import ROOT, backend_env
from tests.test_export import calibrated_model

BACKENDS = ("tensorflow", "jax", "torch")
TINY_MODELS = [name for name in list_models(include_tiny=True) if name.endswith("_tiny")]

LOGITS_SCRIPT = """
import sys, pathlib
import keras, numpy as np
from gdcld_zoo import build_model
folder = pathlib.Path(sys.argv[1])
images = np.load(folder / "images.npy")
logits = {}
for name in sys.argv[2:]:
    model = build_model(name)
    model.load_weights(folder / f"{name}.weights.h5")
    logits[name] = model.predict_on_batch(images)
np.savez(folder / f"{keras.backend.backend()}.npz", **logits)
"""


def test_tiny_models_cover_every_architecture():
    assert len(TINY_MODELS) == 7


def test_same_weights_give_the_same_logits_on_every_backend(tmp_path):
    images = np.random.default_rng(3).normal(size=(2, 64, 96, 3)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    reference = {}
    for name in TINY_MODELS:
        model = calibrated_model(name, 64)
        model.save_weights(tmp_path / f"{name}.weights.h5")
        reference[name] = model.predict_on_batch(images)
    others = [backend for backend in BACKENDS if backend != keras.backend.backend()]
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", LOGITS_SCRIPT, str(tmp_path), *TINY_MODELS],
            env=backend_env(backend), cwd=ROOT, stderr=subprocess.PIPE, text=True,
        )
        for backend in others
    ]
    for backend, run in zip(others, runs):
        _, stderr = run.communicate(timeout=900)
        assert run.returncode == 0, f"{backend}: {stderr[-3000:]}"
    for backend in others:
        logits = np.load(tmp_path / f"{backend}.npz")
        for name in TINY_MODELS:
            assert np.ptp(reference[name]) > 0.01, f"{name}: constant logits compare nothing"
            # 1e-4 on logits of order one; float32 round-off grows with their size
            # (deeplabv3_tiny's reach 36 and differ by 1.1e-4 on torch: 3e-6 relative).
            tolerance = 1e-4 * max(1.0, float(np.abs(reference[name]).max()))
            np.testing.assert_allclose(logits[name], reference[name], atol=tolerance, rtol=0, err_msg=f"{name} on {backend}")


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_import_and_build_do_not_load_tensorflow(backend):
    script = (
        "import sys; import gdcld_zoo; gdcld_zoo.build_model('segformer_tiny'); import keras; "
        "assert keras.backend.backend() == sys.argv[1]; "
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'"
    )
    result = subprocess.run([sys.executable, "-c", script, backend], env=backend_env(backend), cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
