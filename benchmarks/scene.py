"""Whole-scene inference speed and memory: `predict_scene` on generated scenes.

For each scene size (default 12,000² and 6,000² pixels at 0.5 m), writes a
synthetic GDCLD-like GeoTIFF (tiled, deflate; generated block by block so it
never sits in memory) and, in a fresh process per size, runs `predict_scene`
with `segformer_b0` at 512-pixel tiles, then times the pure model forward pass
(`engine.predict` on in-memory tiles) for the same number of batches.

`--engines keras onnx int8` (default all three) compares, on the same scene,
the Keras engine, ONNX Runtime on a float32 export and on an int8 export
(`export_onnx(quantize="int8")`, calibrated on generated tiles), each exported
once per run into the workdir at the benchmark's tile size.

The model has random weights (speed does not depend on them), so its map is
noise: anything from nothing to the whole scene. So that writing and
vectorising see a realistic map, every engine is wrapped the same way: it runs
the full model on every tile and then returns a brightness-based probability
(the synthetic scars are bright bare soil), which yields GDCLD-like polygons.
Wrapping all three alike keeps the comparison fair: each pays its own forward
pass and the same output work. Since random weights give int8 nothing to agree
on, its export is not refused here (`check=False`); its agreement is printed.
Prints per size and engine:

- pixels/s and km²/s (at the scene's 0.5 m) end to end, outputs included;
- forward / end-to-end: the share of the run spent in the model alone
  (target >= 0.85: reading, blending, writing and vectorising hidden behind
  compute), in wall time and in process CPU time (all threads; the steadier
  figure on a shared machine);
- peak RSS of the process (target <= 2.5 GB, flat when the scene grows).

Run from the repository root (CPU: GPUs hidden):

    CUDA_VISIBLE_DEVICES= python benchmarks/scene.py                  # 12000 and 6000
    CUDA_VISIBLE_DEVICES= python benchmarks/scene.py --sizes 3000 1500 # quicker
    CUDA_VISIBLE_DEVICES= python benchmarks/scene.py --sizes 1024 --model segformer_tiny --engines keras int8
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def write_scene(path, size, resolution_m=0.5, block=1024, seed=0):
    """A size × size synthetic scene written in blocks (memory: one block)."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    from gdcld_zoo.data.synthetic import DEFAULT_CRS, synthetic_scene

    blocks = [synthetic_scene(block, block, seed=seed + i)[0] for i in range(4)]
    profile = {
        "driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8",
        "crs": DEFAULT_CRS, "transform": Affine(resolution_m, 0, 500000.0, 0, -resolution_m, 3300000.0),
        "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate", "photometric": "rgb",
        "BIGTIFF": "IF_SAFER",
    }
    tmp = path.with_name(path.name + ".part")
    with rasterio.open(tmp, "w", **profile) as dst:
        for i, row in enumerate(range(0, size, block)):
            for j, col in enumerate(range(0, size, block)):
                h, w = min(block, size - row), min(block, size - col)
                dst.write(blocks[(i + 2 * j) % 4][:, :h, :w], window=Window(col, row, w, h))
    tmp.replace(path)
    return path


ENGINES = ("keras", "onnx", "int8")


def random_model(model_name):
    """The benchmark's model: random weights, equal in every process (seeded)."""
    import keras

    from gdcld_zoo import build_model

    keras.utils.set_random_seed(0)
    return build_model(model_name, input_shape=(None, None, 3))


def export_models(workdir, model_name, tile_size, engines):
    """The ONNX files the engines need, exported once per run: {engine: path}."""
    from gdcld_zoo.export import export_onnx, read_onnx_metadata
    from gdcld_zoo.quantization import format_agreement

    files = {}
    for engine in set(engines) & {"onnx", "int8"}:
        path = workdir / f"{model_name}_{tile_size}_{engine}.onnx"
        quantize = "int8" if engine == "int8" else None
        export_onnx(random_model(model_name), path, tile_size=tile_size, quantize=quantize, check=False)
        if quantize:
            metadata = read_onnx_metadata(path)
            print(f"int8 on {metadata['calibration']}: {format_agreement(metadata['int8_agreement'])}")
        files[engine] = path
    return files


