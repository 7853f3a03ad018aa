"""A packed dataset: `dataset.json` plus TFRecord shards, written once by `facegan pack`.

    DIR/dataset.json                        what the shards hold (read this first)
    DIR/shard-00000-of-00004.tfrecord       tf.train.Example records
    ...

Every record is one image at the dataset's resolution, already decoded,
validated, cropped (or aligned) and resized, with three features:

    image   bytes        PNG (lossless), or the raw uint8 pixels [R, R, C] in
                         row-major order when `encoding` is "raw"
    index   int64 [1]    the image's number in the dataset, 0 .. count-1
    labels  int64 [A]    class indices (A = 0 without labels; see `labels`)

Records are in a seeded random order (each shard is a random sample of the
set), so reading shards in any order streams a well-mixed dataset. This module
reads and checks `dataset.json` without TensorFlow; `facegan.data.packing`
writes packs and `facegan.data.streaming` streams them into training.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from facegan.data.sources import DataError

FORMAT = "facegan-packed-dataset"
FORMAT_VERSION = 1
DATASET_FILE = "dataset.json"
ENCODINGS = ("png", "raw")
# The features of every record (see the module docstring).
FEATURES = {"image": "bytes", "index": "int64 [1]", "labels": "int64 [A]"}


def shard_name(index: int, count: int) -> str:
    return f"shard-{index:05d}-of-{count:05d}.tfrecord"


@dataclasses.dataclass(frozen=True)
class Shard:
    """One TFRecord file of a pack: its name, how many records, its bytes and their hash."""

    file: str
    count: int
    bytes: int
    sha256: str


@dataclasses.dataclass(frozen=True)
class PackInfo:
    """The contents of `dataset.json` (see the module docstring).

    Attributes:
        directory: where the pack is.
        resolution, channels: every image is [resolution, resolution, channels] uint8.
        count: images in the pack.
        encoding: "png" or "raw".
        shards: the shard files, in file-name order.
        label_classes, label_values: as `model.label_classes` and
            `data.label_values` take them ("" without labels).
        label_spec, label_bins: the `data.labels` and `data.label_bins` the labels
            were read with ("" without labels).
        source: where the images came from, as given to `facegan pack`.
        content_sha256: a hash of the shards' hashes: equal iff the packs are equal.
        skipped: (name, reason) of every source file left out.
        crop: "centre" or "aligned".
    """

    directory: Path
    resolution: int
    channels: int
    count: int
    encoding: str
    shards: tuple[Shard, ...]
    label_classes: str
    label_values: str
    label_spec: str
    label_bins: str
    source: str
    content_sha256: str
    skipped: tuple[tuple[str, str], ...]
    crop: str

    @property
    def labelled(self) -> bool:
        return bool(self.label_classes)

    @property
    def decoded_bytes(self) -> int:
        return self.count * self.resolution * self.resolution * self.channels

    def describe(self) -> str:
        return (
            f"packed dataset {str(self.directory)!r} ({self.count} images at "
            f"{self.resolution} px, {len(self.shards)} shard(s))"
        )


def is_packed(spec: str) -> bool:
    """Whether `spec` names a packed dataset (a folder with a dataset.json)."""
    try:
        return (Path(spec).expanduser() / DATASET_FILE).is_file()
    except OSError:
        return False


def read_pack_info(spec: str | Path, *, check_files: bool = True) -> PackInfo:
    """Reads and checks `dataset.json`.

    Args:
        spec: the pack's folder.
        check_files: also check that every shard exists with its recorded size.

    Raises:
        DataError: not a pack, an unknown format version, a malformed file, or a
            shard missing or of the wrong size (one line naming it).
    """
    directory = Path(spec).expanduser()
    path = directory / DATASET_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"{str(directory)!r} is not a packed dataset: it has no "
            f"{DATASET_FILE} (make one with `facegan pack`)"
        ) from None
    except (OSError, ValueError) as err:
        raise DataError(f"{str(path)!r} cannot be read: {err}") from None
    info = _parse(raw, directory, path)
    if check_files:
        for shard in info.shards:
            file = directory / shard.file
            if not file.is_file() or file.stat().st_size != shard.bytes:
                raise DataError(
                    f"packed dataset {str(directory)!r}: shard {shard.file} is "
                    f"missing or not {shard.bytes} bytes; pack the data again"
                )
    return info


def _parse(raw: Any, directory: Path, path: Path) -> PackInfo:
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise DataError(f"{str(path)!r} is not a facegan packed dataset description")
    if raw.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"{str(path)!r} has format version {raw.get('format_version')!r}; this "
            f"facegan reads version {FORMAT_VERSION} (pack the data again)"
        )
    try:
        labels = raw.get("labels") or {}
        info = PackInfo(
            directory=directory,
            resolution=int(raw["resolution"]),
            channels=int(raw["channels"]),
            count=int(raw["count"]),
            encoding=str(raw["encoding"]),
            shards=tuple(
                Shard(str(s["file"]), int(s["count"]), int(s["bytes"]), str(s["sha256"]))
                for s in raw["shards"]
            ),
            label_classes=str(labels.get("label_classes", "")),
            label_values=str(labels.get("label_values", "")),
            label_spec=str(labels.get("spec", "")),
            label_bins=str(labels.get("label_bins", "")),
            source=str(raw["source"]["spec"]),
            content_sha256=str(raw["content_sha256"]),
            skipped=tuple((str(s["name"]), str(s["reason"])) for s in raw.get("skipped", [])),
            crop=str(raw.get("crop", "centre")),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{str(path)!r} is malformed ({type(err).__name__}: {err})") from None
    if (
        info.encoding not in ENCODINGS
        or info.channels not in (1, 3)
        or info.resolution < 1
        or info.count != sum(s.count for s in info.shards)
        or not info.shards
    ):
        raise DataError(
            f"{str(path)!r} is inconsistent (encoding, channels, resolution or "
            f"counts); pack the data again"
        )
    if any("/" in s.file or s.file.startswith(".") for s in info.shards):
        raise DataError(f"{str(path)!r} names shard files outside its folder")
    return info


def pack_description(info: PackInfo) -> dict[str, Any]:
    """`dataset.json`'s contents for `info` (the inverse of `read_pack_info`)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "resolution": info.resolution,
        "channels": info.channels,
        "count": info.count,
        "encoding": info.encoding,
        "crop": info.crop,
        "features": FEATURES,
        "labels": (
            {
                "spec": info.label_spec,
                "label_bins": info.label_bins,
                "label_classes": info.label_classes,
                "label_values": info.label_values,
            }
            if info.labelled
            else None
        ),
        "source": {"spec": info.source},
        "content_sha256": info.content_sha256,
        "shards": [dataclasses.asdict(shard) for shard in info.shards],
        "skipped": [{"name": name, "reason": reason} for name, reason in info.skipped],
    }


