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

import keras
import tensorflow as tf

from facegan.config import Config
from facegan.losses import LOSSES
from facegan.training.state import TrainState

StepFn = Callable[[tf.Tensor, tf.Tensor], dict[str, tf.Tensor]]

# Keeps the noise's random stream apart from the data order's (see data.pipeline).
_NOISE_STREAM = 0x0015E


def all_finite(tensors: Sequence[tf.Tensor | None]) -> tf.Tensor:
    """A scalar bool: every element of every (non-None) tensor is finite."""
    checks = [tf.reduce_all(tf.math.is_finite(t)) for t in tensors if t is not None]
    return tf.reduce_all(tf.stack(checks))


def apply_if(ok: tf.Tensor, apply: Callable[..., None], skip: Callable[..., None],
             apply_args: tuple = (), skip_args: tuple = ()) -> None:
    """Runs `apply(*apply_args)` or `skip(*skip_args)` in replica context, under any strategy.

    `ok` must be the same on every replica (all-reduce it first). Optimizers
    call `merge_call` under strategies that need it (MirroredStrategy), and a
    `tf.cond` whose branch calls `merge_call` is not allowed in replica context;
    there the condition is evaluated in cross-replica context and each branch
    runs on every replica, the way Keras' LossScaleOptimizer does it.

    Per-replica values (gradients, saved statistics) must come in through the
    `*_args`, never through the functions' closures: in the merge-call path one
    replica's function objects run for all replicas, and only arguments are
    regrouped so that each replica gets its own.
    """
    def run(branch: Callable[..., None], args: tuple) -> Callable[[], tf.Tensor]:
        def body() -> tf.Tensor:
            branch(*args)
            return tf.constant(True)
        return body

    if tf.__internal__.distribute.strategy_supports_no_merge_call():
        tf.cond(ok, run(apply, apply_args), run(skip, skip_args))
        return

    def cross_replica(strategy: tf.distribute.Strategy, ok: tf.Tensor, apply_args: tuple,
                      skip_args: tuple) -> None:
        first = strategy.experimental_local_results(ok)[0]

        def each_replica(branch: Callable[..., None], args: tuple) -> Callable[[], None]:
            return lambda: strategy.extended.call_for_each_replica(branch, args=args)

        tf.cond(first, run(each_replica(apply, apply_args), ()),
                run(each_replica(skip, skip_args), ()))

    tf.distribute.get_replica_context().merge_call(cross_replica,
                                                   args=(ok, apply_args, skip_args))


