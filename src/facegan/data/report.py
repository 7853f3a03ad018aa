"""What a dataset scan found, and how it is shown: text, JSON, Markdown, HTML.

`DataReport` holds one `ItemRecord` per file and derives everything else
(counts, sizes, duplicates, warnings) from them. Every file name that leaves
this module goes through `display_name` (bytes that are not UTF-8 become
``\\xff`` escapes) and, for Markdown and HTML, through an escaper, so a file
named ``<script>…</script>.png`` is shown, never run.
"""

from __future__ import annotations

import collections
import dataclasses
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from facegan.data.problems import display_name

# How close two perceptual hashes must be (differing bits of 64) to call the images
# near duplicates. Measured on the 8,000 aligned UTKFace crops: a resized, re-encoded
# (JPEG q40..q70), upscaled or grayscale copy is within 2 bits every time, while at
# 4 bits unrelated faces of similar pose already match.
NEAR_DUPLICATE_BITS = 2

# Extensions and the Pillow formats their content may have. Anything else is a
# mismatch: still usable (Pillow reads the content, not the name), but noted.
_FORMATS_BY_EXTENSION = {
    ".jpg": {"JPEG", "MPO"},
    ".jpeg": {"JPEG", "MPO"},
    ".jpe": {"JPEG", "MPO"},
    ".png": {"PNG"},
    ".bmp": {"BMP", "DIB"},
    ".gif": {"GIF"},
    ".webp": {"WEBP"},
    ".pgm": {"PPM"},
    ".ppm": {"PPM"},
    ".pbm": {"PPM"},
    ".pnm": {"PPM"},
    ".tif": {"TIFF"},
    ".tiff": {"TIFF"},
}
# MPO is a JPEG with a second (preview or depth) picture, not an animation.
_STILL_FORMATS = {"MPO"}


@dataclasses.dataclass
class ItemRecord:
    """What the scan learned about one file.

    Attributes:
        name: the file's path inside the source (may hold surrogate escapes;
            show it with `display_name`).
        ok: usable for training.
        kind: why not (a `facegan.data.problems` kind); "" when ok.
        reason: one line for people; "" when ok.
        width, height: as displayed, after the EXIF orientation (0 if unknown).
        mode: Pillow's mode of the stored image (RGB, L, P, CMYK, I;16 ...).
        format: Pillow's format of the content (JPEG, PNG ...), whatever the name says.
        frames: 1 for a still image, more for an animation (the first is used).
        orientation: the EXIF orientation tag (1 = upright).
        size: bytes of the file.
        sha256: hex digest of the bytes (exact duplicates share it).
        phash: 16 hex digits, the 64-bit perceptual hash (near duplicates are close).
    """

    name: str
    ok: bool
    kind: str = ""
    reason: str = ""
    width: int = 0
    height: int = 0
    mode: str = ""
    format: str = ""
    frames: int = 0
    orientation: int = 1
    size: int = 0
    sha256: str = ""
    phash: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["name"] = display_name(self.name)
        return out


