"""Turns one opened image into a square uint8 array of the training size.

Every mode PIL can open ends up as the configured channels: grayscale and
1-bit become L, palette images keep their transparency until compositing,
RGBA/LA are composited on white, 16- and 32-bit integer images are scaled down
to 8 bits (not clipped), CMYK and other colour spaces become RGB. The EXIF
orientation is applied, so phone photos are upright.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_WIDE_INT_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})


def to_channels(image: Image.Image, channels: int) -> Image.Image:
    """Converts any PIL image to mode L (channels=1) or RGB (channels=3)."""
    image = ImageOps.exif_transpose(image)  # also forces the first frame of animations
    if image.mode in _WIDE_INT_MODES:
        # 16-bit PNGs open as I;16 or I (0..65535): scale, do not clip at 255.
        wide = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if wide.max(initial=0) > 255 else 255.0
        image = Image.fromarray(np.clip(np.round(wide * (255.0 / peak)), 0, 255).astype(np.uint8), "L")
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


def prepare(image: Image.Image, resolution: int, channels: int) -> np.ndarray:
    """Decodes `image` fully and returns uint8 [resolution, resolution, channels].

    Raises whatever PIL raises for a broken file (OSError, ValueError, ...):
    callers decide whether that skips the file or stops.
    """
    image.load()  # decode now, so truncated files fail here and not later
    if min(image.size) < 1:
        raise ValueError(f"image has no pixels ({image.size[0]}x{image.size[1]})")
    square = center_crop_resize(to_channels(image, channels), resolution)
    pixels = np.asarray(square, dtype=np.uint8)
    if channels == 1:
        pixels = pixels[:, :, None]
    return pixels
