"""Evaluation: generated (or real) images against real ones.

- `evaluator`: `Evaluator` (Inception features with a cache, the face detector,
  every metric of `facegan.metrics`) and `ImageSet`.
- `reports`: `evaluate_run`, `evaluate_real`, `format_table` and
  `format_notes` (`facegan evaluate`).
- `in_training`: `InTrainingEval`, FID and face rate while a run trains.
"""

from facegan.evaluate.evaluator import Evaluator, ImageSet, real_image_set
from facegan.evaluate.reports import evaluate_real, evaluate_run, format_notes, format_table
from facegan.metrics import FEATURE_METRICS, METRICS, parse_metrics

__all__ = [
    "Evaluator",
    "FEATURE_METRICS",
    "ImageSet",
    "METRICS",
    "evaluate_real",
    "evaluate_run",
    "format_notes",
    "format_table",
    "parse_metrics",
    "real_image_set",
]
