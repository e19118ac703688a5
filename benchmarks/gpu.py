"""GPU figures in one run (< 8 min on one H200): training, augmentation and scene inference.

Prints one line per figure:

1. training images/s of `segformer_b4` at 1024² with mixed precision, batch
   `--batch`, on our TensorFlow backend (`jit_compile=True`, XLA), on our JAX
   backend (a subprocess with `KERAS_BACKEND=jax`), and for HF transformers'
   `SegformerForSemanticSegmentation` in PyTorch with AMP (the nvidia/mit-b4
   configuration written out, random weights, no download), the same batch on
   the same GPU; data sits on the device for all three, so the step is measured;
2. `SegmentationAugmentation` per 8×1024² batch on the GPU (inside a
   `tf.function`, as in the training step) against `make_dataset` with the same
   augmentation in tf.data on the CPU (as `benchmarks/pipeline.py` measures it);
3. scene inference Mpx/s end to end (`predict_scene`, generated scene) with the
   Keras engine and ONNX Runtime's CUDA execution provider on a float32 export.
   Without onnxruntime-gpu the line says so; the run then uses the CPU
   provider only in `--dry-run` (a CPU b4 would not fit the time budget).

A row whose packages are missing (torch, transformers) or whose backend fails
says so in one line and the rest runs. `--dry-run` runs every row on the CPU
with `unet_tiny` (the quickest to compile and export), 64-pixel tiles and 2 steps (a tiny transformers
configuration for the torch row), in about a minute: the default-suite test
runs it.

Usage:
    python benchmarks/gpu.py                  # on the GPU machine
    python benchmarks/gpu.py --batch 4 --steps 10
    CUDA_VISIBLE_DEVICES= python benchmarks/gpu.py --dry-run
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

MIT_B4 = dict(depths=[3, 8, 27, 3], hidden_sizes=[64, 128, 320, 512], num_attention_heads=[1, 2, 5, 8],
              sr_ratios=[8, 4, 2, 1], decoder_hidden_size=768)
MIT_TINY = dict(depths=[1, 1, 1, 1], hidden_sizes=[8, 16, 32, 64], num_attention_heads=[1, 1, 1, 1],
                sr_ratios=[8, 4, 2, 1], decoder_hidden_size=32)


def settings(args):
    """Model, tile size, steps and scene size for this run (shrunk by --dry-run)."""
    if args.dry_run:
        return dict(model="unet_tiny", tile=64, steps=2, warmup=1, scene=256, hf=MIT_TINY, aug_tile=64,
                    aug_tiles=8)
    return dict(model=args.model, tile=args.tile_size, steps=args.steps, warmup=3, scene=args.scene_size,
                hf=MIT_B4, aug_tile=1024, aug_tiles=32)


def keras_training(model_name, batch, tile, steps, warmup):
    """Images/s of a compiled train step (on the current Keras backend) with mixed precision."""
    import keras

    from gdcld_zoo import build_model
    from gdcld_zoo.training.backends import mixed_precision_policy

    keras.mixed_precision.set_global_policy(mixed_precision_policy())
    keras.utils.set_random_seed(0)
    model = build_model(model_name)
    model.compile(optimizer=keras.optimizers.AdamW(1e-4), loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  jit_compile=True)
    rng = np.random.default_rng(0)
    x = keras.ops.convert_to_tensor(rng.normal(size=(batch, tile, tile, 3)).astype("float32"))
    y = keras.ops.convert_to_tensor((rng.random((batch, tile, tile, 1)) < 0.1).astype("float32"))
    for _ in range(warmup):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(x, y)
    float(np.asarray(loss))  # the last step has finished
    return steps * batch / (time.perf_counter() - start), keras.mixed_precision.global_policy().name


def torch_training(config, batch, tile, steps, warmup):
    """Images/s of HF transformers' SegFormer train step in PyTorch with AMP (random weights)."""
    import torch
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.bfloat16
    torch.manual_seed(0)
    model = SegformerForSemanticSegmentation(SegformerConfig(num_labels=1, **config)).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device, enabled=dtype == torch.float16)
    x = torch.randn(batch, 3, tile, tile, device=device)
    y = (torch.rand(batch, tile, tile, device=device) < 0.1).long()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=dtype):
            loss = model(pixel_values=x, labels=y).loss
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss

    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    loss.item()  # waits for the GPU
    return steps * batch / (time.perf_counter() - start), f"{device}, {dtype}".replace("torch.", "")


def start_jax_training(args, s):
    """Our JAX backend's training figure, in a subprocess (one Keras backend per process) started now."""
    env = dict(os.environ, KERAS_BACKEND="jax", XLA_PYTHON_CLIENT_PREALLOCATE="false")
    command = [sys.executable, __file__, "--child-jax", json.dumps([s["model"], args.batch, s["tile"], s["steps"],
                                                                   s["warmup"]])]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def jax_training_row(process):
    """The JAX figure, or why there is none."""
    out, err = process.communicate()
    if process.returncode:
        last = (err.strip().splitlines() or ["no output"])[-1]
        return f"failed ({last[:200]})"
    rate, policy = json.loads(out.strip().splitlines()[-1])
    return f"{rate:.2f} img/s ({policy})"


