"""Running code under another Keras backend from a test: a subprocess with KERAS_BACKEND set.

JAX compiles every eager op and every traced step with XLA; on CPU, XLA's
optimisation passes dominate the tiny models' test time and buy nothing at
64 pixels (hrnet_tiny's build, train step and calls: 133 s -> 41 s on the
shared 2-core machine), so JAX runs of the tests switch them off.
"""

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
JAX_XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def backend_env(backend):
    """This environment with KERAS_BACKEND set and the checkout first on the path."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if backend == "jax":
        env.setdefault("XLA_FLAGS", JAX_XLA_FLAGS)
    return env
