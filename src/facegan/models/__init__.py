"""Generator and discriminator networks, each a plain Keras model.

Families (`ModelConfig.arch`): `dcgan`, `resnet` (SNGAN / BigGAN-lite) and
`stylegan2`. Every generator is called as `G(z)` or, when the config is
conditional, `G([z, labels])` (labels int32 [B, A], one class index per
attribute), and returns float32 images [B, R, R, C]; every discriminator as
`D(images)` or `D([images, labels])` -> float32 logits [B, 1]. Use
`synthesize` to generate with truncation.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from facegan.config import ModelConfig
from facegan.models import dcgan, resnet, stylegan2
from facegan.models.truncation import truncated_images
from facegan.seeds import Stream, stream_key

_BUILDERS = {
    "dcgan": (dcgan.build_generator, dcgan.build_discriminator),
    "resnet": (resnet.build_generator, resnet.build_discriminator),
    "stylegan2": (stylegan2.build_generator, stylegan2.build_discriminator),
}


def build_generator(cfg: ModelConfig, seed: int = 0) -> keras.Model:
    """The generator for `cfg.arch`: latents [B, Z] (and labels) -> images [B, R, R, C].

    dcgan and resnet end in tanh; stylegan2's images are linear (trained towards
    [-1, 1]). Building twice with one seed gives equal weights.
    """
    return _BUILDERS[cfg.arch][0](cfg, seed)


def build_discriminator(cfg: ModelConfig, seed: int = 0) -> keras.Model:
    """The discriminator for `cfg.arch`: images [B, R, R, C] (and labels) -> logits [B, 1]."""
    return _BUILDERS[cfg.arch][1](cfg, seed)


def is_conditional(generator: keras.Model) -> bool:
    """Whether `generator` takes `[z, labels]` rather than `z`."""
    conditional = getattr(generator, "conditional", None)
    if conditional is not None:
        return bool(conditional)
    return len(generator.inputs) > 1


def _is_one(truncation) -> bool:
    return isinstance(truncation, (int, float)) and truncation == 1


def synthesize(
    generator: keras.Model,
    z: tf.Tensor,
    labels: tf.Tensor | None = None,
    truncation: float | tf.Tensor = 1.0,
    training: bool = False,
) -> tf.Tensor:
    """Images [B, R, R, C] (float32) from latents z [B, Z] and, if conditional, labels [B, A].

    Args:
        generator: a model from `build_generator`.
        z: latents [B, Z].
        labels: int class indices [B, A]; required by conditional generators,
            refused by the others.
        truncation: psi; below 1 pulls samples towards the average. stylegan2
            lerps w towards its tracked `w_avg`; dcgan and resnet lerp their
            first features towards their mean (`facegan.models.truncation`).
            1 (the default) is plain synthesis; ignored in training mode.
        training: run in training mode (batch-norm statistics, spectral-norm
            vectors and stylegan2's w_avg move; stylegan2 draws random per-pixel
            noise instead of its fixed noise images).
    """
    conditional = is_conditional(generator)
    if conditional and labels is None:
        raise ValueError("this generator is conditional: pass labels [B, A] (int class indices)")
    if not conditional and labels is not None:
        raise ValueError("this generator is unconditional: it takes no labels")
    if conditional:
        labels = tf.cast(tf.convert_to_tensor(labels), tf.int32)  # numpy from callers is fine
    if getattr(generator, "supports_truncation", False):
        inputs = [z, labels] if conditional else z
        return generator(inputs, training=training, truncation=truncation)
    plain = lambda: generator([z, labels] if conditional else z, training=training)  # noqa: E731
    if _is_one(truncation) or training:
        return plain()
    truncated = lambda: truncated_images(generator, z, labels, truncation)  # noqa: E731
    if isinstance(truncation, (int, float)):
        return truncated()
    # a tensor psi (the Sampler's signature): psi = 1 keeps the untouched path, bit for bit
    return tf.cond(tf.cast(truncation, tf.float32) < 1.0, truncated, plain)


def latents_for_seed(
    n: int, latent_dim: int, seed: int, stream: Stream = Stream.LATENT
) -> tf.Tensor:
    """Standard-normal latents [n, latent_dim]; row i from the key (seed, stream, i) alone."""
    seeds = tf.fill([n], tf.constant(seed, tf.int64))
    return _compiled_latents(int(latent_dim), stream)(seeds, tf.range(n, dtype=tf.int64))


def latents_from_seeds(seeds, latent_dim: int) -> tf.Tensor:
    """Latents [N, Z], one per seed (int64 [N]): row i from the key (seeds[i], LATENT, 0).

    So seed s's latent is row 0 of `latents_for_seed(n, Z, s)`: the face of
    seed s is the first image of `facegan generate --seed s`. Traceable: the
    exported SavedModel turns seeds into latents with it. Called eagerly, it
    runs one compiled function, never one eager draw per seed.
    """
    seeds = tf.cast(tf.convert_to_tensor(seeds), tf.int64)
    steps = tf.zeros_like(seeds)
    if tf.executing_eagerly():
        compiled = _compiled_latents(int(latent_dim), Stream.LATENT)
        return compiled(tf.reshape(seeds, [-1]), tf.reshape(steps, [-1]))
    return _latents_graph(seeds, steps, int(latent_dim), Stream.LATENT)


def _latents_graph(seeds: tf.Tensor, steps: tf.Tensor, latent_dim: int, stream: Stream):
    """Row i from the key (seeds[i], stream, steps[i]): float32 [N, latent_dim]."""
    # Each key has its own Philox stream, and TensorFlow's stateless kernels take one
    # key per call, so the draws cannot be batched into one op without changing the
    # numbers (the seed convention). A while loop in a graph costs ~20 us a row (an
    # eager map_fn ~1.5-3 ms); 64 iterations in flight keep the cores busy.
    return tf.map_fn(
        lambda key: tf.random.stateless_normal(
            [latent_dim], seed=stream_key(key[0], stream, key[1])
        ),
        tf.stack([seeds, steps], axis=-1),
        fn_output_signature=tf.TensorSpec([latent_dim], tf.float32),
        parallel_iterations=64,
    )


@functools.cache
def _compiled_latents(latent_dim: int, stream: Stream):
    """`_latents_graph` for `latent_dim` and `stream` as a tf.function traced once for any N."""
    row = tf.TensorSpec([None], tf.int64)
    return tf.function(
        lambda seeds, steps: _latents_graph(seeds, steps, latent_dim, stream),
        input_signature=[row, row],
        autograph=False,
    )


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Spherical interpolation between latents a and b ([Z] or [N, Z]) at t in [0, 1].

    Gaussian latents live near a sphere of radius sqrt(Z); a straight line
    between two of them passes through the low-norm middle, where a generator
    has seen few latents, so walks along it fade to an "average" face. slerp
    follows the great circle instead (the norm is interpolated linearly).
    Returns [len(t), Z] for an array t, else the shape of a.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ts = np.asarray(t, np.float64)
    scalar = ts.ndim == 0
    ts = ts.reshape(-1, *([1] * a.ndim))
    norm_a, norm_b = (
        np.linalg.norm(a, axis=-1, keepdims=True),
        np.linalg.norm(b, axis=-1, keepdims=True),
    )
    unit_a, unit_b = a / np.maximum(norm_a, 1e-12), b / np.maximum(norm_b, 1e-12)
    omega = np.arccos(np.clip(np.sum(unit_a * unit_b, axis=-1, keepdims=True), -1.0, 1.0))
    sin_omega = np.sin(omega)
    # Nearly parallel latents: the great circle is a straight line.
    safe = sin_omega > 1e-6
    weight_a = np.where(safe, np.sin((1.0 - ts) * omega) / np.where(safe, sin_omega, 1.0), 1.0 - ts)
    weight_b = np.where(safe, np.sin(ts * omega) / np.where(safe, sin_omega, 1.0), ts)
    direction = weight_a * unit_a + weight_b * unit_b
    direction /= np.maximum(np.linalg.norm(direction, axis=-1, keepdims=True), 1e-12)
    out = direction * ((1.0 - ts) * norm_a + ts * norm_b)
    return (out[0] if scalar else out).astype(np.float32)


def float_to_uint8(images: tf.Tensor) -> tf.Tensor:
    """Generator output in [-1, 1] -> uint8 tensor [N, H, W, C] (rounded, clipped); traceable."""
    scaled = tf.round((tf.cast(images, tf.float32) + 1.0) * 127.5)
    return tf.cast(tf.clip_by_value(scaled, 0.0, 255.0), tf.uint8)
