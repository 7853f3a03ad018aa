"""`facegan serve`: a local web page (and JSON/PNG API) to browse a run's faces."""

from __future__ import annotations

import argparse

from facegan.cli.common import (
    HelpFormatter,
    add_run_argument,
    add_run_settings_argument,
    label_names_from_args,
    open_run,
    port,
    quiet_tensorflow,
)


def add_parser(commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="a local web page to browse a run's faces",
        description="Serve a web page for a trained run on this machine: a grid of faces by\n"
        "seed, an enlarged face with a PNG download, a truncation slider, one select\n"
        "per attribute of a conditional run, and an interpolation between two seeds.\n"
        "Seed s shows the face `facegan generate --seeds s` draws. The page reads a\n"
        "JSON/PNG API: GET /api/info, /api/faces, /api/face.png, /api/interpolate.\n"
        "Ctrl-C stops it.",
        epilog="examples:\n  facegan serve --run runs/faces        # then open http://127.0.0.1:8000/\n"
        "  facegan serve --model faces-64        # a model shipped with facegan",
        formatter_class=HelpFormatter,
    )
    add_run_argument(serve)
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        metavar="ADDR",
        help="address to listen on (default 127.0.0.1: this machine only; "
        "0.0.0.0 lets other machines in)",
    )
    serve.add_argument(
        "--port",
        type=port,
        default=8000,
        metavar="N",
        help="TCP port (default 8000; 0 picks a free one)",
    )
    add_run_settings_argument(serve)
    serve.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serves until Ctrl-C, which main() reports like any interrupt (exit 130)."""
    from facegan.serve import serve

    label_names = label_names_from_args(args)
    # a missing run, an unknown model or names that do not fit fail at once
    open_run(args.run, label_names, model=args.model)
    # The port is bound before TensorFlow loads: a port in use fails at once too.
    serve(
        args.run,
        model=args.model,
        host=args.host,
        port=args.port,
        prepare=quiet_tensorflow,
        label_names=label_names,
    )
    return 0
