"""The layout of a run directory, and creating one without clobbering another.

    runs/NAME/
      config.json        the fully resolved config (what was actually trained)
      checkpoints/       tf.train.CheckpointManager files (the last few)
      samples/           step-0000500.png grids from one fixed latent batch
      logs/              TensorBoard event files
      metrics.jsonl      one JSON object per log interval
      train.log          human-readable log: data report, checkpoints, warnings
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
from pathlib import Path

from facegan.config import Config, ConfigError, UserError


class RunDirError(UserError):
    """A run directory cannot be used as asked."""


@dataclasses.dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def log_file(self) -> Path:
        return self.root / "train.log"

    def sample_grid(self, step: int) -> Path:
        return self.samples / f"step-{step:07d}.png"


def default_run_dir(config: Config, parent: str | Path = "runs") -> Path:
    """runs/<preset>-<UTC timestamp>, with a numeric suffix if that is taken."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = Path(parent) / f"{config.preset or 'custom'}-{stamp}"
    candidate, n = base, 2
    while candidate.exists():
        candidate, n = Path(f"{base}-{n}"), n + 1
    return candidate


def create_run_dir(path: str | Path, overwrite: bool = False) -> RunPaths:
    """Creates a fresh run directory.

    An existing non-empty directory is never written into: without `overwrite`
    it is an error; with it, the old directory is moved aside (renamed with a
    timestamp), not deleted.

    Raises:
        RunDirError: if the path exists and `overwrite` is False.
    """
    root = Path(path)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        if not overwrite:
            raise RunDirError(
                f"run directory {str(root)!r} already exists; use --resume {str(root)!r} to "
                f"continue it, --overwrite to move it aside, or another --run-dir")
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        aside = root.with_name(f"{root.name}.old-{stamp}")
        n = 2
        while aside.exists():
            aside, n = root.with_name(f"{root.name}.old-{stamp}-{n}"), n + 1
        root.rename(aside)
    root.mkdir(parents=True, exist_ok=True)
    return RunPaths(root)


def open_run_dir(path: str | Path) -> tuple[RunPaths, Config]:
    """Opens an existing run directory and reads its resolved config.

    Raises:
        RunDirError: if the directory or its config.json is missing or unreadable.
    """
    paths = RunPaths(Path(path))
    if not paths.root.is_dir():
        raise RunDirError(f"run directory {str(paths.root)!r} does not exist")
    if not paths.config.is_file():
        raise RunDirError(f"{str(paths.root)!r} is not a facegan run: it has no config.json")
    try:
        config = Config.from_dict(json.loads(paths.config.read_text()))
    except (ValueError, ConfigError) as err:
        raise RunDirError(f"{str(paths.config)!r} is not a valid facegan config: {err}") from None
    return paths, config


def write_config(paths: RunPaths, config: Config) -> None:
    """Writes config.json atomically (temporary file, then rename)."""
    partial = paths.config.with_name("config.json.partial")
    partial.write_text(config.to_json())
    os.replace(partial, paths.config)
