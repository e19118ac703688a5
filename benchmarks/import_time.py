"""Start-up cost per Keras backend: `import gdcld_zoo` and one `build_model`, each in a fresh process.

For every `--backend`, `--repeats` new Python processes (`KERAS_BACKEND` is
fixed at import) each time `import gdcld_zoo` (which imports Keras and its
backend), then `build_model(--model)` (layers created and built, weights
initialised; no forward pass beyond what building traces), then one call on a
(1, `--size`, `--size`, 3) batch (on JAX the first call compiles every op).
Prints seconds as median (min-max) over the processes.

Where JAX's time goes on CPU (cProfile of `build_model("segformer_b0")`): XLA
compiling each weight initialiser once per distinct weight shape (37 compiles
of `jax.random.uniform`, two thirds of the build), and in the first call each
op once per shape. The tests' `XLA_FLAGS` (tests/backends.py) make those
compiles cheaper; JAX's persistent compilation cache would carry them across
processes.

    CUDA_VISIBLE_DEVICES= python benchmarks/import_time.py
    python benchmarks/import_time.py --backend jax --model segformer_b4 --repeats 1
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

WORKER = """
import json, sys, time
start = time.perf_counter()
import gdcld_zoo
imported = time.perf_counter()
model = gdcld_zoo.build_model(sys.argv[1])
built = time.perf_counter()
import numpy as np
model(np.zeros((1, int(sys.argv[2]), int(sys.argv[2]), 3), "float32"))
called = time.perf_counter()
print(json.dumps({"import": imported - start, "build": built - imported, "first call": called - built}))
"""
STAGES = ("import", "build", "first call")


def _fmt(values):
    return f"{statistics.median(values):6.2f} ({min(values):.2f}-{max(values):.2f})"


def measure(backend, model, size):
    """One fresh process's seconds per stage, or None if it failed."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", WORKER, model, str(size)], env=env, capture_output=True, text=True)
    if result.returncode:
        print(f"{backend}: failed (exit {result.returncode}): {result.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", nargs="+", default=["tensorflow", "jax", "torch"],
                        choices=("tensorflow", "jax", "torch"))
    parser.add_argument("--model", default="segformer_b0")
    parser.add_argument("--size", type=int, default=64, help="side of the first call's input")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per backend")
    args = parser.parse_args()

    print(f"Seconds in a fresh process, median (min-max) of {args.repeats}; model {args.model}, "
          f"first call on 1x{args.size}x{args.size}x3; {os.cpu_count()} CPU cores visible")
    print(f"{'backend':<12}" + "".join(f"{stage:>24}" for stage in STAGES))
    failed = False
    for backend in args.backend:
        runs = [measure(backend, args.model, args.size) for _ in range(args.repeats)]
        runs = [run for run in runs if run is not None]
        failed |= len(runs) < args.repeats
        cells = [_fmt([run[stage] for run in runs]) if runs else "failed" for stage in STAGES]
        print(f"{backend:<12}" + "".join(f"{cell:>24}" for cell in cells), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