def verify_pack(info: PackInfo) -> list[str]:
    """Reads every shard and checks it against `dataset.json`: what is wrong, one line each.

    Checks each shard's SHA-256 and its record count (read from the TFRecord
    framing, without TensorFlow), the total count and `content_sha256`. An empty
    list means the pack is exactly what `facegan pack` wrote. Reads the whole pack
    (at disk speed), so training does not do it at every start; `facegan
    inspect-data --verify` does.
    """
    problems = []
    for shard in info.shards:
        digest, records = _read_shard(info.directory / shard.file)
        if digest != shard.sha256:
            problems.append(f"shard {shard.file}: its SHA-256 is not the one dataset.json records")
        if records != shard.count:
            problems.append(
                f"shard {shard.file}: holds {records} record(s), dataset.json says {shard.count}"
            )
    if sum(shard.count for shard in info.shards) != info.count:
        problems.append(
            f"dataset.json: count {info.count} is not the sum of its shards' counts "
            f"({sum(shard.count for shard in info.shards)})"
        )
    content = hashlib.sha256("".join(s.sha256 for s in info.shards).encode()).hexdigest()
    if content != info.content_sha256:
        problems.append("dataset.json: content_sha256 is not the hash of its shards' hashes")
    return problems


def _read_shard(path: Path) -> tuple[str, int]:
    """(SHA-256 of the file, records in it); a cut last record is not counted."""
    digest, records = hashlib.sha256(), 0
    with open(path, "rb") as file:
        while True:
            header = file.read(12)  # uint64 length, uint32 masked CRC of the length
            digest.update(header)
            if len(header) < 12:
                break
            length = int.from_bytes(header[:8], "little")
            body = file.read(length + 4)  # the record, then the masked CRC of its data
            digest.update(body)
            if len(body) < length + 4:
                break
            records += 1
        digest.update(file.read())
    return digest.hexdigest(), records
