"""What `GAN.fit` accepts, turned into exactly what the train step takes.

The step takes float32 batches [B, R, R, C] in [-1, 1] with B the config's
global batch (and, for a class-conditional model, int32 labels [B, A]).
Keras users have other things: `image_dataset_from_directory(..., labels=None)`
yields float32 0-255 batches of its own size and resolution (the last one
short), other pipelines yield uint8, and facegan's own pipeline yields [-1, 1].
`prepare` converts any of them, inside the tf.data pipeline:

- value range: uint8 is 0-255; a float dataset's range is read from its first
  batch unless the caller names it: inside [-1, 1] with a value below 0 is
  [-1, 1]; inside [0, 255] with at least 1 % of its values above 1 is 0-255;
  anything else is refused (a [0, 1] batch, even with a stray value above 1,
  and a nearly black 0-255 batch cannot be told apart; values outside both
  ranges, NaN and inf are nobody's images). Every later float batch is checked
  to be finite as it is read (`fit` stops with one line at the first that is not);
- channels: an alpha channel (RGBA, grey + alpha) is composited onto white, as
  facegan's decoder does with files; RGB becomes grey (ITU-R 601 luma) for a
  1-channel model and grey is repeated for a 3-channel one;
- size: a non-square image is centre-cropped to a square (as facegan's decoder
  does), then resized with antialiasing to the model's resolution;
- batch: regrouped into full global batches (the short last batch is dropped:
  the step's noise and its loss scaling are sized for the global batch); data
  that gives no full batch at all is refused rather than trained for 0 steps.

0-255 values are scaled exactly as facegan's own pipeline scales them
(`facegan.data.training_images.to_signed_unit`), so uint8 batches train
bit-identically.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from facegan.config import Config
from facegan.data.training_images import composite_on_white, to_signed_unit
from facegan.errors import UserError
from facegan.training.steps import images_per_step

RANGES = ("0-255", "-1-1")

# A float batch is read as 0-255 only if at least this share of its values is above
# 1: a [0, 1] batch with a stray 1.5 (or 200) is not a 0-255 photo, and a 0-255
# batch as dark as that is better named by the caller than guessed.
_MIN_SHARE_ABOVE_ONE = 0.01
# Rounding past a range's ends (e.g. [-1, 1] images computed in bfloat16).
_RANGE_TOLERANCE = 1e-3
# The message of the in-pipeline finiteness check, which `fit` turns into an InputError.
NOT_FINITE = "a batch holds values that are not finite (NaN or inf)"


class InputError(UserError):
    """Data `fit` cannot train on (one line: what it was, what is allowed)."""


def prepare(
    data, config: Config, value_range: str | None = None, shuffle: bool = True
) -> tf.data.Dataset:
    """A tf.data.Dataset of global batches the train step takes, from what `fit` was given.

    Args:
        data: a tf.data.Dataset of image batches [B, H, W, C] or single images
            [H, W, C] (or `(images, labels)` pairs), or a NumPy array [N, H, W, C]
            (or a pair of arrays: images, labels [N, A]).
        config: the GAN's resolved config (resolution, channels, batch, labels).
        value_range: "0-255" or "-1-1"; None reads it from the first batch.
        shuffle: NumPy arrays only: a new order every epoch (seeded by
            `train.seed`), as Keras shuffles arrays.

    Raises:
        InputError: a structure, rank, dtype or value range the step cannot take.
    """
    if value_range is not None and value_range not in RANGES:
        raise InputError(
            f"value_range must be one of {', '.join(RANGES)}; received {value_range!r}"
        )
    dataset = _as_dataset(data, config, shuffle)
    images_spec = _images_spec(dataset.element_spec, config)
    if images_spec.shape.rank == 3:  # single images: batch them here
        dataset = dataset.batch(images_per_step(config), drop_remainder=True)
    if value_range is None:
        value_range = _read_range(dataset, images_spec.dtype, config)
    convert = _converter(config, value_range, check_finite=images_spec.dtype.is_floating)
    dataset = dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if _batch_dim(dataset) != images_per_step(config):
        dataset = dataset.rebatch(images_per_step(config), drop_remainder=True)
    _check_gives_a_batch(dataset, config)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _no_batch(config: Config) -> InputError:
    batch = images_per_step(config)
    return InputError(
        f"fit's data gives no full batch of {batch} images (the config's train.batch_size): "
        f"it is empty or holds fewer than {batch} images, so fit would train nothing"
    )


def _check_gives_a_batch(dataset: tf.data.Dataset, config: Config) -> None:
    """Refuses data that yields no full global batch (Keras would run 0 steps, silently)."""
    count = int(dataset.cardinality())
    if count == tf.data.INFINITE_CARDINALITY or count > 0:
        return
    # Unknown (a filter, a generator): reading one batch is the only way to know.
    if count == tf.data.UNKNOWN_CARDINALITY and any(True for _ in dataset.take(1)):
        return
    raise _no_batch(config)


def _as_dataset(data, config: Config, shuffle: bool) -> tf.data.Dataset:
    if isinstance(data, tf.data.Dataset):
        return data
    arrays = (np.ndarray, tf.Tensor)
    if isinstance(data, arrays) or (
        isinstance(data, tuple) and data and all(isinstance(part, arrays) for part in data)
    ):
        dataset = tf.data.Dataset.from_tensor_slices(data)
        if shuffle:
            dataset = dataset.shuffle(  # a buffer of 0 is an error; no images is refused later
                max(len(_first(data)), 1), seed=config.train.seed, reshuffle_each_iteration=True
            )
        return dataset
    raise InputError(
        f"fit takes a tf.data.Dataset of images or a NumPy array [N, H, W, C]; "
        f"received {type(data).__name__}"
    )


def _images_spec(spec, config: Config) -> tf.TensorSpec:
    """The images' spec; checks the element structure against the model."""
    conditional = config.model.conditional
    if isinstance(spec, (tuple, list)):
        if not spec or len(spec) > 2 or (conditional and len(spec) != 2):
            raise InputError(
                "each element must be images"
                + (", labels" if conditional else " (or images, ignored labels)")
                + f"; received a tuple of {len(spec)}"
            )
        images = spec[0]
    elif isinstance(spec, tf.TensorSpec):
        if conditional:
            raise InputError(
                "this GAN is class-conditional: each element must be a pair "
                "(images, labels int [B, A])"
            )
        images = spec
    else:
        raise InputError(
            f"each element must be an image tensor (or images, labels); "
            f"received {type(spec).__name__}"
        )
    if images.shape.rank not in (3, 4) or images.shape[-1] not in (1, 3, 4, None):
        raise InputError(
            f"images must be [B, H, W, C] (or [H, W, C]) with C 1, 3 or 4; "
            f"received shape {images.shape}"
        )
    if not (images.dtype == tf.uint8 or images.dtype.is_floating):
        raise InputError(f"images must be uint8 or float; received {images.dtype.name}")
    return images


