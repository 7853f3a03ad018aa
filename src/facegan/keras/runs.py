"""Between a Keras-trained GAN and facegan runs: the data pipeline and the checkpoint."""

from __future__ import annotations

import tensorflow as tf

from facegan.artifacts.checkpoints import CheckpointStore, all_finite
from facegan.artifacts.images import save_png
from facegan.artifacts.rundir import RunPaths
from facegan.config import Config
from facegan.data.packed import is_packed
from facegan.data.pipeline import load_training_images, training_dataset
from facegan.data.sources import open_source
from facegan.data.streaming import open_packed
from facegan.training.steps import images_per_step


def facegan_dataset(config: Config, start_step: int = 0) -> tf.data.Dataset:
    """The endless float32 [-1, 1] batches `facegan train` trains on, from step `start_step`."""
    batch, seed, flip = images_per_step(config), config.train.seed, config.data.flip
    if is_packed(config.data.source):
        _, packed = open_packed(config)
        return packed.batches(batch, seed, flip, start_step)
    source = open_source(config.data.source, links=config.data.links)
    images = load_training_images(source, config.data, config.model.resolution,
                                  config.model.channels, progress=False)
    return training_dataset(images.pixels, batch, seed, flip, start_step=start_step,
                            labels=images.labels)


def save_checkpoint(gan, paths: RunPaths) -> str:
    """A checkpoint of `gan` at its step (as the loop writes one) and that step's grid.

    Raises:
        AssertionError: a weight is not finite (the step's guard makes this
            unreachable; a checkpoint is never written from non-finite state).
        CheckpointWriteError: the disk refused (nothing listed before is touched).
    """
    state, train = gan._state, gan.config.train
    if not all_finite(state.checkpoint_variables()):
        raise AssertionError("refusing to write a checkpoint with non-finite values")
    store = CheckpointStore(state.checkpoint(), paths.checkpoints, train.keep_checkpoints)
    prefix = store.save(gan.step)
    save_png(gan.sample_grid(), paths.sample_grid(gan.step))
    return prefix
