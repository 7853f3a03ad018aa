"""Class labels for conditional training, read from file names or a CSV file.

`data.labels` says where an item's attributes come from:

- `pattern:REGEX`: the named groups of a regular expression, searched in the
  item's path relative to the data folder (as the source lists it) and, if that
  does not match, in its file name alone (so `^`-anchored patterns also work when
  the images sit in a sub-folder or a zip's top folder). UTKFace:
  `pattern:^(?P<age>\\d+)_(?P<gender>\\d)_(?P<race>\\d)_`.
- `csv:PATH`: a CSV file with a header row; its first column names the item
  (its relative path, or just its file name), every other column is an attribute.

Each attribute becomes a class index. An attribute named in `data.label_bins`
is numeric and binned: class i holds the values in [edge i, edge i+1). Every
other attribute is categorical: one class per distinct value, sorted (as numbers
when all values are numbers). The resolved categorical values are stored in the
run's `data.label_values` and the class counts in `model.label_classes`, so a
resumed run, `generate` and `evaluate` map indices back to the same values even
if the data changes.

An item without labels (no match, no CSV row, a value outside the bins) is
skipped with a reason, like a broken file; it never stops a run.

This module imports no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

from facegan.config import DataConfig, parse_label_classes
from facegan.data.label_sources import LabelError, read_attributes

__all__ = [
    "Attribute",
    "LabelError",
    "LabelSchema",
    "ItemLabels",
    "label_items",
    "read_attributes",
    "parse_label_bins",
    "parse_label_values",
    "parse_label_requests",
    "schema_from_config",
]

# Characters that the stored forms `gender:2,age:7` and `gender=0,1;race=0,1` use as
# separators: they cannot appear in attribute names or categorical values.
_SEPARATORS = frozenset(",;=:")

# A class with fewer training images than this is named in a warning when training starts.
RARE_CLASS_IMAGES = 20


# ------------------------------------------------------------------ one attribute


@dataclasses.dataclass(frozen=True)
class Attribute:
    """One conditioning attribute and how its raw values become class indices.

    Attributes:
        name: the attribute (a regex group name or a CSV column header).
        edges: binned numeric attribute: class i holds values in
            [edges[i], edges[i + 1]); empty for a categorical attribute.
        values: categorical attribute: class i is `values[i]`; empty when binned.
    """

    name: str
    edges: tuple[float, ...] = ()
    values: tuple[str, ...] = ()
    names: tuple[str, ...] = ()  # readable class names (data.label_names), or none

    def __post_init__(self) -> None:
        assert bool(self.edges) != bool(self.values), "binned or categorical, not both"
        if self.names and len(self.names) != self.classes:
            raise LabelError(
                f"data.label_names gives `{self.name}` {len(self.names)} names "
                f"but it has {self.classes} classes ({self._raw_allowed()}): name "
                f"each class in that order"
            )

    @property
    def binned(self) -> bool:
        return bool(self.edges)

    @property
    def classes(self) -> int:
        return len(self.edges) - 1 if self.binned else len(self.values)

    def class_of(self, raw: str) -> int | None:
        """The class index of a raw value (or of a class name); None if it has no class."""
        if raw in self.names:
            return self.names.index(raw)
        if self.binned:
            number = _number(raw)
            if number is None or not self.edges[0] <= number < self.edges[-1]:
                return None
            # bisect: the last edge <= number; edges are few, a scan is clearest
            return max(i for i, edge in enumerate(self.edges[:-1]) if edge <= number)
        if raw in self.values:
            return self.values.index(raw)
        # "1.0" asks for the class "1" when the values are numbers
        number = _number(raw)
        if number is not None:
            for index, value in enumerate(self.values):
                if _number(value) == number:
                    return index
        return None

    def class_names(self) -> list[str]:
        """Readable names of the classes, in index order: `age 20–30`, `gender 1`.

        With data.label_names: `gender male`, `age child`.
        """
        if self.names:
            return [f"{self.name} {name}" for name in self.names]
        if self.binned:
            return [
                f"{self.name} {_edge(low)}–{_edge(high)}"
                for low, high in zip(self.edges[:-1], self.edges[1:])
            ]
        return [f"{self.name} {value}" for value in self.values]

    def allowed(self) -> str:
        """What a value of this attribute may be, for error messages: its names first."""
        if self.names:
            return (
                f"one of {', '.join(self.names)} (or {self._raw_allowed().removeprefix('one of ')})"
            )
        return self._raw_allowed()

    def _raw_allowed(self) -> str:
        """What a raw value (as the data had it) may be."""
        if self.binned:
            bins = ", ".join(
                f"{_edge(a)}–{_edge(b)}" for a, b in zip(self.edges[:-1], self.edges[1:])
            )
            return (
                f"a number from {_edge(self.edges[0])} to below {_edge(self.edges[-1])} "
                f"(classes {bins})"
            )
        return "one of " + ", ".join(self.values)

    def why_unlabelled(self, raw: str) -> str:
        """The reason an item whose value is `raw` has no class (for the failure list)."""
        if self.binned:
            if _number(raw) is None:
                return f"{self.name} {raw!r} is not a number (data.label_bins bins it)"
            return (
                f"{self.name} {raw} is outside data.label_bins "
                f"[{_edge(self.edges[0])}, {_edge(self.edges[-1])})"
            )
        return f"{self.name} {raw!r} is not one of the run's values ({', '.join(self.values)})"


# ------------------------------------------------------------------ all attributes


@dataclasses.dataclass(frozen=True)
class LabelSchema:
    """The conditioning attributes of a run, in order (the columns of a label array)."""

    attributes: tuple[Attribute, ...]

    @property
    def names(self) -> list[str]:
        return [attribute.name for attribute in self.attributes]

    @property
    def label_classes(self) -> str:
        """For `model.label_classes`: `age:7,gender:2,race:5`."""
        return ",".join(f"{a.name}:{a.classes}" for a in self.attributes)

    @property
    def label_values(self) -> str:
        """For `data.label_values`: `gender=0,1;race=0,1,2,3,4` (categorical attributes only)."""
        return ";".join(f"{a.name}={','.join(a.values)}" for a in self.attributes if not a.binned)

    def attribute(self, name: str) -> Attribute:
        """The attribute called `name`.

        Raises:
            LabelError: there is none; the message lists the run's attributes.
        """
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        raise LabelError(
            f"the run has no label attribute `{name}`; its attributes: {', '.join(self.names)}"
        )

    def class_names(self, name: str) -> list[str]:
        """Readable names of every class of attribute `name` (for per-label sample grids)."""
        return self.attribute(name).class_names()

    def rare_classes(self, labels: np.ndarray, minimum: int = RARE_CLASS_IMAGES) -> list[str]:
        """The classes with fewer than `minimum` of the labelled images, readably.

        A class seen a handful of times still gets its own embedding and its own
        share of random labels in `generate`; the user should know before training.

        Args:
            labels: int32 [N, A] class indices of the training images, schema order.
            minimum: fewer images than this make a class rare.

        Returns:
            One entry per rare class: "gender 3: 1 image".
        """
        rare = []
        for column, attribute in enumerate(self.attributes):
            counts = np.bincount(labels[:, column], minlength=attribute.classes)
            for name, count in zip(attribute.class_names(), counts):
                if count < minimum:
                    rare.append(f"{name}: {count} image{'' if count == 1 else 's'}")
        return rare

    def encode(self, request: Mapping[str, str]) -> list[int | None]:
        """Maps a request like {"gender": "1", "age": "25"} to class indices.

        Args:
            request: attribute -> raw value, as a user types it (`--label age=25`).
                A binned attribute takes a number inside its bins; a categorical
                one takes one of its values.

        Returns:
            One entry per attribute, in schema order: its class index, or None
            for an attribute the request leaves open (the caller chooses, e.g. at
            random).

        Raises:
            LabelError: an unknown attribute or a value without a class; the
                message names the attribute and what it allows.
        """
        chosen: dict[str, int] = {}
        for name, raw in request.items():
            if name not in self.names:
                raise LabelError(
                    f"label {name}={raw}: the run has no label attribute `{name}`; "
                    f"its attributes: {', '.join(self.names)}"
                )
            attribute = self.attribute(name)
            index = attribute.class_of(str(raw).strip())
            if index is None:
                raise LabelError(f"label {name}={raw}: {name} must be {attribute.allowed()}")
            chosen[name] = index
        return [chosen.get(name) for name in self.names]


def schema_from_config(data_cfg: DataConfig, label_classes: str) -> LabelSchema:
    """Rebuilds a resolved run's schema from its config.

    Args:
        data_cfg: the run's data section (`label_bins`, `label_values`).
        label_classes: the run's `model.label_classes` (attribute order and counts).

    Raises:
        LabelError: the three settings do not describe the same attributes.
    """
    bins = parse_label_bins(data_cfg.label_bins)
    values = parse_label_values(data_cfg.label_values)
    readable = parse_label_values(data_cfg.label_names, "data.label_names")
    unknown = sorted(set(readable) - {name for name, _ in parse_label_classes(label_classes)})
    if unknown:
        raise LabelError(
            f"data.label_names names `{unknown[0]}`, which is not an attribute of "
            f"this run ({label_classes})"
        )
    attributes = []
    for name, count in parse_label_classes(label_classes):
        if name in bins:
            attribute = Attribute(name, edges=bins[name], names=readable.get(name, ()))
        elif name in values:
            attribute = Attribute(name, values=values[name], names=readable.get(name, ()))
        else:
            raise LabelError(
                f"`model.label_classes` names `{name}`, which neither "
                f"data.label_bins nor data.label_values describes"
            )
        if attribute.classes != count:
            raise LabelError(
                f"`model.label_classes` gives `{name}` {count} classes but the "
                f"data settings give it {attribute.classes}"
            )
        attributes.append(attribute)
    return LabelSchema(tuple(attributes))


# ------------------------------------------------------------------ parsing settings


def parse_label_bins(text: str) -> dict[str, tuple[float, ...]]:
    """`age=0,13,20;height=0,150,200` -> {"age": (0.0, 13.0, 20.0), ...} (validated by config)."""
    bins = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, edges = part.partition("=")
        bins[name.strip()] = tuple(float(edge) for edge in edges.split(","))
    return bins


def parse_label_values(text: str, setting: str = "data.label_values") -> dict[str, tuple[str, ...]]:
    """`gender=0,1;race=0,1,2` -> {"gender": ("0", "1"), "race": ("0", "1", "2")}."""
    values = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, listed = part.partition("=")
        entries = tuple(value.strip() for value in listed.split(","))
        if not sep or not name.strip() or not all(entries):
            raise LabelError(
                f"`{setting}` must be NAME=VALUE,VALUE,... with `;` "
                f"between attributes; received {text!r}"
            )
        values[name.strip()] = entries
    return values


def parse_label_requests(items: Sequence[str]) -> dict[str, str]:
    """Command-line requests `["gender=1", "age=25"]` -> {"gender": "1", "age": "25"}.

    Raises:
        LabelError: an item is not NAME=VALUE, or names an attribute twice.
    """
    request: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise LabelError(
                f"a label request must be NAME=VALUE, e.g. gender=1; received {item!r}"
            )
        if name in request:
            raise LabelError(f"label `{name}` is requested twice ({request[name]} and {value})")
        request[name] = value
    return request


# ------------------------------------------------------------------ labelling items


@dataclasses.dataclass
class ItemLabels:
    """The labels of a list of items.

    Attributes:
        labels: int32 [N, A]: class indices, in schema order; -1 in the rows of
            unlabelled items.
        labelled: bool [N]: which items have labels.
        unlabelled: (name, reason) of each item without labels (raw names, in
            item order).
        schema: the attributes, with the categorical values resolved.
    """

    labels: np.ndarray
    labelled: np.ndarray
    unlabelled: list[tuple[str, str]]
    schema: LabelSchema


def label_items(names: Sequence[str], data_cfg: DataConfig) -> ItemLabels:
    """Reads the labels of `names` as `data_cfg.labels` says, and resolves the classes.

    Categorical values come from `data_cfg.label_values` when it is set (a
    resumed run keeps its class indices), else from the labelled items.

    Args:
        names: item names as the source lists them (relative paths).
        data_cfg: `labels`, `label_bins` and `label_values`.

    Returns:
        The labels; unlabelled items are reported, not raised.

    Raises:
        LabelError: the settings cannot work (no such CSV file or column, bins of
            an attribute the data lacks, an attribute with one class) or no item
            at all has labels.
    """
    assert data_cfg.labels, "label_items needs data.labels"
    attribute_names, raw, reasons = read_attributes(data_cfg.labels, names)
    attributes = _resolve_attributes(attribute_names, raw, reasons, data_cfg)
    labelled = np.array([row is not None for row in raw], dtype=bool)
    if not labelled.any():
        first = next(iter(sorted(reasons.items())), None)
        example = f" (first: {names[first[0]]}: {first[1]})" if first else ""
        raise LabelError(
            f"`data.labels` {data_cfg.labels!r} gives labels to none of the "
            f"{len(names)} images{example}"
        )
    schema = LabelSchema(tuple(attributes))
    for attribute in schema.attributes:
        if attribute.classes < 2:
            only = f" ({attribute.values[0]!r})" if attribute.values else ""
            raise LabelError(
                f"label attribute `{attribute.name}` has a single class{only} "
                f"over the {int(labelled.sum())} labelled images; a conditioning "
                f"attribute needs at least 2 (leave it out of data.labels)"
            )

    labels = np.full((len(names), len(attribute_names)), -1, np.int32)  # [N, A]
    for index, row in enumerate(raw):
        if row is not None:
            labels[index] = [a.class_of(value) for a, value in zip(schema.attributes, row)]
    unlabelled = [(names[i], reasons[i]) for i in sorted(reasons)]
    return ItemLabels(labels, labelled, unlabelled, schema)


def _resolve_attributes(
    attribute_names: list[str], raw: list, reasons: dict[int, str], data_cfg: DataConfig
) -> list[Attribute | None]:
    """Each attribute's classes; rows that fit none are unlabelled (in `raw` and `reasons`)."""
    bins = parse_label_bins(data_cfg.label_bins)
    stored = parse_label_values(data_cfg.label_values)
    for name in list(bins) + list(stored):
        if name not in attribute_names:
            field = "data.label_bins" if name in bins else "data.label_values"
            raise LabelError(
                f"`{field}` names `{name}`, which data.labels does not provide; "
                f"it provides {', '.join(attribute_names)}"
            )

    # First the binned attributes and the stored values, which need no other item...
    fixed = {name: Attribute(name, edges=edges) for name, edges in bins.items()}
    fixed.update(
        {
            name: Attribute(name, values=values)
            for name, values in stored.items()
            if name not in bins
        }
    )
    for index, row in enumerate(raw):
        if row is not None:
            reason = _check_row(row, attribute_names, fixed)
            if reason:
                raw[index], reasons[index] = None, reason
    # ...then the other categorical values, from the items that are still labelled.
    attributes = []
    for column, name in enumerate(attribute_names):
        if name in fixed:
            attributes.append(fixed[name])
            continue
        distinct = _sorted_values({row[column] for row in raw if row is not None})
        attributes.append(Attribute(name, values=distinct) if distinct else None)
    return attributes


def _check_row(
    row: list[str], attribute_names: list[str], fixed: Mapping[str, Attribute]
) -> str | None:
    """Why a row of raw values cannot be labelled; None if it can."""
    for name, value in zip(attribute_names, row):
        if not value:
            return f"no value for {name}"
        attribute = fixed.get(name)
        if attribute is not None:
            if attribute.class_of(value) is None:
                return attribute.why_unlabelled(value)
        elif _SEPARATORS & set(value):
            return (
                f"{name} {value!r} contains one of {''.join(sorted(_SEPARATORS))}, which "
                f"data.label_values cannot store"
            )
    return None


# ------------------------------------------------------------------ small helpers


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _sorted_values(values: set[str]) -> tuple[str, ...]:
    """In numeric order when every value is a number (2 before 10), else in text order."""
    if all(_number(value) is not None for value in values):
        return tuple(sorted(values, key=lambda value: (_number(value), value)))
    return tuple(sorted(values))


def _edge(value: float) -> str:
    return f"{value:g}"
