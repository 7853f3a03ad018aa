"""Helpers for tests that run `facegan train` in a subprocess and signal or kill it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

TINY_MODEL = (
    "[model]\nresolution = 16\nwidth = 8\nmax_width = 32\nlatent_dim = 16\n"
    "[train]\nbatch_size = 8\nlog_every = {log_every}\n"
    "checkpoint_every = {checkpoint_every}\nsample_every = {sample_every}\n"
)


def start_trainer(
    workdir: Path,
    run_dir: Path,
    data: Path | None = None,
    *,
    resume: bool = False,
    steps: int = 1_000_000,
    checkpoint_every: int = 1000,
    log_every: int = 2,
    sample_every: int = 1000,
    preexec_fn=None,
) -> tuple[subprocess.Popen, Path]:
    """Starts a tiny-model trainer (new run, or `--resume`); stderr goes to a file.

    A file, not a pipe: a pipe nobody reads fills up and blocks the trainer in a
    write, which would make every signal land at the same place.
    Returns (process, log file).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"trainer-{time.monotonic_ns()}.log"
    if resume:
        argv = ["--resume", str(run_dir), "--steps", str(steps)]
    else:
        config = workdir / "tiny.toml"
        config.write_text(
            TINY_MODEL.format(
                log_every=log_every, checkpoint_every=checkpoint_every, sample_every=sample_every
            )
        )
        argv = [
            "--data",
            str(data),
            "--config",
            str(config),
            "--steps",
            str(steps),
            "--run-dir",
            str(run_dir),
        ]
    with open(log, "w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "facegan.cli", "train", *argv, "--no-progress"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            preexec_fn=preexec_fn,
        )
    return process, log


def wait_for_line(log: Path, pattern: str, process: subprocess.Popen, timeout: float = 120) -> str:
    """Waits until a line of `log` matches `pattern` (a regex) and returns it."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if regex.search(line):
                return line
        if process.poll() is not None:
            raise AssertionError(
                f"trainer exited ({process.returncode}) before {pattern!r}:\n"
                + log.read_text(errors="replace")[-3000:]
            )
        time.sleep(0.05)
    raise AssertionError(
        f"no line matching {pattern!r} within {timeout} s:\n"
        + log.read_text(errors="replace")[-3000:]
    )


def listed_checkpoint_steps(run_dir: Path) -> list[int]:
    """Steps of the checkpoints the state file lists, oldest first ([] if none)."""
    state = run_dir / "checkpoints" / "checkpoint"
    if not state.exists():
        return []
    return [
        int(m) for m in re.findall(r'all_model_checkpoint_paths: "ckpt-(\d+)"', state.read_text())
    ]
