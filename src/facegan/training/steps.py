"""The compiled train step: one factory per training algorithm.

The classic GAN step: noise -> G -> D(real), D(fake) -> losses -> two tapes ->
two optimizers. Both networks are updated from the same forward pass (the
generator's gradient flows through the discriminator as it was before its own
update), exactly as in the DCGAN / TensorFlow-tutorial loop.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from facegan.config import Config
from facegan.losses import LOSSES
from facegan.training.state import TrainState

StepFn = Callable[[tf.Tensor], dict[str, tf.Tensor]]


def make_gan_train_step(state: TrainState, config: Config,
                        strategy: tf.distribute.Strategy) -> StepFn:
    """Returns a `tf.function(real) -> {g_loss, d_loss, d_real, d_fake}`.

    The input signature is fixed (one global batch of float32 images), so the
    function is traced once and never again. `d_real`/`d_fake` are the mean
    discriminator probabilities on real and generated images.
    """
    model, train = config.model, config.train
    generator_loss, discriminator_loss = LOSSES[config.loss.kind]
    generator, discriminator = state.generator, state.discriminator
    global_batch = train.batch_size

    def replica_step(real: tf.Tensor) -> dict[str, tf.Tensor]:
        noise = state.rng.normal([tf.shape(real)[0], model.latent_dim])  # [B, Z]
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generator(noise, training=True)  # [B, R, R, C]
            real_logits = discriminator(real, training=True)  # [B, 1]
            fake_logits = discriminator(fake, training=True)
            # Divide by the global batch, not the replica's: correct under any strategy.
            g_loss = tf.nn.compute_average_loss(generator_loss(fake_logits),
                                                global_batch_size=global_batch)
            d_loss = tf.nn.compute_average_loss(discriminator_loss(real_logits, fake_logits),
                                                global_batch_size=global_batch)
        g_grads = g_tape.gradient(g_loss, generator.trainable_variables)
        d_grads = d_tape.gradient(d_loss, discriminator.trainable_variables)
        state.g_optimizer.apply_gradients(zip(g_grads, generator.trainable_variables))
        state.d_optimizer.apply_gradients(zip(d_grads, discriminator.trainable_variables))
        return {
            "g_loss": g_loss,
            "d_loss": d_loss,
            "d_real": tf.nn.compute_average_loss(tf.sigmoid(tf.reshape(real_logits, [-1])),
                                                 global_batch_size=global_batch),
            "d_fake": tf.nn.compute_average_loss(tf.sigmoid(tf.reshape(fake_logits, [-1])),
                                                 global_batch_size=global_batch),
        }

    spec = tf.TensorSpec([global_batch, model.resolution, model.resolution, model.channels],
                         tf.float32, name="real")

    @tf.function(input_signature=[spec], jit_compile=train.jit)
    def train_step(real: tf.Tensor) -> dict[str, tf.Tensor]:
        per_replica = strategy.run(replica_step, args=(real,))
        state.step.assign_add(1)
        # Each replica already divided by the global batch: the sum is the mean.
        return {name: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for name, value in per_replica.items()}

    return train_step
