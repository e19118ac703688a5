"""Training throughput (images/s) of gdcld_zoo SegFormer on each Keras backend, vs transformers.

For each variant, one training step is what `gdcld-zoo train` runs: forward on
a (B, S, S, 3) batch, binary cross-entropy from logits at full resolution
(`gdcld_zoo.losses.BinaryCrossEntropy`), AdamW update. Keras runs its compiled
`train_on_batch` (XLA where Keras' `jit_compile="auto"` picks it: TensorFlow
and JAX; torch runs eagerly) once per `--backend`, each in its own process
(`KERAS_BACKEND` is fixed at import), and the results are printed side by side.
The reference is transformers' `SegformerForSemanticSegmentation` (same
architecture, `num_labels=1`) in eager PyTorch with logits upsampled
bilinearly to the input size, `BCEWithLogitsLoss` and `torch.optim.AdamW`.
With `--mixed-precision` Keras uses the `mixed_float16` policy (loss scaling)
on a GPU, `mixed_bfloat16` on CPU; torch uses `autocast` with the same dtype
(and a `GradScaler` for float16). Randomly initialised weights; nothing is
downloaded. Prints images/s as median (min-max) over `--repeats` timings of
`--steps` steps each, after `--warmup` steps.

    CUDA_VISIBLE_DEVICES= python benchmarks/train_step.py --backend tensorflow jax torch
    python benchmarks/train_step.py --backend tensorflow jax torch --size 1024 --mixed-precision   # on a GPU
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def _rates(step, batch_size, steps, repeats, warmup, sync=lambda: None):
    for _ in range(warmup):
        step()
    sync()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        rates.append(batch_size * steps / (time.perf_counter() - start))
    return rates


def _fmt(rates):
    return f"{statistics.median(rates):8.2f} ({min(rates):.2f}-{max(rates):.2f})"


def keras_rates(name, images, masks, mixed, args):
    import keras

    from gdcld_zoo import build_model
    from gdcld_zoo.losses import BinaryCrossEntropy
    from gdcld_zoo.training.backends import mixed_precision_policy

    policy = mixed_precision_policy() if mixed else "float32"
    keras.config.set_dtype_policy(policy)
    try:
        model = build_model(name, input_shape=images.shape[1:])
        model.compile(
            optimizer=keras.optimizers.AdamW(6e-4, weight_decay=0.01),
            loss=BinaryCrossEntropy(),
            jit_compile=args.jit if args.jit == "auto" else args.jit == "on",
        )
        x, y = keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(masks)
        # train_on_batch returns the loss as a Python float: every timed step is finished.
        rates = _rates(lambda: model.train_on_batch(x, y), len(images), args.steps, args.repeats, args.warmup)
    finally:
        keras.config.set_dtype_policy("float32")
        keras.backend.clear_session()
    return rates, policy


def torch_rates(variant, images, masks, mixed, args):
    import torch
    import transformers

    from gdcld_zoo.models.segformer import MIT_VARIANTS

    device = "cuda" if torch.cuda.is_available() else "cpu"
    config = MIT_VARIANTS[variant]
    model = transformers.SegformerForSemanticSegmentation(
        transformers.SegformerConfig(
            hidden_sizes=list(config["hidden_sizes"]),
            depths=list(config["depths"]),
            decoder_hidden_size=config["decoder_hidden_size"],
            num_labels=1,
        )
    ).to(device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4, weight_decay=0.01)
    dtype = (torch.float16 if device == "cuda" else torch.bfloat16) if mixed else None
    scaler = torch.amp.GradScaler(device, enabled=dtype == torch.float16)
    pixels = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).to(device)
    target = torch.from_numpy(masks.transpose(0, 3, 1, 2).copy()).to(device)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(pixel_values=pixels).logits
            logits = torch.nn.functional.interpolate(logits, size=pixels.shape[2:], mode="bilinear", align_corners=False)
            loss = loss_fn(logits.float(), target)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    rates = _rates(step, len(images), args.steps, args.repeats, args.warmup, sync)
    del model, optimizer
    if device == "cuda":
        torch.cuda.empty_cache()
    return rates, f"torch {str(dtype).replace('torch.', '') if dtype else 'float32'}"


def _batch(args):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(args.batch_size, args.size, args.size, 3)).astype("float32")
    masks = (rng.random((args.batch_size, args.size, args.size, 1)) < 0.2).astype("float32")
    return images, masks


def worker(args):
    """Time every variant on this process's Keras backend; one JSON line per result."""
    import keras

    from gdcld_zoo.training.backends import gpu_available

    images, masks = _batch(args)
    where = "GPU" if gpu_available() else f"CPU ({os.cpu_count()} cores)"
    for variant in args.variants:
        for mixed in (False, True) if args.mixed_precision else (False,):
            rates, policy = keras_rates(f"segformer_{variant}", images, masks, mixed, args)
            result = {"variant": variant, "mixed": mixed, "engine": keras.backend.backend(), "policy": policy}
            print(json.dumps({**result, "rates": rates, "where": where}), flush=True)
    if args.reference:
        for variant in args.variants:
            for mixed in (False, True) if args.mixed_precision else (False,):
                rates, label = torch_rates(variant, images, masks, mixed, args)
                result = {"variant": variant, "mixed": mixed, "engine": "transformers", "policy": label}
                print(json.dumps({**result, "rates": rates, "where": where}), flush=True)


