"""`benchmarks/gpu.py --dry-run`: every figure of the GPU benchmark is produced on the CPU.

Slow (CI's `pytest -m slow -n 0`): the dry run imports TensorFlow, JAX and torch and compiles a
train step on each, over a minute on two cores whatever the model size.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROWS = ["train ours TensorFlow XLA", "train ours JAX", "train HF transformers PyTorch AMP",
        "augmentation 8x64² on /CPU:0", "augmentation in tf.data", "scene Keras", "scene ONNX Runtime"]


@pytest.mark.slow
def test_dry_run_prints_every_figure():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    env.pop("KERAS_BACKEND", None)
    result = subprocess.run([sys.executable, "benchmarks/gpu.py", "--dry-run"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    for row in ROWS:
        line = next((line for line in lines if line.startswith(row)), None)
        assert line is not None, f"{row!r} missing from:\n{result.stdout}"
        # A figure, or (for optional packages) the one line saying why there is none.
        assert re.search(r": \d+\.\d+ (img/s|ms/batch|Mpx/s)|is not installed", line), line
    assert "onnxruntime-gpu is not installed" in result.stdout or "CUDAExecutionProvider" in result.stdout
