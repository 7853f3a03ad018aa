"""Exceptions and exit codes shared by every layer (a leaf module: imports nothing of facegan).

Exit codes of the `facegan` command (documented in the README), all `ExitCode`:

    0    SUCCESS      success
    1    FAILURE      an unexpected error (a bug: please report the traceback);
                      for inspect-data and prepare-data: no usable image
    2    USER_ERROR   a user error: a bad value, a missing path, a run in use
    3    DIVERGED     training diverged: still non-finite after every allowed rollback
    4    WRITE_FAILED a checkpoint could not be written (disk full, quota); the
                      previous one is intact
    5    WORKER_LOST  a worker of a multi-worker job was lost; restart the job to continue
    130  SIGINT       stopped by SIGINT (Ctrl-C); a checkpoint was written first
    143  SIGTERM      stopped by SIGTERM; a checkpoint was written first
"""

from __future__ import annotations

import enum
import signal
from pathlib import Path


class ExitCode(enum.IntEnum):
    """Every exit code of the `facegan` command (the table above). Never renumber one."""

    SUCCESS = 0
    FAILURE = 1
    USER_ERROR = 2
    DIVERGED = 3
    WRITE_FAILED = 4
    WORKER_LOST = 5
    # 128 + the signal number, as a shell reports a signal death
    SIGINT = 128 + signal.SIGINT
    SIGTERM = 128 + signal.SIGTERM

    @classmethod
    def for_signal(cls, signum: int) -> ExitCode:
        """The code of a stop by `signum` (SIGINT or SIGTERM)."""
        return cls(128 + int(signum))


class UserError(Exception):
    """Something the user supplied is wrong; the CLI prints it on one line, exit 2."""

    exit_code = ExitCode.USER_ERROR


class WriteError(UserError):
    """A file could not be written (disk full, quota, read-only): exit 4, nothing half-written."""

    exit_code = ExitCode.WRITE_FAILED

    @classmethod
    def from_os_error(cls, path, err: OSError, outcome: str = "nothing was written") -> WriteError:
        """The one line for an OSError while writing `path`: what failed, why, what is left."""
        reason = err.strerror or str(err) or type(err).__name__
        return cls(
            f"could not write {str(path)!r}: {reason} (disk full, read-only or not "
            f"writable?); {outcome}"
        )


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
            message = (
                f"stopped by {name} at step {step}; checkpoint written. "
                f"Continue with: facegan train --resume {run_dir}"
            )
        super().__init__(message)
        self.run_dir, self.step, self.signum = run_dir, step, signum
        self.exit_code = ExitCode.for_signal(signum)
