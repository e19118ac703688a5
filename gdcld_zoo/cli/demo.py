"""`gdcld-zoo demo [--out DIR] [--size N]`: map a synthetic scene with the bundled demo model."""

from gdcld_zoo.cli import int_at_least

positive_size = int_at_least(64, "a whole number of pixels, at least 64")


def run(args):
    from gdcld_zoo.demo import WARNING, run_demo

    result = run_demo(args.out, size=args.size, seed=args.seed, progress=not args.quiet)
    s, m = result.summary, result.metrics
    area = (f"{s['landslide_area_km2']:.4f} km2" if s["landslide_area_km2"] is not None
            else f"{s['landslide_area_px']} px")
    print(f"Synthetic scene ({args.size}x{args.size} px): {result.scene}")
    print(f"Its label:         {result.label}")
    print(f"Probability map:   {result.outputs['prob.tif']}")
    print(f"Landslide mask:    {result.outputs['mask.tif']}")
    print(f"Polygons (WGS84):  {result.outputs['landslides.geojson']}")
    print(f"Summary:           {result.outputs['summary.json']}")
    print(f"Landslides: {s['n_landslides']}, area {area} (of {s['valid_area_km2']:.4f} km2 mapped)")
    print("Against the synthetic label: "
          + "  ".join(f"{name} {100 * m[key]:.2f}%" for key, name in
                      (("precision", "precision"), ("recall", "recall"), ("f1", "F1"), ("miou", "mIoU"))))
    print(f"Done in {result.seconds:.1f} s.")
    print(WARNING)
    return 0


def register(subparsers):
    from gdcld_zoo.demo import DEFAULT_SIZE, DEMO_SEED

    parser = subparsers.add_parser(
        "demo",
        help="map landslides on a synthetic scene with the bundled demo model (offline)",
        description="Write a synthetic georeferenced scene and its label to DIR, map it with the bundled "
        "'demo' weights (probability and mask GeoTIFFs, GeoJSON polygons, summary JSON) and score the "
        "mask against the label. The demo model is trained on synthetic scenes only, not real imagery.",
        examples=["gdcld-zoo demo", "gdcld-zoo demo --out /tmp/demo --size 512 --quiet"],
    )
    parser.add_argument("--out", default="gdcld_demo", metavar="DIR", help="output folder (default ./gdcld_demo)")
    parser.add_argument("--size", type=positive_size, default=DEFAULT_SIZE, metavar="N",
                        help=f"scene side in pixels, at least 64 (default {DEFAULT_SIZE})")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help=f"seed of the synthetic scene (default {DEMO_SEED})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
