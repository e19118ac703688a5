"""Training throughput (images/s) of gdcld_zoo SegFormer vs transformers SegFormer.

For each variant, one training step is what `gdcld-zoo train` runs: forward on
a (B, S, S, 3) batch, binary cross-entropy from logits at full resolution
(`gdcld_zoo.losses.BinaryCrossEntropy`), AdamW update. Keras runs its compiled
`train_on_batch` (XLA where Keras' `jit_compile="auto"` picks it); the
reference is transformers' `SegformerForSemanticSegmentation` (same
architecture, `num_labels=1`) in eager PyTorch with logits upsampled
bilinearly to the input size, `BCEWithLogitsLoss` and `torch.optim.AdamW`.
With `--mixed-precision` Keras uses the `mixed_float16` policy (loss scaling)
on a GPU, `mixed_bfloat16` on CPU; torch uses `autocast` with the same dtype
(and a `GradScaler` for float16). Randomly initialised weights; nothing is
downloaded. Prints images/s as median (min-max) over `--repeats` timings of
`--steps` steps each, after `--warmup` steps.

    CUDA_VISIBLE_DEVICES= python benchmarks/train_step.py --variants b0 b4 --batch-size 2
    python benchmarks/train_step.py --mixed-precision   # on a GPU
"""

import argparse
import os
import statistics
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
    import tensorflow as tf

    from gdcld_zoo import build_model
    from gdcld_zoo.losses import BinaryCrossEntropy

    gpu = bool(tf.config.list_logical_devices("GPU"))
    policy = ("mixed_float16" if gpu else "mixed_bfloat16") if mixed else "float32"
    keras.config.set_dtype_policy(policy)
    try:
        model = build_model(name, input_shape=images.shape[1:])
        model.compile(
            optimizer=keras.optimizers.AdamW(6e-4, weight_decay=0.01),
            loss=BinaryCrossEntropy(),
            jit_compile=args.jit if args.jit == "auto" else args.jit == "on",
        )
        x, y = tf.constant(images), tf.constant(masks)
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["b0", "b4"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="steps per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--mixed-precision", action="store_true", help="also time mixed precision")
    parser.add_argument("--jit", choices=("auto", "on", "off"), default="auto", help="Keras jit_compile")
    parser.add_argument("--no-torch", action="store_true", help="skip the transformers reference")
    args = parser.parse_args()

    import tensorflow as tf

    devices = tf.config.list_logical_devices("GPU")
    where = f"GPU {tf.config.experimental.get_device_details(tf.config.list_physical_devices('GPU')[0]).get('device_name', '')}" if devices else f"CPU ({os.cpu_count()} cores)"
    rng = np.random.default_rng(0)
    images = rng.normal(size=(args.batch_size, args.size, args.size, 3)).astype("float32")
    masks = (rng.random((args.batch_size, args.size, args.size, 1)) < 0.2).astype("float32")
    print(f"Training step on {where}: batch {args.batch_size} x {args.size}x{args.size}x3, images/s "
          f"median (min-max) of {args.repeats} x {args.steps} steps after {args.warmup} warm-up steps")
    print(f"{'model':<14}{'engine':<26}{'images/s':>28}")
    for variant in args.variants:
        name = f"segformer_{variant}"
        for mixed in (False, True) if args.mixed_precision else (False,):
            rates, policy = keras_rates(name, images, masks, mixed, args)
            print(f"{name:<14}{'keras ' + policy:<26}{_fmt(rates):>28}", flush=True)
            if not args.no_torch:
                rates, label = torch_rates(variant, images, masks, mixed, args)
                print(f"{name:<14}{'transformers ' + label:<26}{_fmt(rates):>28}", flush=True)


if __name__ == "__main__":
    main()
