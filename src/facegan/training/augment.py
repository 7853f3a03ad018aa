"""Differentiable augmentation of everything the discriminator sees.

Two schemes, both applied alike to real and generated images just before D, and
both differentiable with respect to the images, so G's gradient flows through
them:

- DiffAugment (Zhao et al. 2020): a fixed policy of `color` (brightness,
  saturation, contrast), `translation` (up to 1/8 of the size, zero padding) and
  `cutout` (a square of half the size set to 0) on every image.
- ADA (Karras et al. 2020), a practical subset: each of x-flip, 90-degree
  rotation, integer translation, isotropic scaling, brightness, contrast,
  saturation and cutout is applied to each image with probability p, and
  `ada_adjust` (called by the train step) moves p so that D's overconfidence on
  real images stays near a target.

Everything is a pure function of tensors; randomness comes from a `seed`, an int
tensor of shape [2], through `tf.random.stateless_*` ops: the same seed gives
the same augmentation (a resumed run repeats it), and the functions work inside
`tf.function`, under XLA and in `tf.distribute` replicas. (Like every stateless
random op, XLA-compiled code draws other, equally distributed, numbers than
uncompiled code for the same seed: repeatable for one `train.jit` setting.) Images are
[B, H, W, C] with C = 1 or 3, nominally in [-1, 1] (values are not clipped: a
clip would stop gradients at the borders).

Replicas: the augmentation of an image does not depend on how many replicas
share the batch. Each op's parameters are drawn for the whole global batch and
each replica keeps the rows of its own slice (`facegan.seeds.replica_rows`),
the rows `distributed_batches` gave it. The caller passes the same seed to
every replica (`facegan.seeds.stream_key(seed, Stream.AUGMENT, step, part)`),
and different parts for the real and the fake batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from facegan.config import DIFFAUGMENT_OPS, AugmentConfig
from facegan.seeds import replica_rows

__all__ = [
    "AugmentFn",
    "ada_adjust",
    "ada_augment",
    "diff_augment",
    "make_augmenter",
    "translate",
    "cutout",
    "scale",
    "rotate90",
]

AugmentFn = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]

# Stream ids folded into the caller's seed, one per random quantity, so that
# adding or removing an op never changes the randomness of the others.
_BRIGHTNESS, _SATURATION, _CONTRAST, _TRANSLATION, _CUTOUT = 101, 102, 103, 104, 105
_FLIP, _ROTATE, _SCALE = 106, 107, 108
_APPLY = 1000  # + op stream: ADA's "is this op applied to this image" draws

# DiffAugment's constants (Zhao et al.)
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5
# ADA's ranges: scaling spans 0.8..1.25 (uniform in log2, so 0.8 and 1.25 are equally
# likely); brightness N(0, 0.2); contrast 2^N(0, 0.5); saturation 2^N(0, 1) (Karras et al.).
SCALE_RANGE = (0.8, 1.25)
BRIGHTNESS_STD = 0.2
CONTRAST_LOG2_STD = 0.5
SATURATION_LOG2_STD = 1.0


# ------------------------------------------------------------------ factory


def make_augmenter(cfg: AugmentConfig) -> AugmentFn | None:
    """The augmentation `cfg` describes, as one function for real and fake images.

    Returns:
        `augment(images, p, seed) -> images` (p: ADA's probability, read at
        every call; ignored by DiffAugment), or None for `none`.
    """
    if cfg.kind == "none":
        return None
    if cfg.kind == "diffaugment":
        policy = tuple(op.strip() for op in cfg.policy.split(",") if op.strip())
        return lambda images, p, seed: diff_augment(images, policy, seed)
    assert cfg.kind == "ada", cfg.kind
    return ada_augment


# ------------------------------------------------------------------ DiffAugment


def diff_augment(images: tf.Tensor, policy: Sequence[str], seed: tf.Tensor) -> tf.Tensor:
    """DiffAugment: every op of `policy` on every image, in policy order.

    Args:
        images: float [B, H, W, C], C = 1 or 3, H and W known statically.
        policy: ops from `color`, `translation`, `cutout`.
        seed: int [2], for stateless random ops.

    Returns:
        The augmented images, same shape and dtype.
    """
    seed = _as_seed(seed)
    for op in policy:
        if op == "color":
            images = _diff_color(images, seed)
        elif op == "translation":
            images = _diff_translation(images, seed)
        elif op == "cutout":
            images = _diff_cutout(images, seed)
        else:
            raise ValueError(
                f"unknown DiffAugment op {op!r}; allowed: {', '.join(DIFFAUGMENT_OPS)}"
            )
    return images


def _diff_color(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    batch = _batch(images)
    brightness = _uniform(seed, _BRIGHTNESS, batch) - 0.5  # [B] in [-0.5, 0.5)
    images = images + _per_image(brightness, images)
    if images.shape[-1] == 3:  # gray images have no saturation
        saturation = _uniform(seed, _SATURATION, batch) * 2.0  # [B] in [0, 2)
        images = _saturate(images, saturation)
    contrast = _uniform(seed, _CONTRAST, batch) + 0.5  # [B] in [0.5, 1.5)
    return _contrast(images, contrast)


def _diff_translation(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    height, width = _spatial(images)
    limit = tf.constant(
        [int(height * TRANSLATION_RATIO + 0.5), int(width * TRANSLATION_RATIO + 0.5)], tf.float32
    )
    # integers in [-limit, limit] for rows and columns: [B, 2]
    unit = _uniform(seed, _TRANSLATION, _batch(images), [2])
    shifts = tf.cast(tf.floor(unit * (2 * limit + 1)), tf.int32) - tf.cast(limit, tf.int32)
    return translate(images, shifts, padding="zeros")


def _diff_cutout(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    size = _cutout_size(images)
    return cutout(images, _cutout_centers(images, seed, _CUTOUT, size), size)


# ------------------------------------------------------------------ ADA


def ada_augment(
    images: tf.Tensor, p: tf.Tensor | tf.Variable | float, seed: tf.Tensor
) -> tf.Tensor:
    """ADA: each transformation applied to each image with probability `p`.

    In order: x-flip, rotation by 90, 180 or 270 degrees (square images),
    integer translation by up to 1/8 of the size (reflection padding), isotropic
    scaling by 0.8..1.25 (bilinear, reflection padding), brightness, contrast,
    saturation (colour images only) and cutout of a square of half the size.
    `p` = 0 returns the images unchanged (bit for bit).

    Args:
        images: float [B, H, W, C], C = 1 or 3, H and W known statically.
        p: float scalar in [0, 1] (the run's `augment_p`).
        seed: int [2], for stateless random ops.

    Returns:
        The augmented images, same shape and dtype.
    """
    seed = _as_seed(seed)
    p = tf.cast(tf.convert_to_tensor(p), tf.float32)
    batch = _batch(images)
    height, width = _spatial(images)

    def applied(stream: int) -> tf.Tensor:  # bool [B]: this op happens to this image
        return _uniform(seed, _APPLY + stream, batch) < p

    flips = applied(_FLIP)
    images = tf.where(flips[:, None, None, None], tf.reverse(images, axis=[2]), images)

    if height == width:  # a quarter turn of a non-square image changes its shape
        turns = tf.cast(tf.floor(_uniform(seed, _ROTATE, batch) * 3), tf.int32) + 1  # 1..3
        images = rotate90(images, tf.where(applied(_ROTATE), turns, 0))

    limit = tf.constant(
        [int(height * TRANSLATION_RATIO + 0.5), int(width * TRANSLATION_RATIO + 0.5)], tf.float32
    )
    unit = _uniform(seed, _TRANSLATION, batch, [2])
    shifts = tf.cast(tf.floor(unit * (2 * limit + 1)), tf.int32) - tf.cast(limit, tf.int32)
    images = translate(
        images, tf.where(applied(_TRANSLATION)[:, None], shifts, 0), padding="reflect"
    )

    low, high = np.log2(SCALE_RANGE)
    factors = tf.pow(2.0, low + (high - low) * _uniform(seed, _SCALE, batch))
    images = _select(applied(_SCALE), scale(images, factors), images)

    brightness = _normal(seed, _BRIGHTNESS, batch) * BRIGHTNESS_STD
    images = _select(applied(_BRIGHTNESS), images + _per_image(brightness, images), images)
    contrast = tf.pow(2.0, _normal(seed, _CONTRAST, batch) * CONTRAST_LOG2_STD)
    images = _select(applied(_CONTRAST), _contrast(images, contrast), images)
    if images.shape[-1] == 3:
        saturation = tf.pow(2.0, _normal(seed, _SATURATION, batch) * SATURATION_LOG2_STD)
        images = _select(applied(_SATURATION), _saturate(images, saturation), images)

    size = _cutout_size(images)
    cut = cutout(images, _cutout_centers(images, seed, _CUTOUT, size), size)
    return _select(applied(_CUTOUT), cut, images)


def ada_adjust(
    p: tf.Tensor, sign_sum: tf.Tensor, count: tf.Tensor, target: float, kimg: float
) -> tf.Tensor:
    """ADA's update of p, the one place it is computed (the train step calls it).

    With r_t = sign_sum / count, the mean of sign(D(x_real)) over the `count`
    real images since the last adjustment, p moves by at most `count` images
    over `kimg` thousand:

        p <- clip(p + sign(r_t - target) * count / (kimg * 1000), 0, 1)

    Args:
        p: the current probability, float32 scalar.
        sign_sum: the sum of sign(D(x_real)) over those images (all replicas).
        count: how many real images that was.
        target: `augment.ada_target`, the wanted r_t.
        kimg: `augment.ada_kimg`.

    Returns:
        The new p, float32 scalar.
    """
    count = tf.cast(count, tf.float32)
    r_t = tf.cast(sign_sum, tf.float32) / tf.maximum(count, 1.0)
    step = tf.sign(r_t - target) * count / (kimg * 1000.0)
    return tf.clip_by_value(tf.cast(p, tf.float32) + step, 0.0, 1.0)


# ------------------------------------------------------------------ transformations


def translate(images: tf.Tensor, shifts: tf.Tensor, padding: str = "zeros") -> tf.Tensor:
    """Shifts each image by whole pixels: out[b, i, j] = images[b, i - dy_b, j - dx_b].

    Args:
        images: [B, H, W, C].
        shifts: int32 [B, 2]: (dy, dx) per image; positive moves content down / right.
        padding: `zeros` (uncovered pixels are 0) or `reflect` (mirrored about the
            border pixel; shifts must stay below the size).

    Returns:
        [B, H, W, C], same dtype.
    """
    height, width = _spatial(images)
    shifts = tf.cast(shifts, tf.int32)
    rows = tf.range(height)[None, :] - shifts[:, 0:1]  # [B, H]: source row of each output row
    cols = tf.range(width)[None, :] - shifts[:, 1:2]  # [B, W]
    if padding == "reflect":
        return _gather_2d(images, _reflect(rows, height), _reflect(cols, width))
    assert padding == "zeros", padding
    inside_rows = (rows >= 0) & (rows < height)
    inside_cols = (cols >= 0) & (cols < width)
    moved = _gather_2d(
        images, tf.clip_by_value(rows, 0, height - 1), tf.clip_by_value(cols, 0, width - 1)
    )
    inside = inside_rows[:, :, None, None] & inside_cols[:, None, :, None]  # [B, H, W, 1]
    return moved * tf.cast(inside, images.dtype)


def cutout(images: tf.Tensor, centers: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Sets a `size` rectangle of each image to 0.

    The rectangle covers rows [cy - size_h // 2, cy - size_h // 2 + size_h) and the
    same for columns, clipped to the image: a centre near the border cuts less
    (as in DiffAugment, so that the middle of the face is not cut more often
    than its edges).

    Args:
        images: [B, H, W, C].
        centers: int32 [B, 2]: (cy, cx) per image.
        size: (size_h, size_w) in pixels.
    """
    height, width = _spatial(images)
    centers = tf.cast(centers, tf.int32)
    top = centers[:, 0:1] - size[0] // 2  # [B, 1]
    left = centers[:, 1:2] - size[1] // 2
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    in_rows = (rows >= top) & (rows < top + size[0])  # [B, H]
    in_cols = (cols >= left) & (cols < left + size[1])  # [B, W]
    cut = in_rows[:, :, None, None] & in_cols[:, None, :, None]  # [B, H, W, 1]
    return images * tf.cast(tf.logical_not(cut), images.dtype)


def scale(images: tf.Tensor, factors: tf.Tensor) -> tf.Tensor:
    """Zooms each image about its centre by `factors` (> 1 enlarges), bilinear.

    Pixels that come from outside the image are mirrored in (reflection
    padding). A factor of 1 returns the image exactly.

    Args:
        images: [B, H, W, C].
        factors: float [B].
    """
    height, width = _spatial(images)
    factors = tf.cast(factors, tf.float32)[:, None]  # [B, 1]

    def sample_points(size: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        center = (size - 1) / 2.0  # pixel centres: the middle of the image
        points = center + (tf.range(size, dtype=tf.float32)[None, :] - center) / factors  # [B, S]
        low = tf.floor(points)
        weight = points - low  # [B, S] share of the next pixel
        low = tf.cast(low, tf.int32)
        return _reflect(low, size), _reflect(low + 1, size), tf.cast(weight, images.dtype)

    # Bilinear interpolation is separable: first along rows, then along columns.
    top, bottom, weight_y = sample_points(height)
    weight_y = weight_y[:, :, None, None]
    images = (
        tf.gather(images, top, axis=1, batch_dims=1) * (1 - weight_y)
        + tf.gather(images, bottom, axis=1, batch_dims=1) * weight_y
    )
    left, right, weight_x = sample_points(width)
    weight_x = weight_x[:, None, :, None]
    return (
        tf.gather(images, left, axis=2, batch_dims=1) * (1 - weight_x)
        + tf.gather(images, right, axis=2, batch_dims=1) * weight_x
    )


def rotate90(images: tf.Tensor, turns: tf.Tensor) -> tf.Tensor:
    """Rotates each square image counter-clockwise by `turns[b]` quarter turns (0..3).

    Args:
        images: [B, S, S, C].
        turns: int32 [B].
    """
    turns = tf.cast(turns, tf.int32)[:, None, None, None]
    transposed = tf.transpose(images, [0, 2, 1, 3])
    rotations = (
        tf.reverse(transposed, axis=[1]),  # a quarter turn counter-clockwise
        tf.reverse(images, axis=[1, 2]),  # a half turn
        tf.reverse(transposed, axis=[2]),
    )  # three quarters
    out = images
    for k, rotated in enumerate(rotations, start=1):  # all three, then pick per image
        out = tf.where(turns == k, rotated, out)
    return out


# ------------------------------------------------------------------ colour


def _saturate(images: tf.Tensor, factors: tf.Tensor) -> tf.Tensor:
    """Scales each pixel's distance from its gray (channel mean) by `factors` [B]."""
    gray = tf.reduce_mean(images, axis=3, keepdims=True)
    return (images - gray) * _per_image(factors, images) + gray


def _contrast(images: tf.Tensor, factors: tf.Tensor) -> tf.Tensor:
    """Scales each image's distance from its mean value by `factors` [B]."""
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return (images - mean) * _per_image(factors, images) + mean


# ------------------------------------------------------------------ helpers


def _cutout_size(images: tf.Tensor) -> tuple[int, int]:
    height, width = _spatial(images)
    return int(height * CUTOUT_RATIO + 0.5), int(width * CUTOUT_RATIO + 0.5)


def _cutout_centers(
    images: tf.Tensor, seed: tf.Tensor, stream: int, size: tuple[int, int]
) -> tf.Tensor:
    """int32 [B, 2] centres, uniform over the image (DiffAugment's range)."""
    height, width = _spatial(images)
    # an even size's square is centred between pixels, so one more centre position fits
    extent = tf.constant([height + 1 - size[0] % 2, width + 1 - size[1] % 2], tf.float32)
    unit = _uniform(seed, stream, _batch(images), [2])
    return tf.cast(tf.floor(unit * extent), tf.int32)


def _gather_2d(images: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
    """out[b, i, j] = images[b, rows[b, i], cols[b, j]]; rows [B, H], cols [B, W]."""
    images = tf.gather(images, rows, axis=1, batch_dims=1)
    return tf.gather(images, cols, axis=2, batch_dims=1)


def _reflect(index: tf.Tensor, size: int) -> tf.Tensor:
    """Mirrors indices into [0, size) about the border pixels (-1 -> 1, size -> size - 2)."""
    if size == 1:
        return tf.zeros_like(index)
    period = 2 * (size - 1)
    index = tf.math.floormod(tf.abs(index), period)
    return tf.where(index >= size, period - index, index)


def _select(chosen: tf.Tensor, new: tf.Tensor, old: tf.Tensor) -> tf.Tensor:
    """Per image: `new` where `chosen` [B] is true, else `old`."""
    return tf.where(chosen[:, None, None, None], new, old)


def _per_image(values: tf.Tensor, images: tf.Tensor) -> tf.Tensor:
    """[B] -> [B, 1, 1, 1] in the images' dtype, to broadcast over pixels."""
    return tf.cast(values, images.dtype)[:, None, None, None]


def _spatial(images: tf.Tensor) -> tuple[int, int]:
    height, width = images.shape[1], images.shape[2]
    if height is None or width is None:
        raise ValueError(
            f"augmentation needs images of static height and width; received shape {images.shape}"
        )
    return int(height), int(width)


def _batch(images: tf.Tensor):
    """The batch size: a Python int when static (XLA needs static slice sizes)."""
    return images.shape[0] if images.shape[0] is not None else tf.shape(images)[0]


def _as_seed(seed) -> tf.Tensor:
    seed = tf.convert_to_tensor(seed)
    if seed.dtype not in (tf.int32, tf.int64):
        seed = tf.cast(seed, tf.int64)
    return seed


def _uniform(seed: tf.Tensor, stream: int, batch, tail: Sequence[int] = ()) -> tf.Tensor:
    """float32 [B, *tail] uniform in [0, 1), one row per image of this replica's slice."""
    return replica_rows(
        lambda shape, s: tf.random.stateless_uniform(shape, s, dtype=tf.float32),
        tf.random.experimental.stateless_fold_in(seed, stream),
        batch,
        tail,
    )


def _normal(seed: tf.Tensor, stream: int, batch, tail: Sequence[int] = ()) -> tf.Tensor:
    """float32 [B, *tail] standard normal, one row per image of this replica's slice."""
    return replica_rows(
        lambda shape, s: tf.random.stateless_normal(shape, s, dtype=tf.float32),
        tf.random.experimental.stateless_fold_in(seed, stream),
        batch,
        tail,
    )
