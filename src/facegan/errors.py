"""Exception types shared by every layer (a leaf module: imports nothing of facegan)."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Something the user supplied is wrong; the CLI prints it on one line, exit 2."""


class Interrupted(Exception):
    """Training was stopped by the user (Ctrl-C); a checkpoint was written first."""

    def __init__(self, run_dir: Path, step: int):
        super().__init__(f"interrupted at step {step}; checkpoint written. "
                         f"Continue with: facegan train --resume {run_dir}")
        self.run_dir, self.step = run_dir, step
