"""The compiled train step: one factory per training algorithm.

The classic GAN step: noise -> G -> D(real), D(fake) -> losses -> two tapes ->
two optimizers. Both networks are updated from the same forward pass (the
generator's gradient flows through the discriminator as it was before its own
update), exactly as in the DCGAN / TensorFlow-tutorial loop.

Every step is guarded: if any loss or gradient is not finite on any replica,
neither optimizer is applied and the batch-norm statistics that the forward
pass moved are put back, so a NaN never reaches the weights (or, therefore, a
checkpoint). `state.bad_streak` counts such steps in a row; the loop decides
what a long streak means (see `facegan.training.health`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf

from facegan.config import Config
from facegan.losses import LOSSES
from facegan.training.state import TrainState

StepFn = Callable[[tf.Tensor], dict[str, tf.Tensor]]


def all_finite(tensors: Sequence[tf.Tensor | None]) -> tf.Tensor:
    """A scalar bool: every element of every (non-None) tensor is finite."""
    checks = [tf.reduce_all(tf.math.is_finite(t)) for t in tensors if t is not None]
    return tf.reduce_all(tf.stack(checks))


def apply_if(ok: tf.Tensor, apply: Callable[[], None], skip: Callable[[], None]) -> None:
    """Runs `apply` or `skip` in replica context, under any distribution strategy.

    `ok` must be the same on every replica (all-reduce it first). Optimizers
    call `merge_call` under strategies that need it (MirroredStrategy), and a
    `tf.cond` whose branch calls `merge_call` is not allowed in replica context;
    there the condition is evaluated in cross-replica context and each branch
    runs on every replica, the way Keras' LossScaleOptimizer does it.
    """
    def run(branch: Callable[[], None]) -> Callable[[], tf.Tensor]:
        def body() -> tf.Tensor:
            branch()
            return tf.constant(True)
        return body

    if tf.__internal__.distribute.strategy_supports_no_merge_call():
        tf.cond(ok, run(apply), run(skip))
        return

    def cross_replica(strategy: tf.distribute.Strategy, ok: tf.Tensor) -> None:
        first = strategy.experimental_local_results(ok)[0]
        tf.cond(first,
                run(lambda: strategy.extended.call_for_each_replica(apply)),
                run(lambda: strategy.extended.call_for_each_replica(skip)))

    tf.distribute.get_replica_context().merge_call(cross_replica, args=(ok,))


def make_gan_train_step(state: TrainState, config: Config,
                        strategy: tf.distribute.Strategy) -> StepFn:
    """Returns a `tf.function(real) -> dict of scalars`.

    Returned values (sums over replicas, each already divided by the global
    batch): `g_loss`, `d_loss`, `d_real`/`d_fake` (mean discriminator
    probabilities on real and generated images), `d_real_positive` (share of
    real images D calls real: logit > 0), all 0 on a skipped step; `skipped`
    (1.0 if the update was skipped for a non-finite value, else 0.0) and
    `bad_streak` (consecutive skipped steps so far).

    The input signature is fixed (one global batch of float32 images), so the
    function is traced once and never again.
    """
    model, train = config.model, config.train
    generator_loss, discriminator_loss = LOSSES[config.loss.kind]
    generator, discriminator = state.generator, state.discriminator
    global_batch = train.batch_size
    # Batch-norm moving statistics change in the forward pass, outside the optimizers.
    moving_stats = generator.non_trainable_variables + discriminator.non_trainable_variables

    def mean(per_example: tf.Tensor) -> tf.Tensor:
        # Divide by the global batch, not the replica's: correct under any strategy.
        return tf.nn.compute_average_loss(tf.reshape(per_example, [-1]),
                                          global_batch_size=global_batch)

    def replica_step(real: tf.Tensor) -> dict[str, tf.Tensor]:
        saved_stats = [tf.identity(v) for v in moving_stats]
        noise = state.rng.normal([tf.shape(real)[0], model.latent_dim])  # [B, Z]
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generator(noise, training=True)  # [B, R, R, C]
            real_logits = discriminator(real, training=True)  # [B, 1]
            fake_logits = discriminator(fake, training=True)
            g_loss = mean(generator_loss(fake_logits))
            d_loss = mean(discriminator_loss(real_logits, fake_logits))
        g_grads = g_tape.gradient(g_loss, generator.trainable_variables)
        d_grads = d_tape.gradient(d_loss, discriminator.trainable_variables)

        finite = all_finite([g_loss, d_loss, *g_grads, *d_grads])
        replicas_bad = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, tf.cast(tf.logical_not(finite), tf.int32))
        ok = tf.equal(replicas_bad, 0)

        def apply() -> None:
            state.g_optimizer.apply_gradients(zip(g_grads, generator.trainable_variables))
            state.d_optimizer.apply_gradients(zip(d_grads, discriminator.trainable_variables))

        def skip() -> None:
            for variable, saved in zip(moving_stats, saved_stats):
                variable.assign(saved)

        apply_if(ok, apply, skip)
        keep = tf.cast(ok, tf.float32)  # report zeros, not NaN, for a skipped step
        real_flat = tf.reshape(real_logits, [-1])
        fake_flat = tf.reshape(fake_logits, [-1])
        return {
            "g_loss": tf.where(ok, g_loss, 0.0),
            "d_loss": tf.where(ok, d_loss, 0.0),
            "d_real": tf.where(ok, mean(tf.sigmoid(real_flat)), 0.0),
            "d_fake": tf.where(ok, mean(tf.sigmoid(fake_flat)), 0.0),
            "d_real_positive": tf.where(ok, mean(tf.cast(real_flat > 0, tf.float32)), 0.0),
            # The same on every replica: divided by the replica count, they sum to 1 or 0.
            "skipped": (1.0 - keep) / strategy.num_replicas_in_sync,
        }

    spec = tf.TensorSpec([global_batch, model.resolution, model.resolution, model.channels],
                         tf.float32, name="real")

    @tf.function(input_signature=[spec], jit_compile=train.jit)
    def train_step(real: tf.Tensor) -> dict[str, tf.Tensor]:
        per_replica = strategy.run(replica_step, args=(real,))
        # Each replica already divided by the global batch: the sum is the mean.
        out = {name: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
               for name, value in per_replica.items()}
        skipped = out["skipped"] > 0.5
        state.step.assign_add(1)
        state.bad_streak.assign(tf.where(skipped, state.bad_streak + 1, 0))
        out["bad_streak"] = tf.identity(state.bad_streak)
        return out

    return train_step
