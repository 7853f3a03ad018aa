"""The compiled train steps: one factory per training algorithm.

- `simultaneous`: noise -> G -> D(real), D(fake) -> losses -> two tapes -> two
  optimizers, both updated from the same forward pass (the generator's gradient
  flows through the discriminator as it was before its own update): the DCGAN /
  TensorFlow-tutorial loop.
- `alternating`: `loss.n_critic` discriminator updates, each on its own slice of
  real images, then a generator update through the updated discriminator
  (SNGAN, WGAN-GP, StyleGAN2).

Both share the pieces below: stateless noise and augmentation randomness keyed
by (seed, stream, step, part) (`facegan.seeds`; drawn for the global batch, so
independent of the replica count), differentiable augmentation of everything D sees,
lazy R1, the penalty the loss requires (`facegan.losses.LOSSES`: WGAN-GP's
gradient penalty), loss scaling under float16, and the guard:
if any loss or gradient is not finite on any replica, that update is skipped
and the batch-norm statistics the forward pass moved are put back, so a NaN
never reaches the weights (or, therefore, a checkpoint). After the step, in
cross-replica context: the generator's moving average and ADA's probability.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from facegan.config import Config
from facegan.losses import LOSSES, r1_penalty
from facegan.models import synthesize
from facegan.seeds import Stream, replica_rows, stream_key
from facegan.training.augment import ada_adjust, make_augmenter
from facegan.training.state import TrainState

StepFn = Callable[[object, tf.Tensor], dict[str, tf.Tensor]]


def images_per_step(config: Config) -> int:
    """Real images one train step consumes: a batch per discriminator update."""
    return config.train.batch_size * (
        config.loss.n_critic if config.train.updates == "alternating" else 1
    )


def tensors_finite(tensors: Sequence[tf.Tensor | None]) -> tf.Tensor:
    """A scalar bool tensor: every element of every (non-None) tensor is finite (traceable)."""
    checks = [
        tf.reduce_all(tf.math.is_finite(tf.cast(t, tf.float32))) for t in tensors if t is not None
    ]
    return tf.reduce_all(tf.stack(checks)) if checks else tf.constant(True)


def apply_if(
    ok: tf.Tensor,
    apply: Callable[..., None],
    skip: Callable[..., None],
    apply_args: tuple = (),
    skip_args: tuple = (),
) -> None:
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

    def cross_replica(
        strategy: tf.distribute.Strategy, ok: tf.Tensor, apply_args: tuple, skip_args: tuple
    ) -> None:
        first = strategy.experimental_local_results(ok)[0]

        def each_replica(branch: Callable[..., None], args: tuple) -> Callable[[], None]:
            return lambda: strategy.extended.call_for_each_replica(branch, args=args)

        tf.cond(
            first, run(each_replica(apply, apply_args), ()), run(each_replica(skip, skip_args), ())
        )

    tf.distribute.get_replica_context().merge_call(cross_replica, args=(ok, apply_args, skip_args))


def _nothing(*args) -> None:
    pass


class StepParts:
    """What both algorithms share, bound to one run's state, config and strategy."""

    def __init__(self, state: TrainState, config: Config, strategy: tf.distribute.Strategy):
        self.state, self.config, self.strategy = state, config, strategy
        model, train, loss = config.model, config.train, config.loss
        self.generator, self.discriminator = state.generator, state.discriminator
        self.loss = LOSSES[loss.kind]
        self.g_loss_fn, self.d_loss_fn = self.loss.generator_loss, self.loss.discriminator_loss
        self.global_batch = train.batch_size
        self.replicas = strategy.num_replicas_in_sync
        self.per_replica = self.global_batch // self.replicas
        self.latent_dim = model.latent_dim
        self.conditional = model.conditional
        self.seed = train.seed
        self.float16 = train.precision == "mixed_float16"
        self.augment = make_augmenter(config.augment)
        # Batch-norm statistics, spectral-norm vectors, w_avg: moved by forward passes.
        self.moving_stats = (
            self.generator.non_trainable_variables + self.discriminator.non_trainable_variables
        )

    # -- inputs ---------------------------------------------------------------
    def unpack(self, real) -> tuple[tf.Tensor, tf.Tensor | None]:
        """The replica's real batch: images [b*, R, R, C] and labels [b*, A] or None."""
        if self.conditional:
            images, labels = real
            return images, tf.cast(labels, tf.int32)
        return real, None

    def key(self, stream: Stream, part: int) -> tf.Tensor:
        """The stateless seed [2] of `stream` at this step (the same on every replica)."""
        return stream_key(self.seed, stream, self.state.step.read_value(), part)

    def noise(self, part: int) -> tf.Tensor:
        """This replica's rows of the step's global noise batch [b, Z].

        The same noise under any strategy and replica count, and a resumed run
        draws exactly what an uninterrupted one would.
        """
        return replica_rows(
            tf.random.stateless_normal,
            self.key(Stream.NOISE, part),
            self.per_replica,
            [self.latent_dim],
        )

    # -- networks ---------------------------------------------------------------
    def generate(self, z: tf.Tensor, labels: tf.Tensor | None) -> tf.Tensor:
        return synthesize(self.generator, z, labels, training=True)

    def critic(self, labels: tf.Tensor | None) -> Callable[[tf.Tensor], tf.Tensor]:
        """images -> float32 logits [b, 1] (labels bound), for losses and penalties."""

        def call(images: tf.Tensor) -> tf.Tensor:
            inputs = [images, labels] if labels is not None else images
            return tf.cast(self.discriminator(inputs, training=True), tf.float32)

        return call

    def augmented(self, images: tf.Tensor, part: int) -> tf.Tensor:
        if self.augment is None:
            return images
        return self.augment(
            images, self.state.augment_p.read_value(), self.key(Stream.AUGMENT, part)
        )

    # -- losses -------------------------------------------------------------------
    def mean(self, per_example: tf.Tensor) -> tf.Tensor:
        # Divide by the global batch, not the replica's: correct under any strategy.
        return tf.nn.compute_average_loss(
            tf.reshape(tf.cast(per_example, tf.float32), [-1]), global_batch_size=self.global_batch
        )

    @staticmethod
    def regularization(network: keras.Model) -> tf.Tensor:
        # Weight penalties are per model, not per example: scaled by the replica count.
        losses = [tf.cast(loss, tf.float32) for loss in network.losses]
        return tf.nn.scale_regularization_loss(tf.add_n(losses)) if losses else 0.0

    def discriminator_loss(
        self, real_aug: tf.Tensor, fake_aug: tf.Tensor, labels: tf.Tensor | None, part: int
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """D's total loss with its penalties; returns (loss, real_logits, fake_logits)."""
        loss_cfg = self.config.loss
        critic = self.critic(labels)
        real_logits, fake_logits = critic(real_aug), critic(fake_aug)
        total = self.mean(self.d_loss_fn(real_logits, fake_logits))
        total += self.regularization(self.discriminator)
        if self.loss.penalty is not None and loss_cfg.gp_weight > 0:  # the loss requires it
            rows = real_aug.shape[0] if real_aug.shape[0] is not None else tf.shape(real_aug)[0]
            alpha = replica_rows(tf.random.stateless_uniform, self.key(Stream.PENALTY, part), rows)
            total += loss_cfg.gp_weight * self.mean(
                self.loss.penalty(critic, real_aug, fake_aug, alpha)
            )
        if loss_cfg.r1_gamma > 0:
            # Lazy regularization: every r1_every steps, weighted by the interval.
            due = tf.equal(self.state.step.read_value() % loss_cfg.r1_every, 0)
            weight = loss_cfg.r1_gamma / 2.0 * loss_cfg.r1_every
            total += tf.cond(
                due,
                lambda: weight * self.mean(r1_penalty(critic, real_aug)),
                lambda: tf.constant(0.0),
            )
        return total, real_logits, fake_logits

    def scaled(self, optimizer: keras.optimizers.Optimizer, loss: tf.Tensor) -> tf.Tensor:
        return optimizer.scale_loss(loss) if self.float16 else loss

    def finite(self, losses: list[tf.Tensor], grads: list[tf.Tensor]) -> tf.Tensor:
        # Under float16 the loss-scale optimizer expects (and skips) overflowing
        # scaled gradients while it searches for its scale; only the losses say
        # whether training itself has diverged.
        return tensors_finite(losses if self.float16 else [*losses, *grads])

    def all_reduce_flags(self, *flags: tf.Tensor) -> tf.Tensor:
        """Sums int32 flags over replicas: one all-reduce for all of them."""
        return tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, tf.stack([tf.cast(f, tf.int32) for f in flags])
        )

    def restore_stats(self, saved: list[tf.Tensor]) -> None:
        for variable, value in zip(self.moving_stats, saved):
            variable.assign(value)

    def report(
        self,
        ok: tf.Tensor,
        g_loss: tf.Tensor,
        d_loss: tf.Tensor,
        real_logits: tf.Tensor,
        fake_logits: tf.Tensor,
        stop: tf.Tensor,
    ) -> dict[str, tf.Tensor]:
        """Per-replica outputs; flags are equal on all replicas, so divided by their count."""
        real_flat = tf.reshape(real_logits, [-1])
        fake_flat = tf.reshape(fake_logits, [-1])

        def kept(value: tf.Tensor) -> tf.Tensor:
            return tf.where(ok, value, 0.0)  # zeros, not NaN, for a skipped step

        return {
            "g_loss": kept(g_loss),
            "d_loss": kept(d_loss),
            "d_real": kept(self.mean(tf.sigmoid(real_flat))),
            "d_fake": kept(self.mean(tf.sigmoid(fake_flat))),
            "d_real_positive": kept(self.mean(tf.cast(real_flat > 0, tf.float32))),
            # for ADA: the sum over this replica's images of sign(D(x_real))
            "real_signs": kept(tf.reduce_sum(tf.sign(real_flat))),
            "skipped": (1.0 - tf.cast(ok, tf.float32)) / self.replicas,
            "stop": tf.cast(stop > 0, tf.float32) / self.replicas,
        }

    # -- after the step, in cross-replica context -----------------------------------
    def finish(self, out: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        trained = out["skipped"] < 0.5
        real_signs = out.pop("real_signs")
        if self.state.generator_ema is not None:
            tf.cond(trained, self._update_ema, lambda: tf.constant(True))
        if self.config.augment.kind == "ada":
            tf.cond(trained, lambda: self._track_ada(real_signs), lambda: tf.constant(True))
        # Ordered after the step's outputs: when a driver fetches the batch inside
        # the compiled function (Keras fit) and the data has run out, nothing here
        # may run, and the counter must not move on its own.
        with tf.control_dependencies([trained]):
            self.state.step.assign_add(1)
        self.state.bad_streak.assign(
            tf.where(trained, tf.constant(0, tf.int64), self.state.bad_streak + 1)
        )
        out["bad_streak"] = tf.identity(self.state.bad_streak)
        if self.config.augment.kind == "ada":
            out["augment_p"] = tf.identity(self.state.augment_p)
        return out

    def _update_ema(self) -> tf.Tensor:
        """ema <- w + (ema - w) * beta, with beta from the half-life in images."""
        train = self.config.train
        half_life = train.ema_kimg * 1000.0
        if train.ema_rampup > 0:
            seen = tf.cast(self.state.step + 1, tf.float32) * self.global_batch
            half_life = tf.minimum(half_life, seen * train.ema_rampup)
        beta = tf.pow(0.5, self.global_batch / tf.maximum(half_life, 1e-8))
        ema = self.state.generator_ema
        for average, weight in zip(ema.trainable_variables, self.generator.trainable_variables):
            average.assign(weight + (average - weight) * tf.cast(beta, average.dtype))
        # Statistics (batch norm, w_avg) are copied, not averaged, as StyleGAN2 does.
        for average, value in zip(
            ema.non_trainable_variables, self.generator.non_trainable_variables
        ):
            average.assign(value)
        return tf.constant(True)

    def _track_ada(self, real_signs: tf.Tensor) -> tf.Tensor:
        """Accumulates sign(D(x)); every ada_interval steps moves p toward the target."""
        augment = self.config.augment
        state = self.state
        state.ada_signs.assign_add(real_signs)
        state.ada_count.assign_add(float(self.global_batch))

        def adjust() -> tf.Tensor:
            state.augment_p.assign(
                ada_adjust(
                    state.augment_p,
                    state.ada_signs,
                    state.ada_count,
                    augment.ada_target,
                    augment.ada_kimg,
                )
            )
            state.ada_signs.assign(0.0)
            state.ada_count.assign(0.0)
            return tf.constant(True)

        due = tf.equal((state.step + 1) % augment.ada_interval, 0)
        tf.cond(due, adjust, lambda: tf.constant(True))
        return tf.constant(True)


def make_train_step(
    state: TrainState, config: Config, strategy: tf.distribute.Strategy, batch_spec=None
) -> StepFn:
    """Returns a `tf.function(real, stop) -> dict of scalars` for `config.train.updates`.

    Args:
        state: the models, optimizers and counters (built in `strategy`'s scope).
        config: the run's config.
        strategy: the distribution strategy; `real` is one step's global batch of
            `images_per_step(config)` images (and labels, for a conditional model,
            as an `(images, labels)` pair), either plain tensors (one replica) or
            distributed values (from `facegan.training.distribute.distributed_batches`).
        batch_spec: the type spec of `real`: the distributed iterator's
            `element_spec`; default plain tensors of the global batch.

    The second argument `stop` (an int32 scalar, 1 when this process was asked
    to stop) is all-reduced with the finiteness check, so that every worker of
    a cluster learns of a stop request at the same step.

    Returned values (sums over replicas, each already divided by the global
    batch): `g_loss`, `d_loss`, `d_real`/`d_fake` (mean D probabilities on real
    and generated images), `d_real_positive` (share of real images D calls
    real: logit > 0), all 0 on a skipped step; `skipped` (1.0 if an update was
    skipped for a non-finite value), `bad_streak` (consecutive skipped steps so
    far), `stop` (1.0 if any process asked to stop) and, with ADA, `augment_p`.

    The input signature is fixed, so the function is traced once and never again.
    """
    replica_step, reduce_and_finish = make_replica_step(state, config, strategy)
    if batch_spec is None:
        model = config.model
        images = tf.TensorSpec(
            [images_per_step(config), model.resolution, model.resolution, model.channels],
            tf.float32,
        )
        batch_spec = (
            (images, tf.TensorSpec([images_per_step(config), len(model.label_sizes)], tf.int32))
            if model.conditional
            else images
        )
    stop_spec = tf.TensorSpec([], tf.int32, name="stop")

    @tf.function(input_signature=[batch_spec, stop_spec], jit_compile=config.train.jit)
    def train_step(real, stop: tf.Tensor) -> dict[str, tf.Tensor]:
        return reduce_and_finish(strategy, strategy.run(replica_step, args=(real, stop)))

    return train_step


def make_replica_step(
    state: TrainState, config: Config, strategy: tf.distribute.Strategy
) -> tuple[Callable, Callable[[dict], dict]]:
    """The two halves of one train step, for any driver of it.

    Returns `(replica_step, reduce_and_finish)`: `replica_step(real, stop)` runs
    in replica context on the replica's slice of the batch and returns its
    per-replica outputs (each already divided by the global batch);
    `reduce_and_finish(strategy, per_replica)` runs in cross-replica context
    (after `strategy.run`, or as a `merge_call`): it sums them over replicas,
    then moves the EMA, ADA and the step counter, and returns the step's scalars. `make_train_step` (the loop) and
    `facegan.keras.GAN.train_step` (Keras `fit`) both run exactly these, so the
    two front ends train identically.
    """
    parts = StepParts(state, config, strategy)
    replica_step = (
        _simultaneous_replica_step(parts)
        if config.train.updates == "simultaneous"
        else _alternating_replica_step(parts)
    )

    def reduce_and_finish(strategy: tf.distribute.Strategy, per_replica: dict) -> dict:
        # Each replica already divided by the global batch: the sum is the mean.
        summed = {
            name: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
            for name, value in per_replica.items()
        }
        return parts.finish(summed)

    return replica_step, reduce_and_finish


def _simultaneous_replica_step(parts: StepParts):
    state = parts.state
    generator, discriminator = parts.generator, parts.discriminator

    # Per-replica values reach these only as arguments (see `apply_if`).
    def apply_updates(g_grads: list[tf.Tensor], d_grads: list[tf.Tensor]) -> None:
        state.g_optimizer.apply_gradients(zip(g_grads, generator.trainable_variables))
        state.d_optimizer.apply_gradients(zip(d_grads, discriminator.trainable_variables))

    def replica_step(real, stop: tf.Tensor) -> dict[str, tf.Tensor]:
        images, labels = parts.unpack(real)
        saved_stats = [tf.identity(v) for v in parts.moving_stats]
        z = parts.noise(0)  # [b, Z]
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = parts.generate(z, labels)  # [b, R, R, C]
            real_aug, fake_aug = parts.augmented(images, 0), parts.augmented(fake, 1)
            d_loss, real_logits, fake_logits = parts.discriminator_loss(
                real_aug, fake_aug, labels, 0
            )
            g_loss = parts.mean(parts.g_loss_fn(fake_logits)) + parts.regularization(generator)
            g_scaled = parts.scaled(state.g_optimizer, g_loss)
            d_scaled = parts.scaled(state.d_optimizer, d_loss)
        g_grads = g_tape.gradient(g_scaled, generator.trainable_variables)
        d_grads = d_tape.gradient(d_scaled, discriminator.trainable_variables)
        flags = parts.all_reduce_flags(
            tf.logical_not(parts.finite([g_loss, d_loss], [*g_grads, *d_grads])), stop
        )
        ok = tf.equal(flags[0], 0)
        apply_if(ok, apply_updates, parts.restore_stats, (g_grads, d_grads), (saved_stats,))
        return parts.report(ok, g_loss, d_loss, real_logits, fake_logits, flags[1])

    return replica_step


def _alternating_replica_step(parts: StepParts):
    state, config = parts.state, parts.config
    generator, discriminator = parts.generator, parts.discriminator
    n_critic = config.loss.n_critic

    def apply_d(d_grads: list[tf.Tensor]) -> None:
        state.d_optimizer.apply_gradients(zip(d_grads, discriminator.trainable_variables))

    def apply_g(g_grads: list[tf.Tensor]) -> None:
        state.g_optimizer.apply_gradients(zip(g_grads, generator.trainable_variables))

    def replica_step(real, stop: tf.Tensor) -> dict[str, tf.Tensor]:
        images, labels = parts.unpack(real)
        saved_stats = [tf.identity(v) for v in parts.moving_stats]
        # static when the batch is (XLA needs static slice sizes)
        b = (images.shape[0] if images.shape[0] is not None else tf.shape(images)[0]) // n_critic
        bad = tf.constant(0, tf.int32)
        for k in range(n_critic):  # a few unrolled critic updates, each on its own batch
            real_k = images[k * b : (k + 1) * b]
            labels_k = labels[k * b : (k + 1) * b] if labels is not None else None
            fake = tf.stop_gradient(parts.generate(parts.noise(k), labels_k))
            with tf.GradientTape() as d_tape:
                d_loss, real_logits, fake_logits = parts.discriminator_loss(
                    parts.augmented(real_k, 2 * k), parts.augmented(fake, 2 * k + 1), labels_k, k
                )
                d_scaled = parts.scaled(state.d_optimizer, d_loss)
            d_grads = d_tape.gradient(d_scaled, discriminator.trainable_variables)
            d_flags = parts.all_reduce_flags(tf.logical_not(parts.finite([d_loss], d_grads)))
            d_ok = tf.equal(d_flags[0], 0)
            apply_if(d_ok, apply_d, _nothing, (d_grads,), ())
            bad += 1 - tf.cast(d_ok, tf.int32)

        # The generator update sees the updated discriminator.
        labels_g = labels[:b] if labels is not None else None
        with tf.GradientTape() as g_tape:
            fake = parts.generate(parts.noise(n_critic), labels_g)
            g_logits = parts.critic(labels_g)(parts.augmented(fake, 2 * n_critic))
            g_loss = parts.mean(parts.g_loss_fn(g_logits)) + parts.regularization(generator)
            g_scaled = parts.scaled(state.g_optimizer, g_loss)
        g_grads = g_tape.gradient(g_scaled, generator.trainable_variables)
        g_flags = parts.all_reduce_flags(tf.logical_not(parts.finite([g_loss], g_grads)), stop)
        g_ok = tf.equal(g_flags[0], 0)
        apply_if(g_ok, apply_g, _nothing, (g_grads,), ())
        ok = tf.logical_and(g_ok, tf.equal(bad, 0))
        # Any skipped update puts back what the forward passes moved (statistics).
        apply_if(ok, _nothing, parts.restore_stats, (), (saved_stats,))
        return parts.report(ok, g_loss, d_loss, real_logits, fake_logits, g_flags[1])

    return replica_step
