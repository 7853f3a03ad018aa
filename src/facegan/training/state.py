"""Everything a run must save to continue exactly: networks, optimizers, step.

There is no random-generator state to save: the noise of step s is drawn
statelessly from (seed, s), and the data order is a pure function of
(seed, step) too, so the step counter is the whole random state.
"""

from __future__ import annotations

import dataclasses

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
        rollbacks: how many times divergence sent this run back to a checkpoint
            (checkpointed, so the limit holds across restarts).
        bad_streak: consecutive steps skipped for a non-finite loss or gradient
            (not checkpointed: a checkpoint is only ever written from finite state).
    """

    generator: keras.Model
    discriminator: keras.Model
    g_optimizer: keras.optimizers.Optimizer
    d_optimizer: keras.optimizers.Optimizer
    step: tf.Variable
    rollbacks: tf.Variable
    bad_streak: tf.Variable

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
            rollbacks=tf.Variable(0, dtype=tf.int64, trainable=False, name="rollbacks"),
            bad_streak=tf.Variable(0, dtype=tf.int64, trainable=False, name="bad_streak"),
        )

    def checkpoint(self) -> tf.train.Checkpoint:
        return tf.train.Checkpoint(
            generator=self.generator,
            discriminator=self.discriminator,
            g_optimizer=self.g_optimizer,
            d_optimizer=self.d_optimizer,
            step=self.step,
            rollbacks=self.rollbacks,
        )

    def set_learning_rates(self, g_lr: float, d_lr: float) -> None:
        """Sets both learning rates (optimizer variables, so the change is checkpointed)."""
        self.g_optimizer.learning_rate.assign(g_lr)
        self.d_optimizer.learning_rate.assign(d_lr)

    def reset_to_initial(self, config: Config) -> None:
        """Puts every checkpointed value back to where `create(config)` starts.

        Building is deterministic in the seed, so a fresh state is the initial
        state; its values are copied in (the step function keeps its variables).
        Call it in the same distribution-strategy scope as `create`.
        """
        fresh = TrainState.create(config)
        for live, initial in zip(self.checkpoint_variables(), fresh.checkpoint_variables(),
                                 strict=True):
            live.assign(initial)
        self.step.assign(0)

    def checkpoint_variables(self) -> list[tf.Variable]:
        """Every variable a checkpoint holds (weights, statistics, optimizer slots)."""
        return [*self.generator.variables, *self.discriminator.variables,
                *self.g_optimizer.variables, *self.d_optimizer.variables]
