"""The only outer loop: plain Python around the compiled train step.

`run_session` takes a `Session` (made by `facegan.training.api`), builds or
restores the state and steps until `train.steps`, logging, sampling,
evaluating and checkpointing at their intervals. Tensors become Python
numbers only when they are logged; per step one scalar (the streak of skipped
steps) is read back so that a diverging run is rolled back promptly.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import tensorflow as tf

from facegan.artifacts.checkpoints import CheckpointStore, CheckpointWriteError
from facegan.artifacts.images import make_grid, save_png
from facegan.artifacts.logs import MetricsLog
from facegan.artifacts.run import Run
from facegan.artifacts.rundir import RunPaths
from facegan.artifacts.sampler import Sampler
from facegan.config import Config
from facegan.data.sources import DataError
from facegan.data.training_images import TrainingImages
from facegan.errors import DISK_FULL, Interrupted
from facegan.evaluate import Evaluator
from facegan.evaluate.in_training import InTrainingEval
from facegan.models import latents_from_seeds
from facegan.progress import progress_bar
from facegan.seeds import PickPart, seed_range
from facegan.training.console import describe_devices, report_data, run_logging, show_interval
from facegan.training.distribute import PEER_FAILURES, Role, WorkerLost, distributed_batches
from facegan.training.distribute import describe as describe_strategy
from facegan.training.health import CollapseMonitor, Diverged, Divergence, OverfitMonitor
from facegan.training.setup import build_state
from facegan.training.state import TrainState
from facegan.training.steps import images_per_step, make_train_step
from facegan.training.stopping import StopRequests


@dataclasses.dataclass(frozen=True)
class Session:
    """What one training session works with (see `facegan.training.api`).

    Attributes:
        paths: the run directory (None only while it is being decided).
        config: the resolved config (channels, precision, labels filled in).
        images: the training set (in memory or streamed).
        strategy: the `tf.distribute` strategy the state is built in.
        role: this process's place in the cluster; only the chief writes.
        progress: draw a progress bar (chief only).
        evaluator: for in-training evaluation (chief only, when `train.eval_every`).
    """

    paths: RunPaths | None
    config: Config
    images: TrainingImages
    strategy: tf.distribute.Strategy
    role: Role
    progress: bool
    evaluator: Evaluator | None


def run_session(session: Session) -> Run:
    """Trains until `train.steps` (or a stop); a full disk ends it with one line (exit 4)."""
    paths = session.paths
    with run_logging(paths, session.role) as log, StopRequests(paths.root) as stops:
        try:
            _train(session, log, stops)
        except tf.errors.DataLossError as err:  # a damaged shard, met at start or a new epoch
            latest = tf.train.latest_checkpoint(str(paths.checkpoints))
            kept = f"the last checkpoint {Path(latest).name} is kept" if latest else "no checkpoint"
            raise DataError(f"{session.images.describe_damage(err)}; {kept}") from None
        except OSError as err:
            if err.errno not in DISK_FULL:
                raise
            latest = tf.train.latest_checkpoint(str(paths.checkpoints))
            raise CheckpointWriteError(
                f"cannot write to {str(paths.root)!r}: {os.strerror(err.errno)}; "
                + (
                    f"the last checkpoint {Path(latest).name} is intact"
                    if latest
                    else "no checkpoint was written yet"
                ),
                err.errno,
            ) from None
    return Run(paths, session.config)


def _train(session: Session, log: logging.Logger, stops: StopRequests) -> None:
    config, role, strategy = session.config, session.role, session.strategy
    report_data(log, session.images, config.data.pack_above_gb)
    log.info(
        "devices: %s; %s, %s", describe_devices(), describe_strategy(strategy), role.describe()
    )
    state = build_state(config, strategy)
    store = state.store(
        session.paths.checkpoints, config.train.keep_checkpoints, chief=role.is_chief
    )
    restored = store.restore_latest(log)
    start, total = int(state.step.numpy()), config.train.steps
    if restored:
        log.info("resumed from %s at step %d", restored, start)
    elif config.train.init:
        log.info(
            "starting from the weights of %s (fresh optimizers)", state.load_init(config.train.init)
        )
    if start >= total:
        log.info("run is already at step %d of %d; nothing to do", start, total)
        return
    replicas = strategy.num_replicas_in_sync
    log.info(
        "training %s steps %d -> %d, batch %d%s, %dx%d px, %d channel(s) in %s",
        config.preset or "custom config",
        start,
        total,
        config.train.batch_size,
        f" ({config.train.batch_size // replicas} on each of {replicas} replicas)"
        if replicas > 1
        else "",
        config.model.resolution,
        config.model.resolution,
        config.model.channels,
        session.paths.root,
    )
    TrainingLoop(session, state, store, log, stops).run(start)


class TrainingLoop:
    """The outer loop of one training session: step, log, sample, evaluate, checkpoint."""

    def __init__(
        self,
        session: Session,
        state: TrainState,
        store: CheckpointStore,
        log: logging.Logger,
        stops: StopRequests,
    ):
        self.session, self.state, self.store, self.log, self.stops = (
            session,
            state,
            store,
            log,
            stops,
        )
        self.config, self.paths, self.strategy = session.config, session.paths, session.strategy
        self.chief, self.workers = session.role.is_chief, session.role.num_workers
        train, model, images = self.config.train, self.config.model, session.images
        self.first_batches = self._batches(int(state.step.numpy()))
        self.train_step = make_train_step(
            state, self.config, self.strategy, self.first_batches.element_spec
        )
        self.sampler = Sampler(
            state.sampling_generator,
            model.latent_dim,
            [classes for _, classes in model.label_sizes],
        )
        # The grid shows the faces of seeds train.seed .. + grid - 1 (`facegan generate
        # --seed train.seed -n grid` gives the same faces).
        self.sample_latents = latents_from_seeds(
            seed_range(train.seed, train.sample_grid), model.latent_dim
        )
        # A conditional model samples with the labels of randomly chosen training images.
        self.sample_labels = images.sample_labels(
            train.sample_grid, train.seed, PickPart.GRID_LABELS
        )
        self.divergence = Divergence(
            train.max_bad_steps, train.max_rollbacks, train.rollback_lr_factor
        )
        self.collapse = CollapseMonitor(
            images.sample_pixels(train.sample_grid, train.seed, PickPart.MONITOR)
        )
        self.overfit = OverfitMonitor()
        self.eval = (
            InTrainingEval(
                session.evaluator,
                self.config,
                self.sampler,
                state.store(self.paths.checkpoints / "best", keep=1, name="best"),
                images,
                log,
            )
            if session.evaluator is not None
            else None
        )
        # Only the chief writes logs, samples and metrics; other workers train.
        self.metrics = (
            MetricsLog(self.paths.metrics, self.paths.logs) if self.chief else _NoMetrics()
        )
        self.checkpoint_due = False
        self._reset_interval()
        self.pending: dict[str, float] = {}  # health numbers for the next log line

    def _reset_interval(self) -> None:
        self.sums: dict[str, tf.Tensor] = {}
        self.interval_steps, self.timed_steps, self.timed_seconds = 0, 0, 0.0

    def _batches(self, step: int) -> Iterator:
        return distributed_batches(
            self.strategy,
            self.session.images,
            images_per_step(self.config),
            self.config.train.seed,
            self.config.data.flip,
            start_step=step,
        )

    def run(self, start: int) -> None:
        train = self.config.train
        if start > 0:
            self.metrics.event(start, "resume", time=time.time())
        self.bar = progress_bar(
            train.steps, "train", "step", show=self.session.progress, initial=start, leave=True
        )
        self.batches, self.step, self.first = self.first_batches, start, True
        self.stops.training_started()
        self.started = time.monotonic()
        self.deadline = self.started + train.minutes * 60 if train.minutes else None
        self.next_grid = self.started + train.sample_minutes * 60 if train.sample_minutes else None
        if self.deadline is not None:
            ends = time.strftime("%H:%M", time.localtime(time.time() + train.minutes * 60))
            self.log.info(
                "time budget: %g min of training (train.minutes), until about %s, or step %d",
                train.minutes,
                ends,
                train.steps,
            )
        if start == 0 and self.chief:
            self._grid(0)  # the untrained generator: the first grid to compare with
        try:
            while self.step < train.steps:
                if self._one_step():
                    break
        except KeyboardInterrupt:
            self.log.warning(
                "aborted by a second Ctrl-C at step %d without a checkpoint; the "
                "last checkpoint is %s",
                self.step,
                self.store.latest,
            )
            raise
        except PEER_FAILURES as err:
            raise self._worker_lost(err) from None
        finally:
            self.metrics.close()
            if self.bar is not None:
                self.bar.close()
        if self.chief:
            self.log.info(
                "done: step %d; samples in %s; checkpoint %s",
                self.step,
                self.paths.samples,
                self.store.latest,
            )
        else:
            self.log.info("done: step %d (the chief wrote the checkpoint)", self.step)

    def _one_step(self) -> bool:
        """Trains one step and does what is due after it; True when the session ends."""
        train = self.config.train
        began = time.perf_counter()
        out = self.train_step(next(self.batches), tf.constant(int(self.stops.requested)))
        self.step += 1
        bad_streak = int(out["bad_streak"])  # syncs: the step has finished
        stop = float(out.pop("stop")) > 0.5  # asked of any worker: all stop here
        self._accumulate(out, time.perf_counter() - began, self.first)
        self.first = False
        if self.bar is not None:
            self.bar.update(1)
        if bad_streak:
            if bad_streak == 1:
                self.log.warning("step %d: non-finite loss or gradient; update skipped", self.step)
            if self.divergence.needs_rollback(bad_streak):
                self.step = self._roll_back(self.step, bad_streak)
                self.batches = self._batches(self.step)
                return False
        # The time budget is decided on the step's own result, the same on every
        # worker (time is not: a worker would stop alone).
        last = self.step == train.steps or (
            self.deadline is not None and self._out_of_time(self.deadline)
        )
        # Side work is not counted in img/s: it is not training throughput.
        if self.chief and (self.step % train.sample_every == 0 or last or self._grid_time()):
            self._sample(self.step)  # before the log line, which carries its diversity
        if self.step % train.log_every == 0 or last:
            self._log(self.step)
        self._side_work(self.step, bad_streak, last)
        if last and self.step < train.steps:
            self.log.info("train.minutes (%g) reached at step %d", train.minutes, self.step)
            return True
        if stop:
            self._stop(self.step)
        return False

    def _worker_lost(self, err: Exception) -> Exception:
        """A peer of a multi-worker job failed: one line that says how to continue."""
        if self.workers == 1:
            return err
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        latest = self.store.latest
        return WorkerLost(
            f"a worker of this {self.workers}-worker job stopped answering at step {self.step} "
            f"({first}); "
            + (
                f"the last checkpoint is {Path(latest).name}"
                if latest
                else "no checkpoint was written yet"
            )
            + "; restart every worker (facegan train ... --auto-resume) to continue from it"
        )

    def _accumulate(self, out: dict[str, tf.Tensor], seconds: float, first: bool) -> None:
        out = {k: v for k, v in out.items() if k != "bad_streak"}
        self.sums = {k: self.sums[k] + v for k, v in out.items()} if self.sums else dict(out)
        self.interval_steps += 1
        if first:  # tracing and graph optimisation: not throughput
            self.log.info("compiled the train step in %.1f s", seconds)
        else:
            self.timed_steps, self.timed_seconds = (
                self.timed_steps + 1,
                self.timed_seconds + seconds,
            )

    def _log(self, step: int) -> None:
        train = self.config.train
        sums = {k: float(v) for k, v in self.sums.items()}
        skipped = int(round(sums.pop("skipped", 0.0)))
        good = self.interval_steps - skipped
        # Skipped steps contribute zeros: average over the steps that trained.
        values = {k: (v / good if good else float("nan")) for k, v in sums.items()}
        values["skipped"] = float(skipped)
        if self.timed_steps:
            values["img_per_s"] = (
                self.timed_steps * images_per_step(self.config) / self.timed_seconds
            )
        values.update(self.pending)
        self.pending = {}
        self._reset_interval()
        if not self.chief:
            return
        record = self.metrics.scalars(step, values, time=time.time())
        budget = (
            f"{(time.monotonic() - self.started) / 60:.1f}/{train.minutes:g} min"
            if self.deadline is not None
            else ""
        )
        show_interval(self.log, self.bar, record, train.steps, budget)
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
        return (
            float(
                self.strategy.reduce(
                    tf.distribute.ReduceOp.SUM,
                    self.strategy.run(lambda x: x, args=(flag,)),
                    axis=None,
                )
            )
            > 0
        )

    def _side_work(self, step: int, bad_streak: int, last: bool) -> None:
        train = self.config.train
        if self.eval and (step % train.eval_every == 0 or last):
            self.eval(step, self.metrics)
        self.checkpoint_due |= step % train.checkpoint_every == 0
        # A streak of skipped steps may be the start of a divergence: wait for a good
        # step, so that a rollback target is never taken from inside a streak.
        if (self.checkpoint_due and not bad_streak) or last:
            self._save()

    def _grid_time(self) -> bool:
        """Whether `train.sample_minutes` have passed since the last timed grid (chief only)."""
        if self.next_grid is None or time.monotonic() < self.next_grid:
            return False
        self.next_grid = time.monotonic() + self.config.train.sample_minutes * 60
        return True

    def _grid(self, step: int):
        samples = self.sampler.images(self.sample_latents, labels=self.sample_labels)
        grid = make_grid(samples)
        save_png(grid, self.paths.sample_grid(step))
        self.metrics.image(step, "samples", grid)
        return samples

    def _sample(self, step: int) -> None:
        samples = self._grid(step)
        ratio, warning = self.collapse.check(samples)
        self.pending["diversity"] = ratio
        if warning:
            self.log.warning("step %d: %s", step, warning)
            self.metrics.event(step, "health", warning=warning)

    def _save(self) -> str:
        saved = self.store.save(int(self.state.step.numpy()))
        self.checkpoint_due = False
        self.log.debug("checkpoint %s", saved)
        return saved

    def _roll_back(self, step: int, bad_streak: int) -> int:
        done = int(self.state.rollbacks.numpy())
        first_bad = step - bad_streak + 1
        latest = self.store.latest
        if not self.divergence.may_roll_back(done):
            kept = (
                f"the last good checkpoint {Path(latest).name} is intact"
                if latest
                else "no checkpoint had been written yet"
            )
            raise Diverged(
                f"training diverged: steps {first_bad}-{step} all had non-finite losses or "
                f"gradients, after {done} rollback(s) (train.max_rollbacks = "
                f"{self.divergence.max_rollbacks}); {kept}. Start a new run with lower "
                f"optim.g_lr and optim.d_lr, or check the data"
            )
        rates = (
            float(self.state.g_optimizer.learning_rate.numpy()),
            float(self.state.d_optimizer.learning_rate.numpy()),
        )
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
            "(%s) with learning rates G %.3g, D %.3g",
            done + 1,
            self.divergence.max_rollbacks,
            first_bad,
            step,
            back_to,
            restored,
            rates[0] * factor,
            rates[1] * factor,
        )
        self.metrics.event(
            step,
            "rollback",
            to_step=back_to,
            g_lr=rates[0] * factor,
            d_lr=rates[1] * factor,
            time=time.time(),
        )
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
