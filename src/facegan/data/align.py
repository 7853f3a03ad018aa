"""Face alignment geometry: landmarks -> a square crop -> a similarity warp to R x R.

Pure numpy and PIL (no TensorFlow), so the geometry is testable on its own.

Coordinates are continuous image coordinates in pixels, x to the right and y
down; pixel (i, j) covers [i, i + 1) x [j, j + 1). PIL's affine transform uses
the same convention, so a point mapped by a transform lands where the warped
image shows it.

A transform is a float64 [2, 3] matrix `M` with `M @ [x, y, 1] = [u, v]`. Every
transform here is a *similarity*: uniform scale, rotation and translation, no
shear and no reflection, so a face is never stretched or mirrored.

The aligned crop (`aligned_crop`) follows the FFHQ recipe (Karras et al., 2019),
computed from the two eye centres and the mouth centre:

* rotation: the line through the eyes becomes horizontal;
* centre: the midpoint of the eyes moved 10 % of the way toward the mouth centre;
* side: max(4 x eye-to-eye distance, 3.6 x eye-to-mouth distance).

For a frontal face this puts the eyes at x = 0.375 R and 0.625 R, y ~ 0.47 R,
and the mouth at y ~ 0.73 R (`FACE_TEMPLATE`), with hair, chin and some
background around the face.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image, ImageFilter

# The five MTCNN landmarks in this order, everywhere in facegan.
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

# Where a typical frontal face's landmarks land in an aligned crop, as fractions
# of the side (multiply by R for pixels); eyes on the image's left first. Exact
# for the eyes whenever the eye distance sets the crop size (most faces).
FACE_TEMPLATE = np.array(
    [
        [0.375, 0.474],  # left_eye
        [0.625, 0.474],  # right_eye
        [0.500, 0.600],  # nose
        [0.400, 0.736],  # mouth_left
        [0.600, 0.736],  # mouth_right
    ]
)

# The FFHQ constants: the crop side in units of the eye distance and of the
# eye-to-mouth distance (the larger wins), and how far the centre moves from
# the eyes toward the mouth.
EYE_SPAN = 4.0
MOUTH_SPAN = 3.6
CENTRE_SHIFT = 0.1


# ------------------------------------------------------------------ transforms


def estimate_similarity(source, target) -> np.ndarray:
    """The least-squares similarity transform taking `source` points onto `target`.

    Umeyama's method restricted to the plane: with points written as complex
    numbers z = x + iy, a similarity is w = a z + b with complex a (scale times
    rotation) and b (translation). Minimising sum |a z_k + b - w_k|^2 gives, for
    centred points, a = sum(conj(z) w) / sum(|z|^2): one closed form, and a
    reflection is impossible by construction.

    Args:
        source: float [N, 2] points, N >= 2, not all equal.
        target: float [N, 2] points.

    Returns:
        float64 [2, 3] matrix M with M @ [x, y, 1] ~= target (exact when the
        points are related by a similarity).

    Raises:
        ValueError: shapes differ, fewer than two points, or all source points coincide.
    """
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(
            f"need two [N, 2] arrays with N >= 2; received {src.shape} and {dst.shape}"
        )
    z = src[:, 0] + 1j * src[:, 1]
    w = dst[:, 0] + 1j * dst[:, 1]
    z_mean, w_mean = z.mean(), w.mean()
    zc, wc = z - z_mean, w - w_mean
    energy = float(np.sum(np.abs(zc) ** 2))
    if energy <= 1e-12:
        raise ValueError("the source points coincide: no transform is defined")
    a = np.sum(np.conj(zc) * wc) / energy
    b = w_mean - a * z_mean
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def apply_transform(matrix: np.ndarray, points) -> np.ndarray:
    """Maps float [N, 2] points (or one [2] point) through a [2, 3] transform."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def invert_transform(matrix: np.ndarray) -> np.ndarray:
    """The inverse of an invertible [2, 3] affine transform."""
    linear = np.linalg.inv(matrix[:, :2])
    return np.concatenate([linear, -(linear @ matrix[:, 2])[:, None]], axis=1)


def transform_scale(matrix: np.ndarray) -> float:
    """The scale factor of a similarity transform (output pixels per source pixel)."""
    return float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))


def transform_angle(matrix: np.ndarray) -> float:
    """The rotation of a similarity transform in degrees (positive: clockwise on screen)."""
    return float(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0])))


# ------------------------------------------------------------------ crop geometry


