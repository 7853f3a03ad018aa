"""Streaming a packed dataset into training: never the whole set in memory.

The order is a pure function of (seed, step), as for a folder in memory, so a
resumed run reads exactly the batches an uninterrupted one would:

- Each input pipeline (one per worker) reads its own shard files: the sorted
  shards p, p + P, p + 2P, ... of P pipelines (an explicit FILE split; fewer
  shards than workers is refused). Its epoch is one pass over them.
- Epoch e reads the pipeline's shards one after another in a permutation
  drawn from `stream_key(seed, DATA_ORDER, e, p)`. Packing wrote every shard as
  a random sample of the whole set, so this sequence is already well mixed;
  on top of it, each window of `shuffle_window` consecutive records is
  permuted with its own key (a shuffle buffer whose order does not depend on
  how far a run got before a restart).
- Resuming at step s starts at epoch e = g // n, offset o = g % n (g = s x
  the pipeline's batch, n its records): the shards before o are never opened,
  the one holding o is skipped into (at most one shard is read and dropped),
  and its window is permuted as before, then cut at o.
- Records are parsed and decoded in parallel (PNG or raw), mirrored with a
  per-image draw from `stream_key(seed, DATA_FLIP, e)` folded with the image's
  `index`, scaled to [-1, 1] and batched; labels ride along.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re

import numpy as np
import tensorflow as tf

from facegan.config import Config, ConfigError
from facegan.data.packed import DATASET_FILE, PackInfo, read_pack_info
from facegan.data.report import DataReport
from facegan.data.sources import DataError
from facegan.data.training_images import TrainingImages, to_signed_unit
from facegan.seeds import PickPart, Stream, rng, stream_key

DEFAULT_SHUFFLE_WINDOW = 1024
_READ_BUFFER = 8 << 20  # bytes of read-ahead per shard file


def open_packed(config: Config, workers: int = 1) -> tuple[Config, PackedImages]:
    """The pack `config.data.source` names, checked against the config; the config completed.

    Raises:
        ConfigError: the resolution or channels differ from the pack's, or the
            label settings do not fit it (one line that says what to set).
        DataError: not a valid pack, or fewer shards than workers.
    """
    info = read_pack_info(config.data.source)
    model, labels = config.model, config.data.labels
    if model.resolution != info.resolution:
        raise ConfigError(
            f"`model.resolution` is {model.resolution}, but {info.describe()} holds "
            f"{info.resolution} px images: train at {info.resolution} or pack "
            f"again with --resolution {model.resolution}"
        )
    if model.channels not in (None, info.channels):
        raise ConfigError(
            f"`model.channels` is {model.channels}, but {info.describe()} holds "
            f"{info.channels}-channel images"
        )
    if labels not in ("", "packed"):
        raise ConfigError(
            f"`data.labels` {labels!r}: a packed dataset carries its own labels; "
            f"set data.labels = packed"
            + (
                f" (packed with {info.label_spec!r})"
                if info.labelled
                else ", after packing with --labels"
            )
        )
    if labels == "packed" and not info.labelled:
        raise ConfigError(
            f"`data.labels` is packed, but {info.describe()} has no labels: pack "
            f"it again with --labels"
        )
    check_first_record(info)
    images = PackedImages(info, use_labels=labels == "packed")
    images.pipeline_shards(0, workers)  # fewer shards than workers fails here, not mid-run
    return config.with_overrides({"model.channels": info.channels}), images


def check_first_record(info: PackInfo) -> None:
    """Checks the first record against what `dataset.json` claims: its image's shape.

    One record is cheap to read and catches a `dataset.json` edited (or copied
    from another pack) to another resolution, encoding or channel count, which
    would otherwise fail deep in the pipeline or train in the wrong colour mode.

    Raises:
        DataError: the record cannot be read, or its image is not
            [resolution, resolution, channels] in the stated encoding.
    """
    shard = info.shards[0].file
    where = f"{info.describe()}: record 0 of shard {shard}"
    try:
        serialized = next(iter(tf.data.TFRecordDataset(str(info.directory / shard)).take(1)))
        data = tf.io.parse_single_example(
            serialized, {"image": tf.io.FixedLenFeature([], tf.string)}
        )["image"]
        if info.encoding == "png":
            found = tuple(tf.io.decode_png(data, channels=0).shape)
        else:
            found = (len(data.numpy()),)
    except (StopIteration, tf.errors.OpError) as err:
        reason = (str(err).strip().splitlines() or ["the shard is empty"])[0][:200]
        raise DataError(f"{where} cannot be read ({reason}); pack the data again") from None
    shape = (info.resolution, info.resolution, info.channels)
    wanted = shape if info.encoding == "png" else (int(np.prod(shape)),)
    if found != wanted:
        what = "a PNG of shape" if info.encoding == "png" else "raw bytes:"
        raise DataError(
            f"{where} is not what {DATASET_FILE} says ({info.encoding}, {shape[0]} px, "
            f"{shape[2]} channel(s): {what} {wanted}; found {found}); {DATASET_FILE} was "
            f"edited or belongs to another pack: pack the data again"
        )


def parse_record(serialized: tf.Tensor, info: PackInfo) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(uint8 [R, R, C], index int64 [], labels int32 [A]) of one serialized record."""
    features = tf.io.parse_single_example(
        serialized,
        {
            "image": tf.io.FixedLenFeature([], tf.string),
            "index": tf.io.FixedLenFeature([], tf.int64),
            "labels": tf.io.VarLenFeature(tf.int64),
        },
    )
    shape = [info.resolution, info.resolution, info.channels]
    if info.encoding == "png":
        image = tf.io.decode_png(features["image"], channels=info.channels)
    else:
        image = tf.io.decode_raw(features["image"], tf.uint8)
    image = tf.reshape(image, shape)
    labels = tf.cast(tf.sparse.to_dense(features["labels"]), tf.int32)
    return image, features["index"], labels


