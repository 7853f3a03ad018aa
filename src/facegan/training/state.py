"""Everything a run must save to continue exactly: networks, optimizers, step.

There is no random-generator state to save: the noise of step s is drawn
statelessly from (seed, s), and the data order is a pure function of
(seed, step) too, so the step counter is the whole random state.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import keras
import tensorflow as tf

from facegan.artifacts.checkpoints import CHECKPOINT_PARTS, CheckpointStore
from facegan.artifacts.init_source import resolve_init
from facegan.artifacts.weights_file import load_weights
from facegan.config import Config
from facegan.models import build_discriminator, build_generator


@contextlib.contextmanager
def precision_policy(name: str) -> Iterator[None]:
    """Builds layers under the Keras dtype policy `name`, then puts the old one back.

    Layers take their policy when they are made, so the models keep it; the
    global setting does not outlive the call (no global state between runs).
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@dataclasses.dataclass
class TrainState:
    """The trainable state of one run. Build it inside the strategy's scope.

    Attributes:
        generator, discriminator: the two Keras models.
        g_optimizer, d_optimizer: one Adam each (built, so slots exist before a
            restore); wrapped in a LossScaleOptimizer under mixed_float16.
        generator_ema: an exponential moving average of the generator's weights
            (None when `train.ema_kimg` is 0): what samples, evaluation and
            generation use.
        augment_p: ADA's augmentation probability (checkpointed; 0 otherwise).
        step: int64 counter of completed train steps.
        rollbacks: how many times divergence sent this run back to a checkpoint
            (checkpointed, so the limit holds across restarts).
        bad_streak: consecutive steps skipped for a non-finite loss or gradient
            (not checkpointed: a checkpoint is only ever written from finite state).
        ada_signs, ada_count: sum of sign(D(real)) and images since ADA's last
            adjustment (not checkpointed: at most one interval is lost).
    """

    generator: keras.Model
    discriminator: keras.Model
    g_optimizer: keras.optimizers.Optimizer
    d_optimizer: keras.optimizers.Optimizer
    generator_ema: keras.Model | None
    augment_p: tf.Variable
    step: tf.Variable
    rollbacks: tf.Variable
    bad_streak: tf.Variable
    ada_signs: tf.Variable
    ada_count: tf.Variable

    @classmethod
    def create(cls, config: Config) -> TrainState:
        seed = config.train.seed
        with precision_policy(config.train.precision):
            generator = build_generator(config.model, seed=seed)
            discriminator = build_discriminator(config.model, seed=seed)
            # Built from the same seed, the average starts equal to the generator.
            generator_ema = (
                build_generator(config.model, seed=seed) if config.train.ema_kimg > 0 else None
            )
        g_optimizer = _optimizer(config, config.optim.g_lr, "g_adam")
        d_optimizer = _optimizer(config, config.optim.d_lr, "d_adam")
        # Slots must exist before a checkpoint is restored into them.
        g_optimizer.build(generator.trainable_variables)
        d_optimizer.build(discriminator.trainable_variables)

        def counter(name: str, dtype=tf.int64) -> tf.Variable:
            return tf.Variable(tf.zeros([], dtype), trainable=False, name=name)

        return cls(
            generator=generator,
            discriminator=discriminator,
            g_optimizer=g_optimizer,
            d_optimizer=d_optimizer,
            generator_ema=generator_ema,
            augment_p=counter("augment_p", tf.float32),
            step=counter("step"),
            rollbacks=counter("rollbacks"),
            bad_streak=counter("bad_streak"),
            ada_signs=counter("ada_signs", tf.float32),
            ada_count=counter("ada_count", tf.float32),
        )

    @property
    def sampling_generator(self) -> keras.Model:
        """The generator that samples: the moving average when there is one."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    def checkpoint(self) -> tf.train.Checkpoint:
        """What a checkpoint holds (`facegan.artifacts.checkpoints.CHECKPOINT_PARTS`)."""
        parts = {name: getattr(self, name) for name in CHECKPOINT_PARTS}
        return tf.train.Checkpoint(**{k: v for k, v in parts.items() if v is not None})

    def store(
        self, directory: Path, keep: int, *, name: str = "ckpt", chief: bool = True
    ) -> CheckpointStore:
        """A `CheckpointStore` of this state that refuses to save non-finite values."""
        return CheckpointStore(
            self.checkpoint(),
            directory,
            keep,
            name=name,
            chief=chief,
            variables=self.checkpoint_variables(),
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
        for live, initial in zip(
            self.checkpoint_variables(), fresh.checkpoint_variables(), strict=True
        ):
            live.assign(initial)
        self.step.assign(0)
        if config.train.init:
            self.load_init(config.train.init)

    def load_init(self, spec: str) -> str:
        """Copies the networks of `train.init`'s source in: fine-tuning's first weights.

        A shipped model's EMA generator becomes both the generator and its
        average; a run's generator, average (its generator if it kept none) and
        discriminator are restored from its newest checkpoint. Optimizers and
        counters are left as built: fresh. Returns what was loaded, for the log.
        """
        source = resolve_init(spec)
        generators = [g for g in (self.generator, self.generator_ema) if g is not None]
        if source.shipped is not None:
            for generator in generators:
                load_weights(source.shipped.weights, {"generator_ema": generator})
            load_weights(source.shipped.weights, {"discriminator": self.discriminator})
            return f"shipped model {source.spec} (step {source.shipped.step})"
        kept = source.config.train.ema_kimg > 0
        tf.train.Checkpoint(generator=self.generator, discriminator=self.discriminator).restore(
            source.checkpoint
        ).expect_partial()
        if self.generator_ema is not None:
            name = "generator_ema" if kept else "generator"
            tf.train.Checkpoint(**{name: self.generator_ema}).restore(
                source.checkpoint
            ).expect_partial()
        return f"run {source.spec} ({Path(source.checkpoint).name})"

    def checkpoint_variables(self) -> list[tf.Variable]:
        """Every variable a checkpoint holds (weights, statistics, optimizer slots)."""
        ema = self.generator_ema.variables if self.generator_ema is not None else []
        return [
            *self.generator.variables,
            *self.discriminator.variables,
            *ema,
            *self.g_optimizer.variables,
            *self.d_optimizer.variables,
            self.augment_p,
        ]


def _optimizer(config: Config, learning_rate: float, name: str) -> keras.optimizers.Optimizer:
    optim = config.optim
    adam = keras.optimizers.Adam(
        learning_rate, beta_1=optim.beta1, beta_2=optim.beta2, epsilon=optim.epsilon, name=name
    )
    if config.train.precision == "mixed_float16":
        # float16 gradients underflow without scaling; the wrapper finds the scale and
        # skips the steps whose scaled gradients overflow while it does.
        return keras.optimizers.LossScaleOptimizer(adam, name=f"{name}_scaled")
    return adam