@dataclasses.dataclass(frozen=True)
class SquareCrop:
    """A square region of a photo, possibly rotated, that becomes the output image.

    Attributes:
        centre: float [2], the square's centre in photo pixels.
        half_axis: float [2], from the centre to the middle of the square's
            right edge (its direction is the output's +x); the output's +y is
            this vector turned 90 degrees clockwise on screen.
    """

    centre: np.ndarray
    half_axis: np.ndarray

    @property
    def side(self) -> float:
        """The side of the square in photo pixels."""
        return 2.0 * float(np.hypot(*self.half_axis))

    def corners(self) -> np.ndarray:
        """float [4, 2]: top-left, top-right, bottom-right, bottom-left as the output shows them."""
        x = np.asarray(self.half_axis, dtype=np.float64)
        y = np.array([-x[1], x[0]])
        c = np.asarray(self.centre, dtype=np.float64)
        return np.stack([c - x - y, c + x - y, c + x + y, c - x + y])

    def transform(self, resolution: int) -> np.ndarray:
        """The similarity taking the square onto the output [0, R] x [0, R] (photo -> output)."""
        r = float(resolution)
        output = np.array([[0.0, 0.0], [r, 0.0], [r, r], [0.0, r]])
        return estimate_similarity(self.corners(), output)


def aligned_crop(landmarks) -> SquareCrop:
    """The FFHQ-style crop of a face from its five landmarks (see the module docstring).

    Args:
        landmarks: float [5, 2] in `LANDMARKS` order (eyes and mouth corners are used).

    Returns:
        The square whose top edge is parallel to the eye line.

    Raises:
        ValueError: the eyes coincide (no direction for the eye line).
    """
    points = np.asarray(landmarks, dtype=np.float64)
    left_eye, right_eye, _, mouth_left, mouth_right = points
    eye_centre = (left_eye + right_eye) / 2.0
    eye_line = right_eye - left_eye  # points to the output's right
    to_mouth = (mouth_left + mouth_right) / 2.0 - eye_centre
    eye_distance = float(np.hypot(*eye_line))
    if eye_distance <= 1e-9:
        raise ValueError("the two eye landmarks coincide; the face has no orientation")
    half = max(EYE_SPAN * eye_distance, MOUTH_SPAN * float(np.hypot(*to_mouth))) / 2.0
    return SquareCrop(
        centre=eye_centre + CENTRE_SHIFT * to_mouth, half_axis=eye_line / eye_distance * half
    )


