"""Training logs: one JSON object per log interval, plus TensorBoard summaries."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf


class MetricsLog:
    """Appends metrics to `metrics.jsonl` and writes them as TensorBoard scalars.

    The JSONL file is appended to (never truncated), so a resumed run keeps
    its history; each line is flushed as it is written.
    """

    def __init__(self, jsonl_path: Path, tensorboard_dir: Path):
        self.jsonl_path = jsonl_path
        self._writer = tf.summary.create_file_writer(str(tensorboard_dir))

    def scalars(self, step: int, values: Mapping[str, float], **extra) -> dict:
        """Logs numbers at `step`; `extra` fields go to the JSONL line only."""
        record = {"step": int(step), **extra, **{k: _finite_or_none(v) for k, v in values.items()}}
        with self.jsonl_path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        with self._writer.as_default(step=int(step)):
            for name, value in values.items():
                tf.summary.scalar(name, value)
        self._writer.flush()
        return record

    def event(self, step: int, event: str, **fields) -> None:
        """Appends a non-metric line, e.g. {"step": 500, "event": "resume"}.

        A resumed run re-runs the steps after its last checkpoint, so lines
        after a "resume" event supersede earlier lines with larger steps.
        """
        with self.jsonl_path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"step": int(step), "event": event, **fields}) + "\n")

    def image(self, step: int, name: str, image: np.ndarray) -> None:
        """Logs one uint8 image [H, W, C] to TensorBoard."""
        with self._writer.as_default(step=int(step)):
            tf.summary.image(name, image[None], max_outputs=1)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def _finite_or_none(value: float) -> float | None:
    # JSON has no NaN/Infinity; null keeps each line valid JSON for any reader.
    value = float(value)
    return value if math.isfinite(value) else None


def read_metrics(path: Path) -> list[dict]:
    """Reads metrics.jsonl back (skips a torn last line left by a crash)."""
    records = []
    if not path.exists():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
