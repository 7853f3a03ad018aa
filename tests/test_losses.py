import math

import numpy as np
import pytest
import tensorflow as tf

from facegan.losses import nonsaturating_discriminator_loss, nonsaturating_generator_loss


def _bce(logit: float, label: float) -> float:
    p = 1.0 / (1.0 + math.exp(-logit))
    return -(label * math.log(p) + (1 - label) * math.log(1 - p))


def test_nonsaturating_values_by_hand():
    real = tf.constant([[2.0], [-1.0], [0.0]])
    fake = tf.constant([[-3.0], [0.5], [0.0]])
    g = nonsaturating_generator_loss(fake).numpy()
    d = nonsaturating_discriminator_loss(real, fake).numpy()
    assert g.shape == d.shape == (3,)
    np.testing.assert_allclose(g, [_bce(-3.0, 1), _bce(0.5, 1), math.log(2)], rtol=1e-6)
    np.testing.assert_allclose(
        d, [_bce(2.0, 1) + _bce(-3.0, 0), _bce(-1.0, 1) + _bce(0.5, 0), 2 * math.log(2)], rtol=1e-6
    )


def test_matches_keras_binary_crossentropy():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(16, 1)) * 3, rng.normal(size=(16, 1)) * 3
    bce = tf.keras.losses.BinaryCrossentropy(from_logits=True)
    expected_d = bce(np.ones_like(real), real) + bce(np.zeros_like(fake), fake)
    expected_g = bce(np.ones_like(fake), fake)
    assert float(tf.reduce_mean(nonsaturating_discriminator_loss(real, fake))) == pytest.approx(
        float(expected_d), rel=1e-5
    )
    assert float(tf.reduce_mean(nonsaturating_generator_loss(fake))) == pytest.approx(
        float(expected_g), rel=1e-5
    )


def test_stable_for_extreme_logits():
    big = tf.constant([[1000.0], [-1000.0]])
    assert np.all(np.isfinite(nonsaturating_generator_loss(big).numpy()))
    assert np.all(np.isfinite(nonsaturating_discriminator_loss(big, big).numpy()))
    np.testing.assert_allclose(nonsaturating_generator_loss(big).numpy(), [0.0, 1000.0])


from facegan import losses as L  # noqa: E402


def test_hinge_wasserstein_and_least_squares_by_hand():
    real = tf.constant([[2.0], [0.5], [-1.0]])
    fake = tf.constant([[-2.0], [0.5], [1.0]])
    np.testing.assert_allclose(
        L.hinge_discriminator_loss(real, fake).numpy(), [0 + 0, 0.5 + 1.5, 2 + 2]
    )
    np.testing.assert_allclose(L.hinge_generator_loss(fake).numpy(), [2.0, -0.5, -1.0])
    np.testing.assert_allclose(
        L.wasserstein_discriminator_loss(real, fake).numpy(), [-4.0, 0.0, 2.0]
    )
    np.testing.assert_allclose(L.wasserstein_generator_loss(fake).numpy(), [2.0, -0.5, -1.0])
    np.testing.assert_allclose(
        L.least_squares_discriminator_loss(real, fake).numpy(),
        [0.5 * (1 + 4), 0.5 * (0.25 + 0.25), 0.5 * (4 + 1)],
    )
    np.testing.assert_allclose(
        L.least_squares_generator_loss(fake).numpy(), [0.5 * 9, 0.5 * 0.25, 0.0]
    )


@pytest.mark.parametrize("kind", list(L.LOSSES))
def test_every_loss_is_per_example_float32_even_for_bfloat16_logits(kind):
    g_loss, d_loss = L.LOSSES[kind].generator_loss, L.LOSSES[kind].discriminator_loss
    logits = tf.cast(tf.constant([[0.3], [-0.7]]), tf.bfloat16)
    assert g_loss(logits).dtype == tf.float32 and g_loss(logits).shape == (2,)
    assert d_loss(logits, logits).dtype == tf.float32 and d_loss(logits, logits).shape == (2,)


def test_r1_is_the_squared_input_gradient_norm():
    # D(x) = sum(w * x): grad_x = w for every example, so R1 = |w|^2 whatever x is
    w = tf.constant(np.arange(1.0, 13.0).reshape(1, 2, 2, 3), tf.float32)

    def critic(images):
        return tf.reduce_sum(images * w, axis=[1, 2, 3])[:, None]

    x = tf.random.normal([4, 2, 2, 3])
    np.testing.assert_allclose(
        L.r1_penalty(critic, x).numpy(), [float(tf.reduce_sum(w * w))] * 4, rtol=1e-6
    )


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic_and_uses_the_interpolates():
    direction = tf.constant(np.ones((1, 2, 2, 1)) / 2.0, tf.float32)  # unit norm over 4 pixels

    def unit(images):
        return tf.reduce_sum(images * direction, axis=[1, 2, 3])[:, None]

    real, fake = tf.random.normal([3, 2, 2, 1]), tf.random.normal([3, 2, 2, 1])
    alpha = tf.constant([0.0, 0.5, 1.0])
    np.testing.assert_allclose(
        L.gradient_penalty(unit, real, fake, alpha).numpy(), [0, 0, 0], atol=1e-6
    )

    seen = []

    def square(images):  # D(x) = sum(x^2): grad = 2x, so the penalty depends on x_hat
        seen.append(images)
        return tf.reduce_sum(images * images, axis=[1, 2, 3])[:, None]

    penalty = L.gradient_penalty(square, real, fake, alpha).numpy()
    mixed = seen[0].numpy()
    np.testing.assert_allclose(mixed[0], fake[0].numpy(), rtol=1e-6)  # alpha 0: the fake
    np.testing.assert_allclose(mixed[2], real[2].numpy(), rtol=1e-6)  # alpha 1: the real
    expected = (np.sqrt((4 * mixed**2).sum(axis=(1, 2, 3))) - 1) ** 2
    np.testing.assert_allclose(penalty, expected, rtol=1e-4)


def test_each_loss_declares_the_penalty_it_requires():
    # The step adds a loss's penalty (weighted by loss.gp_weight) without knowing its name.
    assert L.LOSSES["wasserstein"].penalty is L.gradient_penalty
    assert all(row.penalty is None for kind, row in L.LOSSES.items() if kind != "wasserstein")
