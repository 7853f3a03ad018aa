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
        d, [_bce(2.0, 1) + _bce(-3.0, 0), _bce(-1.0, 1) + _bce(0.5, 0), 2 * math.log(2)], rtol=1e-6)


def test_matches_keras_binary_crossentropy():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(16, 1)) * 3, rng.normal(size=(16, 1)) * 3
    bce = tf.keras.losses.BinaryCrossentropy(from_logits=True)
    expected_d = bce(np.ones_like(real), real) + bce(np.zeros_like(fake), fake)
    expected_g = bce(np.ones_like(fake), fake)
    assert float(tf.reduce_mean(nonsaturating_discriminator_loss(real, fake))) == pytest.approx(
        float(expected_d), rel=1e-5)
    assert float(tf.reduce_mean(nonsaturating_generator_loss(fake))) == pytest.approx(
        float(expected_g), rel=1e-5)


def test_stable_for_extreme_logits():
    big = tf.constant([[1000.0], [-1000.0]])
    assert np.all(np.isfinite(nonsaturating_generator_loss(big).numpy()))
    assert np.all(np.isfinite(nonsaturating_discriminator_loss(big, big).numpy()))
    np.testing.assert_allclose(nonsaturating_generator_loss(big).numpy(), [0.0, 1000.0])
