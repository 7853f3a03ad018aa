"""What `GAN.fit` accepts, turned into exactly what the train step takes.

The step takes float32 batches [B, R, R, C] in [-1, 1] with B the config's
global batch (and, for a class-conditional model, int32 labels [B, A]).
Keras users have other things: `image_dataset_from_directory(..., labels=None)`
yields float32 0-255 batches of its own size and resolution (the last one
short), other pipelines yield uint8, and facegan's own pipeline yields [-1, 1].
`prepare` converts any of them, inside the tf.data pipeline:

- value range: uint8 is 0-255; a float dataset's range is read from its first
  batch (below 0: [-1, 1]; above 1: 0-255; inside [0, 1]: refused, because a
  [0, 1] batch and a nearly black 0-255 one cannot be told apart) unless the
  caller names it;
- channels: an alpha channel (RGBA, grey + alpha) is composited onto white, as
  facegan's decoder does with files; RGB becomes grey (ITU-R 601 luma) for a
  1-channel model and grey is repeated for a 3-channel one;
- size: a non-square image is centre-cropped to a square (as facegan's decoder
  does), then resized with antialiasing to the model's resolution;
- batch: regrouped into full global batches (the short last batch is dropped:
  the step's noise and its loss scaling are sized for the global batch).

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
        value_range = _read_range(dataset, images_spec.dtype)
    convert = _converter(config, value_range)
    dataset = dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if _batch_dim(dataset) != images_per_step(config):
        dataset = dataset.rebatch(images_per_step(config), drop_remainder=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _as_dataset(data, config: Config, shuffle: bool) -> tf.data.Dataset:
    if isinstance(data, tf.data.Dataset):
        return data
    arrays = (np.ndarray, tf.Tensor)
    if isinstance(data, arrays) or (
        isinstance(data, tuple) and data and all(isinstance(part, arrays) for part in data)
    ):
        dataset = tf.data.Dataset.from_tensor_slices(data)
        if shuffle:
            dataset = dataset.shuffle(
                len(_first(data)), seed=config.train.seed, reshuffle_each_iteration=True
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


def _read_range(dataset: tf.data.Dataset, dtype: tf.DType) -> str:
    """0-255 for uint8; for floats, what the first batch's values say."""
    if dtype == tf.uint8:
        return "0-255"
    for element in dataset.take(1):
        images = _first(element)
        low, high = float(tf.reduce_min(images)), float(tf.reduce_max(images))
        if low < 0.0:
            return "-1-1"
        if high > 1.0:
            return "0-255"
        raise InputError(
            f"the first batch's values lie in [{low:.3g}, {high:.3g}]: images scaled to [0, 1] "
            f"are not taken; give 0-255 (what image_dataset_from_directory yields) or [-1, 1], "
            f"or name the range: fit(..., value_range='0-255' or '-1-1')"
        )
    raise InputError("the dataset is empty")


def _converter(config: Config, value_range: str):
    resolution, channels = config.model.resolution, config.model.channels
    conditional = config.model.conditional

    def images_of(images: tf.Tensor) -> tf.Tensor:
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
