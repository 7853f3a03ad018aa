"""What every command shares: the parser class, help formatting, argument types,
the run check and a quiet TensorFlow import. TensorFlow-free."""

from __future__ import annotations

import argparse
import difflib
import math
import os
import sys
import textwrap

from facegan.config import Config, ConfigError
from facegan.errors import ExitCode


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit code 2 like every user error."""

    def refuse_unknown(self, extras: list[str]) -> None:
        """Ends with this (sub)command's usage for arguments it does not know.

        argparse's own check runs in the top-level parser, which shows
        `facegan`'s usage and no hint; a misspelt option is better answered
        by the command's usage and the option nearest to it.
        """
        # argparse has no public list of a parser's option strings
        options = [name for action in self._actions for name in action.option_strings]
        named = []
        for extra in extras:
            guess = extra.startswith("-") and difflib.get_close_matches(
                extra.split("=", 1)[0], options, n=1, cutoff=0.7
            )
            named.append(f"{extra} (did you mean {guess[0]}?)" if guess else extra)
        self.error(f"unrecognized arguments: {' '.join(named)}")

    def error(self, message: str) -> None:  # type: ignore[override]
        # the command's usage, folded into the same line: what is allowed, at a glance
        usage = " ".join(self.format_usage().split()).removeprefix("usage: ")
        self.exit(
            ExitCode.USER_ERROR,
            f"facegan: error: {message} (usage: {usage}; see `{self.prog} --help`)\n",
        )


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Wraps prose paragraphs to the terminal; keeps examples and lists as written.

    A paragraph (text between blank lines) is prose unless one of its lines is
    indented or ends with a colon (a heading such as "examples:").
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            if any(line.startswith(" ") or line.rstrip().endswith(":") for line in lines):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(
                    textwrap.fill(
                        " ".join(lines), width, initial_indent=indent, subsequent_indent=indent
                    )
                )
        return "\n\n".join(paragraphs)


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="always show the progress bar (default: on a terminal)",
    )
    group.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="log lines instead of a progress bar",
    )


def add_run_argument(parser: argparse.ArgumentParser) -> None:
    """--run DIR or --model NAME: a run directory, or a model shipped in the package."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", metavar="DIR", help="run directory")
    source.add_argument(
        "--model",
        metavar="NAME",
        help="a trained model shipped with facegan instead of a run (`facegan models` "
        "lists them), e.g. faces-64",
    )


def int_from(low: int, high: int | None, allowed: str):
    """An argparse type: an integer in [low, high]; `allowed` says what, for the error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {allowed}; received {text!r}")
        return value

    return parse


def seeds_argument(text: str) -> list[int]:
    """An argparse type: StyleGAN2-ADA's seed list, "0-15,42" (facegan.seeds.parse_seeds)."""
    from facegan.seeds import SeedError, parse_seeds

    try:
        return parse_seeds(text)
    except SeedError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


positive_int = int_from(1, None, "a positive integer")
non_negative_int = int_from(0, None, "an integer 0 or more")
port = int_from(0, 65535, "a port from 0 to 65535")


def bounded_float(low: float, high: float | None, allowed: str, *, include_low: bool = True):
    """An argparse type: a finite number from `low` (excluded unless `include_low`) to `high`.

    Args:
        low: the lower bound.
        high: the largest value, included; None: no upper bound.
        allowed: what is allowed, for the error ("must be {allowed}; received '...'").
        include_low: whether `low` itself is allowed.
    """

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        # inf is never a setting anyone means; nan is also what text that is no number becomes.
        above = value >= low if include_low else value > low
        if not (math.isfinite(value) and above and (high is None or value <= high)):
            raise argparse.ArgumentTypeError(f"must be {allowed}; received {text!r}")
        return value

    return parse


positive_float = bounded_float(0.0, None, "a positive number", include_low=False)
non_negative_float = bounded_float(0.0, None, "a number 0 or more")
unit_float = bounded_float(0.0, 1.0, "a number from 0 to 1")  # truncation


def add_label_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument(
        "--label", action="append", default=[], metavar="NAME=VALUE", help=help_text
    )


# What `--set` may change on a finished run: names only, never what was trained.
RUN_SETTINGS = ("data.label_names",)


