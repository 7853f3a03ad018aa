"""`facegan generate`: faces from a trained run, as one grid or one PNG each."""

from __future__ import annotations

import argparse
from pathlib import Path

from facegan.cli.common import (
    add_label_argument,
    add_run_argument,
    add_run_settings_argument,
    label_names_from_args,
    load_run,
    open_run,
    positive_int,
    seeds_argument,
    unit_float,
)
from facegan.config import ConfigError
from facegan.seeds import seed_file_name, seed_range


def add_parser(commands) -> None:
    generate = commands.add_parser(
        "generate",
        help="generate faces from a trained run",
        description="Generate images from a run's latest checkpoint. Every seed is one "
        "face, the same everywhere (the web page, interpolate, an export's "
        "from_seed, facegan.load(RUN).generate): --seeds 0-15,42 draws those "
        "faces; -n N --seed S draws seeds S .. S+N-1.",
    )
    add_run_argument(generate)
    generate.add_argument(
        "-n",
        "--num",
        type=positive_int,
        metavar="N",
        help="number of images: seeds S .. S+N-1 (default 64)",
    )
    generate.add_argument("--seed", type=int, metavar="S", help="the first seed (default 0)")
    generate.add_argument(
        "--seeds",
        type=seeds_argument,
        metavar="LIST",
        help="the faces to draw, as integers and ranges: 0-15,42 (instead of -n/--seed)",
    )
    generate.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="a .png file for one grid, or a folder for one PNG per image "
        "(with --by: one grid per class)",
    )
    generate.add_argument(
        "--truncation",
        type=unit_float,
        default=1.0,
        metavar="PSI",
        help="0 to 1 (default 1): lower gives more typical, cleaner faces and less variety",
    )
    add_label_argument(
        generate,
        "conditional runs: fix an attribute, e.g. --label gender=1 "
        "--label age=25 (a binned attribute takes any value in a "
        "bin, a named class its name); the others are drawn for each seed "
        "uniformly over their classes, not as often as the data has them",
    )
    add_run_settings_argument(generate)
    generate.add_argument(
        "--by",
        metavar="NAME",
        help="conditional runs: one grid per class of attribute NAME, the "
        "same latents in every grid, into the folder --out",
    )
    generate.set_defaults(handler=run)


def _check_out(args: argparse.Namespace) -> Path:
    out = Path(args.out)
    if out.suffix.lower() not in ("", ".png"):
        raise ConfigError(
            f"--out must be a .png file (one grid) or a folder; received {args.out!r}"
        )
    if args.by and out.suffix:
        raise ConfigError(
            f"--by writes one grid per class: --out must be a folder; received {args.out!r}"
        )
    if out.suffix.lower() == ".png" and out.exists():
        raise ConfigError(f"--out {args.out!r} already exists; choose another name")
    if out.suffix == "" and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {args.out!r} exists and is not an empty folder")
    return out


def _seeds(args: argparse.Namespace) -> list[int]:
    """--seeds, or -n/--seed as the range S .. S+N-1; both at once is a mistake, not a choice."""
    if args.seeds is None:
        return seed_range(
            0 if args.seed is None else args.seed, 64 if args.num is None else args.num
        )
    if args.num is not None or args.seed is not None:
        raise ConfigError("--seeds names the faces itself; give either --seeds or -n/--seed")
    return args.seeds


def run(args: argparse.Namespace) -> int:
    out = _check_out(args)
    seeds = _seeds(args)
    from facegan.data.labels import parse_label_requests

    request = parse_label_requests(args.label)
    opened = open_run(
        args.run, label_names_from_args(args)
    )  # before TensorFlow: a missing run fails at once
    from facegan.artifacts.images import make_grid, save_png

    run = load_run(opened)
    if args.by:
        return _generate_by_class(run, args, seeds, request, out)
    images = run.generate_seeds(seeds, labels=request or None, truncation=args.truncation)
    if out.suffix.lower() == ".png":
        save_png(make_grid(images), out)
    else:
        for seed, image in zip(seeds, images):
            save_png(image, out / seed_file_name(seed))
    print(out)
    return 0


def _generate_by_class(
    run, args: argparse.Namespace, seeds: list[int], request: dict, out: Path
) -> int:
    """One grid per class of `args.by`, every grid from the same latents and other labels."""
    from facegan.artifacts.images import make_grid, save_png
    from facegan.data.labels import schema_from_config

    if not run.config.model.conditional:
        raise ConfigError(f"--by: run {args.run!r} is not class-conditional")
    schema = schema_from_config(run.config.data, run.config.model.label_classes)
    names = schema.class_names(args.by)  # one clear error for an unknown attribute
    column = schema.names.index(args.by)
    base = run.labels_for_seeds(seeds, request)
    for index, name in enumerate(names):
        labels = base.copy()
        labels[:, column] = index
        images = run.generate_seeds(seeds, labels=labels, truncation=args.truncation)
        slug = "".join(c if c.isalnum() or c in "-." else "-" for c in name).strip("-")
        save_png(make_grid(images), out / f"{index:02d}-{slug}.png")
    print(out)
    return 0
