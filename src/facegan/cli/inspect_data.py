"""`facegan inspect-data`: what training would see in a folder or zip, without TensorFlow."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facegan.cli.common import add_progress_flag, positive_int
from facegan.config import ConfigError
from facegan.data.problems import display_name
from facegan.progress import show_progress


def add_parser(commands) -> None:
    inspect = commands.add_parser(
        "inspect-data",
        help="check a folder or zip of images before training on it",
        description="Scan a dataset and report what training would see: counts, sizes, "
        "colour modes, exact and near duplicates, and every file that would be "
        "skipped (corrupt, truncated, too large, too small, unreadable, unsafe "
        "zip paths) with its reason. Exit code 0: usable (at least one good "
        "image); 1: not usable; 2: a wrong argument or a missing path.",
        epilog="Results are cached by file name, size and modification time, so a second "
        "run on an unchanged folder decodes nothing. Training runs the same scan.",
    )
    inspect.add_argument(
        "path",
        metavar="PATH",
        help="folder of images (recursive), a .zip of images, or embedded:lfw",
    )
    inspect.add_argument(
        "--resolution",
        type=positive_int,
        default=64,
        metavar="R",
        help="training resolution: smaller images are flagged (default 64)",
    )
    inspect.add_argument(
        "--max-pixels",
        type=positive_int,
        metavar="N",
        help="skip images above N pixels, undecoded (default data.max_pixels, 64000000)",
    )
    inspect.add_argument(
        "--min-size",
        type=positive_int,
        metavar="PX",
        help="skip images whose short side is below PX (default data.min_size, 8)",
    )
    inspect.add_argument(
        "--links",
        choices=("follow", "inside"),
        default="follow",
        help="symbolic links that point outside the folder: follow them "
        "(default; they are listed) or leave them out, as "
        "data.links does for training",
    )
    inspect.add_argument(
        "--json", action="store_true", help="print the report as JSON (for scripts) instead of text"
    )
    inspect.add_argument(
        "--report",
        metavar="FILE",
        help="also write the full report to FILE.md (Markdown) or FILE.html",
    )
    inspect.add_argument(
        "--verify",
        action="store_true",
        help="for a packed dataset: read every shard and check its SHA-256 and record "
        "count against dataset.json (exit 1 if any differs)",
    )
    inspect.add_argument(
        "--no-cache",
        action="store_true",
        help="decode every file again; do not read or write the scan cache",
    )
    add_progress_flag(inspect)
    inspect.set_defaults(handler=run)


def _report_path(args: argparse.Namespace) -> Path | None:
    if not args.report:
        return None
    path = Path(args.report)
    if path.suffix.lower() not in (".md", ".html", ".htm"):
        raise ConfigError(f"--report must end in .md or .html; received {args.report!r}")
    if path.exists():
        raise ConfigError(f"--report {args.report!r} already exists; choose another name")
    if not path.absolute().parent.is_dir():
        raise ConfigError(f"--report {args.report!r}: its folder does not exist")
    return path


def run(args: argparse.Namespace) -> int:
    """Scans a dataset without TensorFlow; exit 0 if usable, 1 if not."""
    from facegan.config import DataConfig
    from facegan.data.packed import is_packed
    from facegan.data.scan import scan_source
    from facegan.data.sources import open_source

    if is_packed(args.path):
        return _inspect_pack(args)
    report_path = _report_path(args)
    limits = {"max_pixels": args.max_pixels, "min_size": args.min_size}
    data = DataConfig(source=args.path, **{k: v for k, v in limits.items() if v is not None})
    source = open_source(args.path, require_images=False, links=args.links)
    report = scan_source(
        source,
        resolution=args.resolution,
        max_pixels=data.max_pixels,
        min_size=data.min_size,
        use_cache=not args.no_cache,
        progress=show_progress(args.progress),
    )
    if report_path is not None:
        markup = report.to_markdown() if report_path.suffix.lower() == ".md" else report.to_html()
        try:
            report_path.write_text(markup, encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"--report {args.report!r} cannot be written: {err}") from None
    outside = getattr(source, "outside_links", [])
    if args.json:
        print(
            json.dumps(
                {
                    **report.to_dict(),
                    "outside_links": [
                        {"name": display_name(n), "target": display_name(t)} for n, t in outside
                    ],
                },
                indent=2,
            )
        )
    else:
        print(report.format_text(), end="")
        _print_outside_links(outside)
        if report_path is not None:
            print(f"full report: {report_path}")
    return 0 if report.usable else 1


def _print_outside_links(outside: list[tuple[str, str]]) -> None:
    """Links that leave the data folder are followed by default: say where they go."""
    if not outside:
        return
    print(
        f"{len(outside)} symbolic link(s) point outside the data folder and were followed "
        f'(--links inside, or data.links = "inside" for training, leaves them out):'
    )
    for name, target in outside[:20]:
        print(f"  {display_name(name)} -> {display_name(target)}")
    if len(outside) > 20:
        print(f"  ... and {len(outside) - 20} more")


def _inspect_pack(args: argparse.Namespace) -> int:
    """A packed dataset was checked when it was packed: say what it holds; check its shards."""
    from facegan.data.packed import pack_description, read_pack_info, verify_pack

    info = read_pack_info(args.path)  # every shard present, at its recorded size
    problems = verify_pack(info) if args.verify else []
    if args.json:
        described = pack_description(info)
        if args.verify:
            described["verified"], described["problems"] = not problems, problems
        print(json.dumps(described, indent=2))
        return 1 if problems else 0
    megabytes = sum(shard.bytes for shard in info.shards) / 1e6
    print(
        f"{info.describe()}: {info.channels} channel(s), {info.encoding}, {megabytes:.1f} MB; "
        f"packed from {info.source}"
    )
    if info.labelled:
        print(
            f"  labels ({info.label_spec}): {info.label_classes}; train with "
            f"--set data.labels=packed"
        )
    if info.skipped:
        print(f"  {len(info.skipped)} file(s) of the source were left out when it was packed:")
        for name, reason in info.skipped[:20]:
            print(f"    {name}: {reason}")
    if problems:
        print(f"NOT usable: {len(problems)} difference(s) from dataset.json (pack the data again):")
        for line in problems:
            print(f"  {line}")
        return 1
    checked = "; every shard verified" if args.verify else " (--verify reads every shard)"
    print(f"usable: {info.count} images for training at {info.resolution} px (streamed){checked}")
    return 0
