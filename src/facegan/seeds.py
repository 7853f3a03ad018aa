"""The one owner of randomness: every random stream's seed, from (seed, stream, step).

A run has one integer seed (`train.seed`); a command that draws faces has its
own (`--seed`). Everything random is drawn from a *stream* of that seed:

    key = stream_key(seed, stream, step, part)   # (seed, stream·2^40 + part·2^32 + step)

`step` is the train step (or the epoch, or an image's index) and `part`
separates draws within one step (the k-th critic update, real vs fake). The
key is a pair of int64 for TensorFlow's stateless ops (`tf.random.stateless_*`,
whose Philox hashes the whole pair) or a NumPy `Generator`'s seed (`rng`).
Distinct (stream, step, part) never collide: steps stay below 2^32, parts
below 2^8. Nothing is ever seeded from a global generator, so a resumed run
draws exactly what an uninterrupted one would, with no random state to save.

Replicas: no stream depends on the replica or on how many there are. Every
per-example draw (the generator's noise, augmentation parameters, the
gradient penalty's mixing weights) is made for the whole global batch, and
replica r keeps rows [r·b, (r+1)·b) (`replica_rows`): the rows
`distributed_batches` gives it. So an image is augmented, and a latent drawn,
the same way on one device or on eight.

Not derived here: the per-pixel noise of StyleGAN2's synthesis layers in
training calls is keyed by a hash of the call's w (`models.noise.NoiseKey`),
so it follows the latents it belongs to rather than a stream.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence

import numpy as np

from facegan.errors import UserError

_STEP_BITS = 32
_PART_BITS = 8
MAX_SEED = 2**63 - 1  # seeds are int64


class Stream(enum.IntEnum):
    """What a random draw is for. Values are part of every key: never reuse or renumber."""

    DATA_ORDER = 1  # the permutation of the training set in an epoch (step = epoch)
    DATA_FLIP = 2  # which images of an epoch are mirrored (step = epoch)
    NOISE = 3  # the generator's latents in a train step (part = which update)
    AUGMENT = 4  # augmentation parameters in a train step (part = which batch)
    PENALTY = 5  # the gradient penalty's interpolation weights (part = critic update)
    LATENT = 6  # the latent of a face: seed = the face's seed, step = its index
    LABELS = 7  # labels drawn for generated faces (step = the image's index)
    WEIGHTS = 8  # initializer seeds of a network (part = which network)
    PICK = 9  # host-side choices: sample labels, evaluation subsets, monitors
    EVAL_LATENT = 10  # latents of in-training evaluation (step = the image's index)
    PACK_ORDER = 11  # the order of the images in a packed dataset (`facegan pack --seed`)
    TRUNCATION = 12  # the fixed latents whose feature mean z-space truncation aims at


class PickPart(enum.IntEnum):
    """The parts of the PICK stream: which host-side choice a draw makes.

    Values are part of every key (exact reproducibility): never reuse or
    renumber one. Parts 0-3 are drawn from a run's seed (`train.seed`), so
    they must differ. The last members are drawn from seeds of their own (the
    `--seed` of `facegan evaluate`, KID's `seed`) and are part 0, as they always
    were: an IntEnum makes a member with a value already taken an alias of
    the first one (`PickPart.KID_SUBSETS is PickPart.GRID_LABELS`).
    """

    GRID_LABELS = 0  # labels of the training loop's sample grid
    MONITOR = 1  # the real images the mode-collapse monitor compares with
    EVAL_REAL = 2  # the real side of in-training FID
    EVAL_LABELS = 3  # labels of the faces in-training evaluation generates
    EVALUATE_REAL = 0  # the real images `facegan evaluate` picks (its own --seed)
    KID_SUBSETS = 0  # KID's random subsets (KID's own seed)


def stream_key(seed, stream: Stream, step=0, part: int = 0):
    """The seed of `stream` at `step`: (seed, stream·2^40 + part·2^32 + step).

    Args:
        seed: the run's or the command's seed, 0 <= seed < 2^63 (int or int tensor).
        stream: what the randomness is for.
        step: the train step, epoch or image index, 0 <= step < 2^32 (int or int tensor).
        part: separates draws within one step, 0 <= part < 2^8.

    Returns:
        A tuple of two ints when `seed` and `step` are Python ints; else an
        int64 tensor [2], traceable (the exported SavedModel derives latents
        from seeds with it).
    """
    assert 0 <= part < 2**_PART_BITS, part
    high = (int(stream) << (_STEP_BITS + _PART_BITS)) | (int(part) << _STEP_BITS)
    if isinstance(seed, (int, np.integer)) and isinstance(step, (int, np.integer)):
        assert 0 <= step < 2**_STEP_BITS and 0 <= seed < 2**63, (seed, step)
        return int(seed), high | int(step)
    import tensorflow as tf

    return tf.stack(
        [tf.cast(seed, tf.int64), tf.constant(high, tf.int64) + tf.cast(step, tf.int64)]
    )


def rng(seed: int, stream: Stream, step: int = 0, part: int = 0) -> np.random.Generator:
    """A NumPy generator for host-side draws of `stream` (see `stream_key`)."""
    return np.random.default_rng(list(stream_key(seed, stream, step, part)))


def replica_rows(draw: Callable[[list, object], object], key, rows: int, tail: Sequence[int] = ()):
    """This replica's rows of a draw made for the whole global batch.

    Args:
        draw: `draw(shape, key)`, e.g. `tf.random.stateless_normal`.
        key: the stateless seed (the same on every replica).
        rows: this replica's batch b (a Python int when static: XLA needs it).
        tail: the shape of one row.

    Returns:
        `draw([n·b, *tail], key)[r·b:(r+1)·b]` for replica r of n; outside a
        strategy (or with one replica) simply `draw([b, *tail], key)`.
    """
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    if replicas == 1:
        return draw([rows, *tail], key)
    values = draw([replicas * rows, *tail], key)
    first = tf.cast(context.replica_id_in_sync_group, tf.int32) * rows
    return tf.slice(values, [first] + [0] * len(tail), [rows] + list(tail))


MAX_SEEDS = 100_000  # most faces one request may name (a typo like 0-99999999 is refused)


class SeedError(UserError):
    """Seeds that are not integers from 0 to MAX_SEED, or too many of them (exit 2)."""


def seed_range(first: int, count: int) -> list[int]:
    """Seeds first, first + 1, ..., first + count - 1: what `-n N --seed S` means.

    Raises:
        SeedError: a seed outside 0 .. MAX_SEED, or more than MAX_SEEDS of them.
    """
    first, count = int(first), int(count)
    if count > MAX_SEEDS:
        raise SeedError(f"at most {MAX_SEEDS} faces at once; received {count}")
    if first < 0 or first + max(count, 1) - 1 > MAX_SEED:
        reach = f"{first}" if count <= 1 else f"{first} to {first + count - 1}"
        raise SeedError(f"seeds must be integers from 0 to {MAX_SEED}; received {reach}")
    return list(range(first, first + count))


def seed_file_name(seed: int) -> str:
    """`seed0042.png`: the file of one face (StyleGAN2-ADA's names; wider seeds keep all digits)."""
    return f"seed{int(seed):04d}.png"


def parse_seeds(text: str) -> list[int]:
    """Seeds from StyleGAN2-ADA's syntax: "0-15,42" -> [0, 1, ..., 15, 42].

    Comma-separated integers and inclusive ranges A-B (A <= B), in the order
    given; repeats are kept (a seed named twice is drawn twice).

    Raises:
        SeedError: anything else, in one line naming the bad part.
    """
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        low, dash, high = part.partition("-")
        try:
            first = int(low.strip(), 10)
            last = int(high.strip(), 10) if dash else first
        except ValueError:
            raise SeedError(
                f"seeds are integers and ranges like 0-15,42; received {part!r} in {text!r}"
            ) from None
        if last < first:
            raise SeedError(f"a seed range must go up (A-B with A <= B); received {part!r}")
        seeds += seed_range(first, last - first + 1)
        if len(seeds) > MAX_SEEDS:
            raise SeedError(f"at most {MAX_SEEDS} faces at once; {text!r} names more")
    return seeds


__all__ = [
    "MAX_SEED",
    "MAX_SEEDS",
    "PickPart",
    "SeedError",
    "Stream",
    "parse_seeds",
    "replica_rows",
    "rng",
    "seed_file_name",
    "seed_range",
    "stream_key",
]
