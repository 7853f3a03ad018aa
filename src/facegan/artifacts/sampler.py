"""The one compiled path from latents (or seeds) to uint8 images.

`facegan generate`, the web page, interpolation and the exported SavedModel
all produce images through a `Sampler`: the same `tf.function`s, traced from
the same Python code, so a SavedModel loaded in a process without facegan
gives exactly (bit for bit) the images `facegan generate` gives. Running the
Keras model eagerly instead would round a few pixels differently, because
graph optimisation fuses some operations.

Seeds: the face of seed `s` comes from the latent drawn from the stateless
pair (s, 0); `Run.generate(n, seed=s)`'s image i from (s, i). So seed s's face
is the first image of `facegan generate --seed s`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from facegan.models import float_to_uint8, is_conditional, latents_from_seeds, synthesize


class Sampler(tf.Module):
    """Wraps a generator in compiled functions that return uint8 images.

    Every function takes a `truncation` (psi, scalar float32; 1 = none) and,
    for a conditional generator, `labels` int32 [N, A] (class indices):

        images_from_latent(latent float32 [N, Z], truncation[, labels])
        images_from_seed(seed int64 [N], truncation[, labels])

    and returns uint8 [N, H, W, C]. Their input signatures are fixed, so each
    is traced once whatever N is.
    """

    def __init__(self, generator: keras.Model, latent_dim: int, num_attributes: int = 0,
                 name: str = "facegan_sampler"):
        super().__init__(name=name)
        self.generator = generator
        self.latent_dim = int(latent_dim)
        self.conditional = is_conditional(generator)
        if self.conditional and num_attributes < 1:
            raise ValueError("a conditional generator needs num_attributes >= 1")
        self.num_attributes = int(num_attributes) if self.conditional else 0
        latent = tf.TensorSpec([None, self.latent_dim], tf.float32, name="latent")
        seed = tf.TensorSpec([None], tf.int64, name="seed")
        psi = tf.TensorSpec([], tf.float32, name="truncation")
        if self.conditional:
            labels = tf.TensorSpec([None, self.num_attributes], tf.int32, name="labels")
            self.images_from_latent = tf.function(
                self._from_latent_with_labels, input_signature=[latent, psi, labels])
            self.images_from_seed = tf.function(
                self._from_seed_with_labels, input_signature=[seed, psi, labels])
        else:
            self.images_from_latent = tf.function(self._from_latent,
                                                  input_signature=[latent, psi])
            self.images_from_seed = tf.function(self._from_seed, input_signature=[seed, psi])

    # The four bodies are separate methods (not one with an optional argument)
    # so that every traced function has exactly the inputs its signature names.
    def _from_latent(self, latent, truncation):
        return {"images": self._render(latent, truncation, None)}

    def _from_latent_with_labels(self, latent, truncation, labels):
        return {"images": self._render(latent, truncation, labels)}

    def _from_seed(self, seed, truncation):
        return {"images": self._render(latents_from_seeds(seed, self.latent_dim), truncation, None)}

    def _from_seed_with_labels(self, seed, truncation, labels):
        return {"images": self._render(latents_from_seeds(seed, self.latent_dim), truncation,
                                       labels)}

    def _render(self, latent, truncation, labels):
        images = synthesize(self.generator, latent, labels, truncation=truncation, training=False)
        return float_to_uint8(images)

    def images(self, latents: np.ndarray | tf.Tensor, *, labels: np.ndarray | None = None,
               truncation: float = 1.0, batch_size: int = 64) -> np.ndarray:
        """uint8 [N, H, W, C] from latents [N, Z], in batches of `batch_size`."""
        latents = np.asarray(latents, np.float32)
        if latents.ndim != 2 or latents.shape[1] != self.latent_dim:
            raise ValueError(f"latents must be [N, {self.latent_dim}]; received {latents.shape}")
        if self.conditional and labels is None:
            raise ValueError("this generator is conditional: pass labels [N, A]")
        if not self.conditional and labels is not None:
            raise ValueError("this generator is unconditional: it takes no labels")
        psi = tf.constant(truncation, tf.float32)
        chunks = []
        for i in range(0, len(latents), batch_size):
            args = [tf.constant(latents[i:i + batch_size]), psi]
            if self.conditional:
                args.append(tf.constant(np.asarray(labels, np.int32)[i:i + batch_size]))
            chunks.append(self.images_from_latent(*args)["images"].numpy())
        if not chunks:
            return np.zeros((0, *self.generator.output_shape[1:]), np.uint8)
        return np.concatenate(chunks)
