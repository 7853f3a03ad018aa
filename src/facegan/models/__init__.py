"""Generator and discriminator networks, each a plain Keras model."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from facegan.config import ModelConfig
from facegan.models import dcgan

_BUILDERS = {"dcgan": (dcgan.build_generator, dcgan.build_discriminator)}


def build_generator(cfg: ModelConfig, seed: int = 0) -> keras.Model:
    """The generator for `cfg.arch`: latents [B, Z] -> images [B, R, R, C] in [-1, 1]."""
    return _BUILDERS[cfg.arch][0](cfg, seed)


def build_discriminator(cfg: ModelConfig, seed: int = 0) -> keras.Model:
    """The discriminator for `cfg.arch`: images [B, R, R, C] -> logits [B, 1]."""
    return _BUILDERS[cfg.arch][1](cfg, seed)


def latents_for_seed(n: int, latent_dim: int, seed: int) -> tf.Tensor:
    """Standard-normal latents [n, latent_dim]; row i is drawn from (seed, i) alone."""
    rows = [tf.random.stateless_normal([latent_dim], seed=[seed, i]) for i in range(n)]
    return tf.stack(rows) if rows else tf.zeros([0, latent_dim])


def to_uint8(images: tf.Tensor) -> np.ndarray:
    """Generator output in [-1, 1] -> uint8 numpy [N, H, W, C]."""
    scaled = tf.round((tf.cast(images, tf.float32) + 1.0) * 127.5)
    return tf.cast(tf.clip_by_value(scaled, 0.0, 255.0), tf.uint8).numpy()


def generate_uint8(generator: keras.Model, latents: tf.Tensor, batch_size: int = 64) -> np.ndarray:
    """Runs `generator` in inference mode over `latents` in batches -> uint8 [N, H, W, C]."""
    chunks = [to_uint8(generator(latents[i:i + batch_size], training=False))
              for i in range(0, int(latents.shape[0]), batch_size)]
    return np.concatenate(chunks)
