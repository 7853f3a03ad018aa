"""The `facegan` command: parse -> config -> call the API.

One module per command, each with `add_parser(commands)` and `run(args)`;
`common` holds what they share. User errors (bad values, missing paths, an
existing run or output) print one line and exit with code 2, before any model
is built; those that need no TensorFlow are found before TensorFlow is
imported, so they answer at once, as do `--help` and config errors.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from facegan import __version__
from facegan.cli import (
    configs,
    evaluate,
    export,
    generate,
    inspect_data,
    interpolate,
    models,
    pack,
    prepare_data,
    project,
    serve,
    train,
    weights,
)
from facegan.cli.common import Parser
from facegan.errors import ExitCode, Interrupted, UserError

# In the order `facegan --help` lists them.
COMMANDS = (
    train,
    generate,
    models,
    export,
    evaluate,
    weights,
    configs,
    inspect_data,
    prepare_data,
    pack,
    interpolate,
    project,
    serve,
)


def build_parser() -> Parser:
    parser = Parser(prog="facegan", description="Train GANs that generate realistic human faces.")
    parser.add_argument("--version", action="version", version=f"facegan {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    for command in COMMANDS:
        command.add_parser(commands)
    parser.commands = commands.choices  # name -> the command's own parser
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `facegan` command; returns the exit code."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # answered by the command's parser: its usage, the nearest option
        parser.commands[args.command].refuse_unknown(extras)
    try:
        return args.handler(args)
    except UserError as err:
        # exit 2 for bad input; 3 diverged, 4 a write failed, 5 a worker lost (errors.ExitCode)
        print(f"facegan: error: {err}", file=sys.stderr)
        return err.exit_code
    except Interrupted as err:
        print(f"facegan: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("facegan: interrupted", file=sys.stderr)
        return ExitCode.SIGINT


__all__ = ["build_parser", "main"]
