"""Exception types shared by every layer (a leaf module: imports nothing of facegan).

Exit codes of the `facegan` command (documented in the README):

    0    success
    1    an unexpected error (a bug: please report the traceback)
    2    a user error: a bad value, a missing path, a run in use
    3    training diverged: still non-finite after every allowed rollback
    4    a checkpoint could not be written (disk full, quota); the previous one is intact
    5    a worker of a multi-worker job was lost; restart the job to continue
    130  stopped by SIGINT (Ctrl-C); a checkpoint was written first
    143  stopped by SIGTERM; a checkpoint was written first
"""

from __future__ import annotations

import signal
from pathlib import Path


class UserError(Exception):
    """Something the user supplied is wrong; the CLI prints it on one line, exit 2."""

    exit_code = 2


class WriteError(UserError):
    """A file could not be written (disk full, quota, read-only): exit 4, nothing half-written."""

    exit_code = 4


class Interrupted(BaseException):
    """Training was stopped by a signal; if it had started, a checkpoint was written first.

    A BaseException, like KeyboardInterrupt: it may be raised from a signal
    handler anywhere in setup, and `except Exception` blocks (Keras wraps
    exceptions raised inside layer calls, for one) must let it through.

    Attributes:
        run_dir: the run that was stopped.
        step: the step of the checkpoint written on the way out (None: stopped
            before training started, nothing to save).
        signum: the signal (SIGINT or SIGTERM).
        exit_code: 128 + the signal number, as a shell reports a signal death.
    """

    def __init__(self, run_dir: Path, step: int | None, signum: int = signal.SIGINT):
        name = signal.Signals(signum).name
        if step is None:
            message = f"stopped by {name} before training started; nothing to save"
        else:
            message = (f"stopped by {name} at step {step}; checkpoint written. "
                       f"Continue with: facegan train --resume {run_dir}")
        super().__init__(message)
        self.run_dir, self.step, self.signum = run_dir, step, signum
        self.exit_code = 128 + int(signum)
