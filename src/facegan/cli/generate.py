"""`facegan generate`: faces from a trained run or a shipped model, as one grid or one PNG each."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

from facegan.cli.common import (
    HelpFormatter,
    add_label_argument,
    add_progress_flag,
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
from facegan.errors import write_error
from facegan.seeds import seed_file_name, seed_range

CHUNK = 256  # faces drawn, written and let go at a time: memory stays flat for any --seeds


def add_parser(commands) -> None:
    generate = commands.add_parser(
        "generate",
        help="generate faces from a trained run",
        description="Generate images from a run's latest checkpoint. Every seed is one "
        "face, the same everywhere (the web page, interpolate, an export's "
        "from_seed, facegan.load(RUN).generate): --seeds 0-15,42 draws those "
        "faces; -n N --seed S draws seeds S .. S+N-1. --model NAME draws a model "
        "shipped with facegan (`facegan models`), no training needed.",
        epilog="examples:\n"
        "  facegan generate --model faces-64 --seeds 0-15     # faces-64-seeds-0-15.png\n"
        "  facegan generate --run runs/faces -n 64 --out grid.png\n"
        "  facegan generate --run runs/faces --seeds 0-999 --out faces/   # one PNG each",
        formatter_class=HelpFormatter,
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
        metavar="PATH",
        help="a .png file for one grid, or a folder for one PNG per image "
        "(with --by: one grid per class); default NAME-seeds-FIRST-LAST.png here, "
        "NAME the run's or model's",
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
    add_progress_flag(generate)
    generate.set_defaults(handler=run)


def _default_out(args: argparse.Namespace, seeds: list[int]) -> str:
    """NAME-seeds-0-15.png in the current directory: a grid named after what drew it."""
    if args.by:
        raise ConfigError("--by writes one grid per class into a folder: give it as --out DIR")
    name = args.model or Path(args.run).resolve().name
    contiguous = seeds == list(range(seeds[0], seeds[0] + len(seeds)))
    if len(seeds) == 1:
        span = f"{seeds[0]}"
    elif contiguous:
        span = f"{seeds[0]}-{seeds[-1]}"
    else:
        span = f"{min(seeds)}-{max(seeds)}-{len(seeds)}faces"
    return f"{name}-seeds-{span}.png"


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
    seeds = _seeds(args)
    if args.out is None:
        args.out = _default_out(args, seeds)
    out = _check_out(args)
    from facegan.data.labels import parse_label_requests

    request = parse_label_requests(args.label)
    # before TensorFlow: a missing run fails at once
    opened = open_run(args.run, label_names_from_args(args), model=args.model)
    if out.suffix.lower() == ".png" or args.by:
        _check_grid_memory(opened[1].model, len(seeds))
    run = load_run(opened)
    if args.by:
        return _generate_by_class(run, args, seeds, request, out)
    batches = _batches(run, seeds, request, args)
    if out.suffix.lower() == ".png":
        _write_grid(batches, out)
    else:
        with _FolderOutput(out) as folder:
            for chunk, images in batches:
                for seed, image in zip(chunk, images):
                    folder.save(image, seed_file_name(seed))
    print(out)
    return 0


def _batches(run, seeds: list[int], request: dict, args) -> Iterator[tuple[list[int], object]]:
    """(seeds, uint8 images) CHUNK faces at a time, with a progress bar or lines."""
    from facegan.progress import progress

    bar = progress(len(seeds), "generate", "img", show=args.progress)
    try:
        for start in range(0, len(seeds), CHUNK):
            chunk = seeds[start : start + CHUNK]
            yield (
                chunk,
                run.generate_seeds(chunk, labels=request or None, truncation=args.truncation),
            )
            bar.update(len(chunk))
    finally:
        bar.close()


def _check_grid_memory(model, count: int) -> None:
    """A grid holds every face at once (the images, then the grid): refuse one that cannot fit."""
    from facegan.artifacts.images import check_fits_in_memory

    face = 2 * model.channels * (model.resolution + 2) ** 2
    check_fits_in_memory(
        count,
        face,
        f"faces in one grid at {model.resolution} px",
        "write them to a folder instead (--out DIR: one PNG each, written as they come)",
    )


def _write_grid(batches, out: Path) -> None:
    import numpy as np

    from facegan.artifacts.images import make_grid, save_png

    grid = make_grid(np.concatenate([images for _, images in batches]))
    try:
        save_png(grid, out)
    except OSError as err:
        raise write_error(out, err, "nothing was written") from None


class _FolderOutput:
    """PNGs written into --out one by one; on a write failure, none of them is left.

    The folder is created as needed (and removed again on failure if this command
    made it); a folder the user made, empty as `_check_out` requires, stays.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.made = [p for p in (folder, *folder.parents) if not p.exists()]
        self.written: list[Path] = []

    def save(self, image, name: str) -> None:
        from facegan.artifacts.images import save_png

        self.written.append(save_png(image, self.folder / name))

    def __enter__(self) -> _FolderOutput:
        return self

    def __exit__(self, kind, err, traceback) -> None:
        if not isinstance(err, OSError):
            return
        for path in self.written:
            path.unlink(missing_ok=True)
        for folder in self.made:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break
        raise write_error(self.folder, err, "no image was left behind") from None


def _generate_by_class(
    run, args: argparse.Namespace, seeds: list[int], request: dict, out: Path
) -> int:
    """One grid per class of `args.by`, every grid from the same latents and other labels."""
    from facegan.artifacts.images import make_grid
    from facegan.data.labels import schema_from_config

    if not run.config.model.conditional:
        raise ConfigError(f"--by: run {args.run!r} is not class-conditional")
    schema = schema_from_config(run.config.data, run.config.model.label_classes)
    names = schema.class_names(args.by)  # one clear error for an unknown attribute
    column = schema.names.index(args.by)
    base = run.labels_for_seeds(seeds, request)
    with _FolderOutput(out) as folder:
        for index, name in enumerate(names):
            labels = base.copy()
            labels[:, column] = index
            images = run.generate_seeds(seeds, labels=labels, truncation=args.truncation)
            slug = "".join(c if c.isalnum() or c in "-." else "-" for c in name).strip("-")
            folder.save(make_grid(images), f"{index:02d}-{slug}.png")
    print(out)
    return 0
