"""Keras vs ONNX Runtime latency of exported models on this machine.

(Not named `onnx.py`: run as a script, that would shadow the `onnx` package.)

For each model: build it (random weights), export it with
`gdcld_zoo.export_onnx` at a fixed tile size (checked against Keras), and time
one tile (batch 1) through the same raw pixels -> probabilities function
compiled by TensorFlow (`tf.function`, the Keras model called with
`training=False`) and through an ONNX Runtime CPU session. Prints median
and range of `--repeats` runs after warm-up, and the ONNX Runtime / Keras ratio (the
issue's target: at most 0.8).
ONNX Runtime sessions use the scene engine's settings
(`gdcld_zoo.scene.onnx_engine.session_options`). `--int8` adds the int8 file
(`gdcld_zoo.quantization`, calibrated on generated tiles; quantised from the
float32 file, as `export_onnx(quantize="int8")` does) with its latency and its
pixel agreement and max |Δprob| against Keras on those tiles (random weights:
probabilities near 0.5, where any error flips a decision, so the agreement is
a pessimistic figure). `--models all` times every registered model. `--profile` adds, per model, ONNX
Runtime's own per-node profile summed by op type (the largest shares of kernel
time, with node counts) after the optimisations it applies when loading the
file: where the time goes, and whether layer norms, GELUs and convolutions
arrive fused (docs/onnx_profile.md).

    python benchmarks/onnx_latency.py [--models segformer_b0 segformer_b4 unet deeplabv3_r50 | all] [--size 512]
        [--int8] [--profile]
"""

import argparse
import collections
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from timing import wall_times  # noqa: E402


def op_type_shares(path, pixels, runs=3, top=8):
    """[(op type, share of kernel time, nodes)] from ONNX Runtime's profiler, largest first."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(os.path.dirname(path), "profile")
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    for _ in range(runs):
        session.run(["probabilities"], {"pixels": pixels})
    with open(session.end_profiling()) as file:
        events = [e for e in json.load(file) if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    time, nodes = collections.Counter(), collections.Counter()
    for event in events:
        time[event["args"]["op_name"]] += event["dur"]
        nodes[event["args"]["op_name"]] += 1
    total = sum(time.values())
    return [(op, t / total, nodes[op] // runs) for op, t in time.most_common(top)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["segformer_b0", "segformer_b4", "unet", "deeplabv3_r50"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print ONNX Runtime's time by op type per model")
    parser.add_argument("--int8", action="store_true", help="add the int8 file's latency and agreement")
    args = parser.parse_args()

    import keras
    import onnxruntime
    import tensorflow as tf

    from gdcld_zoo import build_model, list_models
    from gdcld_zoo.export import INPUT_NAME, OUTPUT_NAME, export_onnx, probability_function
    from gdcld_zoo.preprocessing import Preprocessing
    from gdcld_zoo.quantization import calibration_tiles, measure_agreement, quantize_int8
    from gdcld_zoo.scene.onnx_engine import session_options

    print(f"onnxruntime {onnxruntime.__version__}, CPU threads {os.cpu_count()}; "
          f"1x{args.size}x{args.size}x3 raw pixels -> probabilities; median (min-max) of {args.repeats} runs")
    int8_header = f"{'int8 ms':>20}{'int8/Keras':>11}{'agreement':>11}{'max|Δp|':>9}" if args.int8 else ""
    print(f"{'model':<16}{'Keras ms':>20}{'ONNX Runtime ms':>22}{'ORT/Keras':>11}{'export s':>10}{int8_header}")
    pixels = np.random.default_rng(0).uniform(0, 255, (1, args.size, args.size, 3)).astype("float32")
    for name in list_models() if args.models == ["all"] else args.models:
        model = build_model(name, input_shape=(args.size, args.size, 3))
        probabilities = tf.function(probability_function(model, Preprocessing()))
        int8_session = agreement = None
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            path = export_onnx(model, os.path.join(folder, f"{name}.onnx"), tile_size=args.size)
            export_seconds = time.perf_counter() - start
            session = onnxruntime.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
            shares = op_type_shares(str(path), pixels) if args.profile else []
            if args.int8:
                int8_path = os.path.join(folder, f"{name}_int8.onnx")
                tiles = calibration_tiles(None, Preprocessing(), args.size, count=4)
                quantize_int8(path, int8_path, tiles, INPUT_NAME)
                agreement = measure_agreement(int8_path, probabilities, tiles, 0.5, INPUT_NAME, OUTPUT_NAME)
                int8_session = onnxruntime.InferenceSession(int8_path, session_options(),
                                                            providers=["CPUExecutionProvider"])
        keras_times = wall_times(lambda: probabilities(pixels).numpy(), args.repeats)
        onnx_times = wall_times(lambda: session.run([OUTPUT_NAME], {INPUT_NAME: pixels}), args.repeats)
        k, o = statistics.median(keras_times) * 1e3, statistics.median(onnx_times) * 1e3
        int8_columns = ""
        if int8_session is not None:
            int8_times = wall_times(lambda: int8_session.run([OUTPUT_NAME], {INPUT_NAME: pixels}), args.repeats)
            i = statistics.median(int8_times) * 1e3
            int8_columns = (f"{i:>9.0f} ({min(int8_times) * 1e3:.0f}-{max(int8_times) * 1e3:.0f})"
                            f"{i / k:>11.2f}{100 * agreement['pixel_agreement']:>10.2f}%"
                            f"{agreement['max_abs_probability_difference']:>9.3f}")
        print(f"{name:<16}{k:>9.0f} ({min(keras_times) * 1e3:.0f}-{max(keras_times) * 1e3:.0f})"
              f"{o:>11.0f} ({min(onnx_times) * 1e3:.0f}-{max(onnx_times) * 1e3:.0f})"
              f"{o / k:>11.2f}{export_seconds:>10.0f}{int8_columns}")
        if shares:
            print("    " + ", ".join(f"{op} {share:.0%} ({nodes})" for op, share, nodes in shares))
        keras.backend.clear_session()


if __name__ == "__main__":
    main()