def augmentation_rows(s, batch, workdir):
    """Seconds per batch: the augmentation layer on the accelerator vs make_dataset + augmentation on the CPU."""
    import tensorflow as tf

    from gdcld_zoo.data import SegmentationAugmentation, make_dataset, write_synthetic_dataset

    tile = s["aug_tile"]
    layer = SegmentationAugmentation(seed=0)
    device = "/GPU:0" if tf.config.list_logical_devices("GPU") else "/CPU:0"
    with tf.device(device):
        data = {"images": tf.random.normal((batch, tile, tile, 3)),
                "segmentation_masks": tf.cast(tf.random.uniform((batch, tile, tile, 1)) < 0.1, tf.uint8)}
        step = tf.function(lambda d: layer(d, training=True))
        step(dict(data))["images"].numpy()
        start = time.perf_counter()
        for _ in range(s["steps"]):
            out = step(dict(data))
        out["images"].numpy()
        on_device = (time.perf_counter() - start) / s["steps"]
    root = write_synthetic_dataset(workdir / "tiles", n_train=s["aug_tiles"], n_val=0, tile_size=tile, seed=0)
    dataset = make_dataset(root, "train", batch, tile, augment=True, seed=0)
    next(iter(dataset))  # warm: tracing and the page cache
    start, batches = time.perf_counter(), 0
    for _ in dataset:
        batches += 1
    in_tf_data = (time.perf_counter() - start) / batches
    return device, tile, on_device, in_tf_data


def scene_rows(s, batch, workdir, dry_run):
    """Mpx/s of predict_scene with the Keras engine and with ONNX Runtime (CUDA, or the fallback line)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import keras
    import onnxruntime

    from gdcld_zoo import build_model
    from gdcld_zoo.export import export_onnx
    from gdcld_zoo.scene import KerasEngine, OnnxEngine, predict_scene
    from scene import write_scene

    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(0)
    model = build_model(s["model"], input_shape=(None, None, 3))
    scene = write_scene(workdir / "scene.tif", s["scene"])
    tile = s["tile"]
    rows = []
    providers = onnxruntime.get_available_providers()
    engines = [("Keras", KerasEngine(model))]
    if "CUDAExecutionProvider" in providers or dry_run:
        path = export_onnx(model, workdir / "model.onnx", tile_size=tile, check=False)
        cuda = "CUDAExecutionProvider" in providers
        provider = "CUDAExecutionProvider" if cuda else "CPUExecutionProvider"
        engines.append((f"ONNX Runtime {provider}", OnnxEngine(path, providers=[provider])))
        if not cuda:
            rows.append("scene ONNX Runtime CUDA: onnxruntime-gpu is not installed (CUDA provider absent); "
                        "the dry run falls back to the CPU provider")
    else:
        rows.append(f"scene ONNX Runtime CUDA: onnxruntime-gpu is not installed (providers {providers}); skipped")
    for name, engine in engines:
        engine.predict(np.zeros((batch, tile, tile, 3), "uint8"))  # warm up and trace
        start = time.perf_counter()
        predict_scene(engine, scene, workdir / name.replace(" ", "_"), tile_size=tile, overlap=tile // 8,
                      batch_size=batch, progress=False)
        rate = s["scene"] ** 2 / (time.perf_counter() - start) / 1e6
        rows.append(f"scene {name}: {rate:.3f} Mpx/s ({s['scene']}² px, {tile}-px tiles)")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="segformer_b4")
    parser.add_argument("--tile-size", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=8, help="training and augmentation batch (default 8)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per training figure (default 10)")
    parser.add_argument("--scene-size", type=int, default=4096, help="side of the generated scene (default 4096)")
    parser.add_argument("--dry-run", action="store_true", help="every row on CPU with a tiny model, 64 px, 2 steps")
    parser.add_argument("--child-jax", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_jax:
        print(json.dumps(keras_training(*json.loads(args.child_jax))))
        return
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    s = settings(args)
    workdir = Path(tempfile.mkdtemp(prefix="gdcld-gpu-bench-"))
    start = time.perf_counter()
    print(f"{s['model']} at {s['tile']}², batch {args.batch}, {s['steps']} timed steps"
          f"{' (dry run, CPU)' if args.dry_run else ''}")
    # In a dry run the JAX process compiles beside this one; on the GPU it runs first, alone, and exits
    # before TensorFlow (memory growth on, so torch finds room after it) takes the device.
    jax_process = start_jax_training(args, s)
    jax_row = None if args.dry_run else jax_training_row(jax_process)
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)
    rate, policy = keras_training(s["model"], args.batch, s["tile"], s["steps"], s["warmup"])
    print(f"train ours TensorFlow XLA: {rate:.2f} img/s ({policy})")
    print(f"train ours JAX: {jax_row or jax_training_row(jax_process)}")
    try:
        rate, how = torch_training(s["hf"], args.batch, s["tile"], s["steps"], s["warmup"])
        print(f"train HF transformers PyTorch AMP: {rate:.2f} img/s ({how})")
    except ImportError as error:
        print(f"train HF transformers PyTorch AMP: {error.name} is not installed; skipped")
    device, tile, on_device, in_tf_data = augmentation_rows(s, args.batch, workdir)
    print(f"augmentation {args.batch}x{tile}² on {device}: {1e3 * on_device:.1f} ms/batch")
    print(f"augmentation in tf.data (CPU, reads included): {1e3 * in_tf_data:.1f} ms/batch")
    for row in scene_rows(s, args.batch, workdir, args.dry_run):
        print(row)
    print(f"whole run: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
