"""Discriminator pieces: minibatch standard deviation (ProGAN, StyleGAN2) and sum pooling."""

from __future__ import annotations

import tensorflow as tf

from facegan.models.layers.base import Layer, serializable


def _group_size(batch: int, group_size: int) -> int:
    return max(g for g in range(1, min(group_size, batch) + 1) if batch % g == 0)


@serializable
class MinibatchStddev(Layer):
    """Appends the minibatch standard deviation as extra feature maps (ProGAN, StyleGAN2).

    The batch is split into groups of `group_size` samples (the largest divisor
    of the batch not above it); within a group, the standard deviation of every
    feature is averaged over pixels and channels (per channel group of
    C / num_channels), and the result is appended to each member as
    `num_channels` constant maps. It lets the discriminator see a lack of
    variety. Statistics are float32; under `tf.distribute` a group never spans
    replicas (each replica sees its own slice of the batch).

    Args:
        group_size: samples per group (4 in StyleGAN2).
        num_channels: statistics maps appended (1 in StyleGAN2).
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.group_size, self.num_channels = int(group_size), int(num_channels)

    def call(self, inputs):
        x = self._cast(inputs)
        static_batch = x.shape[0]
        batch = tf.shape(x)[0]
        if static_batch is not None:
            group = _group_size(static_batch, self.group_size)
        else:  # the largest divisor of the batch not above group_size, found in the graph
            candidates = tf.range(self.group_size, 0, -1)
            fits = tf.equal(tf.math.floormod(batch, candidates), 0)
            group = tf.minimum(tf.gather(candidates, tf.argmax(tf.cast(fits, tf.int32))), batch)
        h, w, c = x.shape[1], x.shape[2], x.shape[3]
        f = self.num_channels
        y = tf.reshape(tf.cast(x, tf.float32), [group, -1, h, w, f, c // f])  # [G, n, H, W, F, c]
        y = y - tf.reduce_mean(y, axis=0)
        y = tf.sqrt(tf.reduce_mean(tf.square(y), axis=0) + 1e-8)  # [n, H, W, F, c]
        y = tf.reduce_mean(y, axis=[1, 2, 4])  # [n, F]
        # Sample i of the batch is member i // n of group i % n: tile the groups.
        y = tf.tile(y[:, None, None, :], [group, h, w, 1])  # [B, H, W, F]
        return tf.concat([x, self._cast(y)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + self.num_channels)

    def get_config(self):
        return {
            **super().get_config(),
            "group_size": self.group_size,
            "num_channels": self.num_channels,
        }


@serializable
class GlobalSumPooling(Layer):
    """[B, H, W, C] -> [B, C], summed over pixels (SNGAN, BigGAN)."""

    def call(self, inputs):
        return tf.reduce_sum(self._cast(inputs), axis=[1, 2])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])
