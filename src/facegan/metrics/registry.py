"""The metric table: one row per metric, read by the evaluator and the report.

A row names the function that computes the metric as "module:function" and
imports it only when the metric is computed, so this table (and with it
`facegan --help` and the check of `--metrics`) loads no TensorFlow. Adding a
metric: its module in `facegan/metrics/` and one row in `METRIC_TABLE`.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Container, Mapping

# What a metric function can be given: the names `Metric.inputs` maps arguments to.
GENERATED_FEATURES = "generated_features"  # Inception features of the generated set [N, 2048]
REAL_FEATURES = "real_features"  # ... of the real set [M, 2048]
TRAIN_FEATURES = "train_features"  # ... of the training set (default: the real set)
GENERATED_PIXELS = "generated_pixels"  # the generated images, uint8 [N, H, W, C]
FACE_DETECTOR = "face_detector"  # the evaluator's `FaceDetector`, built once
INPUTS = (GENERATED_FEATURES, REAL_FEATURES, TRAIN_FEATURES, GENERATED_PIXELS, FACE_DETECTOR)
FEATURE_INPUTS = frozenset({GENERATED_FEATURES, REAL_FEATURES, TRAIN_FEATURES})


class _NanIfMissing(dict):
    """Results for `str.format_map`: a result a template names but nobody measured is nan."""

    def __missing__(self, key: str) -> float:
        return float("nan")


@dataclasses.dataclass(frozen=True)
class Line:
    """One line of the report table, shown when `key` is among the results.

    Attributes:
        key: the result the line is about.
        label: its name in the table.
        template: a `str.format` template over all the results, e.g. "{fid:.2f}".
    """

    key: str
    label: str
    template: str

    def text(self, results: Mapping[str, object]) -> str:
        """The line's value column for `results`."""
        return self.template.format_map(_NanIfMissing(results))


@dataclasses.dataclass(frozen=True)
class Note:
    """A sentence under the report table: what measuring on few images does to a metric.

    Attributes:
        key: shown only when this result is among the results.
        below: ... and the smaller of the two sets has fewer images than this.
        template: a `str.format` template over the results and `fewest` (that
            smaller set's size).
    """

    key: str
    below: int
    template: str

    def text(self, results: Mapping[str, object]) -> str | None:
        """The note for `results`, or None when it does not apply."""
        fewest = min(results.get("num_generated", 0), results.get("num_real", 0))
        if self.key not in results or fewest >= self.below:
            return None
        return "note: " + self.template.format_map(_NanIfMissing(results, fewest=fewest))


@dataclasses.dataclass(frozen=True)
class Metric:
    """One metric: what it is computed from, by what, into which results, shown how.

    Attributes:
        name: its name in `--metrics`.
        function: "module:function", imported when the metric is computed.
        inputs: the function's keyword arguments -> the input each gets (`INPUTS`).
        results: the result keys its return value fills: the value itself for
            one key, else a tuple of values in this order.
        lines: its lines of the report table, in order.
        notes: what few images do to it, said under the table.
    """

    name: str
    function: str
    inputs: Mapping[str, str]
    results: tuple[str, ...]
    lines: tuple[Line, ...]
    notes: tuple[Note, ...] = ()

    @property
    def uses_features(self) -> bool:
        """Whether it needs Inception features (so the Inception weights)."""
        return any(source in FEATURE_INPUTS for source in self.inputs.values())

    def compute(self, inputs: Callable[[str], object]) -> dict:
        """{result key: value}: the function called on `inputs(name)` for each of its inputs."""
        module, _, name = self.function.partition(":")
        function = getattr(importlib.import_module(module), name)
        value = function(**{argument: inputs(source) for argument, source in self.inputs.items()})
        values = value if len(self.results) > 1 else (value,)
        assert len(values) == len(self.results), (self.name, self.results, values)
        return dict(zip(self.results, values))


def _one_line(key: str, label: str, template: str) -> tuple[Line]:
    """The report lines of a metric with one result worth a line."""
    return (Line(key, label, template),)


_REAL_VS_GENERATED = {"features_a": REAL_FEATURES, "features_b": GENERATED_FEATURES}

# In the order `--metrics` lists them and results and reports show them.
METRIC_TABLE = (
    Metric(
        "fid",
        "facegan.metrics.fid:fid",
        _REAL_VS_GENERATED,
        ("fid",),
        _one_line("fid", "FID", "{fid:.2f}"),
        # Below the feature size the covariances are singular, and FID's bias (it
        # falls as n grows) is large: the number compares only with the same n.
        (
            Note(
                "fid",
                2048,
                "FID from {fewest} images per set (under 2048, the feature size) comes out "
                "higher than from more images of the same sets; compare FIDs only at equal "
                "image counts",
            ),
        ),
    ),
    Metric(
        "kid",
        "facegan.metrics.kid:kid_estimate",
        _REAL_VS_GENERATED,
        ("kid", "kid_std", "kid_subset"),
        _one_line("kid", "KID", "{kid:.5f} ± {kid_std:.5f}"),
        # 2 x kid.SUBSET_SIZE: below it kid_estimate draws subsets of half the smaller set.
        (
            Note(
                "kid",
                2000,
                "KID's ± is the spread over 100 subsets of {kid_subset:.0f} images per set "
                "(half the smaller set, so that subsets differ)",
            ),
        ),
    ),
    Metric(
        "pr",
        "facegan.metrics.precision_recall:precision_recall",
        {"real": REAL_FEATURES, "fake": GENERATED_FEATURES},
        ("precision", "recall"),
        (
            Line("precision", "precision", "{precision:.3f}"),
            Line("recall", "recall", "{recall:.3f}"),
        ),
    ),
    Metric(
        "face_rate",
        "facegan.metrics.face_rate:face_rate",
        {"images": GENERATED_PIXELS, "detector": FACE_DETECTOR},
        ("face_rate",),
        _one_line("face_rate", "face rate", "{face_rate:.3f}"),
    ),
    Metric(
        "memorization",
        "facegan.metrics.memorization:memorization_summary",
        {"generated": GENERATED_FEATURES, "train": TRAIN_FEATURES},
        ("memorization", "memorization_threshold", "memorization_pairs"),
        _one_line("memorization", "memorized share", "{memorization:.3f}"),
    ),
)


def metric_rows(names: Container[str]) -> tuple[Metric, ...]:
    """The rows of `names`, in table order (the order results are computed and shown)."""
    return tuple(row for row in METRIC_TABLE if row.name in names)


REPORT_LINES = tuple(line for row in METRIC_TABLE for line in row.lines)
REPORT_NOTES = tuple(note for row in METRIC_TABLE for note in row.notes)
