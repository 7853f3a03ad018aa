"""`TrainingImages`: what training, evaluation and the reports ask of a training set.

A training set is either decoded into memory (`facegan.data.pipeline.DecodedImages`,
from a folder, a zip or the embedded faces) or streamed from a pack
(`facegan.data.streaming.PackedImages`). Both implement this class, and code
outside `facegan.data` knows only it: `open_training_data`
(`facegan.data.opening`) picks the kind from `data.source`.

What is written once here, for both kinds: the label strings a run records
(`label_classes`, `label_values`) and the labels of the grid and monitors
(`sample_labels`).
"""

from __future__ import annotations

import abc

import numpy as np
import tensorflow as tf

from facegan.data.report import DataReport
from facegan.seeds import Stream, rng


class TrainingImages(abc.ABC):
    """A training set, in memory or streamed.

    Implementations provide `__len__`, `description`, `failures`, `report`,
    `image_shape`, `memory_bytes`, `_label_strings`, `_label_rows`, `sample_pixels` and `batches`.
    """

    # Attributes (or properties) of every implementation:
    description: str  # where the images came from, for logs
    failures: list[tuple[str, str]]  # (display name, reason) of every file left out
    report: DataReport | None  # the scan of the source, when there was one

    @abc.abstractmethod
    def __len__(self) -> int:
        """How many images one epoch holds."""

    @property
    @abc.abstractmethod
    def image_shape(self) -> tuple[int, int, int]:
        """(R, R, C) of every image."""

    @property
    @abc.abstractmethod
    def memory_bytes(self) -> int:
        """Bytes of decoded images held in memory on every worker (0 when streamed)."""

    # -- labels: written once for both kinds ------------------------------------
    @abc.abstractmethod
    def _label_strings(self) -> tuple[str | None, str] | None:
        """(label_classes, label_values) when the set trains with labels, else None."""

    @abc.abstractmethod
    def _label_rows(self, count: int, seed: int, part: int) -> np.ndarray:
        """int32 [M, A]: labels of training images to draw from (M >= 1)."""

    def describe_damage(self, err: Exception) -> str:
        """Where a read error of the batches (a damaged file) lies, as a phrase for one line."""
        return f"{self.description}: {(str(err).strip().splitlines() or [''])[0][:200]}"

    @property
    def conditional(self) -> bool:
        """Whether batches carry class labels."""
        return self._label_strings() is not None

    @property
    def label_classes(self) -> str | None:
        """For the run's `model.label_classes` (`age:7,gender:2`); None without labels."""
        strings = self._label_strings()
        return strings[0] if strings else None

    @property
    def label_values(self) -> str:
        """For the run's `data.label_values` (`gender=0,1;race=0,1,2,3,4`); '' without labels."""
        strings = self._label_strings()
        return strings[1] if strings else ""

    def rare_classes(self) -> list[str]:
        """Label classes with few images ("gender 3: 1 image"), for a warning at the start.

        Only a set whose labels are all in memory counts them; a streamed pack
        would have to read every record, so it says nothing (an empty list).
        """
        return []

    def sample_labels(self, count: int, seed: int, part: int) -> np.ndarray | None:
        """Labels of `count` training images drawn with replacement from the run's PICK stream.

        A conditional run samples its grids and evaluations with the labels of
        training images, so the classes appear as often as in the data. None
        when the images have no labels.
        """
        if not self.conditional:
            return None
        rows = self._label_rows(count, seed, part)
        pick = rng(seed, Stream.PICK, part=part).integers(0, len(rows), count)
        return rows[pick]

    # -- images ---------------------------------------------------------------
    @abc.abstractmethod
    def sample_pixels(self, count: int, seed: int, part: int) -> np.ndarray:
        """uint8 [count, R, R, C]: a seeded sample of different training images."""

    @abc.abstractmethod
    def batches(
        self,
        batch_size: int,
        seed: int,
        flip: bool,
        start_step: int = 0,
        *,
        replicas: int = 1,
        pipeline: int = 0,
        pipelines: int = 1,
    ) -> tf.data.Dataset:
        """One input pipeline's endless float32 batches in [-1, 1] (with labels when conditional).

        Args:
            batch_size: the global batch of one step.
            seed, flip: the data order's seed; mirror about half of the images.
            start_step: the step of the first batch (a resumed run continues exactly).
            replicas: replicas in sync; each gets `batch_size // replicas` images.
            pipeline, pipelines: this input pipeline of how many (one per worker).

        Returns:
            With one replica and one pipeline, the global batch of each step;
            otherwise this pipeline's per-replica batches, its replicas' slices of
            each step in turn (what `distribute_datasets_from_function` wants).
        """


def replica_slices(
    dataset: tf.data.Dataset, replicas: int, pipeline: int, pipelines: int
) -> tf.data.Dataset:
    """Global batches -> this pipeline's replicas' slices, one slice per element.

    Replica r of a step trains on rows [r*b, (r+1)*b) of the batch a one-device
    run trains on at that step, so results do not depend on the device count.
    """
    if replicas == 1:
        return dataset
    assert replicas % pipelines == 0, (replicas, pipelines)
    local = replicas // pipelines
    first = pipeline * local

    def own_slice(batch: tf.Tensor) -> tf.Tensor:
        # [B, ...] -> [replicas, b, ...] -> this pipeline's [local, b, ...]; static
        # shapes, so the step's input signature keeps them
        per_replica = batch.shape[0] // replicas
        return tf.reshape(batch, [replicas, per_replica, *batch.shape[1:]])[first : first + local]

    def own_slices(*parts: tf.Tensor):
        sliced = tuple(own_slice(part) for part in parts)  # images, then labels if any
        return sliced if len(sliced) > 1 else sliced[0]

    return dataset.map(own_slices).unbatch().prefetch(tf.data.AUTOTUNE)


def to_signed_unit(images: tf.Tensor) -> tf.Tensor:
    """uint8 (or 0-255 float) pixels -> float32 in [-1, 1], the networks' range.

    The one place this scaling is written: the in-memory and streamed pipelines,
    projection and Keras inputs all use it, so the same pixels train identically
    from every route.
    """
    return tf.cast(images, tf.float32) * (2.0 / 255.0) - 1.0


def composite_on_white(images: tf.Tensor) -> tf.Tensor:
    """[..., 2 or 4] (grey or RGB, then alpha) in [-1, 1] -> without alpha, on white.

    The rule `facegan.data.decode` applies to files (PIL composites RGBA and LA
    onto white), for images that arrive as tensors: a transparent pixel is white,
    never the colour hidden under it.
    """
    colour, alpha = images[..., :-1], (images[..., -1:] + 1.0) * 0.5  # alpha in [0, 1]
    return colour * alpha + (1.0 - alpha)
