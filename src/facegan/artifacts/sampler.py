"""The one compiled path from latents (or seeds) to uint8 images.

Every image facegan shows a person is rendered by a `Sampler`: the training
run's sample grids and in-training evaluation, `facegan generate`,
`evaluate`, the web page, interpolation, projection and the exported
SavedModel. They run the same `tf.function`s, traced from the same Python
code, so a SavedModel loaded in a process without facegan gives exactly (bit
for bit) the images `facegan generate` gives. (Running the Keras model eagerly
instead would round a few pixels differently: graph optimisation fuses some
operations.)

What a caller asks for is checked here, once (`SamplingError`, a one-line user
error): latents [N, Z], labels present exactly for a conditional generator
and within each attribute's classes, truncation from 0 to 1, seeds from 0 to
2^63 - 1.

Seeds: the face of seed `s` comes from the latent drawn with the stateless key
`facegan.seeds.stream_key(s, Stream.LATENT, 0)`; `Run.generate(n, seed=s)`'s
image i from `stream_key(s, Stream.LATENT, i)`. So seed s's face is the first
image of `facegan generate --seed s`.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from facegan.errors import UserError
from facegan.models import float_to_uint8, is_conditional, latents_from_seeds, synthesize
from facegan.seeds import MAX_SEED


class SamplingError(UserError):
    """A request the generator cannot answer (one line, exit 2)."""


class Sampler(tf.Module):
    """Wraps a generator in compiled functions that return uint8 images.

    Every function takes a `truncation` (psi, scalar float32; 1 = none) and,
    for a conditional generator, `labels` int32 [N, A] (class indices):

        images_from_latent(latent float32 [N, Z], truncation[, labels])
        images_from_seed(seed int64 [N], truncation[, labels])

    and returns uint8 [N, H, W, C]. Their input signatures are fixed, so each
    is traced once whatever N is. Python callers use `images` (checked, batched).

    Args:
        generator: a model from `facegan.models.build_generator`.
        latent_dim: Z.
        class_counts: the number of classes of each label attribute, in column
            order (empty for an unconditional generator).
    """

    def __init__(
        self,
        generator: keras.Model,
        latent_dim: int,
        class_counts: Sequence[int] = (),
        name: str = "facegan_sampler",
    ):
        super().__init__(name=name)
        self.generator = generator
        self.latent_dim = int(latent_dim)
        self.conditional = is_conditional(generator)
        if self.conditional != bool(class_counts):
            raise ValueError(
                "class_counts must name the classes of each attribute exactly "
                "when the generator is conditional"
            )
        self.class_counts = tuple(int(c) for c in class_counts)
        latent = tf.TensorSpec([None, self.latent_dim], tf.float32, name="latent")
        seed = tf.TensorSpec([None], tf.int64, name="seed")
        psi = tf.TensorSpec([], tf.float32, name="truncation")
        if self.conditional:
            labels = tf.TensorSpec([None, self.num_attributes], tf.int32, name="labels")
            self.images_from_latent = tf.function(
                self._from_latent_with_labels, input_signature=[latent, psi, labels]
            )
            self.images_from_seed = tf.function(
                self._from_seed_with_labels, input_signature=[seed, psi, labels]
            )
        else:
            self.images_from_latent = tf.function(self._from_latent, input_signature=[latent, psi])
            self.images_from_seed = tf.function(self._from_seed, input_signature=[seed, psi])

    @property
    def num_attributes(self) -> int:
        return len(self.class_counts)

    # The four bodies are separate methods (not one with an optional argument)
    # so that every traced function has exactly the inputs its signature names.
    def _from_latent(self, latent, truncation):
        return {"images": self._render(latent, truncation, None)}

    def _from_latent_with_labels(self, latent, truncation, labels):
        return {"images": self._render(latent, truncation, labels)}

    def _from_seed(self, seed, truncation):
        return {"images": self._render(latents_from_seeds(seed, self.latent_dim), truncation, None)}

    def _from_seed_with_labels(self, seed, truncation, labels):
        return {
            "images": self._render(latents_from_seeds(seed, self.latent_dim), truncation, labels)
        }

    def _render(self, latent, truncation, labels):
        images = synthesize(self.generator, latent, labels, truncation=truncation, training=False)
        return float_to_uint8(images)

    # ------------------------------------------------------------ Python callers

    def images(
        self,
        latents: np.ndarray | tf.Tensor,
        *,
        labels: np.ndarray | None = None,
        truncation: float = 1.0,
        batch_size: int = 64,
    ) -> np.ndarray:
        """uint8 [N, H, W, C] from latents [N, Z], in batches of `batch_size`.

        Raises:
            SamplingError: latents not [N, Z], labels missing, unexpected or out of
                range, truncation outside [0, 1].
        """
        latents = self.check_latents(latents)
        labels = self.check_labels(labels, len(latents))
        psi = tf.constant(self.check_truncation(truncation), tf.float32)
        chunks = []
        for i in range(0, len(latents), batch_size):
            args = [tf.constant(latents[i : i + batch_size]), psi]
            if labels is not None:
                args.append(tf.constant(labels[i : i + batch_size]))
            chunks.append(self.images_from_latent(*args)["images"].numpy())
        if not chunks:
            return np.zeros((0, *self.generator.output_shape[1:]), np.uint8)
        return np.concatenate(chunks)

    def images_from_w(self, w: np.ndarray) -> np.ndarray:
        """uint8 [N, H, W, C] from StyleGAN2 w [N, Z] (the same w at every layer)."""
        if not hasattr(self.generator, "synthesize_from_w"):
            raise SamplingError("only a stylegan2 generator renders from w")
        if not hasattr(self, "_from_w"):
            spec = tf.TensorSpec([None, self.latent_dim], tf.float32, name="w")
            self._from_w = tf.function(
                lambda w: float_to_uint8(self.generator.synthesize_from_w(w)),
                input_signature=[spec],
            )
        return self._from_w(tf.constant(self.check_latents(w, "w"))).numpy()

    def check_latents(self, latents, name: str = "latents") -> np.ndarray:
        latents = np.asarray(latents, np.float32)
        if latents.ndim != 2 or latents.shape[1] != self.latent_dim:
            raise SamplingError(
                f"{name} must have shape [N, {self.latent_dim}]; received {list(latents.shape)}"
            )
        if not np.isfinite(latents).all():
            raise SamplingError(f"{name} must be finite numbers")
        return latents

    def check_labels(self, labels, count: int) -> np.ndarray | None:
        """int32 [count, A] class indices for a conditional generator; None otherwise."""
        if not self.conditional:
            if labels is not None:
                raise SamplingError("this generator is not class-conditional: it takes no labels")
            return None
        if labels is None:
            raise SamplingError(
                "this generator is class-conditional: pass labels "
                f"[N, {self.num_attributes}] (class indices)"
            )
        labels = np.asarray(labels)
        if labels.shape != (count, self.num_attributes) or labels.dtype.kind not in "iu":
            raise SamplingError(
                f"labels must be integers of shape [{count}, "
                f"{self.num_attributes}]; received {labels.dtype} "
                f"{list(labels.shape)}"
            )
        counts = np.asarray(self.class_counts)
        if len(labels) and ((labels < 0) | (labels >= counts)).any():
            raise SamplingError(
                f"labels must be class indices below {list(self.class_counts)} "
                f"(per attribute); received values from {labels.min()} to "
                f"{labels.max()}"
            )
        return labels.astype(np.int32)

    @staticmethod
    def check_truncation(truncation: float) -> float:
        if not 0.0 <= float(truncation) <= 1.0:  # NaN fails too
            raise SamplingError(f"truncation must be from 0 to 1; received {truncation}")
        return float(truncation)

    @staticmethod
    def check_seeds(seeds: Sequence[int]) -> np.ndarray:
        seeds = [int(s) for s in seeds]
        bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
        if bad:
            raise SamplingError(f"seeds must be integers from 0 to {MAX_SEED}; received {bad[0]}")
        return np.asarray(seeds, np.int64)
