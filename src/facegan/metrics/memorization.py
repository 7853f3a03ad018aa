"""Memorization check: are generated samples (near) copies of training samples?

For every generated sample we find its nearest training sample. What counts as
"suspiciously close" is calibrated on the training set itself: the threshold is a
low percentile of the distances between training samples and their nearest *other*
training sample. A generator that copies its data puts many samples below that
threshold; one that generalises puts about `percentile` % or fewer there.

Works on any per-sample vectors (Inception features, or flattened pixels). Pure
numpy, float64, distances computed a block of rows at a time. The grid of closest
pairs is drawn elsewhere from `MemorizationResult.closest`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facegan.errors import UserError
from facegan.metrics.features import check_feature_pair
from facegan.metrics.precision_recall import DEFAULT_BATCH_SIZE, squared_distances, squared_norms


@dataclass(frozen=True)
class MemorizationResult:
    """Nearest training neighbours of generated samples.

    Attributes:
        nearest_index: [N] int64, index into the training set of each generated
            sample's nearest neighbour.
        nearest_distance: [N] float64, the Euclidean distance to it.
        threshold: The `percentile`-th percentile of train-to-train nearest-neighbour
            distances (each training sample to its nearest other one).
        share: Fraction of generated samples whose nearest distance is below
            `threshold` (strictly).
    """

    nearest_index: np.ndarray
    nearest_distance: np.ndarray
    threshold: float
    share: float

    def closest(self, n: int) -> list[tuple[int, int]]:
        """The n generated samples closest to their training neighbour.

        Args:
            n: How many pairs (capped at the number of generated samples).

        Returns:
            [(generated_index, train_index), ...], closest first; ties keep the
            generated order.
        """
        if n < 0:
            raise UserError(f"n must be >= 0; received {n}")
        order = np.argsort(self.nearest_distance, kind="stable")[:n]
        return [(int(g), int(self.nearest_index[g])) for g in order]


def nearest_neighbours(
    queries: np.ndarray,
    references: np.ndarray,
    batch_size: int = DEFAULT_BATCH_SIZE,
    exclude_self: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Index and Euclidean distance of each query row's nearest reference row.

    Args:
        queries: [N, D] float64.
        references: [M, D] float64.
        batch_size: Query rows per distance block.
        exclude_self: When queries *are* the references (same rows, same order),
            skip each row's own entry; equal copies at other indices still count.

    Returns:
        (index [N] int64, distance [N] float64).
    """
    ref_norms = squared_norms(references)
    index = np.empty(queries.shape[0], dtype=np.int64)
    distance = np.empty(queries.shape[0], dtype=np.float64)
    for start in range(0, queries.shape[0], batch_size):
        stop = min(start + batch_size, queries.shape[0])
        d2 = squared_distances(queries[start:stop], references, y_sq=ref_norms)  # [B, M]
        if exclude_self:
            d2[np.arange(stop - start), np.arange(start, stop)] = np.inf
        best = np.argmin(d2, axis=1)
        index[start:stop] = best
        # The expanded form loses digits for near-equal rows (a copy would come out
        # at ~1e-7 rather than 0); recompute the chosen pairs directly.
        distance[start:stop] = np.linalg.norm(queries[start:stop] - references[best], axis=1)
    return index, distance


def memorization(
    generated, train, percentile: float = 1.0, batch_size: int = DEFAULT_BATCH_SIZE
) -> MemorizationResult:
    """Nearest training neighbour of each generated sample, and how many are too close.

    Args:
        generated: Array-like [N, D] vectors of generated samples (N >= 1).
        train: Array-like [M, D] vectors of training samples (M >= 2).
        percentile: In [0, 100]; which percentile of the train-to-train
            nearest-neighbour distances is the "copy" threshold.
        batch_size: Rows per distance block; lower it to save memory.

    Returns:
        A `MemorizationResult`.

    Raises:
        UserError: for non 2-D inputs, fewer than 2 training samples, differing
            vector sizes, a percentile outside [0, 100] or batch_size < 1.
    """
    if not 0.0 <= percentile <= 100.0:
        raise UserError(f"percentile must be in [0, 100]; received {percentile}")
    if batch_size < 1:
        raise UserError(f"batch_size must be >= 1; received {batch_size}")
    generated, train = check_feature_pair(generated, train, ("generated", "train"), (1, 2))

    _, train_distance = nearest_neighbours(train, train, batch_size, exclude_self=True)
    threshold = float(np.percentile(train_distance, percentile))
    index, distance = nearest_neighbours(generated, train, batch_size)
    share = float(np.mean(distance < threshold))
    return MemorizationResult(
        nearest_index=index, nearest_distance=distance, threshold=threshold, share=share
    )


def memorization_summary(
    generated, train, pairs: int = 8
) -> tuple[float, float, list[tuple[int, int]]]:
    """`memorization` as `facegan evaluate` records it (the metric table's function).

    Args:
        generated: Array-like [N, D] vectors of generated samples.
        train: Array-like [M, D] vectors of training samples (M >= 2).
        pairs: How many of the closest pairs to return (for the grid).

    Returns:
        (share, threshold, closest pairs): see `MemorizationResult`.
    """
    found = memorization(generated, train)
    return found.share, found.threshold, found.closest(pairs)
