"""Realism metrics: FID, KID, precision/recall, face rate, memorization.

One small module per metric, each a pure function of features or images.
This package's own namespace holds only the metric table (`registry`: names,
inputs, functions as module paths, result keys, report lines; no TensorFlow),
so the command line can list and check them before anything heavy loads.
"""

from __future__ import annotations

from collections.abc import Sequence

from facegan.config import ConfigError
from facegan.metrics.registry import (
    METRIC_TABLE,
    REPORT_LINES,
    REPORT_NOTES,
    Line,
    Metric,
    Note,
    metric_rows,
)

METRICS = tuple(row.name for row in METRIC_TABLE)
# The metrics computed from Inception features (face_rate runs the face detector).
FEATURE_METRICS = frozenset(row.name for row in METRIC_TABLE if row.uses_features)


def parse_metrics(text: str | Sequence[str]) -> tuple[str, ...]:
    """'fid,kid' -> ('fid', 'kid'), validated against METRICS (order kept, no repeats)."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise ConfigError(
            f"--metrics must be a comma-separated list of {', '.join(METRICS)}; "
            f"received {','.join(names) if names else repr(text)}"
        )
    return tuple(dict.fromkeys(names))


__all__ = [
    "FEATURE_METRICS",
    "Line",
    "METRICS",
    "METRIC_TABLE",
    "Metric",
    "Note",
    "REPORT_LINES",
    "REPORT_NOTES",
    "metric_rows",
    "parse_metrics",
]
