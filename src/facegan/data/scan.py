"""Scan a dataset once: what every file is, what is wrong with it, what repeats.

`scan_source` reads each file of an `ImageSource` once, in a thread pool (Pillow
and hashlib release the GIL while they work), and for each file:

1. hashes the bytes (sha256: exact duplicates);
2. opens the header: size, mode, format, frames, EXIF orientation;
3. refuses it before decoding if the header declares more than `max_pixels`
   (a decompression bomb) or a short side below `min_size`;
4. decodes it fully, so a truncated or damaged file fails here and not during
   training (a JPEG is decoded at a reduced DCT scale, which still reads every
   byte of its entropy-coded data, so truncation is still caught);
5. computes a 64-bit perceptual hash (pHash: the signs of the low 8x8 DCT
   coefficients of a 32x32 grayscale thumbnail against their median), robust to
   resizing, re-encoding and colour changes: near duplicates are within
   `NEAR_DUPLICATE_BITS` bits.

Results are cached per source (by its absolute path) in
``<cache>/scans/<key>.json``: a file whose (name, size, mtime) is unchanged is not
read again, so restarting a run on a large folder costs a listing and a stat per
file. This module imports no TensorFlow.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

from facegan.cachepaths import cache_root
from facegan.config import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIZE
from facegan.data import problems as bad
from facegan.data.decode import check_size, to_channels
from facegan.data.problems import BadFile, describe_error
from facegan.data.report import NEAR_DUPLICATE_BITS, DataReport, ItemRecord
from facegan.data.sources import ImageSource
from facegan.progress import progress as line_or_bar

__all__ = [
    "DataReport",
    "ItemRecord",
    "NEAR_DUPLICATE_BITS",
    "scan_source",
    "scan_item",
    "perceptual_hashes",
    "near_duplicate_groups",
    "default_cache_dir",
]

CACHE_FORMAT = "facegan-scan/1"
_THUMB = 32  # pHash thumbnail side
_LOW = 8  # the low-frequency 8x8 block of its DCT gives the 64 bits
# Outcomes that a permission change or a repaired link can fix without touching the
# file's size or mtime: never cached, tried again on every scan.
_TRANSIENT = frozenset({bad.UNREADABLE, bad.BROKEN_LINK, bad.SYMLINK_LOOP})


def default_cache_dir() -> Path:
    """``<facegan cache>/scans`` (see `facegan.cachepaths`)."""
    return cache_root() / "scans"


def scan_source(
    source: ImageSource,
    *,
    resolution: int = 64,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_size: int = DEFAULT_MIN_SIZE,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = False,
    workers: int | None = None,
) -> DataReport:
    """Scans every file of `source`; bad files are recorded, never raised.

    Args:
        source: the images to scan.
        resolution: the training resolution (only for the "smaller than" warning).
        max_pixels: refuse images declaring more pixels, before decoding them.
        min_size: refuse images whose short side is smaller.
        cache_dir: where scan caches live; default `default_cache_dir()`.
        use_cache: read and write the cache (False: decode everything, write nothing).
        progress: show a progress bar on stderr.
        workers: threads; default: the number of CPUs, at most 8.

    Returns:
        The report; `report.usable` says whether at least one image can train.
    """
    started = time.perf_counter()
    names = source.names
    cache_file = _cache_file(source, cache_dir) if use_cache else None
    settings = {"max_pixels": max_pixels, "min_size": min_size, "pillow": PIL.__version__}
    cached = _load_cache(cache_file, source, settings) if cache_file else {}

    signatures = [source.signature(i) for i in range(len(names))]
    records, todo = _reuse_cached(names, signatures, cached)
    for index, record in _scan_all(source, todo, max_pixels, min_size, progress, workers):
        records[index] = record
    items = [record for record in records if record is not None]
    assert len(items) == len(names)
    if cache_file is not None and (todo or set(cached) != set(names)):
        _save_cache(cache_file, source, settings, names, signatures, items)

    items += [ItemRecord(name, False, kind, reason) for name, kind, reason in source.problems]
    report = DataReport(
        description=source.description,
        items=items,
        image_count=len(names),
        ignored=list(source.ignored),
        resolution=resolution,
        max_pixels=max_pixels,
        min_size=min_size,
        decoded=len(todo),
    )
    report.exact_duplicates = _exact_duplicates(report.good)
    report.near_duplicates = _near_duplicates(report.good)
    report.seconds = time.perf_counter() - started
    return report


# ------------------------------------------------------------------ one file


def scan_item(
    source: ImageSource,
    index: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_size: int = DEFAULT_MIN_SIZE,
) -> tuple[ItemRecord, np.ndarray | None]:
    """Reads, checks and decodes item `index` once.

    Returns:
        (record, thumbnail): the thumbnail is uint8 [32, 32] grayscale for a good
        image (its perceptual hash is computed in batches), None for a bad one.
    """
    record = ItemRecord(source.names[index], ok=False)
    try:
        data = source.read_bytes(index)
        record.size = len(data)
        if not data:
            raise BadFile(bad.EMPTY, "empty file (0 bytes)")
        record.sha256 = hashlib.sha256(data).hexdigest()
        with Image.open(io.BytesIO(data)) if source.encoded else source.open(index) as image:
            _read_header(image, record)
            check_size(image, max_pixels, min_size)
            thumbnail = _decode_thumbnail(image)
    except Exception as err:  # any failure of one file skips that file, whatever raised it
        record.kind, record.reason = describe_error(err)
        return record, None
    record.ok = True
    return record, thumbnail


def _read_header(image: Image.Image, record: ItemRecord) -> None:
    """Fills size, mode, format, frames and orientation from the header (no decoding)."""
    record.mode, record.format = image.mode, image.format or ""
    record.frames = int(getattr(image, "n_frames", 1))
    if record.frames > 1:
        image.seek(0)  # counting frames may leave an animation on its last one
    try:
        record.orientation = int(image.getexif().get(0x0112, 1))
    except Exception:  # a damaged EXIF block is not a damaged image
        record.orientation = 1
    width, height = image.size
    # Orientations 5-8 turn the picture by 90 degrees: report what training sees.
    record.width, record.height = (
        (height, width) if record.orientation in (5, 6, 7, 8) else (width, height)
    )


def _decode_thumbnail(image: Image.Image) -> np.ndarray:
    """Decodes every byte of `image` and returns its uint8 [32, 32] grayscale thumbnail."""
    if image.format == "JPEG":
        # Decode at 1/2..1/8 scale in grayscale: several times faster, and libjpeg still
        # reads the whole entropy-coded stream, so a truncated file still fails in load().
        image.draft("L", (2 * _THUMB, 2 * _THUMB))
    image.load()
    gray = to_channels(image, 1)  # EXIF orientation, 16-bit, palette, alpha, CMYK handled
    small = gray.resize((_THUMB, _THUMB), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.uint8)


# ------------------------------------------------------------------ many files


def _scan_all(
    source: ImageSource,
    indices: Sequence[int],
    max_pixels: int,
    min_size: int,
    progress: bool,
    workers: int | None,
) -> Iterable[tuple[int, ItemRecord]]:
    """Scans `indices` in parallel; yields (index, record) with the phash filled in."""
    if not indices:
        return
    workers = workers or min(8, os.cpu_count() or 1)
    bar = line_or_bar(len(indices), f"scanning {source.description}", show=progress)
    batch: list[tuple[int, ItemRecord, np.ndarray]] = []
    # Pillow warns about images above its own bomb limit before we can refuse them; the
    # scan refuses those by data.max_pixels with a clearer reason, so the warning is noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            results = pool.map(lambda i: scan_item(source, i, max_pixels, min_size), indices)
            for index, (record, thumbnail) in zip(indices, results):
                if bar is not None:
                    bar.update(1)
                if thumbnail is None:
                    yield index, record
                    continue
                batch.append((index, record, thumbnail))
                if len(batch) == 1024:  # hash in batches: one matrix product, not 1024
                    yield from _hashed(batch)
                    batch = []
    yield from _hashed(batch)
    if bar is not None:
        bar.close()


def _hashed(batch: list[tuple[int, ItemRecord, np.ndarray]]) -> Iterable[tuple[int, ItemRecord]]:
    if not batch:
        return
    hashes = perceptual_hashes(np.stack([thumbnail for _, _, thumbnail in batch]))
    for (index, record, _), value in zip(batch, hashes):
        record.phash = f"{int(value):016x}"
        yield index, record


def _dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix: `D @ x` transforms the columns of x."""
    k = np.arange(n)
    matrix = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n))
    matrix[0] /= np.sqrt(2.0)
    return matrix


