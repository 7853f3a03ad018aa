"""`facegan pack`: decode a folder or zip of photos once into a packed dataset that training streams."""

from __future__ import annotations

import argparse
import sys

from facegan.cli.common import (
    HelpFormatter,
    add_progress_flag,
    positive_float,
    positive_int,
    quiet_tensorflow,
)


def add_parser(commands) -> None:
    pack = commands.add_parser(
        "pack",
        help="decode photos once into TFRecord shards that training streams",
        description="Scan SRC as `facegan inspect-data` does (its report is printed: every "
        "file left out, and why), then decode, centre-crop (or, with --align, cut "
        "out and align each face) and resize each usable "
        "image once and write them, in a seeded random order, as TFRecord shards "
        "of about --shard-mb MB plus dataset.json (resolution, channels, count, "
        "labels, source, content hash). `facegan train --data DIR` then streams "
        "the shards instead of decoding the whole set into memory, and each "
        "worker of a multi-worker job reads its own shards. An interrupted pack "
        "is resumed by running the same command again; dataset.json is written "
        "last. Nothing is overwritten.",
        epilog="examples:\n"
        "  facegan pack ~/photos --out ~/faces-64.pack --resolution 64\n"
        "  facegan prepare-data ~/photos --out ~/aligned --resolution 128 --align\n"
        "  facegan pack ~/aligned --out ~/faces-128.pack --resolution 128\n"
        "  facegan train --data ~/faces-64.pack --preset faces-64\n\n"
        "The format (so other tools can read it): docs/data.md.",
        formatter_class=HelpFormatter,
    )
    pack.add_argument(
        "source",
        metavar="SRC",
        help="folder of images (recursive), a .zip, embedded:lfw, or a "
        "`facegan prepare-data` output folder",
    )
    pack.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="a new or empty folder (or an interrupted pack's, to finish it)",
    )
    pack.add_argument(
        "--resolution",
        required=True,
        type=positive_int,
        metavar="R",
        help="side of the stored images in pixels, a power of two from 8 to 1024",
    )
    pack.add_argument(
        "--channels", type=int, choices=(1, 3), help="1 (gray) or 3 (RGB); default: the source's"
    )
    pack.add_argument(
        "--align",
        action="store_true",
        help="cut the faces out of the photos first, FFHQ-aligned, as "
        "`facegan prepare-data --align` does (MTCNN; slower; extra disk for "
        "the faces while packing)",
    )
    pack.add_argument(
        "--encoding",
        choices=("png", "raw"),
        default="png",
        help="png (lossless, about half the bytes; default) or raw uint8 pixels "
        "(no decoding cost, twice the disk)",
    )
    pack.add_argument(
        "--labels",
        default="",
        metavar="SPEC",
        help="store class labels: pattern:REGEX (named groups, matched on file "
        "names) or csv:PATH; train with --set data.labels=packed",
    )
    pack.add_argument(
        "--label-bins",
        default="",
        metavar="NAME=EDGES",
        help="bin numeric labels, e.g. age=0,13,20,30,40,50,60,120",
    )
    pack.add_argument(
        "--shard-mb", type=positive_float, metavar="MB", help="target shard size (default 150 MB)"
    )
    pack.add_argument(
        "--images-per-shard",
        type=positive_int,
        metavar="N",
        help="images per shard instead of --shard-mb (more shards than workers "
        "are needed for multi-worker training)",
    )
    pack.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="seed of the order of the images in the pack (default 0)",
    )
    add_progress_flag(pack)
    pack.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from facegan.config import DataConfig
    from facegan.data import packing
    from facegan.data.sources import check_source_path

    # Everything that needs no TensorFlow first: a wrong argument answers at once.
    packing.check_settings(
        args.resolution, args.encoding, args.channels, args.shard_mb, args.images_per_shard
    )
    check_source_path(args.source)
    packing.check_output(args.out)
    if args.labels or args.label_bins:
        DataConfig(source=args.source, labels=args.labels, label_bins=args.label_bins)
    quiet_tensorflow()
    packing.pack(
        args.source,
        args.out,
        args.resolution,
        channels=args.channels,
        encoding=args.encoding,
        labels=args.labels,
        label_bins=args.label_bins,
        shard_mb=args.shard_mb,
        images_per_shard=args.images_per_shard,
        seed=args.seed,
        align=args.align,
        show_progress=args.progress,
        report=lambda line: print(line, file=sys.stderr),
    )
    print(args.out)
    return 0
