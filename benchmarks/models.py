"""Size, compute and CPU latency of every registered model.

For each model in `gdcld_zoo.list_models()` (or `--models`), prints:

- **params**: trainable parameters at `num_classes=1`;
- **GFLOPs**: multiply-accumulates (MACs) of convolutions, dense layers and
  matrix products, in billions, for one tile at 1024×1024 and at 512×512. This
  is the convention of fvcore and mmseg/mmcv `get_flops`, whose "FLOPs" are MACs,
  so the 512 column compares directly with published figures (SegFormer-B4 95.7,
  HRNet-W48 FCN 93.5, DeepLabV3 R50 OS8 163 at 512×512). Counted on the traced
  TensorFlow graph at batch 1, op by op, from static shapes: `Conv2D`,
  `DepthwiseConv2dNative`, `Conv2DBackpropInput` (transposed convolution),
  `MatMul`, `BatchMatMul*` and two-operand `Einsum`. Dilated convolutions are
  counted at their real output size (TensorFlow runs them on a padded
  space-to-batch view, which TensorFlow's own profiler counts, overstating
  DeepLabV3 by ~10 %). Element-wise work (batch norm, activations, resizing,
  softmax) is not counted, as in fvcore. Needs the TensorFlow backend;
- **CPU ms**: median latency of `predict_on_batch` on one 512×512 tile after
  warm-up, over `--repeats` runs, on this machine's CPU (GPUs hidden).

Run from the repository root:

    CUDA_VISIBLE_DEVICES= python benchmarks/models.py --models unet resunet_r50 --repeats 10
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from gdcld_zoo import build_model, list_models  # noqa: E402

# Published GFLOPs (MACs) at 512×512, as listed in issue 3.
REFERENCE_GFLOPS_512 = {"segformer_b4": 95.7, "hrnet_w48": 93.5, "deeplabv3_r50": 163.0}

def _static_size(shape):
    return int(np.prod([int(d) for d in shape]))


def _op_macs(op):
    """MACs of one TensorFlow graph op (0 for ops that do no multiply-accumulate work)."""
    if op.type in ("Conv2D", "DepthwiseConv2dNative"):
        output = op.outputs[0]
        # Dilated convolutions run on a space-to-batch view of their input; the
        # real output positions are those after BatchToSpaceND, not the padded view.
        if op.inputs[0].op.type == "SpaceToBatchND":
            after = [c for c in output.consumers() if c.type == "BatchToSpaceND"]
            if after:
                output = after[0].outputs[0]
        # Kernel (kh, kw, in, out) or depthwise (kh, kw, in, multiplier): MACs per output position.
        return _static_size(output.shape[:-1]) * _static_size(op.inputs[1].shape)
    if op.type == "Conv2DBackpropInput":  # transposed convolution: every input position × kernel
        return _static_size(op.inputs[2].shape) * _static_size(op.inputs[1].shape) // int(op.inputs[1].shape[3])
    if op.type == "MatMul":
        a = op.inputs[0].shape
        k = a[0] if op.get_attr("transpose_a") else a[1]
        return _static_size(op.outputs[0].shape) * int(k)
    if op.type.startswith("BatchMatMul"):
        a = op.inputs[0].shape
        k = a[-2] if op.get_attr("adj_x") else a[-1]
        return _static_size(op.outputs[0].shape) * int(k)
    if op.type == "Einsum":  # a contraction costs the product of all its index sizes
        inputs, _ = op.get_attr("equation").decode().replace(" ", "").split("->")
        sizes = {}
        for spec, tensor in zip(inputs.split(","), op.inputs):
            if "." in spec:
                raise ValueError(f"Einsum with ellipsis {spec!r} is not counted.")
            sizes.update({letter: int(d) for letter, d in zip(spec, tensor.shape)})
        return int(np.prod(list(sizes.values()))) if len(op.inputs) == 2 else 0
    return 0


def trainable_params(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def count_gmacs(name, size, channels=3):
    """Billions of MACs of one `size`×`size` tile, from the traced TensorFlow graph."""
    import tensorflow as tf

    model = build_model(name, input_shape=(size, size, channels))
    function = tf.function(lambda x: model(x, training=False))
    graph = function.get_concrete_function(tf.TensorSpec((1, size, size, channels), tf.float32)).graph
    macs = sum(_op_macs(op) for op in graph.get_operations())
    del model
    keras.backend.clear_session()
    return macs / 1e9


def cpu_latency_ms(name, size, repeats, warmup=2, channels=3):
    """Median milliseconds of one `predict_on_batch` on a `size`×`size` tile."""
    model = build_model(name, input_shape=(size, size, channels))
    images = np.random.default_rng(0).normal(size=(1, size, size, channels)).astype("float32")
    for _ in range(warmup):
        model.predict_on_batch(images)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_on_batch(images)
        times.append((time.perf_counter() - start) * 1000)
    del model
    keras.backend.clear_session()
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=None, help="model names (default: all registered)")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per model (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before timing")
    parser.add_argument("--no-latency", action="store_true", help="skip the CPU latency column")
    args = parser.parse_args(argv)

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    tf.config.set_visible_devices([], "GPU")
    counting = keras.backend.backend() == "tensorflow"

    names = args.models or list_models()
    header = (
        f"{'model':<18} {'params':>12} {'GFLOPs@1024':>12} {'GFLOPs@512':>11} "
        f"{'ref@512':>8} {'CPU ms@512':>11}"
    )
    print(f"# MACs counted as GFLOPs (fvcore/mmseg convention); CPU: {os.cpu_count()} cores, "
          f"TensorFlow {tf.__version__}, Keras {keras.__version__}, backend {keras.backend.backend()}")
    print(header)
    print("-" * len(header))
    for name in names:
        params = trainable_params(build_model(name))
        keras.backend.clear_session()
        if counting:
            flops = f"{count_gmacs(name, 1024):>12.1f} {count_gmacs(name, 512):>11.1f}"
        else:
            flops = f"{'-':>12} {'-':>11}"
        reference = REFERENCE_GFLOPS_512.get(name)
        reference = f"{reference:>8.1f}" if reference else f"{'-':>8}"
        latency = "-" if args.no_latency else f"{cpu_latency_ms(name, 512, args.repeats, args.warmup):.0f}"
        print(f"{name:<18} {params:>12,} {flops} {reference} {latency:>11}", flush=True)


if __name__ == "__main__":
    main()