def make_gan_train_step(state: TrainState, config: Config, strategy: tf.distribute.Strategy,
                        batch_spec=None) -> StepFn:
    """Returns a `tf.function(real, stop) -> dict of scalars`.

    Args:
        state: the models, optimizers and counters (built in `strategy`'s scope).
        config: the run's config.
        strategy: the distribution strategy; `real` is one global batch, either a
            plain tensor (one replica) or a distributed value whose replicas hold
            their slices (from `facegan.training.distribute.distributed_batches`).
        batch_spec: the type spec of `real`: the distributed iterator's
            `element_spec`; default one global float32 batch tensor.

    The second argument `stop` (an int32 scalar, 1 when this process was asked
    to stop) is all-reduced with the finiteness check, so that every worker of
    a cluster learns of a stop request at the same step.

    Returned values (sums over replicas, each already divided by the global
    batch): `g_loss`, `d_loss`, `d_real`/`d_fake` (mean discriminator
    probabilities on real and generated images), `d_real_positive` (share of
    real images D calls real: logit > 0), all 0 on a skipped step; `skipped`
    (1.0 if the update was skipped for a non-finite value, else 0.0),
    `bad_streak` (consecutive skipped steps so far) and `stop` (1.0 if any
    process asked to stop).

    The input signature is fixed, so the function is traced once and never again.
    """
    model, train = config.model, config.train
    generator_loss, discriminator_loss = LOSSES[config.loss.kind]
    generator, discriminator = state.generator, state.discriminator
    global_batch = train.batch_size
    replicas = strategy.num_replicas_in_sync
    per_replica = global_batch // replicas
    noise_seed = tf.constant(train.seed + _NOISE_STREAM, tf.int64)
    # Batch-norm moving statistics change in the forward pass, outside the optimizers.
    moving_stats = generator.non_trainable_variables + discriminator.non_trainable_variables

    def mean(per_example: tf.Tensor) -> tf.Tensor:
        # Divide by the global batch, not the replica's: correct under any strategy.
        return tf.nn.compute_average_loss(tf.reshape(per_example, [-1]),
                                          global_batch_size=global_batch)

    def regularization(network: keras.Model) -> tf.Tensor:
        # Weight penalties are per model, not per example: scaled by the replica count.
        losses = [tf.cast(loss, tf.float32) for loss in network.losses]
        return tf.nn.scale_regularization_loss(tf.add_n(losses)) if losses else 0.0

    def step_noise() -> tf.Tensor:
        """This replica's rows of the step's global noise batch [B, Z].

        Stateless in (seed, step): the same noise under any strategy and replica
        count, and a resumed run draws exactly what an uninterrupted one would.
        """
        everything = tf.random.stateless_normal(
            [global_batch, model.latent_dim], seed=tf.stack([noise_seed, state.step.read_value()]))
        replica = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int32)
        return tf.slice(everything, [replica * per_replica, 0], [per_replica, model.latent_dim])

    # Per-replica values reach these two only as arguments (see `apply_if`).
    def apply_updates(g_grads: list[tf.Tensor], d_grads: list[tf.Tensor]) -> None:
        state.g_optimizer.apply_gradients(zip(g_grads, generator.trainable_variables))
        state.d_optimizer.apply_gradients(zip(d_grads, discriminator.trainable_variables))

    def restore_stats(saved_stats: list[tf.Tensor]) -> None:
        for variable, saved in zip(moving_stats, saved_stats):
            variable.assign(saved)

    def replica_step(real: tf.Tensor, stop: tf.Tensor) -> dict[str, tf.Tensor]:
        saved_stats = [tf.identity(v) for v in moving_stats]
        noise = step_noise()  # [b, Z]
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generator(noise, training=True)  # [b, R, R, C]
            real_logits = discriminator(real, training=True)  # [b, 1]
            fake_logits = discriminator(fake, training=True)
            g_loss = mean(generator_loss(fake_logits)) + regularization(generator)
            d_loss = (mean(discriminator_loss(real_logits, fake_logits))
                      + regularization(discriminator))
        g_grads = g_tape.gradient(g_loss, generator.trainable_variables)
        d_grads = d_tape.gradient(d_loss, discriminator.trainable_variables)

        finite = all_finite([g_loss, d_loss, *g_grads, *d_grads])
        # One all-reduce for both flags: [replicas with non-finite values, stop requests].
        flags = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM,
            tf.stack([tf.cast(tf.logical_not(finite), tf.int32), tf.cast(stop, tf.int32)]))
        ok = tf.equal(flags[0], 0)

        apply_if(ok, apply_updates, restore_stats, (g_grads, d_grads), (saved_stats,))
        keep = tf.cast(ok, tf.float32)  # report zeros, not NaN, for a skipped step
        real_flat = tf.reshape(real_logits, [-1])
        fake_flat = tf.reshape(fake_logits, [-1])
        # Flags are the same on every replica: divided by the replica count, they sum to 1 or 0.
        return {
            "g_loss": tf.where(ok, g_loss, 0.0),
            "d_loss": tf.where(ok, d_loss, 0.0),
            "d_real": tf.where(ok, mean(tf.sigmoid(real_flat)), 0.0),
            "d_fake": tf.where(ok, mean(tf.sigmoid(fake_flat)), 0.0),
            "d_real_positive": tf.where(ok, mean(tf.cast(real_flat > 0, tf.float32)), 0.0),
            "skipped": (1.0 - keep) / replicas,
            "stop": tf.cast(flags[1] > 0, tf.float32) / replicas,
        }

    if batch_spec is None:
        batch_spec = tf.TensorSpec(
            [global_batch, model.resolution, model.resolution, model.channels], tf.float32)
    stop_spec = tf.TensorSpec([], tf.int32, name="stop")

    @tf.function(input_signature=[batch_spec, stop_spec], jit_compile=train.jit)
    def train_step(real, stop: tf.Tensor) -> dict[str, tf.Tensor]:
        per_replica_out = strategy.run(replica_step, args=(real, stop))
        # Each replica already divided by the global batch: the sum is the mean.
        out = {name: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
               for name, value in per_replica_out.items()}
        skipped = out["skipped"] > 0.5
        state.step.assign_add(1)
        state.bad_streak.assign(tf.where(skipped, state.bad_streak + 1, 0))
        out["bad_streak"] = tf.identity(state.bad_streak)
        return out

    return train_step