@dataclasses.dataclass
class DataReport:
    """The scan of one image source.

    Attributes:
        description: where the images came from ("folder '/photos'").
        items: one record per image file, in the source's order (the first
            `image_count` align with the source's indices), then one per entry
            refused while listing (symbolic link loops, unsafe zip paths ...).
        image_count: how many of `items` are the source's image files.
        ignored: files skipped for their extension (not images).
        resolution: the training resolution that warnings refer to.
        max_pixels, min_size: the limits the scan applied.
        exact_duplicates: groups of names of usable files with identical bytes.
        near_duplicates: groups of names of usable files whose perceptual hashes
            are within `NEAR_DUPLICATE_BITS` bits (exact copies count once).
        decoded: files decoded by this scan; the rest came from the cache.
        seconds: how long the scan took.
    """

    description: str
    items: list[ItemRecord]
    image_count: int
    ignored: list[str]
    resolution: int
    max_pixels: int
    min_size: int
    exact_duplicates: list[list[str]] = dataclasses.field(default_factory=list)
    near_duplicates: list[list[str]] = dataclasses.field(default_factory=list)
    decoded: int = 0
    seconds: float = 0.0

    # -- what the records say ----------------------------------------------
    @property
    def good(self) -> list[ItemRecord]:
        return [item for item in self.items if item.ok]

    @property
    def bad(self) -> list[ItemRecord]:
        return [item for item in self.items if not item.ok]

    @property
    def usable(self) -> bool:
        """At least one image can be trained on."""
        return any(item.ok for item in self.items)

    def good_indices(self) -> list[int]:
        """Indices into the source of the usable images."""
        return [i for i, item in enumerate(self.items[: self.image_count]) if item.ok]

    def bad_by_kind(self) -> dict[str, int]:
        counts = collections.Counter(item.kind for item in self.bad)
        return dict(counts.most_common())

    def smaller_than_resolution(self) -> list[str]:
        """Usable images whose short side is below the training resolution (upscaled)."""
        return [i.name for i in self.good if min(i.width, i.height) < self.resolution]

    def non_square(self) -> list[str]:
        """Usable images that are not square (their centre square is used)."""
        return [i.name for i in self.good if i.width != i.height]

    def extension_mismatches(self) -> list[tuple[str, str]]:
        """(name, actual format) of usable files whose extension names another format."""
        found = []
        for item in self.good:
            expected = _FORMATS_BY_EXTENSION.get(Path(item.name).suffix.lower())
            if expected and item.format and item.format not in expected:
                found.append((item.name, item.format))
        return found

    def animated(self) -> list[str]:
        """Usable animations (or multi-page files): the first frame is used."""
        return [i.name for i in self.good if i.frames > 1 and i.format not in _STILL_FORMATS]

    def rotated(self) -> list[str]:
        """Usable images whose EXIF orientation is applied (turned or mirrored)."""
        return [i.name for i in self.good if i.orientation not in (0, 1)]

    def sizes(self) -> collections.Counter:
        """How many usable images have each (width, height)."""
        return collections.Counter((i.width, i.height) for i in self.good)

    def short_side_stats(self) -> dict[str, int] | None:
        sides = sorted(min(i.width, i.height) for i in self.good)
        if not sides:
            return None
        return {"min": sides[0], "median": int(statistics.median_low(sides)), "max": sides[-1]}

    def modes(self) -> dict[str, int]:
        return dict(collections.Counter(i.mode for i in self.good).most_common())

    def formats(self) -> dict[str, int]:
        return dict(collections.Counter(i.format for i in self.good if i.format).most_common())

    def refusal(self) -> str:
        """One line saying why the source cannot train (for an error message)."""
        if not self.items:
            hint = (
                (
                    f"; it holds {len(self.ignored)} file(s) without an image extension, "
                    f"e.g. {display_name(self.ignored[0])!r}"
                )
                if self.ignored
                else ""
            )
            return f"{self.description} holds no image files{hint}"
        kinds = ", ".join(f"{count} {kind}" for kind, count in self.bad_by_kind().items())
        first = "; ".join(f"{display_name(i.name)}: {i.reason}" for i in self.bad[:3])
        return (
            f"{self.description}: none of its {len(self.items)} image file(s) is usable "
            f"({kinds}; first: {first})"
        )

    # -- renderings ----------------------------------------------------------
    def to_dict(self, include_items: bool = False) -> dict[str, Any]:
        """A JSON-safe summary; file names in display form. `include_items` adds every record."""
        stats = self.short_side_stats()
        out: dict[str, Any] = {
            "source": self.description,
            "usable": self.usable,
            "resolution": self.resolution,
            "limits": {"max_pixels": self.max_pixels, "min_size": self.min_size},
            "counts": {
                "files": len(self.items) + len(self.ignored),
                "images": len(self.items),
                "good": len(self.good),
                "bad": len(self.bad),
                "ignored": len(self.ignored),
            },
            "bad_by_kind": self.bad_by_kind(),
            "bad": [
                {"name": display_name(i.name), "kind": i.kind, "reason": i.reason} for i in self.bad
            ],
            "ignored": [display_name(n) for n in self.ignored],
            "sizes": {f"{w}x{h}": n for (w, h), n in self.sizes().most_common()},
            "short_side": stats,
            "modes": self.modes(),
            "formats": self.formats(),
            "exact_duplicates": [_shown(group) for group in self.exact_duplicates],
            "near_duplicates": [_shown(group) for group in self.near_duplicates],
            "near_duplicate_bits": NEAR_DUPLICATE_BITS,
            "warnings": {
                "smaller_than_resolution": _shown(self.smaller_than_resolution()),
                "non_square": _shown(self.non_square()),
                "extension_mismatch": [
                    {"name": display_name(n), "format": f} for n, f in self.extension_mismatches()
                ],
                "animated": _shown(self.animated()),
                "rotated": _shown(self.rotated()),
            },
            "scan": {
                "decoded": self.decoded,
                "from_cache": self.image_count - self.decoded,
                "seconds": round(self.seconds, 3),
            },
        }
        if include_items:
            out["items"] = [item.to_dict() for item in self.items]
        return out

    def format_text(self, max_names: int = 20) -> str:
        """A concise human summary; at most `max_names` names per category."""
        return "\n".join(_text_lines(self, max_names)) + "\n"

    def to_markdown(self, max_names: int = 1000) -> str:
        """A Markdown report; file names escaped so they render as plain text."""
        from facegan.data.report_markup import Markdown, render

        return render(self, Markdown(), max_names)

    def to_html(self, max_names: int = 1000) -> str:
        """A standalone HTML page; file names escaped with `html.escape`."""
        from facegan.data.report_markup import Html, render

        return render(self, Html(), max_names)


def by_name(items: Iterable[ItemRecord]) -> list[ItemRecord]:
    return sorted(items, key=lambda item: item.name)


def _shown(names: Iterable[str]) -> list[str]:
    return [display_name(name) for name in names]


# ---------------------------------------------------------------------------- text


