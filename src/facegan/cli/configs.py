"""`facegan presets` and `facegan config`: the named recipes and a resolved config as TOML."""

from __future__ import annotations

import argparse

from facegan.cli.common import add_config_arguments, config_from_args
from facegan.presets import describe_presets


def add_parser(commands) -> None:
    presets = commands.add_parser(
        "presets",
        help="list the named presets",
        description="List the named presets (starting configs for `facegan train --preset`) "
        "with what each is for.",
    )
    presets.set_defaults(handler=lambda args: print(describe_presets()) or 0)

    show = commands.add_parser(
        "config",
        help="print a resolved config as TOML (a starting point for --config)",
        description="Print the config that `facegan train` would use, as TOML.",
    )
    add_config_arguments(show)
    show.set_defaults(handler=run_config)


def run_config(args: argparse.Namespace) -> int:
    print(config_from_args(args).to_toml(), end="")
    return 0
