"""The only outer loop: plain Python around the compiled train step.

`train` starts a run, `resume` continues one. Both end in `_run`, which reads
the data, builds (or restores) the state and steps until `train.steps`,
logging, sampling and checkpointing at their intervals. Tensors become Python
numbers only when they are logged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import tensorflow as tf

from facegan.artifacts.images import make_grid, save_png
from facegan.artifacts.logs import MetricsLog
from facegan.artifacts.run import Run
from facegan.artifacts.rundir import (RunLock, RunPaths, create_run_dir, default_run_dir,
                                      open_run_dir, write_config)
from facegan.config import Config
from facegan.errors import Interrupted
from facegan.evaluate import Evaluator, ImageSet
from facegan.data.pipeline import DecodedImages, decode_source, training_dataset
from facegan.data.sources import ImageSource, open_source
from facegan.models import generate_uint8, latents_for_seed
from facegan.training.state import Checkpoints, TrainState
from facegan.training.steps import make_gan_train_step

LOGGER_NAME = "facegan"
_MAX_NAMED_FAILURES = 20  # on the console; train.log names every skipped file


def resolve_config(config: Config, source: ImageSource) -> Config:
    """Fills the settings left automatic (model.channels) from the data source."""
    if config.model.channels is None:
        model = dataclasses.replace(config.model, channels=source.natural_channels)
        config = dataclasses.replace(config, model=model)
    return config


def train(config: Config, run_dir: str | Path | None = None, *, overwrite: bool = False,
          progress: bool | None = None) -> Run:
    """Trains a new run from `config` and returns it.

    Args:
        config: the run's configuration (see `facegan.presets`).
        run_dir: where to write; default `runs/<preset>-<timestamp>`.
        overwrite: if `run_dir` exists, move it aside (never deleted) instead of failing.
        progress: show a progress bar; default: when stderr is a terminal.

    Raises:
        UserError: for bad data paths or an existing run directory, before any
            model is built.
    """
    source = open_source(config.data.source)
    config = resolve_config(config, source)
    evaluator = _evaluator(config)  # missing Inception weights fail here, before the run exists
    paths = create_run_dir(run_dir or default_run_dir(config), overwrite=overwrite)
    with RunLock(paths):
        write_config(paths, config)
        return _run(paths, config, source, progress, evaluator)


def resume(run_dir: str | Path, steps: int | None = None, *,
           progress: bool | None = None) -> Run:
    """Continues a run from its latest checkpoint until `steps` (default: the run's own)."""
    paths, config = open_run_dir(run_dir)
    with RunLock(paths):  # before anything is written: another trainer may be at work here
        if steps is not None and steps != config.train.steps:
            config = config.with_overrides({"train.steps": steps})
            write_config(paths, config)
        source = open_source(config.data.source)
        return _run(paths, config, source, progress, _evaluator(config))


def _evaluator(config: Config) -> Evaluator | None:
    if not config.train.eval_every:
        return None
    from facegan.metrics.inception import cache_dir

    evaluator = Evaluator(cache_dir=cache_dir())
    evaluator.check_weights()
    return evaluator


def _run(paths: RunPaths, config: Config, source: ImageSource, progress: bool | None,
         evaluator: Evaluator | None) -> Run:
    with _run_logging(paths) as log:
        images = decode_source(source, config.model.resolution, config.model.channels,
                               progress=_want_progress(progress))
        _report_data(log, images)

        log.info("devices: %s", _describe_devices())
        strategy = tf.distribute.get_strategy()  # the default (one device) strategy for now
        with strategy.scope():
            state = TrainState.create(config)
        checkpoints = Checkpoints(state, paths.checkpoints, config.train.keep_checkpoints)
        restored = checkpoints.restore_latest()
        start = int(state.step.numpy())
        total = config.train.steps
        if restored:
            log.info("resumed from %s at step %d", restored, start)
        if start >= total:
            log.info("run is already at step %d of %d; nothing to do", start, total)
            return Run(paths, config)
        log.info("training %s steps %d -> %d, batch %d, %dx%d px, %d channel(s) in %s",
                 config.preset or "custom config", start, total, config.train.batch_size,
                 config.model.resolution, config.model.resolution, config.model.channels,
                 paths.root)
        in_training_eval = (InTrainingEval(evaluator, config, paths, state, images, log)
                            if evaluator is not None else None)
        _loop(paths, config, state, checkpoints, images, strategy, start, progress, log,
              in_training_eval)
    return Run(paths, config)


def _loop(paths: RunPaths, config: Config, state: TrainState, checkpoints: Checkpoints,
          images: DecodedImages, strategy: tf.distribute.Strategy, start: int,
          progress: bool | None, log: logging.Logger,
          in_training_eval: "InTrainingEval | None") -> None:
    train = config.train
    batches = iter(training_dataset(images.pixels, train.batch_size, train.seed,
                                    config.data.flip, start_step=start))
    train_step = make_gan_train_step(state, config, strategy)
    sample_latents = latents_for_seed(train.sample_grid, config.model.latent_dim, train.seed)
    metrics = MetricsLog(paths.metrics, paths.logs)
    if start > 0:
        metrics.event(start, "resume", time=time.time())
    bar = _progress_bar(train.steps, start, progress)

    sums: dict[str, tf.Tensor] = {}
    interval_steps, timed_steps, timed_seconds = 0, 0, 0.0
    step = start
    try:
        while step < train.steps:
            began = time.perf_counter()
            out = train_step(next(batches))
            sums = {k: sums[k] + v for k, v in out.items()} if sums else dict(out)
            step += 1
            interval_steps += 1
            log_now = step % train.log_every == 0 or step == train.steps
            if log_now:
                values = {k: float(v) / interval_steps for k, v in sums.items()}  # syncs
            seconds = time.perf_counter() - began
            if step == start + 1:  # tracing and graph optimisation: not throughput
                log.info("compiled the train step in %.1f s", seconds)
            else:
                timed_steps, timed_seconds = timed_steps + 1, timed_seconds + seconds
            if log_now:
                if timed_steps:
                    values["img_per_s"] = timed_steps * train.batch_size / timed_seconds
                record = metrics.scalars(step, values, time=time.time())
                _show(log, bar, record, train.steps)
                sums, interval_steps, timed_steps, timed_seconds = {}, 0, 0, 0.0
            if bar is not None:
                bar.update(1)
            # Side work below is not counted in img/s: it is not training throughput.
            if step % train.sample_every == 0 or step == train.steps:
                grid = make_grid(generate_uint8(state.generator, sample_latents))
                save_png(grid, paths.sample_grid(step))
                metrics.image(step, "samples", grid)
            if in_training_eval and (step % train.eval_every == 0 or step == train.steps):
                in_training_eval(step, metrics)
            if step % train.checkpoint_every == 0 or step == train.steps:
                log.debug("checkpoint %s", checkpoints.save())
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        saved = checkpoints.save()
        log.warning("interrupted by the user at step %d; saved %s", int(state.step.numpy()), saved)
        raise Interrupted(paths.root, int(state.step.numpy())) from None
    finally:
        metrics.close()
        if bar is not None:
            bar.close()
    log.info("done: step %d; samples in %s; checkpoint %s", step, paths.samples,
             checkpoints.latest)


class InTrainingEval:
    """FID and face rate of the current generator, and the best-FID checkpoint.

    The same `eval_num` latents are used at every evaluation, so successive
    numbers differ only by the weights. The best checkpoint lives in
    checkpoints/best/ with best.json beside it ({"step", "fid"}), so a resumed
    run keeps comparing against the best FID so far.
    """

    METRICS = ("fid", "face_rate")

    def __init__(self, evaluator: Evaluator, config: Config, paths: RunPaths, state: TrainState,
                 images: DecodedImages, log: logging.Logger):
        self.evaluator, self.state, self.log = evaluator, state, log
        train = config.train
        count = min(train.eval_num, len(images))
        pick = np.sort(np.random.default_rng(train.seed).permutation(len(images))[:count])
        self.real = ImageSet.real(images.pixels[pick], f"{count} training images")
        self.latents = latents_for_seed(train.eval_num, config.model.latent_dim, train.seed + 1)
        self.best_dir = paths.checkpoints / "best"
        self.best_file = self.best_dir / "best.json"
        self.best = tf.train.CheckpointManager(state.checkpoint(), str(self.best_dir),
                                               max_to_keep=1, checkpoint_name="best")
        self.best_fid = (json.loads(self.best_file.read_text())["fid"]
                         if self.best_file.exists() else float("inf"))

    def __call__(self, step: int, metrics: MetricsLog) -> None:
        pixels = generate_uint8(self.state.generator, self.latents)
        fake = ImageSet(pixels, f"{len(pixels)} samples at step {step}")
        results = self.evaluator.compare(fake, self.real, self.METRICS)
        metrics.scalars(step, {"eval/fid": results["fid"], "eval/face_rate": results["face_rate"]},
                        event="evaluate", time=time.time())
        improved = results["fid"] < self.best_fid
        if improved:
            self.best_fid = results["fid"]
            self.best.save(checkpoint_number=step)
            partial = self.best_file.with_name("best.json.partial")
            partial.write_text(json.dumps({"step": step, "fid": self.best_fid}) + "\n")
            partial.replace(self.best_file)
        self.log.info("eval at step %d: FID %.2f, face rate %.3f%s", step, results["fid"],
                      results["face_rate"], "  (best so far)" if improved else "")


def _show(log: logging.Logger, bar, record: dict, total: int) -> None:
    summary = (f"G {record['g_loss']:.3f}  D {record['d_loss']:.3f}  "
               f"D(x) {record['d_real']:.2f}  D(G(z)) {record['d_fake']:.2f}"
               + (f"  {record['img_per_s']:.0f} img/s" if "img_per_s" in record else "")
               if None not in (record["g_loss"], record["d_loss"]) else
               f"non-finite loss: G {record['g_loss']}  D {record['d_loss']}")
    if bar is not None:
        bar.set_postfix_str(summary, refresh=False)
        log.debug("step %d/%d  %s", record["step"], total, summary)
    else:
        log.info("step %d/%d  %s", record["step"], total, summary)


def _report_data(log: logging.Logger, images: DecodedImages) -> None:
    log.info("data: %d images from %s", len(images), images.description)
    if images.failures:
        log.warning("skipped %d file(s) that could not be decoded (all listed in train.log)",
                    len(images.failures))
        for i, (name, reason) in enumerate(images.failures):
            level = logging.WARNING if i < _MAX_NAMED_FAILURES else logging.DEBUG
            log.log(level, "  skipped %s: %s", name, reason)


def _describe_devices() -> str:
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return f"{len(gpus)} GPU ({', '.join(d.name for d in gpus)})"
    return "CPU only (no GPU visible to TensorFlow)"


def _want_progress(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


def _progress_bar(total: int, start: int, progress: bool | None):
    if not _want_progress(progress):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, desc="train")


class _ConsoleHandler(logging.Handler):
    """Writes through tqdm so that log lines do not tear the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging must never stop training
            self.handleError(record)


@contextlib.contextmanager
def _run_logging(paths: RunPaths) -> Iterator[logging.Logger]:
    """Logs to the console (INFO) and to the run's train.log (DEBUG) for one run."""
    log = logging.getLogger(LOGGER_NAME)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    file_handler = logging.FileHandler(paths.log_file, encoding="utf-8")
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    console = _ConsoleHandler()
    console.setLevel(logging.INFO)
    console.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(file_handler)
    log.addHandler(console)
    try:
        yield log
    finally:
        log.removeHandler(file_handler)
        log.removeHandler(console)
        file_handler.close()


__all__ = ["resolve_config", "resume", "train"]
