"""Everything a run must save to continue exactly: networks, optimizers, step, RNG."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import tensorflow as tf

from facegan.config import Config
from facegan.models import build_discriminator, build_generator


@dataclasses.dataclass
class TrainState:
    """The trainable state of one run. Build it inside the strategy's scope.

    Attributes:
        generator, discriminator: the two Keras models.
        g_optimizer, d_optimizer: one Adam each (built, so slots exist before a restore).
        step: int64 counter of completed train steps.
        rng: the noise generator; its state is checkpointed so a resumed run draws
            the same noise as an uninterrupted one.
    """

    generator: keras.Model
    discriminator: keras.Model
    g_optimizer: keras.optimizers.Optimizer
    d_optimizer: keras.optimizers.Optimizer
    step: tf.Variable
    rng: tf.random.Generator

    @classmethod
    def create(cls, config: Config) -> "TrainState":
        seed = config.train.seed
        generator = build_generator(config.model, seed=seed)
        discriminator = build_discriminator(config.model, seed=seed)
        optim = config.optim
        g_optimizer = keras.optimizers.Adam(optim.g_lr, beta_1=optim.beta1, beta_2=optim.beta2,
                                            epsilon=optim.epsilon, name="g_adam")
        d_optimizer = keras.optimizers.Adam(optim.d_lr, beta_1=optim.beta1, beta_2=optim.beta2,
                                            epsilon=optim.epsilon, name="d_adam")
        # Slots must exist before a checkpoint is restored into them.
        g_optimizer.build(generator.trainable_variables)
        d_optimizer.build(discriminator.trainable_variables)
        return cls(
            generator=generator,
            discriminator=discriminator,
            g_optimizer=g_optimizer,
            d_optimizer=d_optimizer,
            step=tf.Variable(0, dtype=tf.int64, trainable=False, name="step"),
            rng=tf.random.Generator.from_seed(seed),
        )

    def checkpoint(self) -> tf.train.Checkpoint:
        return tf.train.Checkpoint(
            generator=self.generator,
            discriminator=self.discriminator,
            g_optimizer=self.g_optimizer,
            d_optimizer=self.d_optimizer,
            step=self.step,
            rng=self.rng,
        )


class Checkpoints:
    """Saves and restores a `TrainState` through `tf.train.CheckpointManager`."""

    def __init__(self, state: TrainState, directory: Path, keep: int):
        self._checkpoint = state.checkpoint()
        self._step = state.step
        self.manager = tf.train.CheckpointManager(
            self._checkpoint, str(directory), max_to_keep=keep, step_counter=state.step)

    @property
    def latest(self) -> str | None:
        return self.manager.latest_checkpoint

    def save(self) -> str:
        """Writes a checkpoint named after the current step; returns its path."""
        return self.manager.save(checkpoint_number=int(self._step.numpy()))

    def restore_latest(self) -> str | None:
        """Restores the latest checkpoint, if any; returns its path."""
        latest = self.manager.latest_checkpoint
        if latest is not None:
            self._checkpoint.restore(latest).assert_existing_objects_matched()
        return latest