def box_crop(box, scale: float = 1.3) -> SquareCrop:
    """An upright square around a detection box, `scale` times its longer side.

    Args:
        box: (x1, y1, x2, y2) in photo pixels.
        scale: the square's side over the box's longer side (1 = tight).
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    half = max(x2 - x1, y2 - y1) * scale / 2.0
    return SquareCrop(
        centre=np.array([(x1 + x2) / 2.0, (y1 + y2) / 2.0]), half_axis=np.array([half, 0.0])
    )


# ------------------------------------------------------------------ warping


def outside_fraction(
    image_size: tuple[int, int], matrix: np.ndarray, resolution: int, samples: int = 32
) -> float:
    """The share of the output whose source lies outside the photo (filled by `warp`).

    Estimated on a `samples` x `samples` grid of output points.
    """
    width, height = image_size
    steps = (np.arange(samples) + 0.5) * (resolution / samples)
    grid = np.stack(np.meshgrid(steps, steps), axis=-1).reshape(-1, 2)
    source = apply_transform(invert_transform(matrix), grid)
    inside = (
        (source[:, 0] >= 0)
        & (source[:, 0] <= width)
        & (source[:, 1] >= 0)
        & (source[:, 1] <= height)
    )
    return float(1.0 - inside.mean())


def warp(image: Image.Image, matrix: np.ndarray, resolution: int) -> Image.Image:
    """Resamples `image` through the transform `matrix` (photo -> output) to R x R.

    Bicubic for the final similarity warp. When the face is more than twice
    as large as the output, the region is first shrunk with Lanczos (a proper
    low-pass) so the bicubic step never reduces by 2 or more: one bicubic
    step alone would alias hair and fabric into moire. Parts of the crop
    beyond the photo's edges are filled as FFHQ does (`_soft_pad`): mirrored,
    blurred, and faded toward the photo's median colour.

    Args:
        image: an RGB or L photo.
        matrix: float [2, 3] similarity, photo pixels -> output pixels.
        resolution: the output side R.

    Returns:
        An R x R image in the mode of `image`.
    """
    inverse = invert_transform(matrix)  # output -> photo
    r = float(resolution)
    corners = apply_transform(inverse, [[0, 0], [r, 0], [r, r], [0, r]])
    source_per_output = 1.0 / transform_scale(matrix)
    margin = 2.0 * max(source_per_output, 1.0)  # bicubic reads 2 px around
    x0, y0 = np.floor(corners.min(axis=0) - margin).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0) + margin).astype(int)

    width, height = image.size
    vx0, vy0 = max(x0, 0), max(y0, 0)
    vx1, vy1 = min(x1, width), min(y1, height)
    if vx1 <= vx0 or vy1 <= vy0:  # the crop misses the photo entirely: nothing to show
        return Image.new(image.mode, (resolution, resolution))
    region = image.crop((vx0, vy0, vx1, vy1))
    # sx, sy: region pixels per photo pixel (exact, after any integer shrink)
    sx = sy = 1.0
    shrink = int(source_per_output // 1.0) if source_per_output >= 2.0 else 1
    if shrink > 1:
        size = (max(1, round(region.width / shrink)), max(1, round(region.height / shrink)))
        sx, sy = size[0] / region.width, size[1] / region.height
        region = region.resize(size, Image.Resampling.LANCZOS)
    pads = (
        int(np.ceil((vx0 - x0) * sx)),
        int(np.ceil((vy0 - y0) * sy)),
        int(np.ceil((x1 - vx1) * sx)),
        int(np.ceil((y1 - vy1) * sy)),
    )
    if any(pads):
        # As FFHQ: a side that needs padding gets at least 10 % of the crop's side, so
        # the fade to the median colour is gradual, and the blur is 2 % of that side.
        crop_side = resolution * source_per_output * sx  # in region pixels
        least = int(np.ceil(0.1 * crop_side))
        pads = tuple(max(pad, least) if pad else 0 for pad in pads)
        region = _soft_pad(region, *pads, blur_radius=0.02 * crop_side)
    # output -> region pixels: photo point p lands at ((p - v0) * s) + pad
    to_region = np.array([[sx, 0.0, pads[0] - vx0 * sx], [0.0, sy, pads[1] - vy0 * sy]])
    affine = to_region[:, :2] @ inverse
    affine[:, 2] += to_region[:, 2]
    return region.transform(
        (resolution, resolution),
        Image.Transform.AFFINE,
        tuple(affine.reshape(-1)),
        resample=Image.Resampling.BICUBIC,
    )


def _soft_pad(
    image: Image.Image, left: int, top: int, right: int, bottom: int, blur_radius: float
) -> Image.Image:
    """Extends `image` beyond its edges without a hard seam or a sharp mirrored face.

    The FFHQ treatment: the photo is mirrored at its edges; the mirrored part (and
    a band inside the edge a third of the pad wide, fading in) is blurred, and it
    fades toward the photo's median colour with distance from the edge, reaching
    it at the pad's outer border. A face near a photo's edge thus gets a plausible,
    featureless margin rather than a mirror twin.
    """
    pixels = np.asarray(image, dtype=np.float32)
    flat = pixels.ndim == 2
    if flat:
        pixels = pixels[:, :, None]
    height, width = pixels.shape[:2]
    padded = np.pad(pixels, [(top, bottom), (left, right), (0, 0)], mode="symmetric")
    # m: distance beyond the photo's edge as a share of that side's pad (< 0 inside)
    m = np.maximum(
        _ramp(padded.shape[0], top, height, bottom)[:, None],
        _ramp(padded.shape[1], left, width, right)[None, :],
    )[:, :, None]
    mode = "L" if flat else "RGB"
    sharp = Image.fromarray(
        np.clip(padded[:, :, 0] if flat else padded, 0, 255).astype(np.uint8), mode
    )
    blurred = np.asarray(sharp.filter(ImageFilter.GaussianBlur(max(blur_radius, 0.5))), np.float32)
    if flat:
        blurred = blurred[:, :, None]
    out = padded + (blurred - padded) * np.clip(1.0 + 3.0 * m, 0.0, 1.0)
    median = np.median(pixels.reshape(-1, pixels.shape[2]), axis=0)
    out += (median - out) * np.clip(m, 0.0, 1.0)
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    return Image.fromarray(out[:, :, 0] if flat else out, mode)


def _ramp(length: int, before: int, inside: int, after: int) -> np.ndarray:
    """Per padded row (or column): signed distance beyond the photo / the pad on that side."""
    centres = np.arange(length, dtype=np.float32) + 0.5
    ramp = np.full(length, -np.inf, np.float32)
    if before:
        ramp = np.maximum(ramp, (before - centres) / before)
    if after:
        ramp = np.maximum(ramp, (centres - (before + inside)) / after)
    return ramp
