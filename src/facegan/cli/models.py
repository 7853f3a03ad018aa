"""`facegan models`: the trained models shipped with facegan, and their cards."""

from __future__ import annotations

import argparse

from facegan.cli.common import HelpFormatter


def add_parser(commands) -> None:
    models = commands.add_parser(
        "models",
        help="list the trained models shipped with facegan (usable at once with --model)",
        description="List the trained models that ship inside facegan, one line each; "
        "with a NAME, print that model's card: the data it saw and the data's terms, the "
        "recipe, steps, CPU-minutes, machine, date, and its measured FID, KID and face "
        "rate with the commands that measured them. Every command that takes --run "
        "also takes --model NAME; `facegan train --init NAME` fine-tunes one on your photos.",
        epilog="examples:\n"
        "  facegan models\n"
        "  facegan models faces-64                       # its card\n"
        "  facegan generate --model faces-64 --seeds 0-15\n"
        "  facegan serve --model faces-64\n"
        "  facegan train --data ~/my-faces --init faces-64 --minutes 5",
        formatter_class=HelpFormatter,
    )
    models.add_argument("name", nargs="?", metavar="NAME", help="print this model's card")
    models.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from facegan.pretrained import model_names, shipped_model

    if args.name is not None:
        print(shipped_model(args.name).card.rstrip())
        return 0
    names = model_names()
    if not names:
        print("no trained models are installed with this facegan")
        return 0
    for name in names:
        print(f"{name:<11} {shipped_model(name).summary()}")
    print("\n`facegan models NAME` prints a model's card (data terms, recipe, measurements).")
    return 0
