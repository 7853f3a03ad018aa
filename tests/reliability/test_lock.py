"""Run directories: one trainer at a time (a flock with the holder's PID), dead holders' locks taken over."""

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
    # the kernel dropped the dead holder's flock: taken over in place, nothing left over
    assert sorted(p.name for p in (tmp_path / "r").glob("lock*")) == []


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
    from trainer_process import listed_checkpoint_steps, start_trainer, wait_for_line

    from facegan.cli import main

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
    assert not list(run_dir.glob("lock*"))  # taken over and released: no stale files
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


_RACE = """
import json, os, sys, time
from pathlib import Path
from facegan.artifacts.rundir import RunDirError, RunLock, RunPaths

run, start, trials = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
outcomes = []
for trial in range(trials):
    time.sleep(max(0.0, start + 0.05 * trial - time.time()))  # both try at the same moment
    folder = run / str(trial)
    lock = RunLock(RunPaths(folder))
    try:
        lock.acquire()
        held = 1
    except RunDirError:
        held = 0
    (folder / f"tried-{os.getpid()}").touch()
    if held:  # hold it until the other process has tried too: two winners = two holders
        deadline = time.time() + 20
        while len(list(folder.glob("tried-*"))) < 2 and time.time() < deadline:
            time.sleep(0.002)
        lock.release()
    outcomes.append(held)
print(json.dumps(outcomes))
"""


def test_two_processes_racing_for_a_dead_holders_lock_200_times(tmp_path):
    """Every trial starts from a stale lock (a dead PID on this host); exactly one process wins."""
    import os
    import socket
    import time

    trials = 200
    dead = _dead_pid()
    for trial in range(trials):
        create_run_dir(tmp_path / str(trial))
        (tmp_path / str(trial) / "lock").write_text(
            json.dumps({"pid": dead, "host": socket.gethostname()})
        )
    start = time.time() + 3.0  # both processes have imported facegan by then
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACE, str(tmp_path), str(start), str(trials)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        for _ in range(2)
    ]
    results = [json.loads(racer.communicate(timeout=120)[0]) for racer in racers]
    winners = [a + b for a, b in zip(*results)]
    assert winners == [1] * trials, (
        f"{winners.count(0)} trials had no holder, {winners.count(2)} had two"
    )
    leftovers = [p for p in tmp_path.rglob("lock*")]
    assert leftovers == []  # released and unlinked; no lock.stale-* piles up
