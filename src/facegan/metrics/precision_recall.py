"""Improved precision and recall (Kynkäänniemi et al., 2019) between two feature sets.

Each set's manifold is approximated by the union of balls around its samples, each
ball's radius being the distance to that sample's k-th nearest neighbour within its
own set. Precision is the share of generated samples inside the real manifold
(are the fakes realistic?); recall is the share of real samples inside the generated
manifold (do the fakes cover the real variety?).

All distances are float64 and computed a block of rows at a time, so 10k x 2048
features need a few hundred MB instead of the full 10k x 10k matrices at once.
"""

from __future__ import annotations

import numpy as np

from facegan.errors import UserError
from facegan.metrics.features import check_feature_pair

# Rows per distance block: 1024 x 10k float64 = 80 MB.
DEFAULT_BATCH_SIZE = 1024


def squared_norms(x: np.ndarray) -> np.ndarray:
    """Row-wise squared Euclidean norms [N] of x [N, D]."""
    return np.einsum("ij,ij->i", x, x)


def squared_distances(
    x: np.ndarray, y: np.ndarray, x_sq: np.ndarray | None = None, y_sq: np.ndarray | None = None
) -> np.ndarray:
    """Squared Euclidean distances [N, M] between the rows of x [N, D] and y [M, D].

    Uses |x|² + |y|² - 2 x·y (one matmul) and clamps at 0, where round-off can make
    the distance between (near) equal rows come out slightly negative.

    Args:
        x: [N, D] float64.
        y: [M, D] float64.
        x_sq: Optional precomputed `squared_norms(x)`.
        y_sq: Optional precomputed `squared_norms(y)`.

    Returns:
        [N, M] float64, all >= 0.
    """
    x_sq = squared_norms(x) if x_sq is None else x_sq
    y_sq = squared_norms(y) if y_sq is None else y_sq
    d2 = x_sq[:, None] + y_sq[None, :] - 2.0 * (x @ y.T)
    return np.maximum(d2, 0.0, out=d2)


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise UserError(f"batch_size must be >= 1; received {batch_size}")


def kth_neighbour_radii(
    features: np.ndarray, k: int, batch_size: int = DEFAULT_BATCH_SIZE
) -> np.ndarray:
    """Squared distance from each row to its k-th nearest other row of the same set.

    Args:
        features: [N, D] float64 with N > k.
        k: Neighbourhood size (k >= 1; the row itself is not its own neighbour).
        batch_size: Rows per distance block.

    Returns:
        [N] float64 squared radii.
    """
    norms = squared_norms(features)
    radii = np.empty(features.shape[0], dtype=np.float64)
    for start in range(0, features.shape[0], batch_size):
        stop = min(start + batch_size, features.shape[0])
        d2 = squared_distances(features[start:stop], features, norms[start:stop], norms)  # [B, N]
        # The row itself sits at distance ~0, so position k of the sorted row is the
        # k-th nearest *other* sample. Force it to 0 in case round-off left it > 0.
        d2[np.arange(stop - start), np.arange(start, stop)] = 0.0
        radii[start:stop] = np.partition(d2, k, axis=1)[:, k]
    return radii


def _mutual_coverage(
    real: np.ndarray,
    fake: np.ndarray,
    real_radii: np.ndarray,
    fake_radii: np.ndarray,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Which fakes lie inside the real manifold and which reals inside the fake one.

    One pass over the fake-to-real distances serves both directions, so that matrix
    product is computed once instead of twice.

    Returns:
        (fake_inside [Nf] bool, real_inside [Nr] bool).
    """
    real_norms = squared_norms(real)
    fake_inside = np.empty(fake.shape[0], dtype=bool)
    real_inside = np.zeros(real.shape[0], dtype=bool)
    for start in range(0, fake.shape[0], batch_size):
        stop = min(start + batch_size, fake.shape[0])
        d2 = squared_distances(fake[start:stop], real, y_sq=real_norms)  # [B, Nr]
        fake_inside[start:stop] = (d2 <= real_radii[None, :]).any(axis=1)
        real_inside |= (d2 <= fake_radii[start:stop, None]).any(axis=0)
    return fake_inside, real_inside


def precision_recall(
    real, fake, k: int = 3, batch_size: int = DEFAULT_BATCH_SIZE
) -> tuple[float, float]:
    """Improved precision and recall of generated features against real ones.

    Args:
        real: Array-like [Nr, D] features of real images, Nr > k.
        fake: Array-like [Nf, D] features of generated images, Nf > k.
        k: Neighbourhood size for the manifold radii (the paper uses 3).
        batch_size: Rows per distance block; lower it to save memory.

    Returns:
        (precision, recall), each in [0, 1]; higher is better.

    Raises:
        UserError: for a non 2-D set, too few samples for `k`, differing feature
            sizes, or k / batch_size < 1.
    """
    if k < 1:
        raise UserError(f"k must be >= 1; received {k}")
    _check_batch_size(batch_size)
    real, fake = check_feature_pair(real, fake, ("real", "fake"), (k + 1, k + 1))
    real_radii = kth_neighbour_radii(real, k, batch_size)
    fake_radii = kth_neighbour_radii(fake, k, batch_size)
    fake_inside, real_inside = _mutual_coverage(real, fake, real_radii, fake_radii, batch_size)
    return float(fake_inside.mean()), float(real_inside.mean())
