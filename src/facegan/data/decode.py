"""Turns one opened image into a square uint8 array of the training size.

Every mode PIL can open ends up as the configured channels: grayscale and
1-bit become L, palette images keep their transparency until compositing,
RGBA/LA are composited on white, 16- and 32-bit integer images are scaled down
to 8 bits (not clipped), CMYK and other colour spaces become RGB. The EXIF
orientation is applied, so phone photos are upright; an animation gives its
first frame.

Sizes are checked from the header, before any pixel is decoded: a file that
declares more than `max_pixels` (a decompression bomb) or whose short side is
below `min_size` is refused with a `BadFile` that says why.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from facegan.config import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIZE
from facegan.data import problems as bad
from facegan.data.problems import BadFile

_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_WIDE_INT_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})


def to_channels(image: Image.Image, channels: int) -> Image.Image:
    """Converts any PIL image to mode L (channels=1) or RGB (channels=3)."""
    image = ImageOps.exif_transpose(image)  # also forces the first frame of animations
    if image.mode in _WIDE_INT_MODES:
        # 16-bit PNGs open as I;16 or I (0..65535): scale, do not clip at 255.
        wide = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if wide.max(initial=0) > 255 else 255.0
        image = Image.fromarray(
            np.clip(np.round(wide * (255.0 / peak)), 0, 255).astype(np.uint8), "L"
        )
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        # Palette images may carry transparency in their palette; keep it for compositing.
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("L" if channels == 1 else "RGB")


def center_crop_resize(image: Image.Image, resolution: int) -> Image.Image:
    """Crops the largest centred square and resizes it to `resolution`.

    Shrinking uses Lanczos, which low-pass filters over the whole footprint
    (antialiased, no moire on hair and fabric); enlarging uses bicubic.
    """
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if side == resolution:
        return image
    resample = Image.Resampling.LANCZOS if side > resolution else Image.Resampling.BICUBIC
    return image.resize((resolution, resolution), resample=resample)


def check_size(
    image: Image.Image, max_pixels: int = DEFAULT_MAX_PIXELS, min_size: int = DEFAULT_MIN_SIZE
) -> None:
    """Refuses an opened (not yet decoded) image by the size its header declares.

    Raises:
        BadFile: more than `max_pixels` pixels (TOO_MANY_PIXELS), or a short side
            below `min_size` (TOO_SMALL).
    """
    width, height = image.size
    if width * height > max_pixels:
        raise BadFile(
            bad.TOO_MANY_PIXELS,
            f"{width}x{height} = {width * height:,} pixels is above data.max_pixels = "
            f"{max_pixels:,}; refused before decoding (a decompression bomb?)",
        )
    if min(width, height) < min_size:
        raise BadFile(
            bad.TOO_SMALL,
            f"{width}x{height} px: the short side is below data.min_size = {min_size} px",
        )


def prepare(
    image: Image.Image,
    resolution: int,
    channels: int,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_size: int = DEFAULT_MIN_SIZE,
) -> np.ndarray:
    """Decodes `image` fully and returns uint8 [resolution, resolution, channels].

    Raises:
        BadFile: the header declares too many pixels or too few (`check_size`);
            nothing has been decoded then.
        Exception: whatever PIL raises for a broken file (OSError, ValueError, ...):
            callers decide whether that skips the file or stops.
    """
    check_size(image, max_pixels, max(min_size, 1))
    if image.format == "JPEG" and min(image.size) >= 2 * resolution:
        # libjpeg can decode at 1/2, 1/4 or 1/8 scale in the DCT: a large photo reaches
        # the training size several times faster, still read whole (a truncated file
        # still fails below), and Lanczos then resizes from at least the target size.
        image.draft(None, (resolution, resolution))
    image.load()  # decode now, so truncated files fail here and not later
    square = center_crop_resize(to_channels(image, channels), resolution)
    pixels = np.asarray(square, dtype=np.uint8)
    if channels == 1:
        pixels = pixels[:, :, None]
    return pixels


def resize_pixels(pixels: np.ndarray, resolution: int, channels: int) -> np.ndarray:
    """uint8 [H, W, C] -> [resolution, resolution, channels], as `prepare` crops and resizes."""
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[-1] == 1 else pixels)
    out = np.asarray(center_crop_resize(to_channels(image, channels), resolution), np.uint8)
    return out[:, :, None] if channels == 1 else out