@dataclasses.dataclass
class PackedImages(TrainingImages):
    """A packed dataset as training sees it (a `TrainingImages`): streamed, never
    decoded as a whole.

    It answers what the training loop asks of any training set (a description,
    the count, the labels' classes, a few images for the monitors) and makes
    the stream of batches (`batches`).
    """

    info: PackInfo
    use_labels: bool = False
    shuffle_window: int = DEFAULT_SHUFFLE_WINDOW
    with_index: bool = False  # batches also yield each image's `index` (tests, tools)
    report: DataReport | None = None

    def __len__(self) -> int:
        return self.info.count

    @property
    def description(self) -> str:
        return self.info.describe()

    @property
    def failures(self) -> list[tuple[str, str]]:
        return list(self.info.skipped)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.info.resolution, self.info.resolution, self.info.channels

    @property
    def memory_bytes(self) -> int:
        return 0  # streamed: a few batches in flight, never the set

    def _label_strings(self) -> tuple[str, str] | None:
        if not (self.use_labels and self.info.labelled):
            return None
        return self.info.label_classes, self.info.label_values

    def _label_rows(self, count: int, seed: int, part: int) -> np.ndarray:
        return self.sample(min(count, 4096), seed, part)[1]

    # -- a few images, for the health monitors and in-training evaluation -------
    def sample(self, count: int, seed: int, part: int) -> tuple[np.ndarray, np.ndarray | None]:
        """`count` images (uint8) and their labels (or None), a random sample of the pack.

        Reads the first records of shards taken in a seeded order: every shard is
        already a random sample, so this costs reading `count` records, not the set.
        """
        count = min(count, self.info.count)
        order = rng(seed, Stream.PICK, part=part).permutation(len(self.info.shards))
        files = [str(self.info.directory / self.info.shards[i].file) for i in order]
        records = tf.data.TFRecordDataset(files, buffer_size=_READ_BUFFER).take(count)
        parsed = records.map(
            lambda r: parse_record(r, self.info),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        images, labels = [], []
        for image, _, row in parsed.as_numpy_iterator():
            images.append(image)
            labels.append(row)
        pixels = np.stack(images)
        return pixels, (np.stack(labels).astype(np.int32) if self.conditional else None)

    def sample_pixels(self, count: int, seed: int, part: int) -> np.ndarray:
        return self.sample(count, seed, part)[0]

    def describe_damage(self, err: Exception) -> str:
        """Names the shard and record that fail to read (tf.data names only a byte offset).

        Reads the shards one by one until one fails; an error path, so its cost
        (up to one pass over the pack) is paid only after training has stopped.
        """
        for shard in self.info.shards:
            try:
                for _ in tf.data.TFRecordDataset(str(self.info.directory / shard.file)):
                    pass
            except tf.errors.DataLossError as found:
                offset = re.search(r"corrupted record at (\d+)", str(found))
                record = (
                    _record_at(self.info.directory / shard.file, int(offset[1])) if offset else None
                )
                where = f"record {record}" if record is not None else "a record"
                return f"{self.description}: {where} of shard {shard.file} is damaged"
        return super().describe_damage(err)

    # -- the stream ----------------------------------------------------------------
    def pipeline_shards(self, pipeline: int, pipelines: int) -> list[int]:
        """Which shards pipeline `pipeline` of `pipelines` reads (sorted shards p, p+P, ...)."""
        if len(self.info.shards) < pipelines:
            raise DataError(
                f"{self.description} has {len(self.info.shards)} shard(s) for {pipelines} "
                f"workers; every worker needs its own: pack it again with "
                f"--images-per-shard {max(1, self.info.count // pipelines)} or less"
            )
        return list(range(pipeline, len(self.info.shards), pipelines))

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
        """See `TrainingImages.batches`: each pipeline streams its own shard files,
        and its replicas take its batches in turn, so workers never read the same
        image within an epoch."""
        assert replicas % pipelines == 0, (replicas, pipelines)
        local = replicas // pipelines
        return self.stream(
            batch_size // replicas,
            seed,
            flip,
            start_step * local,
            pipeline=pipeline,
            pipelines=pipelines,
        )

    def stream(
        self,
        batch_size: int,
        seed: int,
        flip: bool,
        start_step: int,
        pipeline: int = 0,
        pipelines: int = 1,
    ) -> tf.data.Dataset:
        """An endless dataset of this pipeline's float32 batches [B, R, R, C] in [-1, 1].

        Batch k is batch `start_step + k` of this pipeline (see the module docstring).
        Yields `(images, labels)` when training on the pack's labels, and with
        `with_index` the images' `index` values as a last element.
        """
        shards = self.pipeline_shards(pipeline, pipelines)
        counts = [self.info.shards[i].count for i in shards]
        total = sum(counts)
        first_epoch, offset = divmod(start_step * batch_size, total)
        window = max(1, self.shuffle_window)
        files = tf.constant([str(self.info.directory / self.info.shards[i].file) for i in shards])
        counts_t = tf.constant(counts, tf.int64)
        first_window, cut = divmod(offset, window)

        def epoch(e: tf.Tensor) -> tf.data.Dataset:
            is_first = tf.equal(e, first_epoch)
            start = tf.where(is_first, tf.constant(first_window, tf.int64), 0)
            stream = _epoch_records(files, counts_t, e, start, window, seed, pipeline)
            return stream.skip(tf.where(is_first, tf.constant(cut, tf.int64), 0))

        records = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max).flat_map(epoch)
        decode = self._decoder(seed, flip, self.with_index)
        return (
            records.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(batch_size, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE)
        )

    def _decoder(self, seed: int, flip: bool, with_index: bool):
        info, conditional = self.info, self.conditional

        def decode(e: tf.Tensor, serialized: tf.Tensor):
            image, index, labels = parse_record(serialized, info)
            image = to_signed_unit(image)
            if flip:
                key = tf.random.experimental.stateless_fold_in(
                    stream_key(seed, Stream.DATA_FLIP, e), index
                )
                mirrored = tf.random.stateless_uniform([], key) < 0.5
                image = tf.where(mirrored, tf.reverse(image, axis=[1]), image)
            out = (image, labels) if conditional else (image,)
            out = out + (index,) if with_index else out
            return out if len(out) > 1 else out[0]

        return decode


