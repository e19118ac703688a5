"""`gdcld-zoo export WEIGHTS OUT.onnx`: ONNX export checked against Keras."""

from gdcld_zoo.export import ONNX_OPSETS  # light: TensorFlow and tf2onnx are imported by export_onnx


def run(args):
    from gdcld_zoo.export import export_onnx, read_onnx_metadata
    from gdcld_zoo.files import check_writable_file
    from gdcld_zoo.weights import load_pretrained

    check_writable_file(args.output, "ONNX file")  # before minutes of conversion
    model = load_pretrained(args.weights)
    path = export_onnx(
        model,
        args.output,
        opset=args.opset,
        dynamic_batch=not args.fixed_batch,
        check=not args.no_check,
        tile_size=args.tile_size,
        fp16=args.fp16,
        quantize=args.quantize,
        calibration=args.calibration,
    )
    metadata = read_onnx_metadata(path)
    size = f"{args.tile_size}x{args.tile_size}" if args.tile_size else "any multiple of 32"
    checked = "not checked" if args.no_check else "checked against Keras with ONNX Runtime"
    print(f"Wrote {path} ({metadata['model']}, {metadata['precision']}, tiles {size}; {checked}).")
    if args.quantize:
        from gdcld_zoo.quantization import format_agreement

        print(f"int8 against Keras on {metadata['calibration']}: {format_agreement(metadata['int8_agreement'])}.")


def register(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="export weights to ONNX (raw pixels in, probabilities out)",
        description="Export a model to ONNX with its normalisation inside the graph; "
        "the graph takes raw pixel values and returns class probabilities.",
        examples=["gdcld-zoo export demo demo.onnx",
                  "gdcld-zoo export runs/b4 b4.onnx --tile-size 1024 --fp16",
                  "gdcld-zoo export runs/b4 b4_int8.onnx --quantize int8 --calibration gdcld/val"],
    )
    parser.add_argument("weights", help="weight tag, training run folder, or .weights.h5/.keras file")
    parser.add_argument("output", help="the .onnx file to write")
    parser.add_argument("--tile-size", type=int, default=None, help="fix height and width (default: free)")
    parser.add_argument("--opset", type=int, default=17, choices=ONNX_OPSETS, metavar="N",
                        help=f"ONNX operator set version, {ONNX_OPSETS[0]}-{ONNX_OPSETS[-1]} (default 17; "
                        "layer norms export as one LayerNormalization from 17)")
    parser.add_argument("--fp16", action="store_true", help="float16 weights and compute")
    parser.add_argument("--quantize", choices=["int8"], default=None,
                        help="int8 static quantisation; refused below 99 %% pixel agreement with Keras")
    parser.add_argument("--calibration", default=None, metavar="DIR",
                        help="GeoTIFF tiles (GDCLD layout) to calibrate int8 on (default: generated tiles)")
    parser.add_argument("--fixed-batch", action="store_true", help="batch size 1 instead of free")
    parser.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime comparison")
    parser.set_defaults(func=run)