def realistic_engine(engine_name, model_name, onnx_file=None):
    """The engine's full forward pass on every tile, returning a scar-like brightness map."""
    from gdcld_zoo.scene import Engine, KerasEngine, OnnxEngine

    class RealisticOutput(Engine):
        def __init__(self, engine):
            self.engine = engine
            for name in ("preprocessing", "threshold", "tag", "tile_size", "input_size"):
                setattr(self, name, getattr(engine, name))

        def predict(self, raw):
            self.engine.predict(raw)  # the cost being measured
            n, h, w, _ = raw.shape  # brightness of 8x8 blocks: scars, not speckle
            blocks = raw.astype("float32").mean(axis=-1).reshape(n, h // 8, 8, w // 8, 8).mean(axis=(2, 4))
            brightness = np.repeat(np.repeat(blocks, 8, axis=1), 8, axis=2) / 255.0
            return 1.0 / (1.0 + np.exp(-40.0 * (brightness - 0.56)))

    inner = KerasEngine(random_model(model_name)) if engine_name == "keras" else OnnxEngine(onnx_file)
    return RealisticOutput(inner)


def measure(scene, out_dir, engine_name, onnx_file, model_name, tile_size, overlap, batch_size):
    """Run in a fresh process: end-to-end predict_scene, then pure forward timing."""
    from gdcld_zoo.scene import predict_scene

    engine = realistic_engine(engine_name, model_name, onnx_file)
    warm = np.zeros((batch_size, tile_size, tile_size, 3), "uint8")
    engine.predict(warm)  # trace once, outside both timings
    start, cpu = time.perf_counter(), time.process_time()
    result = predict_scene(engine, scene, out_dir, tile_size=tile_size, overlap=overlap, batch_size=batch_size,
                           progress=False)
    end_to_end, end_to_end_cpu = time.perf_counter() - start, time.process_time() - cpu
    summary = result.summary
    batches = -(-summary["n_tiles_predicted"] // batch_size)
    rng = np.random.default_rng(0)
    tiles = rng.integers(0, 255, (batch_size, tile_size, tile_size, 3), dtype="uint8")
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        engine.predict(tiles)
    forward, forward_cpu = time.perf_counter() - start, time.process_time() - cpu
    pixels = summary["width"] * summary["height"]
    return {
        "engine": engine_name,
        "size": summary["width"],
        "tiles": summary["n_tiles"],
        "end_to_end_s": round(end_to_end, 1),
        "forward_s": round(forward, 1),
        "forward_over_end_to_end": round(forward / end_to_end, 3),
        "cpu_forward_over_end_to_end": round(forward_cpu / end_to_end_cpu, 3),
        "pixels_per_s": round(pixels / end_to_end),
        "km2_per_s": round(summary["valid_area_km2"] / end_to_end, 4),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "n_landslides": summary["n_landslides"],
        "landslide_share": round(summary["landslide_pixels"] / summary["valid_pixels"], 4),
        "timings_s": summary["timings_s"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[12000, 6000])
    parser.add_argument("--model", default="segformer_b0")
    parser.add_argument("--tile-size", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES),
                        help="keras, onnx (float32 export) and int8 (int8 export); default all three")
    parser.add_argument("--workdir", default=None, help="where scenes and outputs go (default: a temporary folder)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        scene, out, engine, onnx_file = args.child.split(",")
        r = measure(Path(scene), Path(out), engine, onnx_file or None, args.model, args.tile_size, args.overlap,
                    args.batch_size)
        print(json.dumps(r))
        return
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gdcld-scene-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"{args.model}, {args.tile_size}-px tiles, overlap {args.overlap}, batch {args.batch_size}, "
          f"{os.cpu_count()} CPUs; engines {' '.join(args.engines)}; scenes in {workdir}")
    files = export_models(workdir, args.model, args.tile_size, args.engines)
    for size in args.sizes:
        scene = workdir / f"scene_{size}.tif"
        if not scene.exists():
            write_scene(scene, size)
        for engine in args.engines:
            child = f"{scene},{workdir / f'out_{size}_{engine}'},{engine},{files.get(engine, '')}"
            command = [sys.executable, __file__, "--child", child, "--model", args.model,
                       "--tile-size", str(args.tile_size), "--overlap", str(args.overlap),
                       "--batch-size", str(args.batch_size)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            r = json.loads(output.strip().splitlines()[-1])
            print(f"{r['engine']:>5} {r['size']:>6}² px, {r['tiles']} tiles: {r['end_to_end_s']} s end to end, "
                  f"{r['pixels_per_s'] / 1e6:.2f} Mpx/s, {r['km2_per_s']:.4f} km²/s at 0.5 m, "
                  f"forward/end-to-end {r['forward_over_end_to_end']:.3f} (forward {r['forward_s']} s; "
                  f"in CPU time {r['cpu_forward_over_end_to_end']:.3f}), "
                  f"peak RSS {r['peak_rss_gb']:.2f} GB; {r['n_landslides']} polygons, "
                  f"{100 * r['landslide_share']:.1f} % landslide; stages {r['timings_s']}")


if __name__ == "__main__":
    main()
