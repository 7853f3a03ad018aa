"""Writing one shard of a pack: parallel decode and encode (threads), then TFRecord."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from facegan.data.pipeline import parallel_decode
from facegan.data.sources import ImageSource
from facegan.errors import describe_io_error


def example_bytes(image: bytes, index: int, labels: Sequence[int] = ()) -> bytes:
    """One record: the features `facegan.data.packed` documents."""
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
        "index": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(index)])),
        "labels": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in labels])),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    # deterministic: the feature map's order otherwise follows the process's hash
    # seed, and two packs of the same images (or a resumed one) would differ in bytes.
    return example.SerializeToString(deterministic=True)


def png_bytes(pixels: np.ndarray) -> bytes:
    """Lossless PNG of uint8 [R, R, C]. zlib level 1: at 128 px about 3x faster to
    write than the default level for 9 % more bytes (measured on faces)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels[:, :, 0] if pixels.shape[-1] == 1 else pixels).save(
        buffer, format="PNG", compress_level=1
    )
    return buffer.getvalue()


def write_records(
    source: ImageSource,
    indices: Sequence[int],
    path: Path,
    settings,
    first_index: int,
    labels: np.ndarray | None,
    on_done: Callable[[int], None],
) -> tuple[int, list[tuple[int, str]]]:
    """Decodes `indices` of `source` and writes them, in order, to the TFRecord file `path`.

    Args:
        source: the images.
        indices: source indices, in pack order.
        path: the file to write (replaced if it exists: it is the pack's own staging file).
        settings: a `facegan.data.packing.PackSettings` (resolution, channels,
            encoding, limits).
        first_index: the `index` feature of the first record; the others follow.
        labels: int [len(indices), A] or None.
        on_done: called with 1 after each source image (progress).

    Returns:
        (records written, [(source index, reason) of images that failed to decode]).

    Raises:
        OSError: the file could not be written (a full disk: errno ENOSPC).
    """
    failures: dict[int, str] = {}
    encode = (
        png_bytes
        if settings.encoding == "png"
        else (lambda pixels: np.ascontiguousarray(pixels).tobytes())
    )
    written = 0
    with _as_os_error(path), tf.io.TFRecordWriter(str(path)) as writer:
        decoded = parallel_decode(
            source,
            indices,
            settings.resolution,
            settings.channels,
            failures,
            max_pixels=settings.max_pixels,
            min_size=settings.min_size,
            then=encode,
        )
        for position, (_, data, ok) in enumerate(decoded):
            on_done(1)
            if not ok:
                continue
            row = () if labels is None else labels[position]
            writer.write(example_bytes(data, first_index + written, row))
            written += 1
    with open(path, "rb+") as file:  # on disk before it is published by a rename
        os.fsync(file.fileno())
    return written, sorted(failures.items())


@contextlib.contextmanager
def _as_os_error(path: Path):
    """TensorFlow's file errors as the OSError that Python's own writes raise.

    TensorFlow names a full disk only inside its message (a ResourceExhaustedError
    from the writer); the pack's callers handle one kind of write failure.
    """
    try:
        yield
    except tf.errors.OpError as err:
        code, reason = describe_io_error(err)
        if code is None:
            raise
        raise OSError(code, reason, str(path)) from None
