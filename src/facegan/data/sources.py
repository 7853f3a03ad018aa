"""Where images come from: a folder, a zip file, or the embedded LFW faces.

A source is a list of item names plus a way to open item `i` as a PIL image.
Opening is lazy and may fail; the decoding stage decides what a failure means.

Listing a source never reads an image, but it already sorts out what can never
be one: `ignored` holds files without an image extension (a README beside the
photos is normal), `problems` holds entries that are refused without reading
them (symbolic link loops, unreadable folders, FIFOs, zip entries with unsafe
paths or bomb-like sizes), each with its kind and reason.
"""

from __future__ import annotations

import io
import os
import re
import threading
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from facegan.config import EMBEDDED_LFW
from facegan.data import problems as bad
from facegan.data.folder_listing import IMAGE_EXTENSIONS, Problem, list_folder
from facegan.data.problems import BadFile, DataError, describe_error, display_name
from facegan.data.zip_entries import read_entry

LFW_FACES = 100  # the first 100 rows of skimage's lfw_subset are faces, the rest are not

# The most bytes read for one image. An uncompressed 64-megapixel RGBA TIFF or BMP
# (the default pixel limit, data.max_pixels) is 256 MiB; a "photo" larger than
# that is not a photo, and reading it whole would only exhaust memory.
MAX_FILE_BYTES = 256 * 2**20
# Deflate cannot beat ~1032:1; real images in a zip stay far below 100:1. An entry
# above this ratio is a bomb (or stored zeros) and is refused without inflating it.
MAX_COMPRESSION_RATIO = 1000
# Small entries cannot hurt whatever their ratio (a blank 100 KB BMP is fine).
_RATIO_CHECK_ABOVE = 2**20


class ImageSource:
    """A sequence of images that can be opened one at a time, from any thread.

    Attributes:
        description: where the images come from, for logs.
        natural_channels: channels the images naturally have (1 or 3), used
            when the config says "auto".
        encoded: whether `read_bytes` returns an image file (False for raw pixels).
        ignored: names of files skipped for their extension (not images).
        problems: (name, kind, reason) of entries refused while listing.
    """

    description: str = ""
    natural_channels: int = 3
    encoded: bool = True
    ignored: Sequence[str] = ()
    problems: Sequence[Problem] = ()

    def __len__(self) -> int:
        return len(self.names)

    @property
    def names(self) -> list[str]:
        raise NotImplementedError

    def open(self, index: int) -> Image.Image:
        """Opens item `index` as a PIL image (not yet fully decoded)."""
        return Image.open(io.BytesIO(self.read_bytes(index)))

    def read_bytes(self, index: int) -> bytes:
        """The stored bytes of item `index` (its file content).

        Raises:
            BadFile: the item is refused before reading (too large, a zip bomb).
            OSError: it cannot be read.
        """
        raise NotImplementedError

    def identity(self) -> str | None:
        """A stable key of this source for caches (its absolute path); None: do not cache."""
        return None

    def signature(self, index: int) -> list[int] | None:
        """Cheap facts that change when item `index` changes (size, mtime), or None."""
        return None

    def fingerprint(self) -> str:
        """A hash of every item's name and bytes: equal iff the data is equal.

        Reading bytes is far cheaper than decoding, so caches keyed by this
        can answer without decoding a large dataset. An unreadable item adds
        its reason instead of its bytes.
        """
        import hashlib

        digest = hashlib.sha256()
        for index, name in enumerate(self.names):
            try:
                content = self.read_bytes(index)
            except Exception as err:  # a bad file changes the data set too
                content = f"unreadable: {describe_error(err)[0]}".encode()
            digest.update(f"{name}\0{len(content)}\0".encode("utf-8", "surrogateescape"))
            digest.update(content)
        return digest.hexdigest()