def _epoch_records(
    files: tf.Tensor,
    counts: tf.Tensor,
    e: tf.Tensor,
    start_window: tf.Tensor,
    window: int,
    seed: int,
    pipeline: int,
) -> tf.data.Dataset:
    """(e, serialized record) of epoch e from window `start_window` on, windows permuted."""
    key = stream_key(seed, Stream.DATA_ORDER, e, part=pipeline % 256)
    order = tf.argsort(tf.random.stateless_uniform(tf.shape(files), seed=key))
    ordered_counts = tf.gather(counts, order)
    ends = tf.cumsum(ordered_counts)
    start = start_window * window
    position = tf.searchsorted(ends, tf.reshape(start, [1]), side="right", out_type=tf.int64)[0]
    position = tf.minimum(position, tf.shape(files, out_type=tf.int64)[0] - 1)
    inside = start - (ends[position] - ordered_counts[position])
    todo = tf.gather(order, tf.range(position, tf.shape(files, out_type=tf.int64)[0]))
    skips = tf.concat([tf.reshape(inside, [1]), tf.zeros_like(todo[1:], tf.int64)], axis=0)
    records = tf.data.Dataset.from_tensor_slices((tf.gather(files, todo), skips)).flat_map(
        lambda file, skip: tf.data.TFRecordDataset(file, buffer_size=_READ_BUFFER).skip(skip)
    )

    def permute(w: tf.Tensor, chunk: tf.Tensor) -> tf.Tensor:
        window_key = tf.random.experimental.stateless_fold_in(key, w)
        return tf.gather(
            chunk, tf.argsort(tf.random.stateless_uniform(tf.shape(chunk), seed=window_key))
        )

    windows = records.batch(window).enumerate(start=start_window).map(permute)
    return windows.unbatch().map(lambda serialized: (e, serialized))


