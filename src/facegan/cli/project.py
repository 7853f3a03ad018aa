"""`facegan project`: find the latent whose face reproduces a photo (GAN inversion)."""

from __future__ import annotations

import argparse
from pathlib import Path

from facegan.cli.common import (
    HelpFormatter,
    add_label_argument,
    add_progress_flag,
    add_run_argument,
    load_run,
    non_negative_int,
    open_run,
    positive_float,
    positive_int,
)
from facegan.config import ConfigError
from facegan.progress import progress as line_or_bar


def add_parser(commands) -> None:
    project = commands.add_parser(
        "project",
        help="find the latent whose face reproduces a photo (GAN inversion)",
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
        formatter_class=HelpFormatter,
    )
    add_run_argument(project)
    project.add_argument("--image", required=True, metavar="FILE", help="the photo to reproduce")
    project.add_argument(
        "--out", metavar="DIR", help="a new folder (default: IMAGE's folder/<stem>-projection)"
    )
    project.add_argument(
        "--steps",
        type=non_negative_int,
        default=500,
        metavar="N",
        help="optimisation steps (default 500)",
    )
    project.add_argument(
        "--lr",
        type=positive_float,
        metavar="LR",
        help="Adam's learning rate, cosine-decayed to 0 (default 0.05)",
    )
    project.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="seed of the random starting candidates (default 0)",
    )
    project.add_argument(
        "--candidates",
        type=positive_int,
        default=64,
        metavar="N",
        help="random latents to start from the best of (default 64)",
    )
    project.add_argument(
        "--loss", choices=("mse", "l1"), default="mse", help="pixel loss (default mse)"
    )
    project.add_argument(
        "--perceptual",
        type=float,
        default=0.0,
        metavar="WEIGHT",
        help="add an Inception feature distance with this weight (default 0: "
        "off; try 1; needs `facegan weights`; slower)",
    )
    project.add_argument(
        "--inception-weights",
        metavar="PATH",
        help="with --perceptual: the FID Inception weights file",
    )
    add_label_argument(project, "conditional runs: fix an attribute (repeatable)")
    add_progress_flag(project)
    project.set_defaults(handler=run)


def _check(args: argparse.Namespace) -> tuple[Path, Path]:
    """The photo and the output folder, checked before TensorFlow loads."""
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
    return image, out


def run(args: argparse.Namespace) -> int:
    from facegan.data.labels import parse_label_requests

    image, out = _check(args)
    request = parse_label_requests(args.label)
    run = load_run(open_run(args.run, model=args.model))
    from facegan import projection

    target = projection.load_target(image, run.config.model.resolution, run.config.model.channels)
    bar = line_or_bar(args.steps, "project", "step", show=args.progress) if args.steps else None
    try:
        result = projection.project(
            run,
            target,
            steps=args.steps,
            seed=args.seed,
            lr=args.lr,
            request=request or None,
            loss=args.loss,
            candidates=args.candidates,
            perceptual_weight=args.perceptual,
            inception_weights=args.inception_weights,
            on_step=(lambda step, loss: bar.update(1)) if bar else None,
        )
    finally:
        if bar is not None:
            bar.close()
    details = {
        "run": str(run.directory),
        "checkpoint_step": run.step,
        "image": str(image),
        "seed": args.seed,
        "lr": args.lr or projection.DEFAULT_LR,
        "pixel_loss_kind": args.loss,
        "candidates": args.candidates,
        "perceptual_weight": args.perceptual,
    }
    projection.save_projection(result, out, details)
    print(out)
    print(
        f"pixel MSE {result.mse:.5f} (pixels in [0, 1]), PSNR {result.psnr:.2f} dB; "
        f"loss {result.loss[0]:.5f} -> {result.loss[-1]:.5f} in {args.steps} steps"
    )
    return 0