class FolderSource(ImageSource):
    """Every image file below a folder, recursively, in sorted order.

    Symbolic links are followed (datasets are often assembled from links), but a
    link back to a folder being scanned, or to one already scanned, is refused.
    Links whose target lies outside the folder are listed in `outside_links`
    (name, target) and, with `links="inside"` (`data.links`), not followed:
    they are reported as problems instead.
    """

    def __init__(self, root: Path, max_file_bytes: int = MAX_FILE_BYTES, links: str = "follow"):
        self.root = root
        self.description = f"folder {display_name(str(root))!r}"
        self.max_file_bytes = max_file_bytes
        listing = list_folder(root, links)
        self.outside_links = listing.outside
        self._names = sorted(listing.images)
        self._stats = listing.stats
        self.ignored = sorted(listing.ignored)
        self.problems = sorted(listing.problems)

    @property
    def names(self) -> list[str]:
        return self._names

    def open(self, index: int) -> Image.Image:
        return Image.open(self.root / self._names[index])

    def read_bytes(self, index: int) -> bytes:
        path = self.root / self._names[index]
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > self.max_file_bytes:
                raise BadFile(
                    bad.TOO_LARGE,
                    f"{_mib(size)} file; images are read up to {_mib(self.max_file_bytes)}",
                )
            data = file.read(self.max_file_bytes + 1)  # +1: a file that grew is caught too
        if len(data) > self.max_file_bytes:
            raise BadFile(
                bad.TOO_LARGE, f"file grew past {_mib(self.max_file_bytes)} while being read"
            )
        return data

    def identity(self) -> str:
        return "folder:" + os.path.realpath(self.root)

    def signature(self, index: int) -> list[int]:
        return list(self._stats[self._names[index]])


class ZipSource(ImageSource):
    """Every image entry of a zip file, in sorted order; never extracted to disk.

    Entries whose path is absolute or climbs out with `..` are refused
    (zip-slip), and reading is bounded: an entry that declares more than
    `max_entry_bytes`, inflates past its declared size, overlaps another entry's
    data or compresses better than `max_ratio` is refused without inflating it.
    """

    def __init__(
        self,
        path: Path,
        max_entry_bytes: int = MAX_FILE_BYTES,
        max_ratio: float = MAX_COMPRESSION_RATIO,
    ):
        self.path = path
        self.description = f"zip file {display_name(str(path))!r}"
        self.max_entry_bytes, self.max_ratio = max_entry_bytes, max_ratio
        try:
            with zipfile.ZipFile(path) as archive:
                infos = archive.infolist()
        except (zipfile.BadZipFile, OSError) as err:
            raise DataError(
                f"`data.source` {display_name(str(path))!r} is not a readable zip file: {err}"
            ) from None
        overlapping = _overlapping_entries(infos)
        images, ignored, problems = [], [], []
        for info in infos:
            name = info.filename
            if name.endswith("/") or name.startswith("__MACOSX/"):
                continue  # folders, and macOS resource forks beside every file
            if _unsafe_zip_path(name):
                problems.append(
                    (
                        name,
                        bad.UNSAFE_PATH,
                        "unsafe path in zip (zip-slip): "
                        "absolute or with `..`; entries must stay inside the archive",
                    )
                )
            elif Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                ignored.append(name)
            elif info.header_offset in overlapping:
                problems.append(
                    (
                        name,
                        bad.ZIP_BOMB,
                        "its data overlaps another entry's (a zip bomb layout); refused",
                    )
                )
            else:
                images.append(info)
        self._infos = sorted(images, key=lambda info: info.filename)
        self._names = [info.filename for info in self._infos]
        self.ignored = sorted(ignored)
        self.problems = sorted(problems)
        # ZipFile objects are not safe to share between threads; one per thread.
        self._local = threading.local()

    @property
    def names(self) -> list[str]:
        return self._names

    def read_bytes(self, index: int) -> bytes:
        info = self._infos[index]
        self._check_entry(info)
        archive = getattr(self._local, "archive", None)
        if archive is None:
            archive = self._local.archive = zipfile.ZipFile(self.path)
        # capped by the declared size, in small pieces: a header that understates the
        # size is a zip bomb caught after one piece (zipfile would inflate far more)
        return read_entry(archive, info, self.max_entry_bytes)

    def _check_entry(self, info: zipfile.ZipInfo) -> None:
        declared = info.file_size
        if declared > self.max_entry_bytes:
            raise BadFile(
                bad.ZIP_BOMB,
                f"declares {_mib(declared)} uncompressed; zip entries "
                f"are read up to {_mib(self.max_entry_bytes)}",
            )
        if declared > _RATIO_CHECK_ABOVE and declared > self.max_ratio * max(info.compress_size, 1):
            ratio = declared / max(info.compress_size, 1)
            raise BadFile(
                bad.ZIP_BOMB,
                f"compression ratio {ratio:,.0f}:1 is above "
                f"{self.max_ratio:,.0f}:1 (a zip bomb?); refused",
            )

    def identity(self) -> str:
        return "zip:" + os.path.realpath(self.path)

    def signature(self, index: int) -> list[int]:
        info = self._infos[index]
        return [info.file_size, info.CRC, info.compress_size]


