"""Truncation for generators that take z directly (dcgan, resnet): toward a feature mean.

StyleGAN2 truncates in w: w' = w_avg + psi (w - w_avg), where w_avg is the
mean of the mapped latents. A DCGAN or ResNet generator has no mapping
network, and the obvious substitute, z' = psi z, is not a truncation at all:
a 128-dimensional standard normal has norm ~11.3, so psi z lies where the
generator never saw a latent. Its batch norms then shift every channel and
the faces turn dark and alike (seen at psi 0.5 on faces-64).

Here the generator is cut in two at its first nonlinear layer whose output
all later layers depend on (dcgan: `relu_4`, the 4x4 features after batch
norm and ReLU; resnet: `up_8_add`, the first residual block's output). With
h = head(z) and h_avg the mean of head over `MEAN_LATENTS` fixed latents,
the image is tail(h_avg + psi (h - h_avg)): psi = 1 is the ordinary face,
psi = 0 the average face, and in between the features move along a straight
line toward the average inside the space the generator produces. For a
conditional generator the mean is taken with each image's own labels, so a
truncated face keeps its class.

The fixed latents come from their own stream (`Stream.TRUNCATION`, seed 0)
and enter the graph as a constant, so the mean is a pure function of the
weights: the same in `generate`, the web page and an exported SavedModel or
TFLite file (which recompute it in-graph).
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from facegan.seeds import Stream, rng

SPLIT_LAYERS = ("relu_4", "up_8_add")  # dcgan, resnet: see the module docstring
MEAN_LATENTS = 256  # the mean's error is ~1/16 of the features' spread


def feature_split(generator: keras.Model) -> tuple[keras.Model, keras.Model] | None:
    """(head, tail) sharing the generator's layers, or None if it has no split layer.

    Cached on the generator: the two models hold no weights of their own.
    """
    cached = getattr(generator, "_facegan_feature_split", None)
    if cached is not None:
        return cached
    names = {layer.name for layer in generator.layers}
    split = next((name for name in SPLIT_LAYERS if name in names), None)
    if split is None:
        return None
    features = generator.get_layer(split).output
    head = keras.Model(
        generator.inputs if len(generator.inputs) > 1 else generator.inputs[0],
        features,
        name="generator_head",
    )
    tail = keras.Model(features, generator.output, name="generator_tail")
    generator._facegan_feature_split = (head, tail)
    return head, tail


@functools.lru_cache(maxsize=8)
def anchor_latents(latent_dim: int) -> np.ndarray:
    """The fixed latents [MEAN_LATENTS, Z] the feature mean is taken over.

    Drawn with NumPy, so they enter a traced function as a constant: an export
    (TFLite included, which has no stateless random ops) carries them as data.
    """
    return rng(0, Stream.TRUNCATION).standard_normal((MEAN_LATENTS, latent_dim)).astype(np.float32)


def truncated_images(
    generator: keras.Model, z: tf.Tensor, labels: tf.Tensor | None, psi: tf.Tensor
) -> tf.Tensor:
    """tail(h_avg + psi (head(z) - h_avg)) in inference mode; see the module docstring."""
    split = feature_split(generator)
    if split is None:
        raise ValueError(
            f"generator {generator.name!r} has none of the layers "
            f"{', '.join(SPLIT_LAYERS)} to truncate at"
        )
    head, tail = split
    z = tf.cast(z, tf.float32)
    batch, latent_dim = tf.shape(z)[0], z.shape[-1]
    anchors = tf.constant(anchor_latents(int(latent_dim)))
    if labels is None:
        h = head(z, training=False)
        mean = tf.reduce_mean(
            tf.cast(head(anchors, training=False), tf.float32), axis=0, keepdims=True
        )
    else:
        h = head([z, labels], training=False)
        # every image's own labels with each of the fixed latents: [B * M] rows
        tiled = tf.tile(anchors, [batch, 1])
        repeated = tf.repeat(labels, MEAN_LATENTS, axis=0)
        around = tf.cast(head([tiled, repeated], training=False), tf.float32)
        around = tf.reshape(around, tf.concat([[batch, MEAN_LATENTS], tf.shape(h)[1:]], 0))
        mean = tf.reduce_mean(around, axis=1)
    psi = tf.cast(psi, tf.float32)
    moved = mean + psi * (tf.cast(h, tf.float32) - mean)
    return tail(tf.cast(moved, h.dtype), training=False)
