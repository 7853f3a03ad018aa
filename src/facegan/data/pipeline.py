"""The tf.data input pipeline.

Two stages:

1. `load_training_images` scans the source first (`facegan.data.scan`, cached by
   file name, size and mtime, so a restart decodes nothing twice to check it),
   refuses an empty or all-bad dataset with one line, then `decode_source`
   decodes every good image once, in parallel (a thread pool), to uint8 at the
   training resolution, and keeps them in memory. A file that fails is
   skipped, counted and named with its reason; it never stops the run. With
   `data.labels`, each item's class labels are read first (`facegan.data.labels`)
   and items without labels are skipped and named the same way.
2. `training_dataset` streams batches from that cache forever. The order is a
   pure function of (seed, step): epoch `e` uses a permutation drawn from the
   stream (seed, DATA_ORDER, e) and each image's flip from (seed, DATA_FLIP, e)
   (`facegan.seeds`). Resuming at step `s` therefore yields exactly the
   batches an uninterrupted run would have seen, with no iterator state to
   checkpoint. Labels, when given, ride along with
   their images through the same permutation.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import os
import shlex
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from facegan.config import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIZE, ConfigError, DataConfig
from facegan.data.decode import prepare
from facegan.data.labels import LabelSchema, label_items
from facegan.data.problems import describe_error, display_name
from facegan.data.report import DataReport
from facegan.data.scan import scan_source
from facegan.data.sources import DataError, ImageSource, open_source
from facegan.data.training_images import TrainingImages, replica_slices, to_signed_unit
from facegan.progress import progress as line_or_bar
from facegan.seeds import PickPart, Stream, rng, stream_key


@dataclasses.dataclass
class DecodedImages(TrainingImages):
    """The decoded training set, in memory (a `TrainingImages`).

    Attributes:
        pixels: uint8 [N, R, R, C].
        names: the N item names, in `pixels` order.
        failures: (name, reason) for every file that was skipped; names are in
            display form (`display_name`), safe to print and log.
        description: where the images came from, for logs.
        report: the dataset scan, when the images came from `load_training_images`.
        labels: int32 [N, A] class indices aligned with `pixels` (columns in
            `label_schema` order), when `data.labels` is set; else None.
        label_schema: the label attributes and their resolved classes, or None.
    """

    pixels: np.ndarray
    names: list[str]
    failures: list[tuple[str, str]]
    description: str
    report: DataReport | None = None
    labels: np.ndarray | None = None
    label_schema: LabelSchema | None = None

    @classmethod
    def from_arrays(
        cls,
        pixels: np.ndarray,
        labels: np.ndarray | None = None,
        description: str = "arrays in memory",
    ) -> DecodedImages:
        """Images already decoded (uint8 [N, R, R, C]; labels int [N, A]), e.g. for tests."""
        names = [f"image-{i}" for i in range(len(pixels))]
        labels = None if labels is None else np.asarray(labels, np.int32)
        return cls(pixels, names, [], description, labels=labels)

    def __len__(self) -> int:
        return len(self.pixels)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.pixels.shape[1:])

    @property
    def memory_bytes(self) -> int:
        return int(self.pixels.nbytes)

    def _label_strings(self) -> tuple[str, str] | None:
        if self.labels is None:
            return None
        schema = self.label_schema
        # Labels without a schema (arrays from a caller): conditional, classes unnamed.
        return (schema.label_classes, schema.label_values) if schema else (None, "")

    def _label_rows(self, count: int, seed: int, part: int) -> np.ndarray:
        return self.labels

    def rare_classes(self) -> list[str]:
        if self.labels is None or self.label_schema is None:
            return []
        return self.label_schema.rare_classes(self.labels)

    def sample_pixels(self, count: int, seed: int, part: int) -> np.ndarray:
        """`count` different images (uint8), chosen from the run's PICK stream, in set order."""
        pick = rng(seed, Stream.PICK, part=part).permutation(len(self))[:count]
        return self.pixels[np.sort(pick)]

    def batches(
        self,
        batch_size: int,
        seed: int,
        flip: bool,
        start_step: int = 0,
        *,
        replicas: int = 1,
        pipeline: int = 0,
        pipelines: int = 1,
    ) -> tf.data.Dataset:
        """See `TrainingImages.batches`: every pipeline builds the same global batches
        (`training_dataset`, a pure function of seed and step) and keeps its
        replicas' slices."""
        dataset = training_dataset(
            self.pixels, batch_size, seed, flip, start_step=start_step, labels=self.labels
        )
        return replica_slices(dataset, replicas, pipeline, pipelines)


