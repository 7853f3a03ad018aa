"""SIGINT and SIGTERM end a run cleanly: finish the step, write a checkpoint, exit.

A cluster scheduler sends SIGTERM before it kills a job, and a person presses
Ctrl-C; both should cost at most the step in progress. While the loop runs, the
first signal only sets a flag that the loop reads after each step. Before the
loop starts there is nothing to save, so a signal stops setup at once. A second
Ctrl-C aborts without waiting (the last checkpoint on disk is intact: saves
are atomic).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from facegan.errors import Interrupted

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequests:
    """Context manager that installs the handlers (main thread only) and restores the old ones.

    Attributes:
        signum: the first signal received, or None.
    """

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.signum: int | None = None
        self._training = False
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def training_started(self) -> None:
        """From now on a signal waits for the end of the current step."""
        self._training = True

    def __enter__(self) -> StopRequests:
        # Python delivers signals to the main thread only; elsewhere (a notebook's
        # worker thread) the default handling stays.
        if threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if not self._training:
            raise Interrupted(self.run_dir, None, signum)
        if self.signum is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt  # a second Ctrl-C: stop now, without a checkpoint
            return
        self.signum = signum  # no logging here: a handler may run inside a logging call

    def describe(self) -> str:
        """What the loop logs once it notices the request."""
        assert self.signum is not None
        again = " (Ctrl-C again to stop at once)" if self.signum == signal.SIGINT else ""
        return (
            f"{signal.Signals(self.signum).name} received: stopping after this step and "
            f"writing a checkpoint{again}"
        )
