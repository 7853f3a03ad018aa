"""What every facegan layer shares: no autocasting, seeded initializers, activations.

Mixed precision: every layer here is built with `autocast=False` and casts by
hand, so that what needs float32 stays float32 under a `mixed_bfloat16` policy
(power iteration, styles and demodulation coefficients, minibatch statistics,
noise keys) while the convolutions run in the policy's compute dtype.

Determinism: every random initializer takes an integer seed; a layer that owns
several draws from `seed + k` for k < `SEED_STRIDE`, and `seed_stream` hands out
seeds `SEED_STRIDE` apart (from the run's WEIGHTS stream, `facegan.seeds`), so
building a network twice from one seed gives equal weights.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import keras
import tensorflow as tf
from keras import layers

from facegan.seeds import Stream, rng

SEED_STRIDE = 16
_LRELU_SLOPE = 0.2
# StyleGAN2 multiplies leaky-ReLU outputs by sqrt(2), so activations keep unit
# variance through layers whose weights are N(0, 1) scaled by 1/sqrt(fan_in).
_LRELU_GAIN = math.sqrt(2.0)
_ACTIVATIONS = ("linear", "lrelu")
# Registered by class name under "facegan": `.keras` files find the classes again.
serializable = keras.saving.register_keras_serializable(package="facegan")


def seed_stream(seed: int, salt: int = 0) -> Iterator[int]:
    """Distinct, deterministic initializer seeds, `SEED_STRIDE` apart.

    Args:
        seed: the network's seed (from the run's config).
        salt: separates the streams of networks built from one seed (G, D).
    """
    # A contiguous run per (seed, salt): a network's few hundred seeds never collide.
    start = int(rng(seed, Stream.WEIGHTS, part=salt).integers(2**26))
    return itertools.count(start * SEED_STRIDE, SEED_STRIDE)


def activate(x: tf.Tensor, activation: str) -> tf.Tensor:
    if activation == "lrelu":
        return tf.nn.leaky_relu(x, _LRELU_SLOPE) * tf.cast(_LRELU_GAIN, x.dtype)
    return x


def check_activation(activation: str) -> str:
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {_ACTIVATIONS}; received {activation!r}")
    return activation


class Layer(layers.Layer):
    """A layer that never autocasts: `call` casts inputs and weights explicitly."""

    def __init__(self, **kwargs):
        kwargs.pop("autocast", None)
        # autocast=False: float inputs arrive as they are (float32 styles stay float32
        # under mixed precision) and weights are read in their own dtype.
        super().__init__(autocast=False, **kwargs)

    def _cast(self, x) -> tf.Tensor:
        return tf.cast(x, self.compute_dtype)
