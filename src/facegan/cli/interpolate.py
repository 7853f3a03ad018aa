"""`facegan interpolate`: an animated walk (slerp) through the faces of a list of seeds."""

from __future__ import annotations

import argparse

from facegan.cli.common import (
    HelpFormatter,
    add_label_argument,
    add_run_argument,
    add_run_settings_argument,
    label_names_from_args,
    load_run,
    open_run,
    positive_float,
    positive_int,
    seeds_argument,
    unit_float,
)
from facegan.config import ConfigError


def seed_list(text: str) -> list[int]:
    """`1,2,3` or `0-4,9` -> the seeds (as `generate --seeds`): at least two."""
    seeds = seeds_argument(text)
    if len(seeds) < 2:
        raise argparse.ArgumentTypeError(
            f"must name two or more seeds, e.g. 1,2,3 or 0-4; received {text!r}"
        )
    return seeds


def add_parser(commands) -> None:
    interpolate = commands.add_parser(
        "interpolate",
        help="animate a walk through latent space between seeds' faces",
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
        formatter_class=HelpFormatter,
    )
    add_run_argument(interpolate)
    interpolate.add_argument(
        "--seeds",
        required=True,
        type=seed_list,
        metavar="LIST",
        help="two or more seeds to visit, in order, as in `facegan "
        "generate --seeds`: 1,2,3 or 0-4,9",
    )
    interpolate.add_argument(
        "--frames",
        type=positive_int,
        default=60,
        metavar="N",
        help="frames per segment between two seeds (default 60)",
    )
    interpolate.add_argument("--out", required=True, metavar="FILE", help="a new .gif or .mp4 file")
    interpolate.add_argument(
        "--loop", action="store_true", help="walk back from the last seed to the first"
    )
    interpolate.add_argument(
        "--fps",
        type=positive_float,
        default=24.0,
        metavar="F",
        help="frames per second (default 24)",
    )
    interpolate.add_argument(
        "--size",
        type=positive_int,
        metavar="PX",
        help="upscale frames to PX x PX (default: the run's resolution)",
    )
    interpolate.add_argument(
        "--resample",
        choices=("nearest", "bicubic"),
        default="nearest",
        help="how --size scales: nearest keeps the generated pixels "
        "(default), bicubic smooths them",
    )
    interpolate.add_argument(
        "--truncation",
        type=unit_float,
        default=1.0,
        metavar="PSI",
        help="0 to 1 (default 1), as in `facegan generate`",
    )
    add_label_argument(
        interpolate,
        "conditional runs: fix an attribute for the whole walk "
        "(repeatable), as in `facegan generate`",
    )
    add_run_settings_argument(interpolate)
    interpolate.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from facegan.artifacts import animation
    from facegan.data.labels import parse_label_requests

    if args.size is not None and args.size > 4096:
        raise ConfigError(f"--size must be at most 4096 px; received {args.size}")
    request = parse_label_requests(args.label)
    out = animation.check_output(args.out)  # refuse before loading a model
    opened = open_run(args.run, label_names_from_args(args), model=args.model)
    model = opened[1].model
    count = animation.walk_length(len(args.seeds), args.frames, args.loop)
    animation.check_walk_memory(count, model.resolution, args.size, model.channels)
    run = load_run(opened)
    frames = animation.walk_frames(
        run,
        args.seeds,
        args.frames,
        loop=args.loop,
        truncation=args.truncation,
        request=request or None,
    )
    if args.size:
        frames = animation.upscale(frames, args.size, args.resample)
    print(animation.write_animation(frames, out, fps=args.fps))
    return 0