def _text_lines(report: DataReport, max_names: int) -> list[str]:
    lines = [_headline(report)]
    if report.good:
        lines += _size_lines(report)
    for section in _sections(report):
        lines += section.lines(max_names)
    lines.append(_verdict(report))
    return lines


def _headline(report: DataReport) -> str:
    parts = [
        f"{len(report.items)} image files",
        f"{len(report.good)} usable",
        f"{len(report.bad)} bad",
    ]
    if report.ignored:
        parts.append(f"{len(report.ignored)} other files ignored")
    return f"{report.description}: {', '.join(parts)}"


def _size_lines(report: DataReport) -> list[str]:
    sizes = report.sizes().most_common()
    shown = ", ".join(f"{w}x{h} ({n})" for (w, h), n in sizes[:5])
    if len(sizes) > 5:
        shown += f", {_plural(len(sizes) - 5, 'other size')}"
    stats = report.short_side_stats()
    side = f"short side {stats['min']}–{stats['max']} px, median {stats['median']}"
    modes = ", ".join(f"{mode} ({n})" for mode, n in report.modes().items())
    formats = ", ".join(f"{fmt} ({n})" for fmt, n in report.formats().items())
    return [
        f"  sizes: {shown}; {side}",
        f"  modes: {modes}" + (f"; formats: {formats}" if formats else ""),
    ]


@dataclasses.dataclass
class _Section:
    """One category of the text report: a title with counts, then entries of names."""

    title: str
    entries: list[list[str]]  # each entry: the names it shows (a group has several)
    joiner: str = ""  # between the names of a group
    unit: str = "files"

    def lines(self, max_names: int) -> list[str]:
        """The title and as many entries as fit in `max_names` names (at least one)."""
        if not self.entries:
            return []
        out, used = [self.title], 0
        for shown, entry in enumerate(self.entries):
            if shown and used + len(entry) > max_names:
                out.append(f"  … and {len(self.entries) - shown} more {self.unit}")
                break
            out.append("  " + self.joiner.join(entry))
            used += len(entry)
        return out


def _sections(report: DataReport) -> list[_Section]:
    """Every category worth naming, in order of importance."""
    res = report.resolution
    bad_kinds = ", ".join(f"{n} {kind}" for kind, n in report.bad_by_kind().items())
    exact, near = report.exact_duplicates, report.near_duplicates
    return [
        _Section(
            f"bad, skipped: {len(report.bad)} ({bad_kinds})",
            [[f"{display_name(i.name)}: {i.reason}"] for i in by_name(report.bad)],
        ),
        _Section(
            f"ignored, not a supported image extension: {len(report.ignored)}",
            [[n] for n in _shown(report.ignored)],
        ),
        _Section(
            f"exact duplicates: {len(exact)} groups, {sum(map(len, exact))} files "
            "(same bytes; all are kept, so these faces weigh more)",
            [_shown(group) for group in exact],
            " = ",
            "groups",
        ),
        _Section(
            f"near duplicates: {len(near)} groups, {sum(map(len, near))} files "
            f"(perceptual hashes within {NEAR_DUPLICATE_BITS} of 64 bits; all are kept)",
            [_shown(group) for group in near],
            " ~ ",
            "groups",
        ),
        _Section(
            f"smaller than {res} px, will be upscaled: {len(report.smaller_than_resolution())}",
            _by_size(report, report.smaller_than_resolution()),
        ),
        _Section(
            f"non-square, the centre square is used: {len(report.non_square())}",
            _by_size(report, report.non_square()),
        ),
        _Section(
            f"extension differs from the content (still usable): "
            f"{len(report.extension_mismatches())}",
            [[f"{display_name(n)} is {fmt}"] for n, fmt in report.extension_mismatches()],
        ),
        _Section(
            f"animated, the first frame is used: {len(report.animated())}",
            [[n] for n in _shown(report.animated())],
        ),
        _Section(
            f"turned upright by their EXIF orientation: {len(report.rotated())}",
            [[n] for n in _shown(report.rotated())],
        ),
    ]


def _by_size(report: DataReport, names: Sequence[str], max_names: int = 20) -> list[list[str]]:
    """A few files are named with their size; many are counted per size instead."""
    by_name = {item.name: item for item in report.good}
    sizes = [(by_name[n].width, by_name[n].height) for n in names]
    if len(names) <= max_names:
        return [[f"{display_name(n)} ({w}x{h})"] for n, (w, h) in zip(names, sizes)]
    common = collections.Counter(sizes).most_common()
    lines = [[f"{w}x{h}: {_plural(count, 'file')}"] for (w, h), count in common[:5]]
    if len(common) > 5:
        rest = sum(n for _, n in common[5:])
        lines.append([f"{_plural(len(common) - 5, 'other size')}: {_plural(rest, 'file')}"])
    return lines


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _verdict(report: DataReport) -> str:
    timing = (
        f"scanned in {report.seconds:.1f} s: {report.decoded} files read, "
        f"{report.image_count - report.decoded} from cache"
    )
    if report.usable:
        return (
            f"usable: {len(report.good)} images for training at {report.resolution} px ({timing})"
        )
    return f"NOT usable: {report.refusal()} ({timing})"
