"""`gdcld-zoo models`: the table of registered models."""

from gdcld_zoo.registry import get_model_spec, list_models


def format_model_table(names):
    """One row per model: name, trainable parameters (num_classes=1), description."""
    rows = [("model", "params", "description")]
    for name in names:
        spec = get_model_spec(name)
        params = f"{spec.num_params / 1e6:.2f}M" if spec.num_params else "-"
        rows.append((name, params, spec.description))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return "\n".join(
        f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]}" for row in rows
    )


def run(args):
    print(format_model_table(list_models(include_tiny=args.all)))


def register(subparsers):
    parser = subparsers.add_parser(
        "models", help="list the registered models",
        description="The registered architectures with their trainable parameters (one output class).",
        examples=["gdcld-zoo models", "gdcld-zoo models --all   # with the tiny test variants"],
    )
    parser.add_argument("--all", action="store_true", help="include tiny test variants")
    parser.set_defaults(func=run)
