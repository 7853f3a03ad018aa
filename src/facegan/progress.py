"""Progress of long work (decoding, scanning, training, features), one way everywhere.

`show_progress` decides whether to draw (as the user asked with --progress /
--no-progress, else only when stderr is a terminal) and `progress_bar` draws a
tqdm bar on stderr, or returns None when nothing is to be drawn. TensorFlow-free.
"""

from __future__ import annotations

import sys


def show_progress(progress: bool | None) -> bool:
    """`progress` if given, else whether stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else bool(progress)


def progress_bar(total: int, description: str, unit: str = "img", *, show: bool | None,
                 initial: int = 0, leave: bool = False):
    """A tqdm bar of `total` units on stderr, or None when `show_progress(show)` is false.

    Args:
        total: units of work.
        description: what is being done ("decoding ...", "train").
        unit: the unit's name.
        show: the user's choice (None: when stderr is a terminal).
        initial: units already done (a resumed run).
        leave: keep the finished bar on screen.
    """
    if not show_progress(show):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=description, unit=unit, leave=leave,
                dynamic_ncols=True)


__all__ = ["progress_bar", "show_progress"]
