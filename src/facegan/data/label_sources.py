"""Where class labels come from: the raw attribute values of each item.

`data.labels` is `pattern:REGEX` (named groups searched in the item's relative
path, then in its file name) or `csv:PATH` (a header row; the first column
names the item by relative path or file name, the others are attributes).
`read_attributes` returns each item's raw values, or the reason it has none;
`facegan.data.labels` turns them into class indices. No TensorFlow.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from pathlib import Path

from facegan.data.sources import DataError

ATTRIBUTE_NAME = re.compile(r"[\w.\-]+")


class LabelError(DataError):
    """Labels cannot be read, or a requested label does not exist (one line, exit 2)."""


def read_attributes(
    spec: str, names: Sequence[str]
) -> tuple[list[str], list[list[str] | None], dict[int, str]]:
    """The raw attribute values of each item, as `data.labels` finds them.

    Args:
        spec: `pattern:REGEX` or `csv:PATH`.
        names: item names as the source lists them.

    Returns:
        (attribute names, raw values per item (None when the item has none),
        {item index: reason} for the items without values).

    Raises:
        LabelError: the CSV file cannot be read or has no attribute columns.
    """
    kind, _, argument = spec.partition(":")
    if kind == "pattern":
        return _read_pattern(argument, names)
    assert kind == "csv", spec  # DataConfig validates the prefix
    return _read_csv(Path(argument).expanduser(), names)


def _read_pattern(
    pattern: str, names: Sequence[str]
) -> tuple[list[str], list[list[str] | None], dict[int, str]]:
    compiled = re.compile(pattern)
    # groupindex maps name -> group number; the group order is the attribute order
    groups = sorted(compiled.groupindex, key=compiled.groupindex.__getitem__)
    raw: list[list[str] | None] = []
    reasons: dict[int, str] = {}
    for index, name in enumerate(names):
        match = compiled.search(name) or compiled.search(_file_name(name))
        if match is None:
            raw.append(None)
            reasons[index] = "no labels: the name does not match the data.labels pattern"
            continue
        missing = [group for group in groups if match.group(group) is None]
        if missing:
            raw.append(None)
            reasons[index] = f"no labels: the pattern matched without {', '.join(missing)}"
            continue
        raw.append([match.group(group).strip() for group in groups])
    return groups, raw, reasons


def _read_csv(
    path: Path, names: Sequence[str]
) -> tuple[list[str], list[list[str] | None], dict[int, str]]:
    header, rows = _csv_rows(path)
    attribute_names = header[1:]
    by_key: dict[str, list[list[str]]] = {}
    for row in rows:
        by_key.setdefault(_normalise(row[0]), []).append(row[1:])
    # An item is found by its relative path, or by its file name when the CSV lists
    # bare file names; a file name shared by several items is ambiguous.
    name_counts: dict[str, int] = {}
    for name in names:
        name_counts[_file_name(name)] = name_counts.get(_file_name(name), 0) + 1

    raw: list[list[str] | None] = []
    reasons: dict[int, str] = {}
    for index, name in enumerate(names):
        key = _normalise(name)
        found = by_key.get(key)
        if found is None and _file_name(name) in by_key:
            if name_counts[_file_name(name)] > 1:
                raw.append(None)
                reasons[index] = (
                    f"no labels: the CSV row {_file_name(name)!r} matches "
                    f"{name_counts[_file_name(name)]} files; use relative paths"
                )
                continue
            found = by_key[_file_name(name)]
        if found is None:
            raw.append(None)
            reasons[index] = f"no labels: no row in {path.name}"
        elif len(found) > 1 and any(values != found[0] for values in found):
            raw.append(None)
            reasons[index] = f"no labels: {len(found)} different rows in {path.name}"
        else:
            raw.append(found[0])
    return attribute_names, raw, reasons


def _csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and the data rows (cells stripped; short rows padded with '')."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:  # -sig: Excel's BOM
            table = [[cell.strip() for cell in row] for row in csv.reader(file)]
    except FileNotFoundError:
        raise LabelError(f"`data.labels` csv file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise LabelError(f"`data.labels` csv file {str(path)!r} cannot be read: {err}") from None
    table = [row for row in table if any(row)]  # blank lines
    if not table or len(table[0]) < 2:
        raise LabelError(
            f"`data.labels` csv file {str(path)!r} needs a header row and at "
            f"least two columns (the file name, then attributes)"
        )
    header = table[0]
    attributes = header[1:]
    bad = [name for name in attributes if not ATTRIBUTE_NAME.fullmatch(name)]
    if bad or len(set(attributes)) != len(attributes):
        raise LabelError(
            f"`data.labels` csv file {str(path)!r}: attribute columns need "
            f"distinct names of letters, digits, `_`, `.` or `-`; its header "
            f"is {', '.join(header)}"
        )
    width = len(header)
    rows = [(row + [""] * width)[:width] for row in table[1:]]
    return header, rows


def _file_name(name: str) -> str:
    return _normalise(name).rsplit("/", 1)[-1]


def _normalise(name: str) -> str:
    """A path in one spelling: `/` between parts, no leading `./`."""
    name = name.strip().replace(os.sep, "/")
    while name.startswith("./"):
        name = name[2:]
    return name
