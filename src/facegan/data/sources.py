"""Where images come from: a folder, a zip file, or the embedded LFW faces.

A source is a list of item names plus a way to open item `i` as a PIL image.
Opening is lazy and may fail; the decoding stage decides what a failure means.
"""

from __future__ import annotations

import io
import os
import threading
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from facegan.config import EMBEDDED_LFW, UserError

# Extensions we try to decode. Anything else in a folder is ignored, not an error
# (a README or a .DS_Store beside the photos is normal).
IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".webp",
    ".pgm", ".ppm", ".pbm", ".pnm", ".tif", ".tiff",
})

LFW_FACES = 100  # the first 100 rows of skimage's lfw_subset are faces, the rest are not


class DataError(UserError, ValueError):
    """The data the user pointed at cannot be used."""


class ImageSource:
    """A sequence of images that can be opened one at a time, from any thread."""

    description: str = ""
    #: channels the images naturally have (1 or 3), used when the config says "auto".
    natural_channels: int = 3

    def __len__(self) -> int:
        return len(self.names)

    @property
    def names(self) -> list[str]:
        raise NotImplementedError

    def open(self, index: int) -> Image.Image:
        """Opens item `index` as a PIL image (not yet fully decoded)."""
        return Image.open(io.BytesIO(self.read_bytes(index)))

    def read_bytes(self, index: int) -> bytes:
        """The stored bytes of item `index` (its file content)."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A hash of every item's name and bytes: equal iff the data is equal.

        Reading bytes is far cheaper than decoding, so caches keyed by this
        can answer without decoding a large dataset.
        """
        import hashlib

        digest = hashlib.sha256()
        for index, name in enumerate(self.names):
            content = self.read_bytes(index)
            digest.update(f"{name}\0{len(content)}\0".encode("utf-8", "surrogateescape"))
            digest.update(content)
        return digest.hexdigest()


class FolderSource(ImageSource):
    """Every image file below a folder, recursively, in sorted order."""

    def __init__(self, root: Path):
        self.root = root
        self.description = f"folder {str(root)!r}"
        self._names = sorted(_list_images(root))

    @property
    def names(self) -> list[str]:
        return self._names

    def open(self, index: int) -> Image.Image:
        return Image.open(self.root / self._names[index])

    def read_bytes(self, index: int) -> bytes:
        return (self.root / self._names[index]).read_bytes()


class ZipSource(ImageSource):
    """Every image entry of a zip file, in sorted order; never extracted to disk."""

    def __init__(self, path: Path):
        self.path = path
        self.description = f"zip file {str(path)!r}"
        try:
            with zipfile.ZipFile(path) as archive:
                entries = archive.namelist()
        except (zipfile.BadZipFile, OSError) as err:
            raise DataError(f"`data.source` {str(path)!r} is not a readable zip file: {err}") from None
        self._names = sorted(
            name for name in entries
            if not name.endswith("/") and not name.startswith("__MACOSX/")
            and Path(name).suffix.lower() in IMAGE_EXTENSIONS)
        # ZipFile objects are not safe to share between threads; one per thread.
        self._local = threading.local()

    @property
    def names(self) -> list[str]:
        return self._names

    def read_bytes(self, index: int) -> bytes:
        archive = getattr(self._local, "archive", None)
        if archive is None:
            archive = self._local.archive = zipfile.ZipFile(self.path)
        return archive.read(self._names[index])


class EmbeddedLFWSource(ImageSource):
    """The 100 grayscale 25x25 LFW face crops that scikit-image ships (no download)."""

    description = "embedded:lfw (100 LFW face crops shipped with scikit-image)"
    natural_channels = 1

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


def _list_images(root: Path) -> list[str]:
    found = []
    # followlinks=False: a symlink loop inside a dataset must not hang the scan.
    for directory, subdirs, files in os.walk(root, followlinks=False):
        subdirs.sort()
        for name in files:
            if Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                found.append(os.path.relpath(os.path.join(directory, name), root))
    return found


def open_source(spec: str) -> ImageSource:
    """Resolves `data.source` to an image source.

    Raises:
        DataError: if the path does not exist, is not a folder or zip, or holds no images.
    """
    if spec == EMBEDDED_LFW:
        return EmbeddedLFWSource()
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(
            f"`data.source` must be a folder of images, a .zip of images or {EMBEDDED_LFW}; "
            f"{spec!r} does not exist")
    if path.is_dir():
        source: ImageSource = FolderSource(path)
    elif path.suffix.lower() == ".zip":
        source = ZipSource(path)
    else:
        raise DataError(
            f"`data.source` must be a folder of images, a .zip of images or {EMBEDDED_LFW}; "
            f"received the file {spec!r}")
    if len(source) == 0:
        raise DataError(
            f"`data.source` {spec!r} holds no image files "
            f"(looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return source