def add_run_settings_argument(parser: argparse.ArgumentParser) -> None:
    """`--set data.label_names=...` for a command that uses a finished run."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="data.label_names=NAMES",
        dest="overrides",
        help="conditional runs: name the classes for this command only (the run is "
        "not changed), e.g. --set data.label_names='gender=male,female'",
    )


def label_names_from_args(args: argparse.Namespace) -> str | None:
    """The `data.label_names` that `--set` gives a finished run, or None.

    Raises:
        ConfigError: `--set` names any other setting (those were fixed by training).
    """
    names = None
    for item in getattr(args, "overrides", []):
        key, sep, value = item.partition("=")
        if key.strip() not in RUN_SETTINGS or not sep:
            raise ConfigError(
                f"--set on a finished run takes only {', '.join(RUN_SETTINGS)}=...; "
                f"received {item!r} (the rest was fixed when the run was trained)"
            )
        names = value.strip()
    return names


def open_run(path: str | None, label_names: str | None = None, *, model: str | None = None):
    """(RunPaths, Config, ShippedModel or None) of a run or shipped model, read without
    TensorFlow: a missing or broken run directory, an unknown model, or class names
    that do not fit, are reported at once."""
    from facegan.artifacts.rundir import open_model, open_run_dir, require_resolved_config

    if model is not None:
        return open_model(model, label_names=label_names)
    paths, config = open_run_dir(path, label_names=label_names)
    if any(paths.checkpoints.glob("*.index")):  # a run without one says so later
        require_resolved_config(paths, config)
    return paths, config, None


def load_run(opened: tuple):
    """The `Run` of what `open_run` returned (imports TensorFlow, quietly)."""
    quiet_tensorflow()
    from facegan.artifacts.run import Run

    return Run(*opened)


def quiet_tensorflow(first=None):
    """Imports TensorFlow without its start-up chatter; returns what `first()` returns.

    TensorFlow's C++ side prints CUDA probing and CPU-feature notes straight to
    file descriptor 2 while it loads, which buries facegan's own output. Unless
    the user set TF_CPP_MIN_LOG_LEVEL (then they see everything), stderr is
    muted while TensorFlow loads and initialises its devices; the training log
    then names the devices in use, which is the part of that chatter that matters.
    `first` runs inside the muted stretch, before any other TensorFlow work (a
    distribution strategy must be made then).
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or "tensorflow" in sys.modules:
        return first() if first else None
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        result = first() if first else None
        tf.config.list_logical_devices()  # device initialisation logs too
        return result
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def add_config_arguments(parser: argparse.ArgumentParser, *, with_help: bool = True) -> None:
    """--preset, --config and --set: how a run's config is put together."""
    from facegan.presets import DEFAULT_PRESET, preset_names

    parser.add_argument(
        "--preset",
        metavar="NAME",
        help=f"starting config: {', '.join(preset_names())} (default {DEFAULT_PRESET})",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="TOML or JSON config applied on the preset"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        dest="overrides",
        help="override any config value (repeatable)",
    )


def config_from_args(
    args: argparse.Namespace, flags: dict | None = None, *, base: Config | None = None
) -> Config:
    """Preset (or `base` when no preset is named), then config file, then flags: later
    ones win."""
    from facegan.presets import DEFAULT_PRESET, get_preset

    file_preset = Config.from_file(args.config).preset if getattr(args, "config", None) else None
    named = args.preset or file_preset
    preset = named or (base.preset if base is not None else None) or DEFAULT_PRESET
    config = get_preset(preset) if named or base is None else base
    if args.config:
        config = Config.from_file(args.config, base=config)
    config = Config.from_dict({"preset": preset}, base=config)
    overrides = explicit_settings(args, flags)
    return config.with_overrides(overrides) if overrides else config


def explicit_settings(args: argparse.Namespace, flags: dict | None = None) -> dict[str, object]:
    """SECTION.KEY -> value of what the flags and `--set` name (not the preset's defaults)."""
    overrides = {k: v for k, v in (flags or {}).items() if v is not None}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set takes SECTION.KEY=VALUE; received {item!r}")
        overrides[key.strip()] = value.strip()
    return overrides
