"""The same weights give the same logits on TensorFlow, JAX and torch, for every architecture.

Weights are saved once (tiny configs, batch-norm statistics calibrated so that
they matter); one subprocess per backend loads them into a freshly built model
and writes its logits.
"""

import subprocess
import sys

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
    logits[name] = keras.ops.convert_to_numpy(model(images, training=False))
np.savez(folder / f"{keras.backend.backend()}.npz", **logits)
"""


def test_tiny_models_cover_every_architecture():
    assert len(TINY_MODELS) == 7


def test_same_weights_give_the_same_logits_on_every_backend(tmp_path):
    for name in TINY_MODELS:
        calibrated_model(name, 64).save_weights(tmp_path / f"{name}.weights.h5")
    np.save(tmp_path / "images.npy", np.random.default_rng(3).normal(size=(2, 64, 96, 3)).astype("float32"))
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", LOGITS_SCRIPT, str(tmp_path), *TINY_MODELS],
            env=backend_env(backend), cwd=ROOT, stderr=subprocess.PIPE, text=True,
        )
        for backend in BACKENDS
    ]
    for backend, run in zip(BACKENDS, runs):
        _, stderr = run.communicate(timeout=900)
        assert run.returncode == 0, f"{backend}: {stderr[-3000:]}"
    reference = np.load(tmp_path / "tensorflow.npz")
    for backend in BACKENDS[1:]:
        logits = np.load(tmp_path / f"{backend}.npz")
        for name in TINY_MODELS:
            assert np.ptp(reference[name]) > 0.1, f"{name}: constant logits compare nothing"
            np.testing.assert_allclose(logits[name], reference[name], atol=1e-4, rtol=0, err_msg=f"{name} on {backend}")


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
