"""Adversarial losses: pure functions of discriminator logits.

Naming follows `<name>_generator_loss` / `<name>_discriminator_loss`. Each
returns a per-example loss [B]; the train step averages it, so the same
functions serve a single device and (later) a distribution strategy, which
must divide by the global batch instead.
"""

from __future__ import annotations

import tensorflow as tf


def _flat(logits: tf.Tensor) -> tf.Tensor:
    return tf.reshape(tf.cast(logits, tf.float32), [-1])


def nonsaturating_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """-log sigmoid(D(G(z))): the generator's non-saturating BCE, per example [B]."""
    # softplus(-x) == -log(sigmoid(x)), computed without overflow for large |x|.
    return tf.nn.softplus(-_flat(fake_logits))


def nonsaturating_discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """-log sigmoid(D(x)) - log(1 - sigmoid(D(G(z)))), per example [B]."""
    return tf.nn.softplus(-_flat(real_logits)) + tf.nn.softplus(_flat(fake_logits))


LOSSES = {
    "nonsaturating": (nonsaturating_generator_loss, nonsaturating_discriminator_loss),
}
