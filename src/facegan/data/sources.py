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
import stat
import threading
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from facegan.config import EMBEDDED_LFW, UserError
from facegan.data import problems as bad
from facegan.data.problems import BadFile, describe_error, display_name
from facegan.data.zip_entries import read_entry

# Extensions we try to decode. Anything else in a folder is ignored, not an error
# (a README or a .DS_Store beside the photos is normal).
IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".bmp",
        ".gif",
        ".webp",
        ".pgm",
        ".ppm",
        ".pbm",
        ".pnm",
        ".tif",
        ".tiff",
    }
)

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

# (name, kind, reason): an entry refused while listing, never opened.
Problem = tuple[str, str, str]


class DataError(UserError, ValueError):
    """The data the user pointed at cannot be used."""


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
        listing = _list_folder(root, links)
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


class _Listing:
    """What walking a folder found."""

    def __init__(self) -> None:
        self.images: list[str] = []
        self.stats: dict[str, tuple[int, int]] = {}  # name -> (size, mtime_ns)
        self.ignored: list[str] = []
        self.problems: list[Problem] = []
        self.outside: list[tuple[str, str]] = []  # (name, resolved target) of outward links


LINK_RULES = ("follow", "inside")


def _list_folder(root: Path, links: str = "follow") -> _Listing:
    """Walks `root`, following links to folders but never into a loop.

    Raises:
        DataError: `root` itself cannot be listed.
    """
    found = _Listing()
    try:
        top = os.stat(root)
    except OSError as err:
        raise DataError(
            f"`data.source` {display_name(str(root))!r} cannot be read: {describe_error(err)[1]}"
        ) from None
    inside_of = os.path.realpath(root)
    visited = {(top.st_dev, top.st_ino)}
    # (path, name prefix, identities of the folders on the way down from root)
    pending = [(str(root), "", frozenset(visited))]
    while pending:
        path, prefix, ancestors = pending.pop()
        try:
            with os.scandir(path) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as err:
            if not prefix:
                raise DataError(
                    f"`data.source` {display_name(str(root))!r} cannot be listed: "
                    f"{describe_error(err)[1]}"
                ) from None
            kind, reason = describe_error(err)
            found.problems.append((prefix, kind, f"folder not scanned: {reason}"))
            continue
        for entry in entries:
            name = prefix + entry.name
            if entry.is_symlink() and not _link_allowed(entry, name, inside_of, links, found):
                continue
            if _is_dir(entry):
                _visit_folder(entry, name, ancestors, visited, pending, found)
            elif Path(entry.name).suffix.lower() not in IMAGE_EXTENSIONS:
                found.ignored.append(name)
            else:
                _add_file(entry, name, found)
    return found


def _link_allowed(entry: os.DirEntry, name: str, root: str, links: str, found: _Listing) -> bool:
    """Records a link that leaves the data folder; False when `links` says not to follow it."""
    target = os.path.realpath(entry.path)
    if target == root or target.startswith(root.rstrip(os.sep) + os.sep):
        return True
    if links == "inside":
        found.problems.append(
            (
                name,
                bad.OUTSIDE_LINK,
                f"symbolic link to {display_name(target)!r}, outside the data "
                f"folder; not followed (data.links = inside)",
            )
        )
        return False
    found.outside.append((name, target))
    return True


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows links; a link loop or a broken link is not a folder
    except OSError:
        return False


def _visit_folder(
    entry: os.DirEntry,
    name: str,
    ancestors: frozenset,
    visited: set,
    pending: list,
    found: _Listing,
) -> None:
    try:
        info = entry.stat()
    except OSError as err:
        found.problems.append((name + os.sep, *describe_error(err)))
        return
    identity = (info.st_dev, info.st_ino)
    if identity in ancestors:
        found.problems.append(
            (
                name + os.sep,
                bad.SYMLINK_LOOP,
                "symbolic link loop: points back to a folder that contains it",
            )
        )
    elif identity in visited:
        found.problems.append(
            (
                name + os.sep,
                bad.REPEATED_FOLDER,
                "folder already scanned through another link; skipped so its "
                "images are not counted twice",
            )
        )
    else:
        visited.add(identity)
        pending.append((entry.path, name + os.sep, ancestors | {identity}))


def _add_file(entry: os.DirEntry, name: str, found: _Listing) -> None:
    try:
        info = entry.stat()  # follows links: a loop or a dangling link fails here
    except OSError as err:
        found.problems.append((name, *describe_error(err)))
        return
    if not stat.S_ISREG(info.st_mode):
        found.problems.append(
            (
                name,
                bad.NOT_A_FILE,
                "not a regular file (a FIFO, socket or "
                "device); not read, since reading it could block",
            )
        )
        return
    found.images.append(name)
    found.stats[name] = (info.st_size, info.st_mtime_ns)


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