def _record_at(path, offset: int) -> int | None:
    """The number of the TFRecord record whose bytes hold `offset` (a header's or data's)."""
    with open(path, "rb") as file:
        position, record = 0, 0
        while True:
            header = file.read(12)  # uint64 length, uint32 masked CRC of the length
            if len(header) < 12:
                return None
            position += 12 + int.from_bytes(header[:8], "little") + 4
            if offset < position:
                return record
            file.seek(position)
            record += 1


def packed_real_images(
    spec: str, resolution: int, channels: int, num: int | None, seed: int, skip: int
):
    """`facegan.data.opening.real_images` of a pack: records read in a seeded shard order."""
    from facegan.data.decode import resize_pixels
    from facegan.data.opening import RealImages

    info = read_pack_info(spec)
    key = hashlib.sha256(
        f"pick2|pack:{info.content_sha256}|{resolution}|{channels}|{num}|{seed}|{skip}".encode()
    ).hexdigest()[:32]
    count = info.count - skip if num is None else min(num, info.count - skip)
    if count <= 0:
        raise ConfigError(f"{spec!r} has {info.count} images; none left after skipping {skip}")

    def load() -> np.ndarray:
        pixels = PackedImages(info).sample_pixels(skip + count, seed, PickPart.EVALUATE_REAL)[skip:]
        if pixels.shape[1:] == (resolution, resolution, channels):
            return pixels
        return np.stack([resize_pixels(p, resolution, channels) for p in pixels])

    return RealImages(key, count, f"{info.describe()} ({count} images at {resolution} px)", load)
