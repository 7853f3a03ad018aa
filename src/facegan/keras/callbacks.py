"""Keras callbacks for a GAN: what it learns (`SampleGrid`), and crash-safe saves (`RunCheckpoint`)."""

from __future__ import annotations

from pathlib import Path

import keras

from facegan.artifacts.images import save_png
from facegan.artifacts.rundir import RunLock
from facegan.keras.runs import latest_step, open_or_create_run, restore_checkpoint, save_checkpoint


class SampleGrid(keras.callbacks.Callback):
    """Saves the model's sample grid as `DIR/step-NNNNNNN.png` every `every` epochs.

    Named by the model's train step (as a run's grids are), which only grows
    across `fit` calls, so a later fit never writes over an earlier grid.

    The grid shows the same seeds every time (train.seed .. + count - 1, as a
    `facegan train` run's grids do), so successive grids compare face by face.

    Args:
        directory: where the PNGs go (created).
        every: epochs between grids.
        count: faces per grid (default the config's `train.sample_grid`).
    """

    def __init__(self, directory: str | Path, every: int = 1, count: int | None = None):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be at least 1; received {every}")
        self.directory, self.every, self.count = Path(directory), every, count
        self.saved: list[Path] = []

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if (epoch + 1) % self.every:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"step-{self.model.step:07d}.png"
        self.saved.append(save_png(self.model.sample_grid(self.count), path))


class RunCheckpoint(keras.callbacks.Callback):
    """Saves the GAN into a facegan run as it trains, and continues that run when `fit` starts.

    facegan's crash-safe alternative to `keras.callbacks.BackupAndRestore`, whose
    `latest.weights.h5` is written in place: a process killed during that write
    leaves a damaged file that every later `fit` fails to load. This callback
    saves through the run's checkpoint store, which writes each checkpoint
    beside the last and publishes it with a rename, so a kill at any moment
    (kill -9 included) leaves the previous checkpoint intact and the run resumable.

    When `fit` starts, the run is created (config.json) if it does not exist,
    locked against a second trainer, and, when its newest checkpoint is ahead
    of the model, restored into the model: re-running the same script after a
    crash continues where the last checkpoint left off. As with
    `BackupAndRestore`, when Keras knows the epoch length (`steps_per_epoch`,
    or a dataset of known size) the epoch count resumes too, so
    `fit(epochs=N)` still ends after N epochs in all.

    The run is a facegan run: `facegan generate`, `evaluate`, `serve`,
    `export` and `train --resume` take it, and `GAN.from_run` loads it.

    Args:
        run_dir: the run directory (created on the first `fit`).
        every_n_steps: train steps between checkpoints (default: the config's
            `train.checkpoint_every`); one more is written when `fit` ends.
    """

    def __init__(self, run_dir: str | Path, every_n_steps: int | None = None):
        super().__init__()
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError(f"every_n_steps must be at least 1; received {every_n_steps}")
        self.run_dir, self.every_n_steps = Path(run_dir), every_n_steps
        self.restored_step: int | None = None  # the step restored at the last fit's start
        self._paths = None
        self._lock: RunLock | None = None

    def on_train_begin(self, logs=None) -> None:
        gan = self.model
        self._release()  # a fit that raised never reached on_train_end
        self._paths = open_or_create_run(gan, self.run_dir)
        self._lock = RunLock(self._paths)
        self._lock.acquire()
        self.restored_step = None
        latest = latest_step(gan, self._paths)
        if latest is not None and latest > gan.step:
            self.restored_step = restore_checkpoint(gan, self._paths)
            steps = self.params.get("steps") if self.params else None
            if steps:  # resume the epoch count as BackupAndRestore does
                gan._initial_epoch = gan.step // steps
        gan._run_dir = self._paths.root.absolute()

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        every = self.every_n_steps or self.model.config.train.checkpoint_every
        if self.model.step % every == 0:
            save_checkpoint(self.model, self._paths)

    def on_train_end(self, logs=None) -> None:
        self.model._initial_epoch = None  # what we set was for this fit only
        try:
            save_checkpoint(self.model, self._paths)  # a no-op when this step is saved
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
