"""Memorization: copies of training samples are flagged, fresh samples are not."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from facegan.errors import UserError
from facegan.metrics.memorization import MemorizationResult, memorization

COPIED = [3, 17, 42, 60, 88]  # train rows copied exactly
NEARLY = [5, 23, 71]  # train rows copied with a tiny perturbation


@pytest.fixture(scope="module")
def case():
    """200 training vectors in 16-d; 20 generated: 5 copies, 3 near copies, 12 fresh."""
    rng = np.random.default_rng(0)
    train = rng.normal(size=(200, 16))
    copies = train[COPIED]
    near = train[NEARLY] + 1e-3 * rng.normal(size=(len(NEARLY), 16))
    fresh = rng.normal(size=(12, 16))
    generated = np.concatenate([copies, near, fresh])
    return train, generated, memorization(generated, train, percentile=1.0)


def test_copies_find_their_source_at_about_zero_distance(case):
    _, _, result = case
    np.testing.assert_array_equal(result.nearest_index[:8], COPIED + NEARLY)
    np.testing.assert_array_equal(result.nearest_distance[:5], 0.0)
    assert (result.nearest_distance[5:8] < 0.01).all()


def test_copies_are_flagged_and_fresh_samples_are_not(case):
    _, _, result = case
    flagged = result.nearest_distance < result.threshold
    assert flagged[:8].all()
    assert not flagged[8:].any()
    assert result.share == pytest.approx(8 / 20)


def test_threshold_is_the_percentile_of_train_nearest_other_distances(case):
    train, _, result = case
    d = cdist(train, train)
    np.fill_diagonal(d, np.inf)
    assert result.threshold == pytest.approx(np.percentile(d.min(axis=1), 1.0), rel=1e-9)


def test_nearest_neighbours_match_brute_force(case):
    train, generated, result = case
    d = cdist(generated, train)
    np.testing.assert_array_equal(result.nearest_index, d.argmin(axis=1))
    np.testing.assert_allclose(result.nearest_distance, d.min(axis=1), atol=1e-9)
    assert result.nearest_index.dtype == np.int64 and result.nearest_distance.dtype == np.float64


def test_closest_pairs_are_the_copies_closest_first(case):
    _, _, result = case
    pairs = result.closest(8)
    assert len(pairs) == 8
    assert {g for g, _ in pairs} == set(range(8))
    assert all(t == result.nearest_index[g] for g, t in pairs)
    distances = [result.nearest_distance[g] for g, _ in pairs]
    assert distances == sorted(distances)
    assert len(result.closest(100)) == 20 and result.closest(0) == []


def test_a_duplicated_training_sample_still_counts_as_a_neighbour():
    # Self is excluded by index, not by distance: a duplicate in the training set has
    # a nearest *other* sample at distance 0.
    train = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 0.0], [0.0, 7.0]])
    result = memorization(np.array([[5.0, 1.0]]), train, percentile=0.0)
    assert result.threshold == 0.0
    assert result.nearest_index.tolist() == [2] and result.share == 0.0


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_result_does_not_depend_on_batch_size(case, batch_size):
    train, generated, result = case
    other = memorization(generated, train, percentile=1.0, batch_size=batch_size)
    np.testing.assert_array_equal(other.nearest_index, result.nearest_index)
    np.testing.assert_allclose(other.nearest_distance, result.nearest_distance)
    assert (other.threshold, other.share) == pytest.approx((result.threshold, result.share))


def test_result_is_a_frozen_dataclass(case):
    _, _, result = case
    assert isinstance(result, MemorizationResult)
    with pytest.raises(AttributeError):
        result.share = 0.0


@pytest.mark.parametrize(
    "generated, train, kwargs",
    [
        (np.zeros((2, 3)), np.zeros((1, 3)), {}),  # one training sample: no neighbour
        (np.zeros((2, 3)), np.zeros((5, 4)), {}),  # vector sizes differ
        (np.zeros((2, 3)), np.zeros((5, 3)), {"percentile": 101}),
        (np.zeros((2, 3)), np.zeros((5, 3)), {"batch_size": 0}),
        (np.zeros((0, 3)), np.zeros((5, 3)), {}),  # nothing generated
    ],
)
def test_rejects_bad_input(generated, train, kwargs):
    with pytest.raises(UserError):
        memorization(generated, train, **kwargs)
