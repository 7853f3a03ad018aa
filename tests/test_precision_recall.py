"""Improved precision/recall: obvious cases, a brute-force reference, batching."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from facegan.errors import UserError
from facegan.metrics.precision_recall import precision_recall, squared_distances


def reference_precision_recall(real, fake, k):
    """Kynkäänniemi et al. written directly: full distance matrices, sorted rows."""

    def radii(x):
        d = cdist(x, x)
        return np.sort(d, axis=1)[:, k]  # column 0 is the sample itself

    cross = cdist(fake, real)  # [Nf, Nr]
    precision = np.mean([(cross[i] <= radii(real)).any() for i in range(len(fake))])
    recall = np.mean([(cross[:, j] <= radii(fake)).any() for j in range(len(real))])
    return precision, recall


def clusters(rng, centres, per_cluster, spread=0.1):
    return np.concatenate([c + spread * rng.normal(size=(per_cluster, len(c))) for c in centres])


@pytest.fixture(scope="module")
def four_modes():
    """Real data: 4 tight, far-apart clusters in 8-d, 60 samples each."""
    centres = 10.0 * np.eye(8)[:4]
    return centres, clusters(np.random.default_rng(0), centres, 60)


def test_identical_sets_have_full_precision_and_recall(four_modes):
    _, real = four_modes
    assert precision_recall(real, real.copy()) == (1.0, 1.0)


def test_disjoint_far_apart_sets_have_zero_precision_and_recall(four_modes):
    _, real = four_modes
    fake = clusters(np.random.default_rng(1), [np.full(8, -50.0)], 100)
    assert precision_recall(real, fake) == (0.0, 0.0)


def test_a_fake_set_collapsed_on_one_mode_is_precise_but_not_diverse(four_modes):
    # Mode collapse: every fake sits close to the first real mode's centre.
    centres, real = four_modes
    fake = clusters(np.random.default_rng(2), centres[:1], 240, spread=0.05)
    precision, recall = precision_recall(real, fake)
    assert precision > 0.9
    assert recall < 0.3  # at most the one covered mode (a quarter of the real data)


def test_matches_brute_force_reference_on_overlapping_gaussians():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(150, 5))
    fake = rng.normal(size=(120, 5)) * 1.3 + 0.4
    got = precision_recall(real, fake, k=3)
    expected = reference_precision_recall(real, fake, 3)
    assert 0.0 < got[0] < 1.0 and 0.0 < got[1] < 1.0  # a case where the counting matters
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_result_does_not_depend_on_batch_size(batch_size):
    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=(50, 4)), rng.normal(size=(40, 4)) + 0.5
    assert precision_recall(real, fake, k=2, batch_size=batch_size) == precision_recall(
        real, fake, k=2
    )


def test_float32_input_is_computed_in_float64():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(60, 6)), rng.normal(size=(60, 6)) + 0.3
    real32, fake32 = real.astype(np.float32), fake.astype(np.float32)
    expected = precision_recall(real32.astype(np.float64), fake32.astype(np.float64))
    assert precision_recall(real32, fake32) == expected


def test_squared_distances_are_clamped_at_zero():
    x = np.full((3, 64), 1e4) + np.arange(3)[:, None] * 1e-9
    d2 = squared_distances(x, x)
    assert (d2 >= 0).all()
    np.testing.assert_allclose(d2, cdist(x, x, "sqeuclidean"), atol=1e-3)


@pytest.mark.parametrize(
    "real, fake, kwargs",
    [
        (np.zeros((3, 2)), np.zeros((10, 2)), {}),  # 3 samples cannot have a 3rd neighbour
        (np.zeros((10, 2)), np.zeros((10, 3)), {}),  # feature sizes differ
        (np.zeros((10, 2)), np.zeros((10, 2)), {"k": 0}),
        (np.zeros((10, 2)), np.zeros((10, 2)), {"batch_size": 0}),
        (np.zeros(10), np.zeros((10, 2)), {}),  # not 2-D
    ],
)
def test_rejects_bad_input(real, fake, kwargs):
    with pytest.raises(UserError):
        precision_recall(real, fake, **kwargs)