def _first(element) -> tf.Tensor:
    return element[0] if isinstance(element, (tuple, list)) else element


def _read_range(dataset: tf.data.Dataset, dtype: tf.DType, config: Config) -> str:
    """0-255 for uint8; for floats, what the first batch's values say (see the module doc)."""
    if dtype == tf.uint8:
        return "0-255"
    for element in dataset.take(1):
        return _range_of(tf.cast(_first(element), tf.float32).numpy())
    raise _no_batch(config)


def _range_of(images: np.ndarray) -> str:
    """The value range of a float batch, or an InputError saying why it has none."""
    finite = np.isfinite(images)
    if not finite.all():
        bad = int(images.size - np.count_nonzero(finite))
        values = "1 value that is" if bad == 1 else f"{bad} values that are"
        raise InputError(
            f"the first batch holds {values} not finite (NaN or inf); images must be finite"
        )
    low, high = float(images.min()), float(images.max())
    span = f"the first batch's values lie in [{low:.3g}, {high:.3g}]"
    name_it = "or name the range: fit(..., value_range='0-255' or '-1-1')"
    if -1 - _RANGE_TOLERANCE <= low < 0 and high <= 1 + _RANGE_TOLERANCE:
        return "-1-1"
    if 0 <= low and high <= 255 + _RANGE_TOLERANCE:
        above = int(np.count_nonzero(images > 1))
        if above >= _MIN_SHARE_ABOVE_ONE * images.size:
            return "0-255"
        counted = f" with {above} of {images.size} values above 1" if above else ""
        raise InputError(
            f"{span}{counted}: images scaled to [0, 1] are not taken, and a 0-255 batch "
            f"this dark is not guessed; give 0-255 (what image_dataset_from_directory "
            f"yields) or [-1, 1], {name_it}"
        )
    raise InputError(f"{span}: neither [-1, 1] nor 0-255; rescale the images, {name_it}")


def _converter(config: Config, value_range: str, check_finite: bool):
    resolution, channels = config.model.resolution, config.model.channels
    conditional = config.model.conditional

    def images_of(images: tf.Tensor) -> tf.Tensor:
        if check_finite:  # only the first batch was read; a NaN later must not train silently
            images = tf.debugging.assert_all_finite(images, NOT_FINITE)
        x = to_signed_unit(images) if value_range == "0-255" else tf.cast(images, tf.float32)
        x = _channels(x, channels)
        return _resize(x, resolution)

    def convert(*element):
        images = images_of(element[0])
        if not conditional:
            return images
        labels = tf.cast(element[1], tf.int32)
        if labels.shape.rank == 1:
            labels = labels[:, None]
        return images, labels

    return convert


def _channels(x: tf.Tensor, channels: int) -> tf.Tensor:
    """[-1, 1] images with `channels` channels; alpha composited onto white, as files are."""
    have = x.shape[-1]
    if have in (2, 4):  # grey or RGB with alpha
        x, have = composite_on_white(x), have - 1
    if have == channels or channels is None:  # None: a config not yet resolved keeps them
        return x
    if have == 3 and channels == 1:
        return tf.image.rgb_to_grayscale(x)
    if have == 1 and channels == 3:
        return tf.repeat(x, 3, axis=-1)
    raise InputError(f"images have {have} channels; the model takes {channels}")


def _resize(x: tf.Tensor, resolution: int) -> tf.Tensor:
    height, width = x.shape[1], x.shape[2]
    if height == width == resolution:
        return x
    if height is None or width is None or height != width:
        side = tf.minimum(tf.shape(x)[1], tf.shape(x)[2])
        x = tf.image.resize_with_crop_or_pad(x, side, side)  # centre crop
    x = tf.image.resize(x, [resolution, resolution], method="bilinear", antialias=True)
    return tf.ensure_shape(x, [None, resolution, resolution, x.shape[-1]])


def _batch_dim(dataset: tf.data.Dataset) -> int | None:
    return _first(dataset.element_spec).shape[0]
