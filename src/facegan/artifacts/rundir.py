"""The layout of a run directory, and creating one without clobbering another.

runs/NAME/
  config.json        the fully resolved config (what was actually trained)
  checkpoints/       tf.train.CheckpointManager files (the last few)
  samples/           step-0000500.png grids from one fixed latent batch
  logs/              TensorBoard event files
  metrics.jsonl      one JSON object per log interval
  train.log          human-readable log: data report, checkpoints, warnings
  lock               present while a trainer works in the run (PID and host)
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import fcntl
import json
import os
import shutil
import socket
from pathlib import Path

from facegan.config import Config, ConfigError, UserError
from facegan.errors import WriteError, write_error
from facegan.pretrained import ShippedModel, is_shipped_directory, model_names, shipped_model


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


def create_run_dir(
    path: str | Path, overwrite: bool = False, config: Config | None = None
) -> RunPaths:
    """Creates a fresh run directory, with its config.json if `config` is given.

    An existing non-empty directory is never written into: without `overwrite`
    it is an error; with it, the old directory is moved aside (renamed with a
    timestamp), not deleted. The directory appears complete or not at all: it
    is assembled under a temporary name and renamed into place, so a trainer
    killed at any moment never leaves a run without its config.

    Raises:
        RunDirError: if the path exists and `overwrite` is False, or is a shipped model.
    """
    root = Path(path)
    refuse_shipped(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        if not overwrite:
            raise _exists_error(root)
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        aside = root.with_name(f"{root.name}.old-{stamp}")
        n = 2
        while aside.exists():
            aside, n = root.with_name(f"{root.name}.old-{stamp}-{n}"), n + 1
        root.rename(aside)
    root.parent.mkdir(parents=True, exist_ok=True)
    stage = root.with_name(f".{root.name}.creating-{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)  # our own leftover from a reused PID
    paths = RunPaths(root)
    try:
        stage.mkdir()
        if config is not None:
            write_config(RunPaths(stage), config)
    except (OSError, WriteError) as err:
        shutil.rmtree(stage, ignore_errors=True)
        raise err if isinstance(err, WriteError) else _write_error(root, err) from None
    try:
        # rename() onto an empty directory replaces it; onto a non-empty one it fails,
        # which is how a trainer that lost a race for this path finds out.
        os.rename(stage, root)
    except OSError:
        shutil.rmtree(stage, ignore_errors=True)
        raise _exists_error(root) from None
    return paths


def refuse_shipped(path: str | Path) -> None:
    """Refuses to train into a model shipped with facegan (by its name or its folder).

    Raises:
        RunDirError: `path` is a shipped model's name (and no directory) or lies in its folder.
    """
    name = str(path)
    if is_shipped_directory(path) or (not Path(path).exists() and name in model_names()):
        shown = Path(path).resolve().name if is_shipped_directory(path) else name
        raise RunDirError(
            f"{shown} is a model shipped with facegan and is never trained further; "
            f"fine-tune it on your photos with `facegan train --data PATH --init {shown}`"
        )


def _exists_error(root: Path) -> RunDirError:
    return RunDirError(
        f"run directory {str(root)!r} already exists; use --resume {str(root)!r} to "
        f"continue it, --overwrite to move it aside, or another --run-dir"
    )


def open_run_dir(path: str | Path, *, label_names: str | None = None) -> tuple[RunPaths, Config]:
    """Opens an existing run directory and reads its resolved config.

    Args:
        path: the run directory.
        label_names: `data.label_names` for this use of the run only (a finished
            run can be given class names without retraining); never written.

    Raises:
        RunDirError: if the directory or its config.json is missing or unreadable.
        UserError: `label_names` does not name each class of the run's attributes.
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
    if label_names is not None:
        config = _with_label_names(config, label_names)
    return paths, config


