"""StyleGAN2's per-pixel noise: `NoiseKey` (a hash of the call's w) and `NoiseInjection`."""

from __future__ import annotations

import keras
import tensorflow as tf

from facegan.models.layers.base import Layer, serializable


def _mix32(x: tf.Tensor) -> tf.Tensor:
    """An avalanching hash of 32-bit values held in int64 (products stay below 2^59)."""
    for _ in range(2):
        x = tf.bitwise.bitwise_xor(tf.bitwise.right_shift(x, 16), x)
        x = tf.bitwise.bitwise_and(x * 0x45D9F3B, 0xFFFFFFFF)
    return tf.bitwise.bitwise_xor(tf.bitwise.right_shift(x, 16), x)


def tensor_hash(x: tf.Tensor) -> tf.Tensor:
    """A deterministic int64 scalar in [0, 2^32) from the bits of a float tensor.

    Integer sums are exact in any order, so the result does not depend on how
    the reduction is split across threads or devices.
    """
    bits = tf.bitcast(tf.reshape(tf.cast(x, tf.float32), [-1]), tf.int32)
    bits = tf.bitwise.bitwise_and(tf.cast(bits, tf.int64), 0xFFFFFFFF)
    position = _mix32(tf.range(tf.size(bits, out_type=tf.int64), dtype=tf.int64) + 0x9E3779B9)
    mixed = _mix32(tf.bitwise.bitwise_xor(bits, position))
    return _mix32(tf.bitwise.bitwise_and(tf.reduce_sum(mixed), 0xFFFFFFFF))


@serializable
class NoiseKey(Layer):
    """ws [B, num_ws, W] -> an int64 scalar that seeds the per-pixel noise of one call.

    Noise must be random in training, yet drawn inside the graph, work under
    `tf.function` and `tf.distribute`, and let a resumed run draw exactly what
    an uninterrupted one would. Hashing the first w row of every sample gives
    all that: w is a deterministic function of the step's latents (themselves
    drawn statelessly from the run's seed and step), different batches and
    replicas get different keys, and no random state needs saving.
    """

    def call(self, inputs):
        return tensor_hash(inputs[:, 0])

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((), dtype="int64")


@serializable
class NoiseInjection(Layer):
    """Adds per-pixel Gaussian noise times a learned scalar strength (initialised to 0).

    Inputs `[x, key]`: x [B, H, W, C] and the int64 key from `NoiseKey`. In
    training calls the noise [B, H, W, 1] is `tf.random.stateless_normal`
    seeded with (key, salt), `salt` telling the layers apart; inference calls
    add a fixed noise image (a non-trainable weight drawn from `seed`, the
    same for every sample), so generation is a deterministic function of w, as
    StyleGAN2's "const" noise mode.

    Args:
        salt: distinguishes this layer's noise from the other layers'.
        seed: seeds the fixed inference noise.
    """

    def __init__(self, salt: int = 0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.salt = int(salt)
        self.seed = int(seed)

    def build(self, input_shape):
        _, h, w, _ = input_shape[0]
        self.strength = self.add_weight(
            name="strength", shape=(), initializer="zeros", autocast=False
        )
        self.fixed_noise = self.add_weight(
            name="fixed_noise",
            shape=(1, h, w, 1),
            trainable=False,
            autocast=False,
            initializer=keras.initializers.RandomNormal(0.0, 1.0, seed=self.seed),
        )

    def call(self, inputs, training=None):
        x, key = inputs
        x = self._cast(x)
        if training:
            shape = tf.concat([tf.shape(x)[:3], [1]], axis=0)
            seed = tf.stack([tf.cast(key, tf.int64), tf.constant(self.salt, tf.int64)])
            noise = tf.random.stateless_normal(shape, seed=seed)  # [B, H, W, 1]
        else:
            noise = tf.convert_to_tensor(self.fixed_noise)  # [1, H, W, 1]
        return x + self._cast(noise * self.strength)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "salt": self.salt, "seed": self.seed}
