"""Between a Keras-trained GAN and facegan runs: the data pipeline and the checkpoint."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from facegan.artifacts.images import save_png
from facegan.artifacts.rundir import RunDirError, RunPaths, create_run_dir, open_run_dir
from facegan.config import Config
from facegan.data.opening import open_training_data
from facegan.training.steps import images_per_step


def facegan_dataset(config: Config, start_step: int = 0) -> tf.data.Dataset:
    """The endless float32 [-1, 1] batches `facegan train` trains on, from step `start_step`.

    Opened as `facegan train` opens it (`open_training_data`): a folder is
    decoded into memory, a pack is streamed.
    """
    _, images = open_training_data(config)
    return images.batches(images_per_step(config), config.train.seed, config.data.flip, start_step)


def save_checkpoint(gan, paths: RunPaths) -> str:
    """A checkpoint of `gan` at its step (as the loop writes one) and that step's grid.

    Raises:
        AssertionError: a weight is not finite (the step's guard makes this
            unreachable; a checkpoint is never written from non-finite state).
        CheckpointWriteError: the disk refused (nothing listed before is touched).
    """
    store = gan._state.store(paths.checkpoints, gan.config.train.keep_checkpoints)
    prefix = store.save(gan.step)
    save_png(gan.sample_grid(), paths.sample_grid(gan.step))
    return prefix


def restore_checkpoint(gan, paths: RunPaths) -> int | None:
    """Restores the run's newest readable checkpoint into `gan`; returns its step (None: none).

    Raises:
        CheckpointReadError: checkpoints exist but none can be read.
    """
    store = gan._state.store(paths.checkpoints, gan.config.train.keep_checkpoints)
    prefix = store.restore_latest()
    return None if prefix is None else store.step_of(prefix)


def latest_step(gan, paths: RunPaths) -> int | None:
    """The step of the run's newest listed checkpoint, without restoring it (None: none)."""
    store = gan._state.store(paths.checkpoints, gan.config.train.keep_checkpoints)
    return None if store.latest is None else store.step_of(store.latest)


def open_or_create_run(gan, run_dir: str | Path) -> RunPaths:
    """The run at `run_dir` for `gan`: created (with config.json) if absent, else opened.

    Raises:
        RunDirError: `run_dir` is not a run, or a run of another model (its
            checkpoints could not be restored into this one).
    """
    root = Path(run_dir)
    if not root.is_dir() or not any(root.iterdir()):  # a file: create_run_dir refuses it
        return create_run_dir(root, config=gan.config)
    paths, config = open_run_dir(root)
    if config.model != gan.config.model:
        raise RunDirError(
            f"run {str(root)!r} holds another model (its config.json's model section "
            f"differs from this GAN's); give RunCheckpoint a new directory, or continue "
            f"that run with GAN.from_run({str(root)!r})"
        )
    return paths
