"""Latent walks and the animations they become: a GIF always, an MP4 when an encoder exists.

A walk visits the latents of a list of seeds in order along great circles
(`facegan.models.slerp`), `frames` frames per segment; segment k starts
exactly at seed k's latent, so seed k's face (`facegan generate --seed k`'s
first image) is frame `k * frames`. Without `loop` the last seed is added as
the final frame; with `loop` the walk returns to the first seed and stops one
frame short of it, so a looping player shows no repeated frame.

Files: `.gif` is written with PIL (every frame, `1000 / fps` ms each, rounded
to GIF's 10 ms ticks, looping forever; PIL merges identical consecutive frames
into one longer frame, which plays the same). `.mp4` (H.264) needs an ffmpeg:
the one `imageio-ffmpeg` ships, or an `ffmpeg` binary on PATH
(`find_video_encoder`); without one, asking for `.mp4` is a user error.

This module imports no TensorFlow at import time, so the command line can
refuse a bad `--out` before loading a model.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from facegan.artifacts.images import check_fits_in_memory, to_pil
from facegan.errors import UserError, write_error

FORMATS = (".gif", ".mp4")
RESAMPLING = {"nearest": Image.Resampling.NEAREST, "bicubic": Image.Resampling.BICUBIC}
INSTALL_HINT = "pip install imageio-ffmpeg (or put an ffmpeg binary on PATH), or write a .gif"


class AnimationError(UserError):
    """An animation cannot be written as asked (one line, exit 2)."""


# ------------------------------------------------------------------ the walk


def walk_latents(keys: np.ndarray, frames: int, loop: bool = False) -> np.ndarray:
    """Latents [F, Z] along great circles through `keys` [K, Z], in order.

    Args:
        keys: K >= 2 latents to visit.
        frames: frames per segment (between two consecutive keys), >= 1.
        loop: also walk from the last key back to the first.

    Returns:
        float32 [F, Z] with F = frames * (K - 1) + 1, or frames * K with `loop`;
        row `k * frames` is exactly keys[k].
    """
    from facegan.models import slerp  # TensorFlow comes with facegan.models: only when walking

    keys = np.asarray(keys, np.float32)
    if keys.ndim != 2 or len(keys) < 2:
        raise AnimationError(
            f"a walk needs at least two latents [K, Z]; received shape {list(keys.shape)}"
        )
    if frames < 1:
        raise AnimationError(f"frames per segment must be at least 1; received {frames}")
    ends = list(keys[1:]) + ([keys[0]] if loop else [])
    steps = np.arange(frames) / frames  # t in [0, 1): each segment's end is the next one's start
    segments = [slerp(start, end, steps) for start, end in zip(keys, ends)]
    # slerp at t = 0 returns its start up to float64 rounding, which float32 absorbs;
    # set it anyway so a seed's frame is its face bit for bit.
    for segment, start in zip(segments, keys):
        segment[0] = start
    if not loop:
        segments.append(keys[-1:])
    return np.concatenate(segments).astype(np.float32)


def walk_frames(
    run,
    seeds: Sequence[int],
    frames: int,
    *,
    loop: bool = False,
    truncation: float = 1.0,
    request: dict[str, str] | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """uint8 frames [F, R, R, C] of a walk through the faces of `seeds` (see `walk_latents`).

    Args:
        run: a loaded run (`facegan.load`).
        seeds: the seeds to visit, in order; seed s's latent is `generate(1, seed=s)`'s.
        frames: frames per segment.
        loop: return to the first seed.
        truncation: psi, as in `Run.generate`.
        request: conditional runs: attributes to fix, e.g. {"gender": "1"}. The
            labels are held for the whole walk; attributes left open are drawn
            as `generate(1, seed=seeds[0])` draws them, so frame 0 is that image.
        batch_size: images per generator call.
    """
    latents = walk_latents(run.latents_for_seeds(seeds), frames, loop)
    labels = run.labels_for(1, int(seeds[0]), request)
    if labels is not None:
        labels = np.repeat(labels, len(latents), axis=0)
    return run.generate_from_latents(
        latents, labels=labels, truncation=truncation, batch_size=batch_size
    )


def walk_length(keys: int, frames: int, loop: bool = False) -> int:
    """How many frames `walk_latents` makes from `keys` latents, `frames` per segment."""
    return frames * keys if loop else frames * (keys - 1) + 1


def check_walk_memory(count: int, resolution: int, size: int | None, channels: int) -> None:
    """Refuses, before rendering, a walk whose frames cannot all be held in memory.

    The frames are held twice at the output size (the array, then PIL's copies
    while the GIF is assembled; ffmpeg gets the array) plus once as rendered.

    Raises:
        UserError: one line with the frames asked for and the most that fit.
    """
    size = size or resolution
    frame = channels * (resolution * resolution + 2 * size * size)
    check_fits_in_memory(
        count,
        frame,
        f"frames at {size} x {size} px",
        "use fewer --frames or seeds, or a smaller --size",
    )


# ------------------------------------------------------------------ frames to files


def upscale(images: np.ndarray, size: int, resample: str = "nearest") -> np.ndarray:
    """Resizes uint8 images [N, H, W, C] to [N, size, size, C] ("nearest" or "bicubic")."""
    if resample not in RESAMPLING:
        raise AnimationError(
            f"resampling must be one of {', '.join(RESAMPLING)}; received {resample!r}"
        )
    if images.shape[1:3] == (size, size):
        return images
    channels = images.shape[-1]
    out = [np.asarray(to_pil(image).resize((size, size), RESAMPLING[resample])) for image in images]
    return np.stack(out).reshape(len(images), size, size, channels)


def find_video_encoder() -> str | None:
    """The path of an ffmpeg that can write MP4, or None.

    Prefers the binary bundled with `imageio-ffmpeg` (it always has H.264),
    then `ffmpeg` on PATH.
    """
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):  # not installed, or installed without its binary
        return shutil.which("ffmpeg")


def check_output(path: str | Path) -> Path:
    """Refuses an animation path that exists, has another suffix or needs a missing encoder.

    Cheap (no TensorFlow): the command line calls it before loading a model.

    Raises:
        AnimationError: the path exists, is not .gif/.mp4, its folder is
            missing, or it is .mp4 and no encoder was found.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise AnimationError(f"the animation must be a .gif or .mp4 file; received {str(path)!r}")
    if path.exists():
        raise AnimationError(f"{str(path)!r} already exists; choose another name")
    if not path.absolute().parent.is_dir():
        raise AnimationError(f"{str(path)!r}: its folder does not exist")
    if suffix == ".mp4" and find_video_encoder() is None:
        raise AnimationError(
            f"writing {str(path)!r} needs ffmpeg, and none was found: {INSTALL_HINT}"
        )
    return path


