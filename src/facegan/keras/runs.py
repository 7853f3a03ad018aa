"""Between a Keras-trained GAN and facegan runs: the data pipeline and the checkpoint."""

from __future__ import annotations

import tensorflow as tf

from facegan.artifacts.images import save_png
from facegan.artifacts.rundir import RunPaths
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
