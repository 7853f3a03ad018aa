"""Adversarial losses and regularizers: pure functions of tensors.

Naming follows `<name>_generator_loss` / `<name>_discriminator_loss`. Each
returns a per-example loss [B] in float32 (logits of any float dtype are cast
first, so the losses stay float32 under mixed precision); the train step
averages over the global batch, so the same functions serve one device and a
distribution strategy. Randomness (the interpolation weights of the gradient
penalty) is passed in.

`LOSSES` is the registry the train step reads: per `loss.kind`, the two
functions and the penalty the loss requires. Adding a loss: its pair of
functions and one row here, and its name in `config.common.LOSSES`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import tensorflow as tf


def _flat(logits: tf.Tensor) -> tf.Tensor:
    return tf.reshape(tf.cast(logits, tf.float32), [-1])


# -- non-saturating (Goodfellow et al. 2014; the DCGAN recipe) ------------------
def nonsaturating_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """-log sigmoid(D(G(z))): the generator's non-saturating BCE, per example [B]."""
    # softplus(-x) == -log(sigmoid(x)), computed without overflow for large |x|.
    return tf.nn.softplus(-_flat(fake_logits))


def nonsaturating_discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """-log sigmoid(D(x)) - log(1 - sigmoid(D(G(z)))), per example [B]."""
    return tf.nn.softplus(-_flat(real_logits)) + tf.nn.softplus(_flat(fake_logits))


# -- hinge (Lim & Ye 2017; SNGAN, BigGAN) ----------------------------------------
def hinge_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """-D(G(z)), per example [B]."""
    return -_flat(fake_logits)


def hinge_discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """max(0, 1 - D(x)) + max(0, 1 + D(G(z))), per example [B]."""
    return tf.nn.relu(1.0 - _flat(real_logits)) + tf.nn.relu(1.0 + _flat(fake_logits))


# -- Wasserstein (Arjovsky et al. 2017; with gradient penalty, Gulrajani et al. 2017) --
def wasserstein_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """-D(G(z)), per example [B]."""
    return -_flat(fake_logits)


def wasserstein_discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """D(G(z)) - D(x), per example [B] (the critic's estimate of -W, to minimise)."""
    return _flat(fake_logits) - _flat(real_logits)


# -- least squares (Mao et al. 2017) ---------------------------------------------
def least_squares_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """(D(G(z)) - 1)^2 / 2, per example [B]."""
    return 0.5 * tf.square(_flat(fake_logits) - 1.0)


def least_squares_discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """((D(x) - 1)^2 + D(G(z))^2) / 2, per example [B]."""
    return 0.5 * (tf.square(_flat(real_logits) - 1.0) + tf.square(_flat(fake_logits)))


# -- regularizers ------------------------------------------------------------------
def _squared_gradient_norm(
    critic: Callable[[tf.Tensor], tf.Tensor], images: tf.Tensor
) -> tf.Tensor:
    """|d sum(critic(images)) / d images|^2 per example [B], in float32."""
    with tf.GradientTape() as tape:
        tape.watch(images)
        logits = tf.reduce_sum(_flat(critic(images)))
    grads = tf.cast(tape.gradient(logits, images), tf.float32)  # [B, H, W, C]
    return tf.reduce_sum(tf.square(grads), axis=[1, 2, 3])


def r1_penalty(critic: Callable[[tf.Tensor], tf.Tensor], real: tf.Tensor) -> tf.Tensor:
    """|grad_x D(x)|^2 on real images, per example [B] (Mescheder et al. 2018).

    The caller weights it by gamma / 2 (and, for lazy regularization, by the
    interval). `critic` maps images to logits and must be differentiable.
    """
    return _squared_gradient_norm(critic, real)


def gradient_penalty(
    critic: Callable[[tf.Tensor], tf.Tensor], real: tf.Tensor, fake: tf.Tensor, alpha: tf.Tensor
) -> tf.Tensor:
    """(|grad D(x_hat)| - 1)^2 on x_hat = alpha x + (1 - alpha) G(z), per example [B].

    Args:
        critic: images -> logits.
        real, fake: [B, H, W, C] batches.
        alpha: [B] weights, uniform in [0, 1] (drawn by the caller).
    """
    alpha = tf.cast(tf.reshape(alpha, [-1, 1, 1, 1]), real.dtype)
    mixed = alpha * real + (1.0 - alpha) * tf.cast(fake, real.dtype)
    norm = tf.sqrt(_squared_gradient_norm(critic, mixed) + 1e-12)
    return tf.square(norm - 1.0)


# -- the registry -------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Loss:
    """One adversarial loss, as the train step uses it.

    Attributes:
        generator_loss: fake logits [B, 1] -> per-example loss [B].
        discriminator_loss: (real logits, fake logits) -> per-example loss [B].
        penalty: what the loss needs added to D's loss for its theory to hold,
            `penalty(critic, real, fake, alpha) -> [B]` with alpha ~ U[0, 1] per
            example, weighted by `loss.gp_weight` (the Wasserstein critic must be
            1-Lipschitz: the gradient penalty); None when it needs none. R1 is
            not here: it is an optional regularizer of any loss (`loss.r1_gamma`).
    """

    generator_loss: Callable[[tf.Tensor], tf.Tensor]
    discriminator_loss: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
    penalty: Callable[..., tf.Tensor] | None = None


LOSSES: dict[str, Loss] = {
    "nonsaturating": Loss(nonsaturating_generator_loss, nonsaturating_discriminator_loss),
    "hinge": Loss(hinge_generator_loss, hinge_discriminator_loss),
    "wasserstein": Loss(
        wasserstein_generator_loss, wasserstein_discriminator_loss, penalty=gradient_penalty
    ),
    "least_squares": Loss(least_squares_generator_loss, least_squares_discriminator_loss),
}
