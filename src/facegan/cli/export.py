"""`facegan export`: the sampling generator as a SavedModel (TF Serving), TFLite or Keras file."""

from __future__ import annotations

import argparse

from facegan.cli.common import HelpFormatter, add_run_argument, load_run, open_run


def add_parser(commands) -> None:
    export = commands.add_parser(
        "export",
        help="export the generator: SavedModel (TF Serving), TFLite or Keras",
        description="Export a run's sampling generator (its moving average when the run keeps "
        "one). savedmodel writes OUT/VERSION/ as TensorFlow Serving expects, with "
        "signatures from_seed (seed int64 [N]), from_latent (latent float32 [N, Z]) "
        "and their _truncated variants (+ truncation float32 []); conditional runs "
        "also take labels int32 [N, A]; all return uint8 images [N, H, W, C], the "
        "very images `facegan generate` makes. tflite: from_latent and "
        "from_latent_truncated (callers draw the latents). keras: the Keras "
        "generator (float output in [-1, 1]; needs facegan to load). Nothing is "
        "ever overwritten.",
        epilog="examples:\n"
        "  facegan export --run runs/faces --format savedmodel --out models/faces\n"
        "  saved_model_cli show --dir models/faces/20000 --all\n"
        "  facegan export --run runs/faces --format tflite --out faces.tflite\n",
        formatter_class=HelpFormatter,
    )
    add_run_argument(export)
    export.add_argument(
        "--format",
        required=True,
        choices=("savedmodel", "tflite", "keras"),
        dest="export_format",
        help="savedmodel, tflite or keras",
    )
    export.add_argument(
        "--out",
        metavar="PATH",
        help="savedmodel: the model folder NAME (writes NAME/VERSION/); tflite, "
        "keras: the .tflite or .keras file (default: inside RUN/export/; with --model, "
        "export/ here)",
    )
    export.add_argument(
        "--version",
        type=int,
        metavar="N",
        dest="model_version",
        help="savedmodel: the version folder (default: the run's step)",
    )
    export.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from facegan.artifacts.export_target import check_target

    # Before TensorFlow: a missing run or an existing output fails at once.
    opened = open_run(args.run, model=args.model)
    check_target(args.export_format, args.out, args.model_version)
    run = load_run(opened)
    from facegan.artifacts.export import export

    print(export(run, args.export_format, args.out, version=args.model_version))
    return 0