def _run_backend(backend, args, reference):
    """Results of one backend's worker process (and the transformers reference if asked)."""
    command = [sys.executable, __file__, "--worker", *sys.argv[1:]] + (["--reference"] if reference else [])
    env = {**os.environ, "KERAS_BACKEND": backend}
    results = []
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as process:
        for line in process.stdout:
            if line.startswith("{"):
                results.append(json.loads(line))
                result = results[-1]
                print(f"  {result['engine']} segformer_{result['variant']} {result['policy']}: {_fmt(result['rates'])}",
                      flush=True)
    if process.returncode:
        print(f"{backend}: worker failed (exit {process.returncode})", file=sys.stderr)
        results.append({"engine": backend, "failed": True})
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", nargs="+", default=["tensorflow", "jax", "torch"],
                        choices=("tensorflow", "jax", "torch"), help="Keras backends, one process each")
    parser.add_argument("--variants", nargs="+", default=["b0", "b4"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="steps per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--mixed-precision", action="store_true", help="also time mixed precision")
    parser.add_argument("--jit", choices=("auto", "on", "off"), default="auto", help="Keras jit_compile")
    parser.add_argument("--no-torch", action="store_true", help="skip the transformers reference")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    results = []
    # The transformers reference runs once, in the torch backend's process if there is one
    # (TensorFlow and JAX reserve most of a GPU's memory for themselves).
    reference_backend = None if args.no_torch else ("torch" if "torch" in args.backend else args.backend[-1])
    for backend in args.backend:
        results += _run_backend(backend, args, backend == reference_backend)
    failed = [r["engine"] for r in results if r.get("failed")]
    results = [r for r in results if not r.get("failed")]
    engines = [e for e in (*args.backend, "transformers") if any(r["engine"] == e for r in results)]
    where = results[0]["where"] if results else "?"
    print(f"Training step on {where}: batch {args.batch_size} x {args.size}x{args.size}x3, images/s "
          f"median (min-max) of {args.repeats} x {args.steps} steps after {args.warmup} warm-up steps")
    print(f"{'model':<14}{'precision':<12}" + "".join(f"{e:>24}" for e in engines))
    for variant in args.variants:
        for mixed in (False, True) if args.mixed_precision else (False,):
            cells = []
            for engine in engines:
                found = [r for r in results if (r["engine"], r["variant"], r["mixed"]) == (engine, variant, mixed)]
                cells.append(_fmt(found[0]["rates"]) if found else "failed")
            label = "mixed" if mixed else "float32"
            print(f"{'segformer_' + variant:<14}{label:<12}" + "".join(f"{c:>24}" for c in cells), flush=True)
    policies = sorted({f"{r['engine']}: {r['policy']}" for r in results if r["mixed"]})
    if policies:
        print("mixed precision: " + ", ".join(policies))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
