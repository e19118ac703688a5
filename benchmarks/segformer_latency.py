"""Forward latency of gdcld_zoo SegFormer vs transformers SegFormer with the same weights.

Builds a transformers `SegformerForSemanticSegmentation` for each variant,
converts it with `gdcld_zoo.convert.from_transformers`, checks the two agree,
and times a forward pass of one 512×512 tile on this CPU: Keras through
`predict_on_batch` (its compiled predict function), torch eagerly under
`no_grad`. Prints median and spread over `--repeats` runs after warm-up.

    python benchmarks/segformer_latency.py [--variants b0 b4] [--size 512] [--repeats 10]
"""

import argparse
import os
import statistics
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from timing import wall_times  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["b0", "b4"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    import torch
    import transformers

    from gdcld_zoo.convert import from_transformers
    from gdcld_zoo.models.segformer import MIT_VARIANTS

    print(f"CPU threads: torch {torch.get_num_threads()}, os {os.cpu_count()}; "
          f"input 1x{args.size}x{args.size}x3; median (min-max) of {args.repeats} runs")
    print(f"{'model':<14}{'gdcld_zoo ms':>22}{'transformers ms':>22}{'ratio':>8}")
    images = np.random.default_rng(0).normal(size=(1, args.size, args.size, 3)).astype("float32")
    pixels = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
    for variant in args.variants:
        config = MIT_VARIANTS[variant]
        reference = transformers.SegformerForSemanticSegmentation(
            transformers.SegformerConfig(
                hidden_sizes=list(config["hidden_sizes"]),
                depths=list(config["depths"]),
                decoder_hidden_size=config["decoder_hidden_size"],
                num_labels=1,
            )
        ).eval()
        with tempfile.TemporaryDirectory() as folder:
            reference.save_pretrained(folder)
            model = from_transformers(folder)

        def run_reference():
            with torch.no_grad():
                return reference(pixel_values=pixels).logits

        ours = model.predict_on_batch(images)
        theirs = torch.nn.functional.interpolate(
            run_reference(), size=(args.size, args.size), mode="bilinear", align_corners=False
        ).numpy().transpose(0, 2, 3, 1)
        difference = float(np.abs(ours - theirs).max())
        keras_times = wall_times(lambda: model.predict_on_batch(images), args.repeats)
        torch_times = wall_times(run_reference, args.repeats)
        k, t = statistics.median(keras_times) * 1e3, statistics.median(torch_times) * 1e3
        print(
            f"segformer_{variant:<4}"
            f"{k:>10.1f} ({min(keras_times) * 1e3:.0f}-{max(keras_times) * 1e3:.0f})"
            f"{t:>12.1f} ({min(torch_times) * 1e3:.0f}-{max(torch_times) * 1e3:.0f})"
            f"{k / t:>8.2f}   max |logit diff| {difference:.1e}"
        )


if __name__ == "__main__":
    main()
