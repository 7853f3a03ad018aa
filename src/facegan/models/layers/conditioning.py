"""Conditioning on class labels.

`LabelEmbedding`: a learned embedding per attribute, summed (the generator's
input). `LabelProjection`: the projection discriminator's inner product
(Miyato & Koyama 2018).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf
from keras import layers

from facegan.models.layers.base import SEED_STRIDE, Layer, serializable
from facegan.models.layers.spectral import maybe_spectral_norm


def _label_sizes(label_sizes: Sequence[Sequence]) -> list[tuple[str, int]]:
    return [(str(name), int(classes)) for name, classes in label_sizes]


@serializable
class LabelEmbedding(Layer):
    """Labels [B, A] (class index per attribute) -> the sum of per-attribute embeddings [B, dim].

    Args:
        label_sizes: [(attribute, classes), ...], as `ModelConfig.label_sizes`.
        dim: embedding size.
        stddev: the embeddings' initial standard deviation.
        multiplier: run-time scale (equalized learning rate: stddev 1 and
            multiplier 1/sqrt(dim), say).
        spectral_norm: spectrally normalize each embedding matrix.
        seed: initializer seed (attribute a uses seed + a; A < SEED_STRIDE).
    """

    def __init__(
        self,
        label_sizes: Sequence[Sequence],
        dim: int,
        stddev: float = 1.0,
        multiplier: float = 1.0,
        spectral_norm: bool = False,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.label_sizes = _label_sizes(label_sizes)
        if not self.label_sizes:
            raise ValueError("LabelEmbedding needs at least one attribute")
        self.dim, self.stddev, self.multiplier = int(dim), float(stddev), float(multiplier)
        self.spectral_norm, self.seed = bool(spectral_norm), int(seed)
        for index, (_name, classes) in enumerate(self.label_sizes):
            embedding = layers.Embedding(
                classes,
                self.dim,
                dtype="float32",
                name=f"embed_{index}",
                embeddings_initializer=keras.initializers.RandomNormal(
                    0.0, self.stddev, seed=self.seed + index
                ),
            )
            # One attribute per attribute-embedding: tf.train.Checkpoint does not
            # follow a list of layers held by a Keras 3 layer (it would not be saved).
            setattr(
                self,
                f"embed_{index}",
                maybe_spectral_norm(
                    embedding, self.spectral_norm, self.seed + SEED_STRIDE // 2 + index
                ),
            )

    @property
    def embeddings(self) -> list[layers.Layer]:
        """The per-attribute embedding layers (possibly SpectralNorm-wrapped), in order."""
        return [getattr(self, f"embed_{index}") for index in range(len(self.label_sizes))]

    def build(self, input_shape):
        for embedding in self.embeddings:
            embedding.build((input_shape[0],))

    def call(self, inputs, training=None):
        labels = tf.cast(inputs, tf.int32)  # [B, A]
        total = tf.add_n(
            [
                embedding(labels[:, index], training=training)
                for index, embedding in enumerate(self.embeddings)
            ]
        )  # [B, dim]
        return self._cast(total * self.multiplier)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            label_sizes=[list(pair) for pair in self.label_sizes],
            dim=self.dim,
            stddev=self.stddev,
            multiplier=self.multiplier,
            spectral_norm=self.spectral_norm,
            seed=self.seed,
        )
        return config


@serializable
class LabelProjection(Layer):
    """The projection discriminator's class term: <sum_a embed_a(label_a), h> (float32 [B, 1]).

    Inputs `[h, labels]`: features h [B, F] and labels [B, A]. Added to an
    unconditional head's logit, it makes D(x, y) = head(h) + <embed(y), h>
    (Miyato & Koyama 2018). Arguments as `LabelEmbedding`'s; `dim` is F.
    """

    def __init__(
        self,
        label_sizes: Sequence[Sequence],
        stddev: float = 1.0,
        multiplier: float = 1.0,
        spectral_norm: bool = False,
        seed: int = 0,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.label_sizes = _label_sizes(label_sizes)
        self.stddev, self.multiplier = float(stddev), float(multiplier)
        self.spectral_norm, self.seed = bool(spectral_norm), int(seed)

    def build(self, input_shape):
        h_shape, labels_shape = input_shape
        self.embedding = LabelEmbedding(
            self.label_sizes,
            int(h_shape[-1]),
            stddev=self.stddev,
            multiplier=self.multiplier,
            spectral_norm=self.spectral_norm,
            seed=self.seed,
            dtype="float32",
            name="embedding",
        )
        self.embedding.build(labels_shape)

    def call(self, inputs, training=None):
        h, labels = inputs
        embedded = self.embedding(labels, training=training)  # [B, F]
        return tf.reduce_sum(embedded * tf.cast(h, tf.float32), axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self):
        config = super().get_config()
        config.update(
            label_sizes=[list(pair) for pair in self.label_sizes],
            stddev=self.stddev,
            multiplier=self.multiplier,
            spectral_norm=self.spectral_norm,
            seed=self.seed,
        )
        return config
