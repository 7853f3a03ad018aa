"""`facegan pack`: decode, check, crop and resize every image once, into TFRecord shards.

The same scan as `facegan inspect-data` decides which files are usable (and
its report says why the others are not); the usable images, in a seeded
random order, are decoded in parallel (a thread pool), encoded (PNG or raw) and
written as shards of about `shard_mb` MB. The format is in
`facegan.data.packed` and docs/data.md.

Interruptions: a pack is resumable. `.pack-plan.json` records the settings
and the order of the images; each finished shard is written under a hidden
name, synced and renamed, and its counts go to a hidden sidecar. Running the
same command again skips the finished shards. `dataset.json` is written last
(atomically): a folder with a `dataset.json` always names shards that exist.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from facegan.config import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIZE, EMBEDDED_LFW, DataConfig
from facegan.data.packed import (
    DATASET_FILE,
    ENCODINGS,
    PackInfo,
    Shard,
    is_packed,
    pack_description,
    shard_name,
)
from facegan.data.problems import display_name
from facegan.data.scan import scan_source
from facegan.data.sources import DataError, ImageSource, open_source
from facegan.errors import WriteError, write_error
from facegan.progress import progress
from facegan.seeds import Stream, rng

PLAN_FILE = ".pack-plan.json"
ALIGNED_DIR = ".aligned"  # the faces of --align, while the pack is being written
MIN_RESOLUTION, MAX_RESOLUTION = 8, 1024
DEFAULT_SHARD_MB = 150
# PNG keeps about 0.5-0.6 of the raw bytes of a face photo (measured on UTKFace at
# 64 and 128 px): used only to size the shards before the bytes are known.
_PNG_RATIO = 0.6


@dataclasses.dataclass(frozen=True)
class PackSettings:
    """What `facegan pack` was asked for; a resumed pack must ask for the same."""

    source: str
    resolution: int
    channels: int
    encoding: str = "png"
    labels: str = ""
    label_bins: str = ""
    images_per_shard: int = 0
    seed: int = 0
    align: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_size: int = DEFAULT_MIN_SIZE


def check_settings(
    resolution: int,
    encoding: str,
    channels: int | None,
    shard_mb: float | None,
    images_per_shard: int | None,
) -> None:
    """Refuses impossible settings before anything is read (one line, exit 2)."""
    if not (MIN_RESOLUTION <= resolution <= MAX_RESOLUTION and resolution & (resolution - 1) == 0):
        raise DataError(
            f"--resolution must be a power of two from {MIN_RESOLUTION} to "
            f"{MAX_RESOLUTION}; received {resolution}"
        )
    if encoding not in ENCODINGS:
        raise DataError(f"--encoding must be one of {', '.join(ENCODINGS)}; received {encoding!r}")
    if channels not in (None, 1, 3):
        raise DataError(f"--channels must be 1 or 3; received {channels}")
    if shard_mb is not None and not 1 <= shard_mb <= 4096:
        raise DataError(f"--shard-mb must be from 1 to 4096; received {shard_mb}")
    if images_per_shard is not None and images_per_shard < 1:
        raise DataError(
            f"--images-per-shard must be a positive integer; received {images_per_shard}"
        )


def check_output(out: str | Path) -> Path:
    """The output folder: new, empty, or an unfinished pack (which the same command resumes).

    Raises:
        DataError: it holds a finished pack, or other files.
    """
    path = Path(out).expanduser()
    if is_packed(str(path)):
        raise DataError(
            f"--out {str(path)!r} already holds a packed dataset; choose another "
            f"folder (nothing is overwritten)"
        )
    if path.exists() and not path.is_dir():
        raise DataError(f"--out {str(path)!r} is a file; give a new or empty folder")
    if path.is_dir() and any(path.iterdir()) and not (path / PLAN_FILE).is_file():
        raise DataError(f"--out {str(path)!r} exists and is not empty; give a new or empty folder")
    return path


@dataclasses.dataclass
class _Plan:
    """Which source items go into which shard, and in what order (written before any shard)."""

    settings: PackSettings
    items: list[int]  # source indices, in pack order
    shards: int
    per_shard: int
    source_key: str  # names and content hashes of the planned items
    skipped: list[tuple[str, str]]
    labels: np.ndarray | None  # int [len(items), A], aligned with items
    label_classes: str = ""
    label_values: str = ""

    def shard_items(self, k: int) -> list[int]:
        return list(range(k * self.per_shard, min((k + 1) * self.per_shard, len(self.items))))


def pack(
    spec: str,
    out: str | Path,
    resolution: int,
    *,
    channels: int | None = None,
    encoding: str = "png",
    labels: str = "",
    label_bins: str = "",
    shard_mb: float | None = None,
    images_per_shard: int | None = None,
    seed: int = 0,
    align: bool = False,
    show_progress: bool | None = None,
    report: Callable[[str], None] = print,
) -> PackInfo:
    """Packs the images of `spec` into `out` (see the module docstring).

    Args:
        spec: a folder of images (recursive), a .zip, `embedded:lfw` or a
            `facegan prepare-data` output folder.
        out: a new or empty folder, or the folder of an interrupted pack of the
            same settings (it is resumed).
        resolution: the side of the stored images (a power of two, 8 to 1024).
        channels: 1 or 3; default: the source's (3 unless every image is gray).
        encoding: "png" (lossless, about half the bytes at 128 px) or "raw".
        labels, label_bins: as `data.labels` / `data.label_bins`: the labels to
            store with each image (unlabelled images are skipped and reported).
        shard_mb: the target shard size in MB (default 150).
        images_per_shard: images per shard, instead of `shard_mb`.
        seed: seeds the order of the images in the pack.
        align: cut the faces out first, FFHQ-aligned, as `facegan prepare-data
            --align` does (into DIR/.aligned while packing; labels are then read
            from the faces' names, `<photo stem>-<k>.png`).
        show_progress: a bar (True), lines every ~10 s (False), or the bar on a
            terminal and lines elsewhere (None).
        report: where the data report and the summary lines go.

    Raises:
        DataError: a bad setting, an unusable source, or an output folder in use.
        WriteError: the disk refused a write (full, quota, read-only); the
            finished shards are kept for the same command to resume, nothing
            half-written is left.
    """
    check_settings(resolution, encoding, channels, shard_mb, images_per_shard)
    out_dir = check_output(out)
    if spec != EMBEDDED_LFW:  # recorded in dataset.json: where the images came from
        spec = str(Path(spec).expanduser().resolve())
    source = open_source(spec)
    settings = PackSettings(
        spec,
        resolution,
        channels or source.natural_channels,
        encoding,
        labels,
        label_bins,
        images_per_shard or 0,
        seed,
        align=align,
    )
    if align:
        source = _aligned_faces(spec, out_dir, settings, show_progress, report)
    plan = _make_plan(source, settings, shard_mb, show_progress, report)
    made = not out_dir.exists()
    try:
        if _start_or_resume(out_dir, plan):
            _report_resume(out_dir, plan, report)
        shards = [_write_shard(source, plan, k, out_dir, show_progress) for k in range(plan.shards)]
        info = _finish(out_dir, plan, shards, report)
    except OSError as err:  # a full disk, a quota: the same command resumes
        raise _write_failed(out_dir, plan, err, made) from None
    if align:  # the pack's own working copy; the pack holds the faces now
        shutil.rmtree(out_dir / ALIGNED_DIR, ignore_errors=True)
    return info


def _aligned_faces(
    spec: str,
    out_dir: Path,
    settings: PackSettings,
    show_progress: bool | None,
    report: Callable[[str], None],
) -> ImageSource:
    """The faces of `spec`, cut out and aligned as `prepare-data --align` does, once.

    An interrupted alignment starts again (its folder is the pack's own); once a
    plan exists the faces are reused and only the missing shards are written.
    """
    from facegan.data.prepare import prepare_faces

    aligned = out_dir / ALIGNED_DIR
    plan_file = out_dir / PLAN_FILE
    if plan_file.is_file() and aligned.is_dir():
        found = json.loads(plan_file.read_text())
        if found.get("settings") == dataclasses.asdict(settings) and "shards" in found:
            return open_source(str(aligned))
    if aligned.exists():
        shutil.rmtree(aligned)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(plan_file, {"settings": dataclasses.asdict(settings), "stage": "aligning"})
    summary = prepare_faces(
        spec,
        aligned,
        settings.resolution,
        align_faces=True,
        progress=bool(show_progress),
        on_skip=lambda name, reason: None,
    )
    report(f"prepare-data: {summary.line()}")
    if not summary.kept:
        raise DataError(f"no face was found in `{display_name(spec)}`; nothing to pack")
    return open_source(str(aligned))


def _make_plan(
    source: ImageSource,
    settings: PackSettings,
    shard_mb: float | None,
    show_progress: bool | None,
    report: Callable[[str], None],
) -> _Plan:
    """Scans the source (as inspect-data does, and says the same), labels and orders it."""
    scan = scan_source(
        source,
        resolution=settings.resolution,
        max_pixels=settings.max_pixels,
        min_size=settings.min_size,
        progress=bool(show_progress),
    )
    report(scan.format_text().rstrip())
    if not scan.usable:
        raise DataError(f"`{display_name(settings.source)}` {scan.refusal()}")
    indices = scan.good_indices()
    skipped = [(item.name, item.reason) for item in scan.bad]
    item_labels, label_rows = None, None
    if settings.labels:
        from facegan.data.labels import label_items

        item_labels = label_items(
            [source.names[i] for i in indices],
            DataConfig(
                source=settings.source, labels=settings.labels, label_bins=settings.label_bins
            ),
        )
        label_rows = item_labels.labels[item_labels.labelled]
        indices = [i for i, ok in zip(indices, item_labels.labelled) if ok]
        skipped += list(item_labels.unlabelled)
        for name, reason in item_labels.unlabelled[:20]:
            report(f"  skipped {display_name(name)}: {reason}")
    order = rng(settings.seed, Stream.PACK_ORDER).permutation(len(indices))
    items = [indices[i] for i in order]
    per_shard = settings.images_per_shard or _images_per_shard(settings, shard_mb)
    digest = hashlib.sha256()
    for index in items:
        digest.update(
            f"{source.names[index]}\0{scan.items[index].sha256}\n".encode(
                "utf-8", "surrogateescape"
            )
        )
    return _Plan(
        settings,
        items,
        max(1, math.ceil(len(items) / per_shard)),
        per_shard,
        digest.hexdigest(),
        skipped,
        None if label_rows is None else label_rows[order],
        item_labels.schema.label_classes if item_labels else "",
        item_labels.schema.label_values if item_labels else "",
    )


def _images_per_shard(settings: PackSettings, shard_mb: float | None) -> int:
    pixels = settings.resolution**2 * settings.channels
    per_image = pixels * (_PNG_RATIO if settings.encoding == "png" else 1.0) + 40
    return max(1, int((shard_mb or DEFAULT_SHARD_MB) * 1e6 // per_image))


def _start_or_resume(out_dir: Path, plan: _Plan) -> bool:
    """Writes the plan, or checks that an interrupted pack here was asked the same.

    Returns:
        True when an interrupted pack of this plan is continued.
    """
    wanted = {
        "settings": dataclasses.asdict(plan.settings),
        "source_key": plan.source_key,
        "shards": plan.shards,
        "per_shard": plan.per_shard,
    }
    plan_file = out_dir / PLAN_FILE
    if plan_file.is_file():
        try:
            found = json.loads(plan_file.read_text())
        except ValueError:
            found = None
        if (
            plan.settings.align
            and found
            and found.get("stage") == "aligning"
            and found.get("settings") == wanted["settings"]
        ):
            _write_json(plan_file, wanted)  # the faces are ready: now the shards
            return False
        if found != wanted:
            raise DataError(
                f"--out {str(out_dir)!r} holds an unfinished pack of other settings "
                f"or other data; repeat that command to finish it, or choose "
                f"another folder"
            )
        return True
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(plan_file, wanted)
    return False


def _finished(out_dir: Path, plan: _Plan, k: int) -> bool:
    """Whether an earlier run finished shard k (published, with its sidecar)."""
    return (out_dir / shard_name(k, plan.shards)).is_file() and _sidecar(out_dir, k, plan).is_file()


def _report_resume(out_dir: Path, plan: _Plan, report: Callable[[str], None]) -> None:
    done = [k for k in range(plan.shards) if _finished(out_dir, plan, k)]
    first = next((k for k in range(plan.shards) if k not in done), plan.shards - 1)
    report(
        f"pack: resuming the unfinished pack in {str(out_dir)!r} from shard "
        f"{first + 1}/{plan.shards} ({len(done)} finished)"
    )


def _sidecar(out_dir: Path, k: int, plan: _Plan) -> Path:
    return out_dir / f".{shard_name(k, plan.shards)}.json"


def _write_shard(
    source: ImageSource, plan: _Plan, k: int, out_dir: Path, show_progress: bool | None
) -> tuple[Shard, list[tuple[str, str]]]:
    """Shard k: skipped if an earlier run finished it, else written and published."""
    name = shard_name(k, plan.shards)
    sidecar = _sidecar(out_dir, k, plan)
    if _finished(out_dir, plan, k):
        done = json.loads(sidecar.read_text())
        return Shard(**done["shard"]), [tuple(pair) for pair in done["skipped"]]
    from facegan.data.pack_writer import write_records

    positions = plan.shard_items(k)
    first_index = k * plan.per_shard  # a decode failure leaves a gap; indices stay unique
    staging = out_dir / f".{name}.partial"
    bar = progress(
        len(positions), f"packing shard {k + 1}/{plan.shards}", "img", show=show_progress
    )
    try:
        written, failures = write_records(
            source,
            [plan.items[p] for p in positions],
            staging,
            plan.settings,
            first_index,
            None if plan.labels is None else plan.labels[positions],
            on_done=bar.update,
        )
        shard = Shard(name, written, staging.stat().st_size, _sha256(staging))
        os.replace(staging, out_dir / name)
    except BaseException:
        staging.unlink(missing_ok=True)  # its bytes would only hold the full disk fuller
        raise
    finally:
        bar.close()
    skipped = [(source.names[i], reason) for i, reason in failures]
    _write_json(sidecar, {"shard": dataclasses.asdict(shard), "skipped": skipped})
    return shard, skipped


def _finish(out_dir: Path, plan: _Plan, results: list, report: Callable[[str], None]) -> PackInfo:
    shards = tuple(shard for shard, _ in results)
    skipped = plan.skipped + [pair for _, failures in results for pair in failures]
    content = hashlib.sha256("".join(s.sha256 for s in shards).encode()).hexdigest()
    settings = plan.settings
    info = PackInfo(
        directory=out_dir,
        resolution=settings.resolution,
        channels=settings.channels,
        count=sum(s.count for s in shards),
        encoding=settings.encoding,
        shards=shards,
        label_classes=plan.label_classes,
        label_values=plan.label_values,
        label_spec=settings.labels,
        label_bins=settings.label_bins,
        source=settings.source,
        content_sha256=content,
        skipped=tuple((display_name(n), r) for n, r in skipped),
        crop="aligned" if settings.align else "centre",
    )
    _write_json(out_dir / DATASET_FILE, pack_description(info))
    for k in range(plan.shards):  # the pack's own bookkeeping; the user made none of it
        _sidecar(out_dir, k, plan).unlink(missing_ok=True)
    (out_dir / PLAN_FILE).unlink(missing_ok=True)
    megabytes = sum(s.bytes for s in shards) / 1e6
    report(
        f"pack: {info.count} images at {settings.resolution} px in {len(shards)} shard(s), "
        f"{megabytes:.1f} MB ({settings.encoding}); {len(skipped)} file(s) skipped; "
        f"{out_dir}"
    )
    return info


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, payload: dict) -> None:
    """Atomically: a temporary file, synced, renamed over the target (or removed on failure)."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "w", encoding="utf-8") as file:
            json.dump(payload, file, indent=2)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _write_failed(out_dir: Path, plan: _Plan, err: OSError, made: bool) -> WriteError:
    """The one line for a pack that ran out of disk: what is kept for the resume."""
    finished = sum(
        (out_dir / shard_name(k, plan.shards)).is_file() and _sidecar(out_dir, k, plan).is_file()
        for k in range(plan.shards)
    )
    if made and out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()  # made for this pack, and nothing in it to resume from
    kept = (
        f"{finished} of {plan.shards} shard(s) finished and kept"
        if finished
        else "no shard was finished"
    )
    return write_error(out_dir, err, kept)
