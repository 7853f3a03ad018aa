"""What a training session tells a person: train.log, the console and the progress bar.

The run's logger ("facegan") writes INFO and up to the console (through tqdm,
so lines do not tear the bar) and, on the chief, everything to the run's
train.log. This module formats the lines: the data report, the devices, one
line per log interval.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

import tensorflow as tf

from facegan.artifacts.rundir import RunPaths
from facegan.data.labels import RARE_CLASS_IMAGES
from facegan.training.distribute import Role

LOGGER_NAME = "facegan"
_MAX_NAMED_FAILURES = 20  # on the console; train.log names every skipped file


def show_interval(log: logging.Logger, bar, record: dict, total: int, budget: str = "") -> None:
    """One log interval's line: on the bar (and in train.log), or on the console.

    `budget` (e.g. "12.5/30 min") is the time spent of `train.minutes`, if set.
    """
    if None in (record["g_loss"], record["d_loss"]):
        summary = "every step of this interval was skipped (non-finite values)"
    else:
        summary = (
            f"G {record['g_loss']:.3f}  D {record['d_loss']:.3f}  "
            f"D(x) {record['d_real']:.2f}  D(G(z)) {record['d_fake']:.2f}"
            + (f"  {record['img_per_s']:.0f} img/s" if "img_per_s" in record else "")
        )
    if record.get("skipped"):
        summary += f"  ({record['skipped']:.0f} step(s) skipped)"
    if budget:
        summary += f"  {budget}"
    if bar is not None:
        bar.set_postfix_str(summary, refresh=False)
        log.debug("step %d/%d  %s", record["step"], total, summary)
    else:
        log.info("step %d/%d  %s", record["step"], total, summary)


def report_data(log: logging.Logger, images, pack_above_gb: float = 0.0) -> None:
    """How many images, what the data check noticed, every skipped file; a hint to pack.

    Args:
        log: the run's logger.
        images: the training set (`facegan.data.training_images.TrainingImages`).
        pack_above_gb: in memory above this many GB, say once that packing helps.
    """
    log.info("data: %d images from %s", len(images), images.description)
    held = images.memory_bytes
    if pack_above_gb and held > pack_above_gb * 1e9:
        log.warning(
            "data: the decoded images take %.1f GB of memory on every worker; "
            "`facegan pack SOURCE --out DIR --resolution %d` once, then `--data DIR`, "
            "streams them instead: a faster start and far less memory "
            "(docs/data.md)",
            held / 1e9,
            images.image_shape[0],
        )
    report = images.report
    if report is not None:
        notes = [
            f"{count} {what}"
            for count, what in (
                (len(report.exact_duplicates), "exact-duplicate group(s)"),
                (len(report.near_duplicates), "near-duplicate group(s)"),
                (len(report.smaller_than_resolution()), "image(s) smaller than the resolution"),
                (len(report.non_square()), "non-square image(s), centre-cropped"),
            )
            if count
        ]
        if notes:
            log.info("data check: %s (all kept; the full report is in train.log)", ", ".join(notes))
        log.debug("data report:\n%s", report.format_text(max_names=1000).rstrip())
    rare = images.rare_classes()
    if rare:
        # generate and the page draw every class equally often, a rare one included
        log.warning(
            "labels: %d class(es) have fewer than %d images, too few to learn, yet "
            "`generate` draws them as often as any other: %s (leave such values out "
            "with data.labels)",
            len(rare),
            RARE_CLASS_IMAGES,
            "; ".join(rare),
        )
    if images.failures:
        log.warning(
            "skipped %d file(s) that cannot be used (all listed in train.log)", len(images.failures)
        )
        for i, (name, reason) in enumerate(images.failures):
            level = logging.WARNING if i < _MAX_NAMED_FAILURES else logging.DEBUG
            log.log(level, "  skipped %s: %s", name, reason)


def describe_devices() -> str:
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return f"{len(gpus)} GPU ({', '.join(d.name for d in gpus)})"
    return "CPU only (no GPU visible to TensorFlow)"


class _ConsoleHandler(logging.Handler):
    """Writes through tqdm so that log lines do not tear the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging must never stop training
            self.handleError(record)


class _RunLogFile(logging.FileHandler):
    """train.log; a failed write (a full disk) is reported once on the console, not per line."""

    _failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self._failed:
            self._failed = True
            error = sys.exc_info()[1]
            print(
                f"facegan: warning: cannot write {self.baseFilename}: {error}; "
                f"its later lines are lost",
                file=sys.stderr,
            )


@contextlib.contextmanager
def run_logging(paths: RunPaths, role: Role) -> Iterator[logging.Logger]:
    """Logs to the console (INFO) and, on the chief, to the run's train.log (DEBUG)."""
    log = logging.getLogger(LOGGER_NAME)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    handlers: list[logging.Handler] = []
    if role.is_chief:
        file_handler = _RunLogFile(paths.log_file, encoding="utf-8", errors="backslashreplace")
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handlers.append(file_handler)
    console = _ConsoleHandler()
    console.setLevel(logging.INFO)
    prefix = "" if role.is_chief else f"[{role.task_type} {role.task_id}] "
    console.setFormatter(logging.Formatter(prefix + "%(message)s"))
    handlers.append(console)
    for handler in handlers:
        log.addHandler(handler)
    try:
        yield log
    finally:
        for handler in handlers:
            log.removeHandler(handler)
            handler.close()