def write_animation(frames: np.ndarray, path: str | Path, fps: float = 24.0) -> Path:
    """Writes uint8 frames [F, H, W, C] (C 1 or 3) as a .gif or .mp4, never over a file.

    Raises:
        AnimationError: see `check_output`; or the encoder failed.
        WriteError: the disk is full or read-only (nothing is left behind).
    """
    path = check_output(path)
    assert frames.ndim == 4 and frames.dtype == np.uint8 and len(frames), frames.shape
    if not fps > 0:
        raise AnimationError(f"fps must be positive; received {fps}")
    partial = path.with_name(path.name + ".partial")  # renamed once complete
    try:
        if path.suffix.lower() == ".gif":
            _write_gif(frames, partial, fps)
        else:
            _write_mp4(frames, partial, fps, find_video_encoder())
        partial.replace(path)
    except OSError as err:
        raise write_error(path, err, "nothing was written") from None
    finally:
        if partial.exists():
            partial.unlink()
    return path


def _write_gif(frames: np.ndarray, path: Path, fps: float) -> None:
    first, *rest = [to_pil(frame) for frame in frames]
    first.save(
        path,
        format="GIF",
        save_all=True,
        append_images=rest,
        duration=max(1, round(1000.0 / fps)),
        loop=0,
    )


def _write_mp4(frames: np.ndarray, path: Path, fps: float, encoder: str | None) -> None:
    if encoder is None:  # check_output already refused; the encoder vanished since
        raise AnimationError(f"writing .mp4 needs ffmpeg: {INSTALL_HINT}")
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    height, width = frames.shape[1:3]
    command = [
        encoder,
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-r",
        f"{fps:g}",
        "-i",
        "-",
        "-an",
        # H.264 in yuv420p needs even sides: pad an odd one by a pixel.
        "-vf",
        "pad=ceil(iw/2)*2:ceil(ih/2)*2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        os.fspath(path),
    ]
    try:
        result = subprocess.run(
            command, input=np.ascontiguousarray(frames).tobytes(), capture_output=True, check=False
        )
    except OSError as err:
        raise AnimationError(f"cannot run the video encoder {encoder!r}: {err}") from None
    if result.returncode != 0 or not path.exists():
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        last = lines[-1] if lines else "no output"
        raise AnimationError(f"ffmpeg could not write the MP4 ({last}); write a .gif instead")
