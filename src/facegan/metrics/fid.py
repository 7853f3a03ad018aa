"""Fréchet Inception Distance between two sets of features (Heusel et al., 2017).

Pure numpy/scipy over arrays of features, usually the 2048-d pool features of the
FID Inception network (see `facegan.metrics.inception`). Everything is float64:
the statistics of 2048-d features lose several digits in float32, and FID is a
small difference of large traces.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

from facegan.metrics.features import check_feature_pair, check_features

# Largest imaginary part tolerated on the diagonal of sqrtm(sigma1 @ sigma2), as in
# the reference implementations: a bigger one means the product is far from PSD.
_IMAGINARY_TOLERANCE = 1e-3


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of a set of feature vectors.

    Args:
        features: Array-like [N, D] with N >= 2, one feature vector per row.

    Returns:
        (mu, sigma): the mean [D] and the covariance [D, D] (divided by N - 1), float64.

    Raises:
        UserError: if `features` is not 2-D, has fewer than 2 rows or non-finite values.
    """
    x = check_features(features, "features", min_rows=2)  # 2 for a covariance
    mu = x.mean(axis=0)
    # atleast_2d: np.cov returns a 0-d array when D == 1.
    sigma = np.atleast_2d(np.cov(x, rowvar=False))
    return mu, sigma


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    d² = |mu1 - mu2|² + tr(sigma1) + tr(sigma2) - 2 tr(sqrtm(sigma1 @ sigma2)),
    computed the way the common reference implementations (pytorch-fid, the TTUR
    code) do, so the numbers are comparable with theirs.

    Args:
        mu1: Mean [D] of the first set.
        sigma1: Covariance [D, D] of the first set.
        mu2: Mean [D] of the second set.
        sigma2: Covariance [D, D] of the second set.
        eps: Added to the diagonal of both covariances when the product is singular
            enough that its square root comes out non-finite.

    Returns:
        The squared Fréchet distance as a Python float (FID when the inputs are
        Inception statistics).

    Raises:
        ValueError: if the shapes disagree, or if sqrtm(sigma1 @ sigma2) has a
            significant imaginary component (the covariances are not PSD).
    """
    mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(
            f"shapes disagree: mu1 {mu1.shape}, sigma1 {sigma1.shape}, "
            f"mu2 {mu2.shape}, sigma2 {sigma2.shape}"
        )

    diff = mu1 - mu2
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        # A (near) singular product, e.g. fewer samples than dimensions: regularise.
        offset = np.eye(d) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        # Round-off gives tiny imaginary parts even for valid covariances.
        if not np.allclose(np.diagonal(covmean).imag, 0.0, atol=_IMAGINARY_TOLERANCE):
            largest = float(np.max(np.abs(covmean.imag)))
            raise ValueError(
                f"sqrtm(sigma1 @ sigma2) has an imaginary component of {largest:.3g}; "
                "the covariances are not positive semi-definite"
            )
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid(features_a, features_b) -> float:
    """Fréchet distance between the Gaussian fits of two feature sets.

    Args:
        features_a: Array-like [Na, D], e.g. Inception features of real images.
        features_b: Array-like [Nb, D], e.g. Inception features of generated images.

    Returns:
        The Fréchet distance (FID on Inception pool features); lower is better.

    Raises:
        UserError: if either set is not [N >= 2, D] or the feature sizes differ.
        ValueError: see `frechet_distance`.
    """
    a, b = check_feature_pair(features_a, features_b, ("features_a", "features_b"), (2, 2))
    return frechet_distance(*feature_statistics(a), *feature_statistics(b))


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    """scipy's matrix square root, without its warning about a singular matrix.

    The covariances of fewer images than features (or of a feature that never
    fires) are singular, and so is their product; the reference implementations
    take the same square root without a word (older scipy did not warn), and the
    report says what few images do to FID (`facegan.metrics.registry`'s notes).
    A result that is actually unusable is caught above: non-finite, or complex.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        return linalg.sqrtm(matrix)
