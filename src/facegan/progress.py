"""Progress of long work (decoding, scanning, packing, features), one way everywhere.

`show_progress` decides whether to draw a bar (as the user asked with
--progress / --no-progress, else only when stderr is a terminal) and
`progress_bar` draws a tqdm bar on stderr, or returns None. `progress` always
reports: the bar when one is wanted, else a line every ~10 s on stderr, so a
log file of a long command is never silent for minutes. TensorFlow-free.
"""

from __future__ import annotations

import sys
import time

LINE_EVERY = 10.0  # seconds between progress lines when stderr is not a terminal


def show_progress(progress: bool | None) -> bool:
    """`progress` if given, else whether stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else bool(progress)


def progress_bar(
    total: int,
    description: str,
    unit: str = "img",
    *,
    show: bool | None,
    initial: int = 0,
    leave: bool = False,
):
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

    return tqdm(
        total=total, initial=initial, desc=description, unit=unit, leave=leave, dynamic_ncols=True
    )


class LineProgress:
    """tqdm's `update`/`close` interface, as a line every `every` seconds on stderr.

    Quiet work stays quiet: nothing is printed before `every` seconds have
    passed, and the closing line only follows earlier lines.
    """

    def __init__(
        self,
        total: int,
        description: str,
        unit: str = "img",
        every: float | None = None,
        initial: int = 0,
        stream=None,
    ):
        self.total, self.description, self.unit = total, description, unit
        self.every = LINE_EVERY if every is None else every
        self.n, self._start_n = initial, initial
        self.stream = stream or sys.stderr
        self._started = self._last = time.monotonic()
        self._printed = False

    def update(self, count: int = 1) -> None:
        self.n += count
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self._line(now)

    def set_postfix_str(self, text: str, refresh: bool = False) -> None:
        pass  # the training loop logs its own lines

    def refresh(self) -> None:
        pass

    def _line(self, now: float) -> None:
        seconds = max(now - self._started, 1e-9)
        rate = (self.n - self._start_n) / seconds
        parts = [f"{self.description}: {self.n}/{self.total} {self.unit}"]
        if self.total:
            parts.append(f"({100.0 * self.n / self.total:.0f} %)")
        parts.append(f"{rate:.1f} {self.unit}/s")
        if rate > 0 and self.total > self.n:
            parts.append(f"about {(self.total - self.n) / rate:.0f} s left")
        print(" ".join(parts), file=self.stream, flush=True)
        self._printed = True

    def close(self) -> None:
        if self._printed:
            seconds = time.monotonic() - self._started
            print(
                f"{self.description}: done, {self.n} {self.unit} in {seconds:.0f} s",
                file=self.stream,
                flush=True,
            )
            self._printed = False


def progress(
    total: int,
    description: str,
    unit: str = "img",
    *,
    show: bool | None,
    initial: int = 0,
    every: float | None = None,
):
    """A tqdm bar when `show` is True (or None on a terminal), else a `LineProgress`."""
    if show or (show is None and sys.stderr.isatty()):
        return progress_bar(total, description, unit, show=True, initial=initial)
    return LineProgress(total, description, unit, every=every, initial=initial)


class Heartbeat:
    """A line every `every` seconds on stderr while one long call runs (no count to show).

    For work that reports nothing itself (writing a SavedModel, converting to
    TFLite): `with Heartbeat("export: writing the SavedModel"): ...` prints
    "export: writing the SavedModel (30 s)" now and then from a daemon thread,
    and nothing at all if the work ends first.
    """

    def __init__(self, description: str, every: float | None = None, stream=None):
        import threading

        self.description = description
        self.every = 1.5 * LINE_EVERY if every is None else every
        self.stream = stream or sys.stderr
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        started = time.monotonic()
        while not self._done.wait(self.every):
            print(
                f"{self.description} ({time.monotonic() - started:.0f} s)",
                file=self.stream,
                flush=True,
            )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._done.set()
        self._thread.join()


__all__ = ["Heartbeat", "LineProgress", "progress", "progress_bar", "show_progress"]
