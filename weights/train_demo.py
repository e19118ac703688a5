"""Reproduce the bundled `demo` weights: `weights/demo.weights.h5` and its record.

The demo model is a DEMONSTRATION model: a reduced-width SegFormer-B0 trained by
this project with `gdcld-zoo train` on the synthetic landslide generator
(`gdcld_zoo.data.synthetic`). It maps the synthetic scars of that generator; it
is not a landslide detector for real imagery. Real weights come from training
on GDCLD (`gdcld-zoo train segformer_b4 --data GDCLD --out runs/b4`) or from
converting a PaddleSeg / transformers checkpoint (`gdcld_zoo.convert`).

Steps (all seeded, CPU only, about 2 minutes of training on 2 cores):

1. `write_synthetic_dataset(WORK/data, n_train=N_TRAIN, n_val=N_VAL, tile_size=TILE, seed=0)`;
2. `gdcld-zoo train segformer_b0 --config WORK/demo.yaml --out WORK/run` with the
   `TRAIN_CONFIG` below (the model's reduced widths are `model_config`);
3. copy the run's best weights to `weights/demo.weights.h5` and write the `demo`
   record (run record + licence, description, synthetic-val metrics) into
   `weights/registry.json`, replacing any earlier `demo` record.

Usage:
    python weights/train_demo.py [--work /tmp/gdcld_demo] [--dest weights]

A rerun on the machine that made the shipped file reproduced it bit for bit
(same sha256); other CPUs, thread counts or TensorFlow versions may differ
slightly, with the same metrics to about a percent.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent
TAG = "demo"
FILE = "demo.weights.h5"
SEED = 0
TILE = 128
N_TRAIN = 384
N_VAL = 64

# The `gdcld-zoo train` config: SegFormer-B0's layout at reduced widths (a few
# hundred thousand parameters), synthetic data, few epochs.
TRAIN_CONFIG = {
    "model": "segformer_b0",
    "model_config": {
        "hidden_sizes": [16, 32, 64, 128],
        "depths": [1, 1, 1, 1],
        "num_heads": [1, 1, 2, 4],
        "decoder_hidden_size": 64,
        "drop_path_rate": 0.0,
        "dropout_rate": 0.0,
    },
    "encoder_weights": "none",  # reduced widths: no ImageNet encoder fits
    "tile_size": TILE,
    "batch_size": 16,
    "epochs": 6,
    "learning_rate": 2e-3,
    "warmup_steps": 20,
    "loss": "bce_dice",
    "preview_tiles": 0,
    "dataset_name": "synthetic",
    "seed": SEED,
}

DESCRIPTION = (
    "DEMONSTRATION model: a reduced-width SegFormer-B0 trained on synthetic scenes from "
    "gdcld_zoo.data.synthetic, NOT a landslide detector for real imagery. For real weights, "
    "train on GDCLD with `gdcld-zoo train` or convert a PaddleSeg/transformers checkpoint "
    "(gdcld_zoo.convert)."
)
LICENSE = "Apache-2.0"
CITATION = (
    "Demonstration weights of gdcld_zoo (synthetic data). GDCLD: Fang C. et al. (2024), "
    "A globally distributed dataset of coseismic landslide mapping via multi-source "
    "high-resolution remote sensing images, Earth System Science Data."
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/gdcld_demo", help="scratch folder for data and run (replaced)")
    parser.add_argument("--dest", default=str(WEIGHTS_DIR),
                        help="folder receiving demo.weights.h5 and registry.json (default: this weights/ folder)")
    args = parser.parse_args(argv)
    dest = Path(args.dest)

    from gdcld_zoo.data.synthetic import write_synthetic_dataset
    from gdcld_zoo.weights.record import read_registry_file, write_registry_file
    from gdcld_zoo.weights.run import read_run_record, write_run_record

    work = Path(args.work)
    if work.exists():
        shutil.rmtree(work)
    data = write_synthetic_dataset(work / "data", n_train=N_TRAIN, n_val=N_VAL, tile_size=TILE, seed=SEED)
    config_path = work / "demo.yaml"
    config_path.write_text(json.dumps({**TRAIN_CONFIG, "data": str(data)}, indent=2) + "\n")

    command = [sys.executable, "-m", "gdcld_zoo", "train", TRAIN_CONFIG["model"],
               "--config", str(config_path), "--out", str(work / "run")]
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    print(f"training took {time.perf_counter() - start:.0f} s", flush=True)

    run = read_run_record(work / "run")
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / FILE
    partial = dest / (FILE + ".part")
    shutil.copyfile(work / "run" / run.file, partial)
    os.replace(partial, target)
    record = write_run_record(
        dest,
        target,
        run.model,
        tag=TAG,
        config=run.config,
        preprocessing=run.preprocessing,
        tile_size=run.tile_size,
        threshold=run.threshold,
        metrics=run.metrics,
        license=LICENSE,
        citation=CITATION,
        description=DESCRIPTION,
    )
    # write_run_record wrote dest/weight_record.json; keep only the registry.
    (dest / "weight_record.json").unlink()
    registry = dest / "registry.json"
    others = [r for r in read_registry_file(registry) if r.tag != TAG]
    write_registry_file(registry, others + [record])
    os.chmod(registry, 0o644)  # readable by everyone once installed
    values = record.metrics[0].values if record.metrics else {}
    print(f"wrote {target} ({record.size} bytes, sha256 {record.sha256})")
    print("synthetic val:", {k: round(v, 4) for k, v in values.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