def open_model(
    name: str, *, label_names: str | None = None
) -> tuple[RunPaths, Config, ShippedModel]:
    """(RunPaths, Config, ShippedModel) of the model shipped as `name`, read like a run.

    Raises:
        UnknownModelError: no model of that name (the line names the ones there are).
        RunDirError: class names given for it (shipped models have no classes).
    """
    shipped = shipped_model(name)
    if label_names is not None:
        raise RunDirError(f"shipped model {name!r} has no classes to name (data.label_names)")
    return RunPaths(shipped.directory), shipped.config, shipped


def require_resolved_config(paths: RunPaths, config: Config) -> None:
    """Refuses a run config that training cannot have written (before a network is built).

    Training writes the resolved config; an automatic `model.channels` means a
    preset's file was copied in, and no network can be built from it.

    Raises:
        RunDirError: `model.channels` is unset.
    """
    if config.model.channels is None:
        raise RunDirError(
            f"run {str(paths.root)!r}: its config.json leaves model.channels unset, so it "
            f"is not the config training wrote; put back the config.json that training wrote"
        )


def _with_label_names(config: Config, label_names: str) -> Config:
    """The config with other class names, checked against the run's classes at once."""
    from facegan.data.labels import schema_from_config

    config = config.with_overrides({"data.label_names": label_names})
    if not config.model.conditional:
        raise RunDirError("data.label_names names classes, but this run is not class-conditional")
    schema_from_config(config.data, config.model.label_classes)
    return config


def write_config(paths: RunPaths, config: Config) -> None:
    """Writes config.json atomically (temporary file, then rename)."""
    partial = paths.config.with_name("config.json.partial")
    try:
        partial.write_text(config.to_json())
        os.replace(partial, paths.config)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise _write_error(paths.config, err) from None


def _write_error(path: Path, err: OSError) -> WriteError:
    return write_error(path, err, "nothing was changed")


class RunLock:
    """Keeps two trainers out of one run directory.

    The lock is `<run>/lock`, held with `flock(LOCK_EX | LOCK_NB)` on a file
    descriptor kept open for the run's life, and holding the owner's PID and
    host for the message a second trainer gets. The kernel drops a flock when
    its process dies (kill -9 included), so a dead trainer's lock is free at
    once and taking it over is the same atomic call as taking a fresh one: of
    any number of trainers starting together, exactly one gets the run. Release
    unlinks the file before closing it; an acquirer that locked an unlinked
    file sees that its inode is no longer the path's and tries again.

    A lock file naming another host is never taken over automatically: its
    flock may live on a file server that does not pass locks between hosts.
    """

    def __init__(self, paths: RunPaths):
        self.path = paths.root / "lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Takes the lock.

        Raises:
            RunDirError: another trainer holds it (the message names its PID).
            WriteError: the lock could not be written (a full or read-only disk);
                no lock file is left behind.
        """
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:  # a read-only run, or no inode left
                raise _write_error(self.path, err) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise self._in_use() from None
            if not self._is_current(fd):
                os.close(fd)  # locked a file a releasing holder had just unlinked
                continue
            previous = self.holder()
            if previous and previous.get("host") != socket.gethostname():
                os.close(fd)
                raise self._in_use()
            try:
                self._write_holder(fd)
            except OSError as err:
                # A full disk: an empty lock would tell the next trainer nothing. We
                # hold its flock, so removing it is the same as a release.
                self.path.unlink(missing_ok=True)
                os.close(fd)
                raise _write_error(self.path, err) from None
            self._fd = fd
            return
        raise self._in_use()

    def _is_current(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    @staticmethod
    def _write_holder(fd: int) -> None:
        record = json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": _dt.datetime.now(_dt.timezone.utc).isoformat(),
            }
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                self.path.unlink()  # before closing: see the class docstring
            except FileNotFoundError:
                pass
            os.close(fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def holder(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def _in_use(self) -> RunDirError:
        holder = self.holder()
        return RunDirError(
            f"run directory {str(self.path.parent)!r} is in use by PID {holder.get('pid', '?')} "
            f"on {holder.get('host', '?')} since {holder.get('since', '?')}; stop that trainer "
            f"first (if it is gone for good, delete {str(self.path)!r})"
        )