_DCT = _dct_matrix(_THUMB)


def perceptual_hashes(thumbnails: np.ndarray) -> np.ndarray:
    """64-bit pHashes of uint8 thumbnails [N, 32, 32] as uint64 [N].

    Bit i is set when low-frequency DCT coefficient i (of the top-left 8x8 block,
    row-major) is above the median of the 63 non-DC ones.
    """
    pixels = thumbnails.astype(np.float64)
    coefficients = _DCT @ pixels @ _DCT.T  # [N, 32, 32]
    low = coefficients[:, :_LOW, :_LOW].reshape(len(pixels), -1)  # [N, 64]
    median = np.median(low[:, 1:], axis=1, keepdims=True)
    bits = np.packbits(low > median, axis=1)  # [N, 8] bytes
    return bits.view(">u8").reshape(-1).astype(np.uint64)


def near_duplicate_groups(
    hashes: Sequence[int] | np.ndarray, max_distance: int = NEAR_DUPLICATE_BITS
) -> list[list[int]]:
    """Groups of indices whose hashes are within `max_distance` bits, transitively.

    Without comparing all pairs: the 64 bits are cut into `max_distance + 1` bands,
    and two hashes that differ in at most `max_distance` bits agree exactly on at
    least one band (pigeonhole). Only hashes sharing a band value are compared.
    """
    values = np.asarray(hashes, dtype=np.uint64)
    unique, inverse = np.unique(values, return_inverse=True)  # equal hashes: one node
    parent = list(range(len(unique)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    bands = max_distance + 1
    edges = np.linspace(0, 64, bands + 1).astype(int)
    for low, high in zip(edges[:-1], edges[1:]):
        keys = (unique >> np.uint64(low)) & np.uint64((1 << int(high - low)) - 1)
        for members in _runs_of_equal(keys):
            for a, b in _close_pairs(unique[members], max_distance):
                parent[find(int(members[a]))] = find(int(members[b]))

    groups: dict[int, list[int]] = {}
    for index, node in enumerate(inverse.reshape(-1)):
        groups.setdefault(find(int(node)), []).append(index)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def _close_pairs(
    values: np.ndarray, max_distance: int, block: int = 1024
) -> Iterable[tuple[int, int]]:
    """Pairs (a < b) of positions in `values` within `max_distance` bits, in row blocks."""
    for start in range(0, len(values), block):
        rows = values[start : start + block]
        close = np.bitwise_count(rows[:, None] ^ values[None, :]) <= max_distance
        for a, b in zip(*np.nonzero(close)):
            if start + a < b:
                yield start + int(a), int(b)


def _runs_of_equal(keys: np.ndarray) -> Iterable[np.ndarray]:
    """Index arrays of the runs (length >= 2) of equal values in `keys`."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    for start, end in zip(starts, ends):
        if end - start > 1:
            yield order[start:end]


def _exact_duplicates(good: list[ItemRecord]) -> list[list[str]]:
    by_digest: dict[str, list[str]] = {}
    for item in good:
        by_digest.setdefault(item.sha256, []).append(item.name)
    return sorted(sorted(names) for names in by_digest.values() if len(names) > 1)


def _near_duplicates(good: list[ItemRecord]) -> list[list[str]]:
    """Groups of names that look alike but are not all byte-identical copies."""
    firsts: dict[str, ItemRecord] = {}
    copies: dict[str, list[str]] = {}
    for item in good:
        if item.phash:
            firsts.setdefault(item.sha256, item)
            copies.setdefault(item.sha256, []).append(item.name)
    distinct = list(firsts.values())  # one per content: exact copies are reported apart
    groups = near_duplicate_groups([int(item.phash, 16) for item in distinct])
    return sorted(
        sorted(name for i in group for name in copies[distinct[i].sha256]) for group in groups
    )


# ------------------------------------------------------------------ cache


def _reuse_cached(
    names: list[str], signatures: list, cached: dict
) -> tuple[list[ItemRecord | None], list[int]]:
    """Records of unchanged files from the cache, and the indices left to scan."""
    records: list[ItemRecord | None] = [None] * len(names)
    todo = []
    for index, (name, signature) in enumerate(zip(names, signatures)):
        hit = cached.get(name)
        if hit is not None and signature is not None and hit[0] == signature:
            records[index] = hit[1]
        else:
            todo.append(index)
    return records, todo


def _cache_file(source: ImageSource, cache_dir: str | Path | None) -> Path | None:
    identity = source.identity()
    if identity is None:
        return None
    key = hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return Path(cache_dir if cache_dir is not None else default_cache_dir()) / f"{key}.json"


def _load_cache(
    path: Path, source: ImageSource, settings: dict
) -> dict[str, tuple[list[int], ItemRecord]]:
    """{name: (signature, record)} from a previous scan; {} if absent, stale or damaged."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if (
            raw.get("format") != CACHE_FORMAT
            or raw.get("identity") != source.identity()
            or raw.get("settings") != settings
        ):
            return {}
        return {
            name: (entry["signature"], ItemRecord(name=name, **entry["record"]))
            for name, entry in raw["items"].items()
        }
    except Exception:  # absent, damaged or foreign: it only costs a rescan
        return {}


def _save_cache(
    path: Path,
    source: ImageSource,
    settings: dict,
    names: list[str],
    signatures: list,
    items: list[ItemRecord],
) -> None:
    """Writes the cache atomically (temp file + rename); a failure only loses the cache."""
    entries = {}
    for name, signature, item in zip(names, signatures, items):
        if signature is None or item.kind in _TRANSIENT:
            continue
        record = {k: v for k, v in vars(item).items() if k != "name"}
        entries[name] = {"signature": signature, "record": record}
    text = json.dumps(
        {
            "format": CACHE_FORMAT,
            "identity": source.identity(),
            "settings": settings,
            "items": entries,
        }
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as err:  # a read-only or full cache disk must not stop a scan
        print(f"facegan: note: scan cache not written to {path.parent} ({err})", file=sys.stderr)
