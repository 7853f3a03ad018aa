"""`facegan prepare-data`: cut the faces out of photos (MTCNN, optional FFHQ alignment)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facegan.cli.common import (
    HelpFormatter,
    add_progress_flag,
    positive_float,
    positive_int,
    quiet_tensorflow,
)
from facegan.config import ConfigError
from facegan.errors import ExitCode
from facegan.progress import show_progress


def add_parser(commands) -> None:
    prepare = commands.add_parser(
        "prepare-data",
        help="cut the faces out of photos into a folder to train on",
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
        formatter_class=HelpFormatter,
    )
    prepare.add_argument("source", metavar="SRC", help="folder of photos (recursive) or a .zip")
    prepare.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="a new or empty folder for the faces and manifest.jsonl",
    )
    prepare.add_argument(
        "--resolution",
        type=positive_int,
        default=64,
        metavar="R",
        help="side of the written faces in pixels, 16 to 1024 (default 64)",
    )
    prepare.add_argument(
        "--align",
        action="store_true",
        help="FFHQ-style aligned crops from the landmarks (recommended)",
    )
    prepare.add_argument(
        "--min-score",
        type=float,
        default=0.9,
        metavar="P",
        help="smallest MTCNN confidence kept, 0 to 1 (default 0.9)",
    )
    prepare.add_argument(
        "--min-face",
        type=positive_float,
        metavar="PX",
        help="smallest face kept: the longer side of its detection box in the "
        "photo's pixels (after EXIF rotation); default R/2 (the aligned "
        "crop is ~1.5x the box, so R/2 upscales it at most ~1.5x)",
    )
    prepare.add_argument(
        "--box-scale",
        type=float,
        default=1.3,
        metavar="S",
        help="without --align: crop side over the box's longer side, 0.5 to 4 (default 1.3)",
    )
    prepare.add_argument(
        "--duplicate-correlation",
        type=float,
        default=0.995,
        metavar="C",
        help="a face is a duplicate of a kept one when their 16x16 grayscale "
        "thumbnails correlate at least C (default 0.995; 1: exact only). "
        "Resized or re-encoded copies of a photo are skipped before "
        "that, by the whole photo's thumbnail",
    )
    add_progress_flag(prepare)
    prepare.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from facegan.data import prepare

    # Every argument is checked before TensorFlow loads: a bad one answers at once.
    prepare.check_arguments(
        args.resolution, args.min_score, args.box_scale, args.duplicate_correlation
    )
    if not Path(args.source).expanduser().exists():
        raise ConfigError(f"SRC {args.source!r} does not exist; give a folder of photos or a .zip")
    prepare.check_output_folder(args.out, Path(args.source).expanduser())
    quiet_tensorflow()
    summary = prepare.prepare_faces(
        args.source,
        args.out,
        args.resolution,
        align_faces=args.align,
        min_score=args.min_score,
        min_face=args.min_face,
        box_scale=args.box_scale,
        duplicate_correlation=args.duplicate_correlation,
        progress=show_progress(args.progress),
        on_skip=lambda name, reason: print(f"facegan: skipped {name}: {reason}", file=sys.stderr),
    )
    print(f"prepare-data: {summary.line()}")
    return ExitCode.SUCCESS if summary.kept else ExitCode.FAILURE