class EmbeddedLFWSource(ImageSource):
    """The 100 grayscale 25x25 LFW face crops that scikit-image ships (no download)."""

    description = "embedded:lfw (100 LFW face crops shipped with scikit-image)"
    natural_channels = 1
    encoded = False

    def __init__(self) -> None:
        from skimage.data import lfw_subset  # local import: scikit-image is slow to import

        faces = lfw_subset()[:LFW_FACES]  # [100, 25, 25] float64 in [0, 1]
        self._pixels = np.round(faces * 255.0).astype(np.uint8)
        self._names = [f"lfw-{i:03d}" for i in range(len(self._pixels))]

    @property
    def names(self) -> list[str]:
        return self._names

    def open(self, index: int) -> Image.Image:
        return Image.fromarray(self._pixels[index], mode="L")

    def read_bytes(self, index: int) -> bytes:
        return self._pixels[index].tobytes()


_DRIVE = re.compile(r"^[A-Za-z]:")


def _unsafe_zip_path(name: str) -> bool:
    """Whether a zip entry name would land outside a folder it were extracted into."""
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return True
    return ".." in re.split(r"[/\\]", name)


def _overlapping_entries(infos: list[zipfile.ZipInfo]) -> set[int]:
    """Header offsets of entries whose data overlaps the next entry's header.

    Overlapping entries let a small zip hold thousands of large files that all
    inflate the same compressed bytes (the "better zip bomb"); a normal zip
    never overlaps.
    """
    ordered = sorted(infos, key=lambda info: info.header_offset)
    overlapping = set()
    for info, following in zip(ordered, ordered[1:]):
        # A local header is 30 bytes, then the name and extra field, then the data: this
        # end is a lower bound, so a normal zip is never flagged.
        end = info.header_offset + 30 + info.compress_size
        if end > following.header_offset:
            overlapping.update((info.header_offset, following.header_offset))
    return overlapping


def _mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB" if size >= 2**20 else f"{size:,} bytes"


def check_source_path(spec: str) -> Path | None:
    """The folder or zip `spec` names (None for `embedded:lfw`), without listing it.

    Raises:
        DataError: the path does not exist, or is a file other than a .zip.
    """
    if spec == EMBEDDED_LFW:
        return None
    path = Path(spec).expanduser()
    shown = display_name(spec)
    if not path.exists():
        raise DataError(
            f"`data.source` must be a folder of images, a .zip of images or {EMBEDDED_LFW}; "
            f"{shown!r} does not exist"
        )
    if not path.is_dir() and path.suffix.lower() != ".zip":
        raise DataError(
            f"`data.source` must be a folder of images, a .zip of images or {EMBEDDED_LFW}; "
            f"received the file {shown!r}"
        )
    return path


def open_source(spec: str, *, require_images: bool = True, links: str = "follow") -> ImageSource:
    """Resolves `data.source` to an image source.

    Args:
        spec: a folder, a `.zip` file or `embedded:lfw`.
        require_images: refuse a source without a single image file (training);
            `inspect-data` passes False to report what the folder holds instead.
        links: a folder's symbolic links that leave it: "follow" (the default)
            or "inside" (reported, not followed); see `FolderSource`.

    Raises:
        DataError: if the path does not exist, is not a folder or zip, or holds no images.
    """
    if spec == EMBEDDED_LFW:
        return EmbeddedLFWSource()
    path = check_source_path(spec)
    source: ImageSource = FolderSource(path, links=links) if path.is_dir() else ZipSource(path)
    shown = display_name(spec)
    if require_images and len(source) == 0:
        others = ""
        if source.ignored:
            others = (
                f"; it has {len(source.ignored)} other file(s), e.g. "
                f"{display_name(source.ignored[0])!r}"
            )
        raise DataError(
            f"`data.source` {shown!r} holds no image files "
            f"(looked for {', '.join(sorted(IMAGE_EXTENSIONS))}){others}"
        )
    return source
