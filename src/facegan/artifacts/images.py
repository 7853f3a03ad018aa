"""Image grids and PNG output (numpy + PIL; no TensorFlow)."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from facegan.errors import UserError


def make_grid(
    images: np.ndarray, columns: int | None = None, padding: int = 2, background: int = 32
) -> np.ndarray:
    """Tiles uint8 images [N, H, W, C] into one uint8 image [rows*H', cols*W', C].

    Args:
        images: uint8 [N, H, W, C], C in {1, 3}.
        columns: images per row; default ceil(sqrt(N)) (a square grid when N is square).
        padding: pixels between tiles and around the border.
        background: gray level of the padding.
    """
    assert images.ndim == 4 and images.dtype == np.uint8, (images.shape, images.dtype)
    count, height, width, channels = images.shape
    columns = columns or max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / columns))
    grid = np.full(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels),
        background,
        np.uint8,
    )
    for i, image in enumerate(images):
        row, col = divmod(i, columns)
        top, left = padding + row * (height + padding), padding + col * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid


def to_pil(image: np.ndarray) -> Image.Image:
    """uint8 [H, W, C] (C in {1, 3}) -> a PIL image, mode L or RGB."""
    return (
        Image.fromarray(image[..., 0], "L")
        if image.shape[-1] == 1
        else Image.fromarray(image, "RGB")
    )


def png_bytes(image: np.ndarray, size: int | None = None) -> bytes:
    """uint8 [H, W, C] -> PNG bytes; with `size`, resized (Lanczos) so its longer side is `size`.

    The aspect ratio is kept: a 1 x 8 strip of faces stays a strip (forced into a
    square, it would show as smears). A square image becomes size x size.
    """
    picture = to_pil(image)
    if size is not None:
        width, height = picture.size
        scale = size / max(width, height)
        shape = (max(1, round(width * scale)), max(1, round(height * scale)))
        if shape != picture.size:
            picture = picture.resize(shape, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Writes uint8 [H, W, C] (C in {1, 3}) as a PNG, creating parent folders.

    Written to a temporary name and renamed, so a reader never sees half a file;
    a failed write (a full disk) removes the temporary file and raises its OSError.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        to_pil(image).save(partial, format="PNG")
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)  # a full or read-only disk leaves no half a file
        raise
    return path


def memory_budget() -> int:
    """Bytes one output held in memory may take: half the machine's physical memory.

    Half leaves room for TensorFlow, the model and the encoder's own copies.
    Without the POSIX sysconf names, a 16 GiB machine is assumed.
    """
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        physical = 16 * 2**30
    return physical // 2


def human_bytes(count: float) -> str:
    """1536 -> "1.5 KB", 3.2e12 -> "3.2 TB" (powers of 1024)."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if count < 1024 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def check_fits_in_memory(count: int, item_bytes: int, what: str, advice: str) -> None:
    """Refuses `count` items of `item_bytes` each when they exceed `memory_budget()`.

    Args:
        count: how many items (frames, faces) would be held at once.
        item_bytes: the memory one item takes, copies included.
        what: names the items with their size, e.g. "frames at 1024 x 1024 px".
        advice: what the user can change, e.g. "use fewer --frames".

    Raises:
        UserError: one line naming the request, the memory it needs and the most that fits.
    """
    budget = memory_budget()
    if count * item_bytes <= budget:
        return
    raise UserError(
        f"{count} {what} need about {human_bytes(count * item_bytes)} of memory; at most "
        f"{budget // item_bytes} fit (half of this machine's {human_bytes(2 * budget)}): {advice}"
    )
