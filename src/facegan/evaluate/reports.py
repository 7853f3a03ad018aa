"""Evaluating a run or two real sets, and the table a person reads.

`evaluate_run` measures a run's generator against real photos and records the
results in the run (metrics.jsonl, TensorBoard, a memorization grid);
`evaluate_real` measures two real sets against each other (the floor a
generator can reach); `format_table` prints either.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from facegan.artifacts.images import make_grid, save_png
from facegan.artifacts.logs import MetricsLog
from facegan.data.opening import dataset_size
from facegan.evaluate.evaluator import Evaluator, ImageSet, real_image_set
from facegan.metrics import METRICS, REPORT_LINES, REPORT_NOTES


def format_table(results: dict, title: str) -> str:
    """A small aligned table of the numeric results, for the terminal.

    One line per `facegan.metrics.REPORT_LINES` entry whose result is present,
    labelled and formatted as the metric table says, then the image counts.
    """
    rows = [(line.label, line.text(results)) for line in REPORT_LINES if line.key in results]
    rows.append(("images", f"{results['num_generated']} vs {results['num_real']}"))
    width = max(len(label) for label, _ in rows)
    lines = [title, "-" * min(max(len(title), width + 20), 72)]
    lines += [f"{label:<{width}}  {text}" for label, text in rows]
    return "\n".join(lines)


def format_notes(results: dict) -> list[str]:
    """What the image counts do to the numbers, one line each (`REPORT_NOTES`; [] if nothing).

    Printed under `format_table`: FID from few images is biased upward, and
    KID's spread comes from smaller subsets than the references use.
    """
    return [text for note in REPORT_NOTES if (text := note.text(results)) is not None]


def evaluate_run(
    run,
    evaluator: Evaluator,
    data: str | None = None,
    metrics: Sequence[str] = METRICS,
    num: int = 2000,
    seed: int = 0,
) -> dict:
    """Evaluates a run's latest generator against real images; logs and returns the results.

    Args:
        run: a `facegan.artifacts.run.Run`.
        evaluator: holds the networks and the feature cache.
        data: real images to compare with (default: the run's own training data).
        metrics: names from METRICS.
        num: generated images, and at most this many real ones.
        seed: seeds the generated latents and the choice of real images.

    The results are appended to the run's metrics.jsonl (event "evaluate") and
    TensorBoard as eval/<name>; a memorization grid (generated | nearest
    training image) is written to evaluation/ when memorization is measured.
    """
    model = run.config.model
    real = real_image_set(
        data or run.config.data.source,
        model.resolution,
        model.channels,
        num,
        seed,
        progress=evaluator.progress,
    )
    train = None
    # A shipped model's training photos are not here: it is checked against `data`.
    if data is not None and "memorization" in metrics and not run.shipped:
        train = real_image_set(
            run.config.data.source,
            model.resolution,
            model.channels,
            num,
            seed,
            progress=evaluator.progress,
        )
    step = run.step
    generated = ImageSet(
        run.generate(num, seed=seed), f"{num} samples of {run.name} at step {step}"
    )
    results = evaluator.compare(generated, real, metrics, train)
    results["step"] = step
    results["real"] = real.description

    pairs = results.pop("memorization_pairs", None)
    if pairs:
        train_pixels = (train or real).pixels
        tiles = [tile for g, t in pairs for tile in (generated.pixels[g], train_pixels[t])]
        prefix = f"{run.name}-" if run.shipped else ""  # a model's grid goes to the cwd
        grid_path = run.outputs / "evaluation" / f"{prefix}memorization-step-{step:07d}.png"
        save_png(make_grid(np.stack(tiles), columns=2), grid_path)
        results["memorization_grid"] = str(grid_path)

    numbers = {
        f"eval/{k}": v for k, v in results.items() if isinstance(v, float) and not k.endswith("_s")
    }
    if run.shipped:  # read-only: the results are printed, never written into the package
        return results
    log = MetricsLog(run.paths.metrics, run.paths.logs)
    try:
        log.scalars(
            step,
            numbers,
            event="evaluate",
            time=time.time(),
            real=real.description,
            num_generated=results["num_generated"],
            num_real=results["num_real"],
        )
    finally:
        log.close()
    return results


def evaluate_real(
    evaluator: Evaluator,
    first: str,
    second: str,
    resolution: int = 64,
    channels: int = 3,
    metrics: Sequence[str] = METRICS,
    num: int | None = None,
    seed: int = 0,
) -> dict:
    """Metrics between two real image sets (a sanity baseline: how low can FID go?).

    The first set plays "real", the second "generated"; face rate is measured
    on the second. When both name the same dataset, the two sets are disjoint
    parts of it (`num` images each, default half of it).
    """
    if first == second:
        total = dataset_size(first)
        num = num or total // 2
        real = real_image_set(first, resolution, channels, num, seed, evaluator.progress)
        other = real_image_set(
            second, resolution, channels, num, seed, evaluator.progress, skip=num
        )
    else:
        real = real_image_set(first, resolution, channels, num, seed, evaluator.progress)
        other = real_image_set(second, resolution, channels, num, seed, evaluator.progress)
    results = evaluator.compare(other, real, metrics)
    results.pop("memorization_pairs", None)
    results["real"], results["generated"] = real.description, other.description
    return results
