"""Run directories: one trainer at a time (a lock with the holder's PID), stale locks taken over."""

import json
import subprocess
import sys

import pytest

import facegan
from conftest import tiny_config
from facegan.artifacts.rundir import RunDirError, RunLock, RunPaths, create_run_dir


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_second_holder_is_refused_with_the_pid(tmp_path):
    paths = create_run_dir(tmp_path / "r")
    with RunLock(paths):
        with pytest.raises(RunDirError, match=r"is in use by PID \d+ on .*; stop that trainer"):
            RunLock(paths).acquire()
        holder = json.loads((tmp_path / "r" / "lock").read_text())
        import os

        assert holder["pid"] == os.getpid()
    assert not (tmp_path / "r" / "lock").exists()  # released


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    import os
    import socket

    paths = create_run_dir(tmp_path / "r")
    dead = _dead_pid()
    (tmp_path / "r" / "lock").write_text(json.dumps({"pid": dead, "host": socket.gethostname()}))
    with RunLock(paths):
        assert json.loads((tmp_path / "r" / "lock").read_text())["pid"] == os.getpid()
    assert (tmp_path / "r" / f"lock.stale-{dead}").exists()  # moved aside, not deleted


def test_lock_of_another_host_is_never_taken_over(tmp_path):
    paths = create_run_dir(tmp_path / "r")
    (tmp_path / "r" / "lock").write_text(json.dumps({"pid": _dead_pid(), "host": "elsewhere"}))
    with pytest.raises(RunDirError, match="on elsewhere"):
        RunLock(paths).acquire()


@pytest.mark.integration
def test_resume_refused_while_another_trainer_holds_the_run(tmp_path, capsys):
    from facegan.cli import main

    run = facegan.train(tiny_config(steps=1), tmp_path / "r", progress=False)
    assert not (run.directory / "lock").exists()
    capsys.readouterr()  # drop the first run's log lines
    with RunLock(RunPaths(run.directory)):
        assert main(["train", "--resume", str(run.directory), "--steps", "2"]) == 2
        err = capsys.readouterr().err
        assert "is in use by PID" in err and err.count("\n") == 1
    assert json.loads((run.directory / "config.json").read_text())["train"]["steps"] == 1
    assert main(["train", "--resume", str(run.directory), "--steps", "2", "--no-progress"]) == 0


@pytest.mark.integration
def test_kill_9_leaves_a_stale_lock_that_resume_takes_over(tmp_path, face_folder):
    from facegan.cli import main
    from trainer_process import listed_checkpoint_steps, start_trainer, wait_for_line

    run_dir = tmp_path / "run"
    process, log = start_trainer(tmp_path, run_dir, face_folder, checkpoint_every=2)
    try:
        wait_for_line(log, r"^step 4/", process)
        process.kill()
        process.wait(timeout=60)
    finally:
        process.kill()
    holder = json.loads((run_dir / "lock").read_text())
    assert holder["pid"] == process.pid  # left behind by the killed trainer
    step = listed_checkpoint_steps(run_dir)[-1]
    assert main(["train", "--resume", str(run_dir), "--steps", str(step + 2), "--no-progress"]) == 0
    assert (run_dir / f"lock.stale-{process.pid}").exists() and not (run_dir / "lock").exists()
    assert listed_checkpoint_steps(run_dir)[-1] == step + 2


@pytest.mark.integration
def test_two_trainers_racing_for_one_new_run_directory(tmp_path):
    """The second `create_run_dir` on the same path loses cleanly; the winner's files stay."""
    from facegan.artifacts.rundir import create_run_dir

    first = create_run_dir(tmp_path / "r", config=tiny_config())
    with pytest.raises(RunDirError, match="already exists"):
        create_run_dir(tmp_path / "r", config=tiny_config())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]
    assert first.config.is_file()
