"""Kernel Inception Distance (Bińkowski et al., 2018) between two sets of features.

KID is the squared maximum mean discrepancy (MMD²) under the cubic polynomial
kernel k(x, y) = (x·y / d + 1)³, estimated without bias and averaged over random
subsets. Unlike FID it has no bias that depends on the sample size, so small
evaluation sets give comparable numbers. Pure numpy, float64 throughout (the cubed
kernel values of 2048-d features are large and the estimate is their small
difference).
"""

from __future__ import annotations

import numpy as np

from facegan.errors import UserError
from facegan.metrics.features import check_feature_pair
from facegan.seeds import PickPart, Stream, rng


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The cubic polynomial kernel matrix k(x_i, y_j) = (x_i·y_j / d + 1)³.

    Args:
        x: [N, D] float64.
        y: [M, D] float64.

    Returns:
        [N, M] float64 kernel values.
    """
    k = x @ y.T
    k /= x.shape[1]
    k += 1.0
    # k * k * k, in place: numpy's `** 3` goes through the slow generic pow().
    cube = k * k
    cube *= k
    return cube


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased estimate of MMD² between the distributions of the rows of x and y.

    The within-set terms leave out the diagonal (k(x_i, x_i) is not an independent
    pair); the cross term averages all pairs, which are independent already.

    Args:
        x: [m, D] float64 samples of one distribution, m >= 2.
        y: [m, D] float64 samples of the other (same m).

    Returns:
        The estimate; it can be slightly negative when the distributions agree.
    """
    m = x.shape[0]
    k_xx = polynomial_kernel(x, x)
    k_yy = polynomial_kernel(y, y)
    k_xy = polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())


def kid(
    features_a, features_b, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance: mean and spread of MMD² over random subsets.

    Each subset draws `subset_size` rows without replacement from each set (capped at
    the smaller set's size), as the reference implementations (stylegan2-ada,
    torch-fidelity) do.

    Args:
        features_a: Array-like [Na, D], e.g. Inception features of real images.
        features_b: Array-like [Nb, D], e.g. Inception features of generated images.
        num_subsets: How many random subsets to average over (>= 1).
        subset_size: Rows per subset and set (>= 2); capped at min(Na, Nb).
        seed: Seeds the subset draws: the same inputs and seed give the same result.

    Returns:
        (mean, std): the mean of the per-subset MMD² estimates (KID; lower is better,
        about 0 for one distribution) and their standard deviation (ddof=0, as
        torch-fidelity reports it).

    Raises:
        UserError: for sets that are not [N >= 2, D], differing feature sizes, or
            num_subsets < 1 / subset_size < 2.
    """
    a, b = check_feature_pair(features_a, features_b, ("features_a", "features_b"), (2, 2))
    if num_subsets < 1:
        raise UserError(f"num_subsets must be >= 1; received {num_subsets}")
    if subset_size < 2:
        raise UserError(f"subset_size must be >= 2; received {subset_size}")
    m = min(subset_size, a.shape[0], b.shape[0])  # the whole smaller set: see kid_estimate
    draw = rng(seed, Stream.PICK, part=PickPart.KID_SUBSETS)
    estimates = np.empty(num_subsets, dtype=np.float64)
    for i in range(num_subsets):
        x = a[draw.choice(a.shape[0], m, replace=False)]
        y = b[draw.choice(b.shape[0], m, replace=False)]
        estimates[i] = mmd2_unbiased(x, y)
    return float(estimates.mean()), float(estimates.std())


# The reference subset size (stylegan2-ada, torch-fidelity): 100 subsets of 1000 per set.
SUBSET_SIZE = 1000


def kid_estimate(features_a, features_b, seed: int = 0) -> tuple[float, float, int]:
    """KID as `facegan evaluate` reports it: mean, spread and the subset size used.

    The reference 100 subsets of 1000 rows per set, except for sets too small
    to draw different subsets from: capped at the smaller set, every subset
    would be the whole set, and the spread 0 however uncertain the mean. There
    the subsets hold half the smaller set, so they differ and the spread says
    how much a KID from sets of that size varies.

    Args:
        features_a: Array-like [Na, D], e.g. Inception features of real images (Na >= 4).
        features_b: Array-like [Nb, D], e.g. Inception features of generated images.
        seed: Seeds the subset draws.

    Returns:
        (mean, std, subset size): as `kid`, with the subset size it used.

    Raises:
        UserError: see `kid`; also sets of fewer than 4 rows (no two differing halves).
    """
    a, b = check_feature_pair(features_a, features_b, ("features_a", "features_b"), (4, 4))
    size = min(SUBSET_SIZE, min(a.shape[0], b.shape[0]) // 2)
    return (*kid(a, b, subset_size=size, seed=seed), size)
