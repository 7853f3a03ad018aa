"""Latents from seeds: the stored values of today's seed convention, derived at the network's speed."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import tensorflow as tf

from facegan.models import latents_for_seed, latents_from_seeds
from facegan.seeds import Stream

SEEDS = [0, 1, 2, 3, 42, 65535, 2**32 + 7, 2**63 - 1]

# sha256 of the float32 bytes of latents_from_seeds(SEEDS, Z), taken before the
# derivation was compiled (one eager stateless_normal per seed). The seed
# convention must never change: every face a user has saved a seed of depends on it.
STORED = {
    5: "42ea76255ad9080140be8f9e693b24892a93739325bde58be8c6996786361a44",
    16: "1569928c48c8eaec02e92ab9670889331fec09c26c744c94938f44a1b9300276",
    128: "0db18ee31bb80f3151916086d92d87c8499f3539d0fd3fbd936be060a09c1797",
    512: "f79f3455332cf151a702b2ee3218006fb7bd547473c78f1db473f417c555b4cb",
}
FIRST_ROW = [-0.4980229139328003, 0.3409591615200043, -1.0350403785705566]  # seed 0
LAST_ROW = [-2.191830635070801, -0.8869353532791138, -0.30777645111083984]  # seed 2^63 - 1


# latents_for_seed(n, Z, seed, stream): sha256 and the last row's first two values,
# stored before it was compiled (in-training evaluation's latents come from it).
STORED_RANGES = [
    (
        (5, 16, 7, Stream.EVAL_LATENT),
        "0ad8621509902af2f97e0ddc772d61e728e4a7152bfa5457a2a6e7d35c0fd92e",
        [0.8941819667816162, 1.8697155714035034],
    ),
    (
        (3, 128, 42, Stream.LATENT),
        "ce11fe4a22169e4a889057c3d6fcfd56d44eb21775fc358fc4847492e4b9ee89",
        [0.5467653870582581, -0.31534019112586975],
    ),
    (
        (4, 128, 2**63 - 1, Stream.TRUNCATION),
        "2cf332f6ea747e8d6628f39d5b295e05c9e02cb676dd7de8a48d3547d9d1b576",
        [-0.3642517328262329, -1.006009817123413],
    ),
]


def _digest(latents: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(latents, np.float32).tobytes()).hexdigest()


@pytest.mark.parametrize("latent_dim", sorted(STORED))
def test_latents_are_the_stored_values(latent_dim):
    latents = latents_from_seeds(SEEDS, latent_dim).numpy()
    assert latents.shape == (len(SEEDS), latent_dim) and latents.dtype == np.float32
    assert latents[0, :3].tolist() == FIRST_ROW
    assert latents[-1, :3].tolist() == LAST_ROW
    assert _digest(latents) == STORED[latent_dim]


@pytest.mark.parametrize(("args", "digest", "last"), STORED_RANGES)
def test_latents_of_a_range_are_the_stored_values(args, digest, last):
    latents = latents_for_seed(*args).numpy()
    assert latents.shape == args[:2] and latents[-1, :2].tolist() == last
    assert _digest(latents) == digest


def test_traced_latents_are_the_eager_ones():
    """The exported SavedModel and the Sampler trace the same derivation inside their graphs."""
    traced = tf.function(lambda s: latents_from_seeds(s, 128))
    assert _digest(traced(tf.constant(SEEDS, tf.int64)).numpy()) == STORED[128]


def test_a_seed_is_row_zero_of_its_range():
    for seed in (0, 42, 2**63 - 1):
        np.testing.assert_array_equal(
            latents_from_seeds([seed], 16).numpy()[0], latents_for_seed(3, 16, seed).numpy()[0]
        )


def test_no_seeds_give_no_latents():
    assert latents_from_seeds(np.zeros([0], np.int64), 16).numpy().shape == (0, 16)


def test_latents_are_not_derived_one_eager_call_per_seed(monkeypatch):
    """1,000 seeds cost one compiled call, not 1,000 eager ones (3 ms each, 85 % of `generate`)."""
    calls = []
    draw = tf.random.stateless_normal

    def counting(*args, **kwargs):
        calls.append(tf.executing_eagerly())
        return draw(*args, **kwargs)

    monkeypatch.setattr(tf.random, "stateless_normal", counting)
    latents_from_seeds(np.arange(1000), 24)
    latents_for_seed(1000, 24, 5, Stream.EVAL_LATENT)
    assert not any(calls), f"{sum(calls)} eager draws"
    assert len(calls) <= 4  # each traced once (twice at most: autograph's first pass)
