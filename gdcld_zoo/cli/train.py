"""`gdcld-zoo train MODEL --data ROOT --out RUN_DIR`: train with the paper's recipe.

The run is described by a `TrainConfig`: built from `--config FILE` (YAML or
JSON) if given, with every flag on the command line overriding it. `--resume`
continues the run in RUN_DIR (always RUN_DIR, also for a copied run folder)
from its saved `config.json` and last checkpoint; flags given with it override
the saved values (e.g. `--epochs 150` to extend).
"""

import argparse

from gdcld_zoo.errors import GdcldZooError


def _overrides(args):
    """Config values set on the command line (None: not given)."""
    return {
        "data": args.data,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "tile_size": args.tile_size,
        "learning_rate": args.lr,
        "warmup_steps": args.warmup_steps,
        "steps_per_epoch": args.steps_per_epoch,
        "loss": args.loss,
        "early_stopping_patience": args.patience,
        "strategy": args.strategy,
        "seed": args.seed,
        "mixed_precision": True if args.mixed_precision else None,
        "augment": False if args.no_augment else None,
        "encoder_weights": args.encoder_weights,
        "skip_bad": True if args.skip_bad else None,
    }


def resolve_config(args):
    """The `TrainConfig` of a `train` invocation (saved config, file and flags)."""
    from gdcld_zoo.registry import get_model_spec
    from gdcld_zoo.training import TrainConfig

    get_model_spec(args.model)  # unknown names fail here, with suggestions
    overrides = _overrides(args)
    if args.resume:
        config = TrainConfig.load(args.out, **overrides)
        if config.model != args.model:
            raise GdcldZooError(
                f"{args.out} is a run of {config.model!r}, not {args.model!r}; "
                f"resume it with `gdcld-zoo train {config.model} --out {args.out} --resume`."
            )
        return config
    fixed = {"model": args.model, "out": args.out}
    if args.config:
        return TrainConfig.from_file(args.config, **fixed, **overrides)
    return TrainConfig.from_dict({**fixed, **{k: v for k, v in overrides.items() if v is not None}})


def run(args):
    from gdcld_zoo.training import train
    from gdcld_zoo.weights import read_run_record

    config = resolve_config(args)
    run_dir = train(config, resume=args.resume, verbose=1 if args.verbose else 2)
    try:
        record = read_run_record(run_dir)
    except GdcldZooError:
        print(f"Run finished in {run_dir} (no best weights: no epoch had a finite score).")
        return 0
    values = record.metrics[0].values if record.metrics else {}
    scores = "  ".join(f"{k} {100 * values[k]:.2f}%" for k in ("precision", "recall", "f1", "miou") if k in values)
    print(f"Best weights: {run_dir / record.file}  ({record.metrics[0].split if record.metrics else ''} {scores})")
    print(f"Load them with gdcld_zoo.load_pretrained({str(run_dir)!r}).")
    return 0


def register(subparsers):
    from gdcld_zoo.training.config import STRATEGIES

    parser = subparsers.add_parser(
        "train",
        help="train a model on a GDCLD-layout dataset",
        description="Train MODEL with the GDCLD paper's recipe (AdamW, lr 6e-4, weight decay 0.01, "
        "100 epochs, BCE; PaddleSeg's SegFormer configs use --lr 6e-5). RUN_DIR receives config.json, "
        "log.csv, TensorBoard logs, checkpoints, previews and weight_record.json.",
        examples=["gdcld-zoo train segformer_b4 --data /data/GDCLD --out runs/b4",
                  "gdcld-zoo train segformer_b4 --out runs/b4 --resume --epochs 150",
                  "gdcld-zoo train unet --config unet.yaml --out runs/unet --mixed-precision"],
    )
    parser.add_argument("model", help="registered model name (see `gdcld-zoo models`)")
    parser.add_argument("--data", help="dataset root with train/ and val/ folders (or a CSV manifest)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    parser.add_argument("--config", metavar="FILE", help="YAML or JSON run config; flags override it")
    parser.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its last checkpoint")
    parser.add_argument(
        "--encoder-weights",
        metavar="none|TAG|PATH",
        help="where the encoder starts: none (from scratch), an encoder weight tag, or a checkpoint "
        "file/folder (default: the model's ImageNet record, e.g. segformer_b4.imagenet)",
    )
    parser.add_argument("--epochs", type=int, help="training epochs (default 100)")
    parser.add_argument("--batch-size", type=int, help="global batch size (default 8)")
    parser.add_argument("--tile-size", type=int, help="training crop size, a multiple of 32 (default 512)")
    parser.add_argument("--lr", type=float, help="peak learning rate (default 6e-4, the paper's)")
    parser.add_argument("--warmup-steps", type=int, help="linear warm-up steps (default 1500)")
    parser.add_argument("--steps-per-epoch", type=int, help="batches per epoch (default: one pass)")
    # No `choices`: listing them would import Keras on every `gdcld-zoo` command;
    # an unknown name fails before any data is read, with close matches.
    parser.add_argument("--loss", help="bce (default, the paper's), dice, focal or bce_dice")
    parser.add_argument("--patience", type=int, help="early stopping after N epochs without better val mIoU")
    parser.add_argument("--mixed-precision", action="store_true", help="float16 compute on GPU (bfloat16 on CPU)")
    parser.add_argument("--strategy", choices=STRATEGIES, help="tf.distribute strategy, TensorFlow backend only (default: one device)")
    parser.add_argument("--no-augment", action="store_true", help="train without augmentation")
    parser.add_argument("--skip-bad", action="store_true",
                        help="leave out tile pairs that fail validation or reading, with a warning")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="TensorFlow's log lines, and a progress bar per epoch instead of one line")
    parser.set_defaults(func=run)
