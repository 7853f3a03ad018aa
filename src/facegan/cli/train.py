"""`facegan train`: start a run, resume one, or either (`--auto-resume`)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from facegan.cli.common import (
    HelpFormatter,
    add_config_arguments,
    add_progress_flag,
    config_from_args,
    explicit_settings,
    non_negative_float,
    positive_int,
    quiet_tensorflow,
)
from facegan.config import RESUME_CHANGES, Config, ConfigError
from facegan.data.sources import check_source_path
from facegan.presets import describe_presets

_EPILOG = f"""\
presets:
{describe_presets()}

examples:
  facegan train                                   # quick-32 on the embedded LFW faces
  facegan train --data ~/faces --preset dcgan-64 --steps 20000
  facegan train --config my.toml --set optim.g_lr=1e-4 --run-dir runs/exp1
  facegan train --resume runs/exp1 --steps 40000  # continue until step 40000
  facegan train --data ~/few-faces --init faces-64 --minutes 5   # fine-tune a shipped model
"""


def add_parser(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train a new run, or resume one",
        description="Train a GAN on face photos. Writes a run directory with config.json,\n"
        "checkpoints, sample grids, TensorBoard logs and metrics.jsonl.",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    train.add_argument(
        "--data",
        metavar="PATH",
        help="folder of images (recursive), a .zip of images, or embedded:lfw "
        "(default: the preset's, embedded:lfw)",
    )
    add_config_arguments(train)
    _add_what_to_train(train)
    _add_where_and_how(train)
    add_progress_flag(train)
    train.set_defaults(handler=run)


def _add_what_to_train(train: argparse.ArgumentParser) -> None:
    train.add_argument(
        "--steps",
        type=positive_int,
        metavar="N",
        help="total training steps of the run (with --resume: continue until N)",
    )
    train.add_argument(
        "--minutes",
        type=non_negative_float,
        metavar="M",
        help="stop after M minutes of the training loop (0: no limit); with "
        "--resume: this session's budget",
    )
    train.add_argument(
        "--batch-size",
        type=positive_int,
        metavar="B",
        help="images per step: the global batch, split evenly over the replicas",
    )
    train.add_argument(
        "--seed", type=int, metavar="S", help="seed for weights, noise and data order"
    )
    train.add_argument(
        "--init",
        metavar="MODEL|RUN",
        help="fine-tune: start from a shipped model's weights (`facegan models`, e.g. "
        "faces-64) or a run's latest checkpoint, with fresh optimizers. The run takes "
        "that network (architecture, resolution, channels: grey photos become RGB) and, "
        "unless --preset or --config names another, its training recipe",
    )
    train.add_argument(
        "--jit",
        action="store_true",
        default=None,
        help="compile the train step with XLA (slower on CPU)",
    )
    train.add_argument(
        "--precision",
        choices=("float32", "mixed_bfloat16", "mixed_float16"),
        help="float32 (default), mixed_bfloat16 (faster on CPUs with bf16 and "
        "on TPUs/recent GPUs) or mixed_float16 (GPUs; loss scaling)",
    )
    train.add_argument(
        "--eval-every",
        type=int,
        metavar="K",
        help="every K steps, FID and face rate on train.eval_num (1000) samples; "
        "keeps the best-FID checkpoint (needs `facegan weights` once; "
        "each evaluation costs ~eval_num/10 s on a 2-core CPU)",
    )


def _add_where_and_how(train: argparse.ArgumentParser) -> None:
    train.add_argument(
        "--strategy",
        choices=("auto", "default", "mirrored", "multiworker", "tpu"),
        help="tf.distribute strategy (default auto: every GPU when there are "
        "several); multiworker reads TF_CONFIG, see docs/scaling.md",
    )
    train.add_argument(
        "--cpu-replicas",
        type=positive_int,
        metavar="N",
        help="split the CPU into N logical devices, to try --strategy mirrored "
        "without GPUs (no speed-up)",
    )
    train.add_argument(
        "--run-dir", metavar="DIR", help="where to write (default runs/<preset>-<time>)"
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="if --run-dir exists, move it aside (renamed, never deleted)",
    )
    train.add_argument(
        "--resume",
        "--run",
        dest="resume",
        metavar="DIR",
        help="continue the run in DIR from its latest checkpoint (--run DIR "
        "is the same, as in the other commands)",
    )
    train.add_argument(
        "--auto-resume",
        action="store_true",
        help="with --run-dir: continue the run there if it exists (with the same "
        "config), else start it; one command for a job that may restart",
    )


def _config(args: argparse.Namespace) -> Config:
    flags = _flags(args)
    if args.init:
        return _init_config(args, flags)
    return config_from_args(args, flags)


def _init_config(args: argparse.Namespace, flags: dict) -> Config:
    """A fine-tuning run's config: the source's network, its recipe unless one is named."""
    from facegan.artifacts.init_source import model_conflicts, resolve_init

    if not args.data:
        raise ConfigError(
            f"--init {args.init} fine-tunes on your photos: give them with --data PATH"
        )
    source = resolve_init(args.init)
    recipe = source.config.with_overrides({"train.minutes": 0, "train.init": ""})
    wanted = Config.from_file(args.config, base=source.config) if args.config else source.config
    overrides = explicit_settings(args, flags)
    conflicts = model_conflicts(source, wanted.with_overrides(overrides) if overrides else wanted)
    if conflicts:
        model = source.config.model
        raise ConfigError(
            f"--init {args.init}: {', '.join(conflicts)} cannot apply to its weights (a "
            f"{model.resolution} px {model.arch}, width {model.width}, {model.channels} "
            f"channels); leave those settings out"
        )
    config = config_from_args(args, flags, base=recipe)
    return dataclasses.replace(
        config, model=source.config.model, train=dataclasses.replace(config.train, init=source.spec)
    )


def _flags(args: argparse.Namespace) -> dict:
    return {
        "data.source": args.data,
        "train.steps": args.steps,
        "train.minutes": args.minutes,
        "train.batch_size": args.batch_size,
        "train.seed": args.seed,
        "train.jit": args.jit,
        "train.eval_every": args.eval_every,
        "train.strategy": args.strategy,
        "train.precision": args.precision,
        "train.cpu_replicas": args.cpu_replicas,
    }


def run(args: argparse.Namespace) -> int:
    if args.auto_resume:
        if args.resume or not args.run_dir or args.overwrite:
            raise ConfigError(
                "--auto-resume goes with --run-dir DIR (and without --resume or --overwrite)"
            )
        if (Path(args.run_dir) / "config.json").is_file():
            return _auto_resume(args)
    if args.resume:
        clashing = [
            flag
            for flag, value in (
                ("--data", args.data),
                ("--preset", args.preset),
                ("--config", args.config),
                ("--batch-size", args.batch_size),
                ("--seed", args.seed),
                ("--init", args.init),
                ("--jit", args.jit),
                ("--precision", args.precision),
                ("--eval-every", args.eval_every is not None),
                ("--set", args.overrides),
                ("--run-dir", args.run_dir),
                ("--overwrite", args.overwrite),
            )
            if value
        ]
        if clashing:
            allowed = ", ".join(
                "--" + key.split(".")[1].replace("_", "-") for key in RESUME_CHANGES
            )
            raise ConfigError(
                f"--resume continues a run with its saved config; it takes only "
                f"{allowed} and --progress, not {', '.join(clashing)}"
            )
        return _resume(args.resume, args)
    config = _config(args)  # validated here, before TensorFlow is imported
    check_source_path(config.data.source)  # and the data's path
    strategy = _start_tensorflow(config.train)
    from facegan.training.api import train

    run = train(
        config, args.run_dir, overwrite=args.overwrite, progress=args.progress, strategy=strategy
    )
    print(run.directory)
    return 0


def _resume(run_dir: str, args: argparse.Namespace) -> int:
    from facegan.artifacts.rundir import open_run_dir, refuse_shipped

    refuse_shipped(run_dir)
    _, saved = open_run_dir(run_dir)  # no TensorFlow needed to read it
    check_source_path(saved.data.source)
    # Each resumable setting has the flag of its name (args.steps ... args.cpu_replicas).
    execution = {
        key: getattr(args, key.split(".")[1])
        for key in RESUME_CHANGES
        if key not in ("train.steps", "train.minutes")
    }
    config = saved.with_overrides({k: v for k, v in execution.items() if v is not None})
    strategy = _start_tensorflow(config.train)
    from facegan.training.api import resume

    run = resume(
        run_dir,
        steps=args.steps,
        minutes=args.minutes,
        progress=args.progress,
        strategy=strategy,
        execution=execution,
    )
    print(run.directory)
    return 0


def _auto_resume(args: argparse.Namespace) -> int:
    """The run exists: continue it, if it is the run these flags describe."""
    from facegan.artifacts.rundir import open_run_dir, refuse_shipped

    refuse_shipped(args.run_dir)
    _, saved = open_run_dir(args.run_dir)
    wanted = _config(args)
    # How a run is executed may change between attempts; what it trains may not.
    free = {*RESUME_CHANGES, "model.channels"}  # channels: filled in from the data
    differ = [
        f"{section}.{key}"
        for section, values in wanted.to_dict().items()
        if isinstance(values, dict)
        for key, value in values.items()
        if f"{section}.{key}" not in free and saved.to_dict()[section][key] != value
    ]
    if differ:
        raise ConfigError(
            f"--auto-resume: {args.run_dir!r} holds a run with other settings "
            f"({', '.join(differ)}); use another --run-dir"
        )
    return _resume(args.run_dir, args)


def _start_tensorflow(train_config):
    """Imports TensorFlow quietly and makes the distribution strategy, before anything runs."""

    def make():
        from facegan.training.distribute import make_strategy

        return make_strategy(train_config)

    return quiet_tensorflow(make)
