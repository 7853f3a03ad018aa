"""The data report as Markdown or HTML (`DataReport.to_markdown` / `to_html`).

Every file name and reason in a report comes from the user's files, so each one
is escaped for the markup it lands in (`markdown_escape`, `html_escape`).
"""

from __future__ import annotations

import html
import re
from typing import Any

from facegan.data.problems import display_name
from facegan.data.report import NEAR_DUPLICATE_BITS, DataReport, by_name

# Characters with a meaning inside a Markdown line or table cell: code, emphasis,
# links and images, raw HTML and autolinks, table cells, strikethrough, entities,
# math, e-mail autolinks. A backslash makes each one literal (CommonMark lets any
# ASCII punctuation be escaped). Names never start a line, so list and heading
# markers (- + . # =) need no escape there.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#!|~&$@])")


def markdown_escape(name: str) -> str:
    """`name` as Markdown text that renders literally, also inside a table cell."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", display_name(name))


def html_escape(name: str) -> str:
    """`name` as HTML text (quotes too, so it is safe in attributes)."""
    return html.escape(display_name(name), quote=True)


class Markdown:
    escape = staticmethod(markdown_escape)

    def page(self, title: str, body: list[str]) -> str:
        return f"# {markdown_escape(title)}\n\n" + "\n".join(body) + "\n"

    def table(self, rows: list[tuple[str, str]]) -> list[str]:
        out = ["| | |", "| --- | --- |"]
        out += [f"| {key} | {value} |" for key, value in rows]
        return out + [""]

    def section(self, title: str, entries: list[str], more: int) -> list[str]:
        out = [f"## {title}", ""] + [f"- {entry}" for entry in entries]
        if more:
            out.append(f"- … and {more} more")
        return out + [""]


class Html:
    escape = staticmethod(html_escape)

    def page(self, title: str, body: list[str]) -> str:
        safe = html.escape(title)
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{safe}</title>\n<style>body{{font-family:sans-serif;max-width:60em;"
            "margin:2em auto}td,th{padding:.2em .8em;text-align:left}"
            "li{font-family:monospace}</style></head><body>\n"
            f"<h1>{safe}</h1>\n" + "\n".join(body) + "\n</body></html>\n"
        )

    def table(self, rows: list[tuple[str, str]]) -> list[str]:
        return (
            ["<table>"]
            + [f"<tr><th>{key}</th><td>{value}</td></tr>" for key, value in rows]
            + ["</table>"]
        )

    def section(self, title: str, entries: list[str], more: int) -> list[str]:
        out = [f"<h2>{title}</h2>", "<ul>"] + [f"<li>{entry}</li>" for entry in entries]
        if more:
            out.append(f"<li>… and {more} more</li>")
        return out + ["</ul>"]


def render(report: DataReport, fmt: Any, max_names: int) -> str:
    """One report body for both markup languages; every name and reason escaped by `fmt`."""
    esc = fmt.escape
    stats = report.short_side_stats()
    rows = [
        ("source", esc(report.description)),
        ("verdict", "usable" if report.usable else "NOT usable"),
        ("image files", str(len(report.items))),
        ("usable", str(len(report.good))),
        ("bad (skipped)", str(len(report.bad))),
        ("ignored (not a supported image extension)", str(len(report.ignored))),
        ("sizes", esc(", ".join(f"{w}x{h} ({n})" for (w, h), n in report.sizes().most_common(5)))),
        (
            "short side (px)",
            f"{stats['min']}–{stats['max']}, median {stats['median']}" if stats else "–",
        ),
        ("modes", esc(", ".join(f"{m} ({n})" for m, n in report.modes().items()))),
        ("training resolution", f"{report.resolution} px"),
    ]
    body = fmt.table(rows)
    for title, entries in _markup_sections(report, esc):
        if entries:
            body += fmt.section(
                f"{title} ({len(entries)})", entries[:max_names], max(0, len(entries) - max_names)
            )
    return fmt.page("Dataset report", body)


def _markup_sections(report: DataReport, esc) -> list[tuple[str, list[str]]]:
    res = report.resolution
    return [
        (
            "Bad files, skipped",
            [f"{esc(i.name)}: {esc(i.kind)}: {esc(i.reason)}" for i in by_name(report.bad)],
        ),
        ("Ignored, not a supported image extension", [esc(n) for n in report.ignored]),
        (
            "Exact duplicates (same bytes)",
            [" = ".join(esc(n) for n in g) for g in report.exact_duplicates],
        ),
        (
            f"Near duplicates (perceptual hash within {NEAR_DUPLICATE_BITS} bits)",
            [" ~ ".join(esc(n) for n in g) for g in report.near_duplicates],
        ),
        (f"Smaller than {res} px, upscaled", [esc(n) for n in report.smaller_than_resolution()]),
        ("Non-square, centre-cropped", [esc(n) for n in report.non_square()]),
        (
            "Extension differs from content",
            [f"{esc(n)}: {esc(f)}" for n, f in report.extension_mismatches()],
        ),
        ("Animated, first frame used", [esc(n) for n in report.animated()]),
        ("Rotated by their EXIF orientation", [esc(n) for n in report.rotated()]),
    ]
