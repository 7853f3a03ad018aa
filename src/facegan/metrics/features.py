"""The one check every feature-based metric makes of its inputs (FID, KID, P/R, memorization)."""

from __future__ import annotations

import numpy as np

from facegan.errors import UserError


def check_features(features, name: str, min_rows: int = 1) -> np.ndarray:
    """Validates a [N >= min_rows, D] finite feature array and returns it as float64.

    Raises:
        UserError: naming `name`, what is needed and the shape received.
    """
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < min_rows:
        raise UserError(
            f"{name} must be a 2-D array [samples >= {min_rows}, features]; "
            f"received shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise UserError(f"{name} contains NaN or infinite values")
    return array


def check_feature_pair(
    a, b, names: tuple[str, str], min_rows: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Two feature sets checked alone (`check_features`) and against each other.

    Raises:
        UserError: either set is not [N >= min_rows, D] and finite, or their
            feature sizes differ.
    """
    a = check_features(a, names[0], min_rows[0])
    b = check_features(b, names[1], min_rows[1])
    if a.shape[1] != b.shape[1]:
        raise UserError(f"feature sizes differ: {names[0]} {a.shape[1]}, {names[1]} {b.shape[1]}")
    return a, b
