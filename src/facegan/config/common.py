"""What every config section shares: the error, the allowed values, the limits."""

from __future__ import annotations

from typing import Any, NoReturn

from facegan.errors import UserError


class ConfigError(UserError, ValueError):
    """A user-supplied configuration value is not allowed."""


EMBEDDED_LFW = "embedded:lfw"
ARCHITECTURES = ("dcgan", "resnet", "stylegan2")
LOSSES = ("nonsaturating", "hinge", "wasserstein", "least_squares")
AUGMENTS = ("none", "diffaugment", "ada")
DIFFAUGMENT_OPS = ("color", "translation", "cutout")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
UPDATES = ("simultaneous", "alternating")
STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")


def fail(field: str, message: str, value: Any) -> NoReturn:
    raise ConfigError(f"`{field}` {message}; received {value!r}")


def is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


# 64 megapixels: above the largest common camera sensors (61 MP), below Pillow's own
# bomb warning (89 MP). One such image decodes to 192 MB of RGB; a few threads
# decoding at once stay within a laptop's memory, a 40000x40000 "photo" does not.
DEFAULT_MAX_PIXELS = 64_000_000
# Below 8 px on the short side there is no face to learn from (a 1x1 tracking pixel,
# a favicon); such files are skipped with a reason rather than upscaled.
DEFAULT_MIN_SIZE = 8
MAX_PIXELS_LIMIT = 2**40