def load_training_images(
    source: ImageSource,
    data_cfg: DataConfig,
    resolution: int,
    channels: int,
    *,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> DecodedImages:
    """Scans `source` (cached), refuses it if nothing is usable, decodes the good images.

    Args:
        source: the training images.
        data_cfg: the limits (`max_pixels`, `min_size`), `source` (named in errors)
            and the labels (`labels`, `label_bins`, `label_values`).
        resolution: square side of the decoded images.
        channels: 1 or 3.
        cache_dir: where the scan cache lives; default `facegan.data.scan.default_cache_dir()`.
        progress: show progress bars.

    Returns:
        The decoded images; `failures` names every skipped file with its reason
        (unlabelled ones included) and `report` holds the whole scan (duplicates,
        sizes, warnings). With `data_cfg.labels`, `labels` and `label_schema`
        are set and only labelled images are kept.

    Raises:
        DataError: the source holds no image file, or none of them is usable
            (one line naming the count and the first reasons); `LabelError` (a
            DataError) when the labels cannot be read or no image has labels.
    """
    report = scan_source(
        source,
        resolution=resolution,
        max_pixels=data_cfg.max_pixels,
        min_size=data_cfg.min_size,
        cache_dir=cache_dir,
        progress=progress,
    )
    if not report.usable:
        command = f"facegan inspect-data {shlex.quote(display_name(data_cfg.source))}"
        raise DataError(f"`data.source` {report.refusal()}. Details: {command}")
    indices = report.good_indices()
    scan_failures = [(display_name(item.name), item.reason) for item in report.bad]
    item_labels = None
    if data_cfg.labels:
        # Labels come from names (or a CSV), so read them before decoding: an
        # unlabelled image is never decoded.
        item_labels = label_items([source.names[i] for i in indices], data_cfg)
        indices = [i for i, ok in zip(indices, item_labels.labelled) if ok]
        scan_failures += [(display_name(name), reason) for name, reason in item_labels.unlabelled]
    decoded = decode_source(
        source,
        resolution,
        channels,
        progress=progress,
        indices=indices,
        max_pixels=data_cfg.max_pixels,
        min_size=data_cfg.min_size,
    )
    decoded = dataclasses.replace(decoded, failures=scan_failures + decoded.failures, report=report)
    if item_labels is not None:
        # Realign by name: decoding may still drop an image the scan passed.
        by_name = {
            source.names[i]: row
            for i, row in zip(report.good_indices(), item_labels.labels)
            if row[0] >= 0
        }
        labels = np.stack([by_name[name] for name in decoded.names]).astype(np.int32)
        decoded = dataclasses.replace(decoded, labels=labels, label_schema=item_labels.schema)
    return decoded


def parallel_decode(
    source: ImageSource,
    indices: Sequence[int],
    resolution: int,
    channels: int,
    failures: dict[int, str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_size: int = DEFAULT_MIN_SIZE,
    then: Callable[[np.ndarray], object] | None = None,
    workers: int | None = None,
) -> Iterator[tuple[int, object, bool]]:
    """(index, uint8 [R, R, C], ok) per item of `indices`, decoded by a thread pool, in order.

    PIL releases the GIL while it decodes and resizes, so threads use every core
    (measured on 2 cores, 200 px JPEG -> 64 px: 2,370 img/s with 2 threads,
    against 700 img/s through a tf.data `numpy_function` map). A file that fails
    gives a blank image with ok = False, and its reason goes into `failures`
    (item index -> reason). `then(pixels)`, when given, runs in the worker too
    (a packer's PNG encoding) and its result replaces the pixels. At most a few
    hundred results wait for the consumer, so memory stays flat.
    """
    blank = np.zeros((resolution, resolution, channels), np.uint8)

    def load(index: int) -> tuple[object, bool]:
        try:
            with source.open(index) as image:
                pixels = prepare(
                    image, resolution, channels, max_pixels=max_pixels, min_size=min_size
                )
            return (then(pixels) if then else pixels), True
        except Exception as err:  # any broken file is skipped, whatever PIL raised
            failures[index] = describe_error(err)[1]  # one writer per key: no lock needed
            return (then(blank) if then else blank), False

    window = 256
    with concurrent.futures.ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:
        pending: collections.deque = collections.deque()
        for index in indices:
            pending.append((int(index), pool.submit(load, int(index))))
            if len(pending) >= window:
                done, future = pending.popleft()
                yield (done, *future.result())
        while pending:
            done, future = pending.popleft()
            yield (done, *future.result())


def decode_source(
    source: ImageSource,
    resolution: int,
    channels: int,
    progress: bool = False,
    *,
    indices: Sequence[int] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_size: int = DEFAULT_MIN_SIZE,
) -> DecodedImages:
    """Decodes images of `source` to uint8 [N, resolution, resolution, channels].

    Decoding runs in parallel (`parallel_decode`: a thread pool; PIL releases
    the GIL while it decodes). Broken files are skipped and reported in `failures`.

    Args:
        source: the images.
        resolution, channels: the output shape.
        progress: show a progress bar.
        indices: decode only these items (e.g. those a scan found good); default all,
            and then the entries refused while listing are reported as failures too.
        max_pixels, min_size: images outside these limits are skipped undecoded.

    Raises:
        DataError: if no image at all could be decoded.
    """
    subset = (
        np.arange(len(source), dtype=np.int64)
        if indices is None
        else np.asarray(indices, dtype=np.int64)
    )
    count = len(subset)
    failures: dict[int, str] = {}
    # Written in place: the decoded set is held once, not once per batch and again
    # when the batches are joined (a 100,000-image set at 128 px is 4.9 GB).
    pixels_out = np.empty((count, resolution, resolution, channels), np.uint8)
    kept_indices: list[int] = []
    bar = line_or_bar(count, f"decoding {source.description}", show=progress)
    for index, pixels, ok in parallel_decode(
        source, subset, resolution, channels, failures, max_pixels=max_pixels, min_size=min_size
    ):
        if ok:
            pixels_out[len(kept_indices)] = pixels
            kept_indices.append(index)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()

    names = source.names
    failure_list = [(display_name(names[i]), failures[i]) for i in sorted(failures)]
    if indices is None:
        failure_list += [(display_name(name), reason) for name, _, reason in source.problems]
    if not kept_indices:
        first = f" (first: {failure_list[0][0]}: {failure_list[0][1]})" if failure_list else ""
        raise DataError(
            f"`data.source` {source.description}: none of its {count} images "
            f"could be decoded{first}"
        )
    if len(kept_indices) < count:  # drop the unused tail (a copy only when files failed)
        pixels_out = pixels_out[: len(kept_indices)].copy()
    return DecodedImages(
        pixels=pixels_out,
        names=[names[i] for i in kept_indices],
        failures=failure_list,
        description=source.description,
    )


def training_dataset(
    pixels: np.ndarray,
    batch_size: int,
    seed: int,
    flip: bool,
    start_step: int = 0,
    labels: np.ndarray | None = None,
) -> tf.data.Dataset:
    """An endless dataset of float32 batches [B, R, R, C] in [-1, 1].

    Batch `k` of the returned dataset is the batch of global step
    `start_step + k`, identical to what a run started at step 0 would see.

    Args:
        pixels: uint8 [N, R, R, C].
        batch_size: images per batch.
        seed: the data-order seed.
        flip: mirror about half of the images, a fixed choice per (seed, epoch, image).
        start_step: the global step of the first batch.
        labels: int [N, A] class labels aligned with `pixels`; with them the
            dataset yields `(images, labels)` with labels int32 [B, A], taken
            through the same permutation as the images. A flip keeps the label.
    """
    count = len(pixels)
    assert count > 0, "training_dataset needs at least one image"
    if labels is not None:
        assert labels.ndim == 2 and len(labels) == count, (labels.shape, pixels.shape)
    # The images stay in the caller's NumPy array: a tensor copy (or a constant
    # captured by the dataset's graph) would hold the whole set two more times.
    shape = [batch_size, *pixels.shape[1:]]
    classes = None if labels is None else tf.constant(labels, tf.int32)  # [N, A], small
    first = start_step * batch_size
    first_epoch, offset = divmod(first, count)

    def epoch_order(epoch: tf.Tensor) -> tf.data.Dataset:
        order = tf.argsort(
            tf.random.stateless_uniform([count], seed=stream_key(seed, Stream.DATA_ORDER, epoch))
        )
        flips = (
            tf.random.stateless_uniform([count], seed=stream_key(seed, Stream.DATA_FLIP, epoch))
            < 0.5
        )
        return tf.data.Dataset.from_tensor_slices((order, flips))

    def gather(indices: tf.Tensor, flips: tf.Tensor):
        raw = tf.numpy_function(lambda rows: pixels[rows], [indices], tf.uint8, stateful=False)
        raw.set_shape(shape)  # uint8 [B, R, R, C]
        batch = to_signed_unit(raw)
        if flip:
            batch = tf.where(flips[:, None, None, None], tf.reverse(batch, axis=[2]), batch)
        if classes is None:
            return batch
        return batch, tf.gather(classes, indices)  # [B, R, R, C], [B, A]

    return (
        tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max)
        .flat_map(epoch_order)
        .skip(offset)
        .batch(batch_size, drop_remainder=True)
        .map(gather, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def folder_real_images(
    spec: str,
    resolution: int,
    channels: int,
    num: int | None,
    seed: int,
    skip: int,
    progress: bool = False,
):
    """`facegan.data.opening.real_images` of a folder, zip or the embedded faces.

    The pick is a seeded permutation of the decodable images, decoded lazily.
    The key hashes the files' fingerprint and these settings, so a set whose
    features are cached is never decoded.
    """
    from facegan.data.opening import RealImages

    source = open_source(spec)
    # "pick2": the subset is drawn from `facegan.seeds`' PICK stream (older caches differ).
    key = hashlib.sha256(
        f"pick2|{source.fingerprint()}|{resolution}|{channels}|{num}|{seed}|{skip}".encode()
    ).hexdigest()[:32]

    def load() -> np.ndarray:
        decoded = decode_source(source, resolution, channels, progress=progress)
        order = rng(seed, Stream.PICK, part=PickPart.EVALUATE_REAL).permutation(
            len(decoded.pixels)
        )[skip:]
        if num is not None:
            order = order[:num]
        if len(order) == 0:
            raise ConfigError(
                f"{spec!r} has {len(decoded.pixels)} decodable images; "
                f"none left after skipping {skip}"
            )
        return decoded.pixels[np.sort(order)]

    expected = max(0, len(source) - skip) if num is None else min(num, max(0, len(source) - skip))
    return RealImages(
        key, expected, f"{source.description} ({expected} images at {resolution} px)", load
    )
