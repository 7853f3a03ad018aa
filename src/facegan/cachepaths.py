"""Where facegan keeps its caches (a leaf module: no TensorFlow, nothing of facegan).

One root for every cache, so a user moves or clears them with one variable:
``$FACEGAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/facegan``, else ``~/.cache/facegan``.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_CACHE = "FACEGAN_CACHE_DIR"


def cache_root() -> Path:
    """``$FACEGAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/facegan``, else ``~/.cache/facegan``."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "facegan"
    return Path.home() / ".cache" / "facegan"
