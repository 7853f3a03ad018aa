"""The only outer loop: plain Python around the compiled train step.

`train` starts a run, `resume` continues one. Both end in `_run`, which reads
the data, builds (or restores) the state and steps until `train.steps`,
logging, sampling and checkpointing at their intervals. Tensors become Python
numbers only when they are logged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import tensorflow as tf

from facegan.artifacts.checkpoints import CheckpointStore, CheckpointWriteError, all_finite
from facegan.artifacts.images import make_grid, save_png
from facegan.artifacts.logs import MetricsLog
from facegan.artifacts.run import Run
from facegan.artifacts.rundir import (RunDirError, RunLock, RunPaths, create_run_dir,
                                      default_run_dir, open_run_dir, write_config)
from facegan.config import Config, ConfigError
from facegan.errors import Interrupted
from facegan.evaluate import Evaluator, ImageSet
from facegan.data.pipeline import DecodedImages, load_training_images
from facegan.data.sources import ImageSource, open_source
from facegan.models import generate_uint8, latents_for_seed
from facegan.seeds import Stream, rng
from facegan.training.distribute import (PEER_FAILURES, Role, WorkerLost, cluster_role,
                                         distributed_batches, make_strategy, per_replica_batch)
from facegan.training.distribute import describe as describe_strategy
from facegan.training.health import CollapseMonitor, Diverged, Divergence, OverfitMonitor
from facegan.training.precision import resolve_precision
from facegan.training.state import TrainState
from facegan.training.steps import images_per_step, make_train_step
from facegan.training.stopping import StopRequests

LOGGER_NAME = "facegan"
# Parts of the run's PICK stream (`facegan.seeds`): host-side choices made once per session.
_PICK_GRID_LABELS, _PICK_MONITOR, _PICK_EVAL_REAL, _PICK_EVAL_LABELS = 0, 1, 2, 3
_MAX_NAMED_FAILURES = 20  # on the console; train.log names every skipped file


def resolve_config(config: Config, source: ImageSource) -> Config:
    """Fills the settings left automatic (model.channels) from the data source."""
    if config.model.channels is None:
        model = dataclasses.replace(config.model, channels=source.natural_channels)
        config = dataclasses.replace(config, model=model)
    return config


def resolve_labels(config: Config, images: DecodedImages) -> Config:
    """Records the class counts and values the data's labels resolved to.

    A resumed run must see the same classes it was built with: its stored
    values are reused while parsing, and a changed count is refused.
    """
    if images.labels is None:
        return config
    if config.model.label_classes not in (None, images.label_classes):
        raise ConfigError(
            f"`model.label_classes` of this run is {config.model.label_classes!r}, but its data "
            f"now gives {images.label_classes!r}; the labels changed since the run started")
    return config.with_overrides({"model.label_classes": images.label_classes,
                                  "data.label_values": images.label_values})


def train(config: Config, run_dir: str | Path | None = None, *, overwrite: bool = False,
          progress: bool | None = None, strategy: tf.distribute.Strategy | None = None) -> Run:
    """Trains a new run from `config` and returns it.

    Args:
        config: the run's configuration (see `facegan.presets`).
        run_dir: where to write; default `runs/<preset>-<timestamp>` (a worker of a
            multi-worker cluster must name the chief's run directory).
        overwrite: if `run_dir` exists, move it aside (never deleted) instead of failing.
        progress: show a progress bar; default: when stderr is a terminal.
        strategy: the `tf.distribute` strategy; default `make_strategy(config.train)`,
            which must then run before TensorFlow has done anything else.

    Raises:
        UserError: for bad data paths, a batch the replicas cannot share, or an
            existing run directory, before any model is built.
    """
    strategy = strategy or make_strategy(config.train)
    role = cluster_role()
    per_replica_batch(strategy, config.train.batch_size)
    source = open_source(config.data.source)
    config = resolve_config(config, source)
    config = config.with_overrides({"train.precision": resolve_precision(config.train.precision,
                                                                         strategy)})
    # Missing Inception weights fail here, before the run exists; only the chief evaluates.
    evaluator = _evaluator(config) if role.is_chief else None
    images = _load_images(source, config, progress)  # and unusable data too
    config = resolve_labels(config, images)
    if not role.is_chief:
        if run_dir is None:
            raise RunDirError("a worker of a multi-worker run needs --run-dir: the chief's run "
                              "directory, on storage that every worker shares")
        return _run(RunPaths(Path(run_dir)), config, images, progress, None, strategy, role)
    paths = create_run_dir(run_dir or default_run_dir(config), overwrite=overwrite, config=config)
    with RunLock(paths):
        return _run(paths, config, images, progress, evaluator, strategy, role)


_EXECUTION_KEYS = frozenset({"train.strategy", "train.cpu_replicas"})


def resume(run_dir: str | Path, steps: int | None = None, *, progress: bool | None = None,
           strategy: tf.distribute.Strategy | None = None,
           execution: dict[str, object] | None = None) -> Run:
    """Continues a run from its latest checkpoint until `steps` (default: the run's own).

    Args:
        run_dir: the run.
        steps: the new total; default the run's `train.steps`.
        progress: show a progress bar; default: when stderr is a terminal.
        strategy: see `train`.
        execution: changes to how the run executes, not what it trains:
            `train.strategy` and `train.cpu_replicas` (e.g. resume a one-GPU
            run on eight GPUs); None values are ignored.
    """
    paths, config = open_run_dir(run_dir)
    changes = {k: v for k, v in (execution or {}).items() if v is not None}
    assert set(changes) <= _EXECUTION_KEYS, f"resume cannot change {set(changes) - _EXECUTION_KEYS}"
    if steps is not None:
        changes["train.steps"] = steps
    config = config.with_overrides(changes) if changes else config
    strategy = strategy or make_strategy(config.train)
    role = cluster_role()
    per_replica_batch(strategy, config.train.batch_size)
    if not role.is_chief:
        evaluator = None
        images = _load_images(open_source(config.data.source), config, progress)
        return _run(paths, config, images, progress, evaluator, strategy, role)
    with RunLock(paths):  # before anything is written: another trainer may be at work here
        if changes:
            write_config(paths, config)
        evaluator = _evaluator(config)
        images = _load_images(open_source(config.data.source), config, progress)
        resolve_labels(config, images)
        return _run(paths, config, images, progress, evaluator, strategy, role)


def _evaluator(config: Config) -> Evaluator | None:
    if not config.train.eval_every:
        return None
    from facegan.metrics.inception import cache_dir

    evaluator = Evaluator(cache_dir=cache_dir())
    evaluator.check_weights()
    return evaluator


def _load_images(source: ImageSource, config: Config, progress: bool | None) -> DecodedImages:
    """The same scan as `facegan inspect-data` (cached), then a decode of the good files."""
    return load_training_images(source, config.data, config.model.resolution,
                                config.model.channels, progress=_want_progress(progress))


def _run(paths: RunPaths, config: Config, images: DecodedImages, progress: bool | None,
         evaluator: Evaluator | None, strategy: tf.distribute.Strategy, role: Role) -> Run:
    with _run_logging(paths, role) as log, StopRequests(paths.root) as stops:
        try:
            _train_in(paths, config, images, progress if role.is_chief else False, evaluator,
                      log, stops, strategy, role)
        except OSError as err:
            if err.errno not in _DISK_FULL:
                raise
            latest = tf.train.latest_checkpoint(str(paths.checkpoints))
            raise CheckpointWriteError(
                f"cannot write to {str(paths.root)!r}: {os.strerror(err.errno)}; "
                + (f"the last checkpoint {Path(latest).name} is intact" if latest
                   else "no checkpoint was written yet"), err.errno) from None
    return Run(paths, config)


def _train_in(paths: RunPaths, config: Config, images: DecodedImages, progress: bool | None,
              evaluator: Evaluator | None, log: logging.Logger, stops: StopRequests,
              strategy: tf.distribute.Strategy, role: Role) -> None:
    _report_data(log, images)
    log.info("devices: %s; %s, %s", _describe_devices(), describe_strategy(strategy),
             role.describe())
    with strategy.scope():
        state = TrainState.create(config)
    store = CheckpointStore(state.checkpoint(), paths.checkpoints, config.train.keep_checkpoints,
                            chief=role.is_chief)
    restored = store.restore_latest(log)
    start = int(state.step.numpy())
    total = config.train.steps
    if restored:
        log.info("resumed from %s at step %d", restored, start)
    if start >= total:
        log.info("run is already at step %d of %d; nothing to do", start, total)
        return
    replicas = strategy.num_replicas_in_sync
    log.info("training %s steps %d -> %d, batch %d%s, %dx%d px, %d channel(s) in %s",
             config.preset or "custom config", start, total, config.train.batch_size,
             f" ({config.train.batch_size // replicas} on each of {replicas} replicas)"
             if replicas > 1 else "", config.model.resolution, config.model.resolution,
             config.model.channels, paths.root)
    in_training_eval = (InTrainingEval(evaluator, config, paths, state, images, log)
                        if evaluator is not None else None)
    _Loop(paths, config, state, store, images, strategy, role, log, stops, in_training_eval,
          progress).run(start)


# errno values that mean "the disk (or the quota, or the size limit) is full".
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class _Loop:
    """The outer loop of one training session: step, log, sample, evaluate, checkpoint.

    Per step it reads one scalar back from the device (the streak of skipped
    steps) so that a diverging run is rolled back promptly; everything else
    is converted to Python numbers only at log intervals.
    """

    def __init__(self, paths: RunPaths, config: Config, state: TrainState, store: CheckpointStore,
                 images: DecodedImages, strategy: tf.distribute.Strategy, role: Role,
                 log: logging.Logger, stops: StopRequests,
                 in_training_eval: "InTrainingEval | None", progress: bool | None):
        self.paths, self.config, self.state, self.store = paths, config, state, store
        self.images, self.log, self.stops, self.eval = images, log, stops, in_training_eval
        self.progress, self.strategy, self.chief = progress, strategy, role.is_chief
        self.workers = role.num_workers
        train = config.train
        self.first_batches = self._batches(int(state.step.numpy()))
        self.train_step = make_train_step(state, config, strategy,
                                              self.first_batches.element_spec)
        self.sample_latents = latents_for_seed(train.sample_grid, config.model.latent_dim,
                                               train.seed)
        # A conditional model samples with the labels of randomly chosen training images.
        self.sample_labels = sample_labels(images, train.sample_grid, train.seed, _PICK_GRID_LABELS)
        self.divergence = Divergence(train.max_bad_steps, train.max_rollbacks,
                                     train.rollback_lr_factor)
        pick = rng(train.seed, Stream.PICK, part=_PICK_MONITOR).choice(
            len(images), size=min(train.sample_grid, len(images)), replace=False)
        self.collapse = CollapseMonitor(images.pixels[np.sort(pick)])
        self.overfit = OverfitMonitor()
        # Only the chief writes logs, samples and metrics; other workers train.
        self.metrics = MetricsLog(paths.metrics, paths.logs) if self.chief else _NoMetrics()
        self.checkpoint_due = False
        self._reset_interval()
        self.pending: dict[str, float] = {}  # health numbers for the next log line

    def _reset_interval(self) -> None:
        self.sums: dict[str, tf.Tensor] = {}
        self.interval_steps, self.timed_steps, self.timed_seconds = 0, 0, 0.0

    def _batches(self, step: int) -> Iterator:
        train = self.config.train
        return distributed_batches(self.strategy, self.images.pixels,
                                   images_per_step(self.config), train.seed,
                                   self.config.data.flip, start_step=step,
                                   labels=self.images.labels)

    def run(self, start: int) -> None:
        train = self.config.train
        if start > 0:
            self.metrics.event(start, "resume", time=time.time())
        self.bar = _progress_bar(train.steps, start, self.progress)
        batches = self.first_batches
        step, first = start, True
        self.stops.training_started()
        deadline = time.monotonic() + train.minutes * 60 if train.minutes else None
        try:
            while step < train.steps:
                began = time.perf_counter()
                out = self.train_step(next(batches), tf.constant(int(self.stops.requested)))
                step += 1
                bad_streak = int(out["bad_streak"])  # syncs: the step has finished
                stop = float(out.pop("stop")) > 0.5  # asked of any worker: all stop here
                self._accumulate(out, time.perf_counter() - began, first)
                first = False
                if self.bar is not None:
                    self.bar.update(1)
                if bad_streak:
                    if bad_streak == 1:
                        self.log.warning("step %d: non-finite loss or gradient; update skipped",
                                         step)
                    if self.divergence.needs_rollback(bad_streak):
                        step = self._roll_back(step, bad_streak)
                        batches = self._batches(step)
                        continue
                # The time budget is decided on the step's own result, the same on
                # every worker (time is not: a worker would stop alone).
                last = step == train.steps or (deadline is not None and self._out_of_time(
                    deadline))
                # Side work is not counted in img/s: it is not training throughput.
                if self.chief and (step % train.sample_every == 0 or last):
                    self._sample(step)  # before the log line, which carries its diversity
                if step % train.log_every == 0 or last:
                    self._log(step)
                self._side_work(step, bad_streak, last)
                if last and step < train.steps:
                    self.log.info("train.minutes (%g) reached at step %d", train.minutes, step)
                    break
                if stop:
                    self._stop(step)
        except KeyboardInterrupt:
            self.log.warning("aborted by a second Ctrl-C at step %d without a checkpoint; the "
                             "last checkpoint is %s", step, self.store.latest)
            raise
        except PEER_FAILURES as err:
            if self.workers == 1:
                raise
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
            latest = self.store.latest
            raise WorkerLost(
                f"a worker of this {self.workers}-worker job stopped answering at step {step} "
                f"({first}); " + (f"the last checkpoint is {Path(latest).name}" if latest else
                                  "no checkpoint was written yet")
                + "; restart every worker (facegan train ... --auto-resume) to continue from it"
            ) from None
        finally:
            self.metrics.close()
            if self.bar is not None:
                self.bar.close()
        if self.chief:
            self.log.info("done: step %d; samples in %s; checkpoint %s", step,
                          self.paths.samples, self.store.latest)
        else:
            self.log.info("done: step %d (the chief wrote the checkpoint)", step)

    def _accumulate(self, out: dict[str, tf.Tensor], seconds: float, first: bool) -> None:
        out = {k: v for k, v in out.items() if k != "bad_streak"}
        self.sums = {k: self.sums[k] + v for k, v in out.items()} if self.sums else dict(out)
        self.interval_steps += 1
        if first:  # tracing and graph optimisation: not throughput
            self.log.info("compiled the train step in %.1f s", seconds)
        else:
            self.timed_steps, self.timed_seconds = self.timed_steps + 1, self.timed_seconds + seconds

    def _log(self, step: int) -> None:
        train = self.config.train
        sums = {k: float(v) for k, v in self.sums.items()}
        skipped = int(round(sums.pop("skipped", 0.0)))
        good = self.interval_steps - skipped
        # Skipped steps contribute zeros: average over the steps that trained.
        values = {k: (v / good if good else float("nan")) for k, v in sums.items()}
        values["skipped"] = float(skipped)
        if self.timed_steps:
            values["img_per_s"] = (self.timed_steps * images_per_step(self.config)
                                   / self.timed_seconds)
        values.update(self.pending)
        self.pending = {}
        self._reset_interval()
        if not self.chief:
            return
        record = self.metrics.scalars(step, values, time=time.time())
        _show(self.log, self.bar, record, train.steps)
        warning = self.overfit.check(record.get("d_real_positive"))
        if warning:
            self.log.warning("step %d: %s", step, warning)
            self.metrics.event(step, "health", warning=warning)

    def _out_of_time(self, deadline: float) -> bool:
        """Whether the budget is spent, agreed by every worker (the chief's clock decides)."""
        over = time.monotonic() >= deadline
        if self.workers == 1:
            return over
        # One tiny all-reduce, only under a time budget: the chief's answer wins.
        flag = tf.constant(float(over and self.chief))
        return float(self.strategy.reduce(tf.distribute.ReduceOp.SUM, self.strategy.run(
            lambda x: x, args=(flag,)), axis=None)) > 0

    def _side_work(self, step: int, bad_streak: int, last: bool) -> None:
        train = self.config.train
        if self.eval and (step % train.eval_every == 0 or last):
            self.eval(step, self.metrics)
        self.checkpoint_due |= step % train.checkpoint_every == 0
        # A streak of skipped steps may be the start of a divergence: wait for a good
        # step, so that a rollback target is never taken from inside a streak.
        if (self.checkpoint_due and not bad_streak) or last:
            self._save()

    def _sample(self, step: int) -> None:
        samples = generate_uint8(self.state.sampler, self.sample_latents, labels=self.sample_labels)
        grid = make_grid(samples)
        save_png(grid, self.paths.sample_grid(step))
        self.metrics.image(step, "samples", grid)
        ratio, warning = self.collapse.check(samples)
        self.pending["diversity"] = ratio
        if warning:
            self.log.warning("step %d: %s", step, warning)
            self.metrics.event(step, "health", warning=warning)

    def _save(self) -> str:
        if not all_finite(self.state.checkpoint_variables()):
            # Unreachable while the step guards its updates; refuse rather than save NaN.
            raise AssertionError("refusing to write a checkpoint with non-finite values")
        saved = self.store.save(int(self.state.step.numpy()))
        self.checkpoint_due = False
        self.log.debug("checkpoint %s", saved)
        return saved

    def _roll_back(self, step: int, bad_streak: int) -> int:
        done = int(self.state.rollbacks.numpy())
        first_bad = step - bad_streak + 1
        latest = self.store.latest
        if not self.divergence.may_roll_back(done):
            kept = (f"the last good checkpoint {Path(latest).name} is intact" if latest
                    else "no checkpoint had been written yet")
            raise Diverged(
                f"training diverged: steps {first_bad}-{step} all had non-finite losses or "
                f"gradients, after {done} rollback(s) (train.max_rollbacks = "
                f"{self.divergence.max_rollbacks}); {kept}. Start a new run with lower "
                f"optim.g_lr and optim.d_lr, or check the data")
        rates = (float(self.state.g_optimizer.learning_rate.numpy()),
                 float(self.state.d_optimizer.learning_rate.numpy()))
        if latest is not None:
            restored = Path(self.store.restore_latest(self.log)).name
        else:
            # Before the first checkpoint the target is the initial state, which the
            # seed reproduces exactly.
            with self.strategy.scope():
                self.state.reset_to_initial(self.config)
            restored = "the initial weights"
        # The restore brought back the checkpoint's rates and count: set them from before.
        factor = self.divergence.lr_factor
        self.state.set_learning_rates(rates[0] * factor, rates[1] * factor)
        self.state.rollbacks.assign(done + 1)
        self.state.bad_streak.assign(0)
        back_to = int(self.state.step.numpy())
        self.log.warning(
            "rollback %d of %d: steps %d-%d had non-finite losses or gradients; back to step %d "
            "(%s) with learning rates G %.3g, D %.3g", done + 1, self.divergence.max_rollbacks,
            first_bad, step, back_to, restored, rates[0] * factor, rates[1] * factor)
        self.metrics.event(step, "rollback", to_step=back_to, g_lr=rates[0] * factor,
                           d_lr=rates[1] * factor, time=time.time())
        self._reset_interval()
        self.checkpoint_due = False
        if self.bar is not None:
            self.bar.n = back_to
            self.bar.refresh()
        return back_to

    def _stop(self, step: int) -> None:
        if self.stops.requested:
            self.log.warning("%s", self.stops.describe())
        else:
            self.log.warning("another worker was asked to stop: stopping after this step")
        saved = self._save()
        self.log.warning("stopped at step %d; saved %s", step, saved)
        raise Interrupted(self.paths.root, step, self.stops.signum or signal.SIGTERM)


class _NoMetrics:
    """What a non-chief worker logs: nothing."""

    def scalars(self, step: int, values, **extra) -> dict:
        return {"step": step, **values, **extra}

    def event(self, *args, **kwargs) -> None:
        pass

    def image(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


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
        pick = np.sort(rng(train.seed, Stream.PICK, part=_PICK_EVAL_REAL)
                       .permutation(len(images))[:count])
        self.real = ImageSet.real(images.pixels[pick], f"{count} training images")
        self.latents = latents_for_seed(train.eval_num, config.model.latent_dim, train.seed,
                                        Stream.EVAL_LATENT)
        self.labels = sample_labels(images, train.eval_num, train.seed, _PICK_EVAL_LABELS)
        self.best_dir = paths.checkpoints / "best"
        self.best_file = self.best_dir / "best.json"
        self.best = CheckpointStore(state.checkpoint(), self.best_dir, keep=1, name="best")
        self.best_fid = (json.loads(self.best_file.read_text())["fid"]
                         if self.best_file.exists() else float("inf"))

    def __call__(self, step: int, metrics: MetricsLog) -> None:
        pixels = generate_uint8(self.state.sampler, self.latents, labels=self.labels)
        fake = ImageSet(pixels, f"{len(pixels)} samples at step {step}")
        results = self.evaluator.compare(fake, self.real, self.METRICS)
        metrics.scalars(step, {"eval/fid": results["fid"], "eval/face_rate": results["face_rate"]},
                        event="evaluate", time=time.time())
        improved = results["fid"] < self.best_fid
        if improved:
            self.best_fid = results["fid"]
            self.best.save(step)
            partial = self.best_file.with_name("best.json.partial")
            partial.write_text(json.dumps({"step": step, "fid": self.best_fid}) + "\n")
            partial.replace(self.best_file)
        self.log.info("eval at step %d: FID %.2f, face rate %.3f%s", step, results["fid"],
                      results["face_rate"], "  (best so far)" if improved else "")


def sample_labels(images: DecodedImages, count: int, seed: int, part: int) -> np.ndarray | None:
    """Labels of `count` training images drawn with replacement (None: unconditional)."""
    if images.labels is None:
        return None
    pick = rng(seed, Stream.PICK, part=part).integers(0, len(images.labels), count)
    return images.labels[pick]


def _show(log: logging.Logger, bar, record: dict, total: int) -> None:
    if None in (record["g_loss"], record["d_loss"]):
        summary = "every step of this interval was skipped (non-finite values)"
    else:
        summary = (f"G {record['g_loss']:.3f}  D {record['d_loss']:.3f}  "
                   f"D(x) {record['d_real']:.2f}  D(G(z)) {record['d_fake']:.2f}"
                   + (f"  {record['img_per_s']:.0f} img/s" if "img_per_s" in record else ""))
    if record.get("skipped"):
        summary += f"  ({record['skipped']:.0f} step(s) skipped)"
    if bar is not None:
        bar.set_postfix_str(summary, refresh=False)
        log.debug("step %d/%d  %s", record["step"], total, summary)
    else:
        log.info("step %d/%d  %s", record["step"], total, summary)


def _report_data(log: logging.Logger, images: DecodedImages) -> None:
    log.info("data: %d images from %s", len(images), images.description)
    report = images.report
    if report is not None:
        notes = [f"{count} {what}" for count, what in (
            (len(report.exact_duplicates), "exact-duplicate group(s)"),
            (len(report.near_duplicates), "near-duplicate group(s)"),
            (len(report.smaller_than_resolution()), "image(s) smaller than the resolution"),
            (len(report.non_square()), "non-square image(s), centre-cropped")) if count]
        if notes:
            log.info("data check: %s (all kept; the full report is in train.log)",
                     ", ".join(notes))
        log.debug("data report:\n%s", report.format_text(max_names=1000).rstrip())
    if images.failures:
        log.warning("skipped %d file(s) that cannot be used (all listed in train.log)",
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


class _RunLogFile(logging.FileHandler):
    """train.log; a failed write (a full disk) is reported once on the console, not per line."""

    _failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self._failed:
            self._failed = True
            error = sys.exc_info()[1]
            print(f"facegan: warning: cannot write {self.baseFilename}: {error}; "
                  f"its later lines are lost", file=sys.stderr)


@contextlib.contextmanager
def _run_logging(paths: RunPaths, role: Role) -> Iterator[logging.Logger]:
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


__all__ = ["make_strategy", "resolve_config", "resume", "train"]
