"""SIGINT and SIGTERM: finish the step, write a checkpoint, exit 130 / 143; the run continues."""

import re
import signal

import pytest
from trainer_process import listed_checkpoint_steps, start_trainer, wait_for_line

from facegan.cli import main

# Trains, starts processes or drives a browser: not in the fast tier.
pytestmark = pytest.mark.integration


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_writes_a_checkpoint_at_the_stop_step_and_exits_with_its_code(
    signum, code, tmp_path, face_folder
):
    run_dir = tmp_path / "run"
    process, log = start_trainer(tmp_path, run_dir, face_folder)
    try:
        wait_for_line(log, r"^step 4/", process)
        process.send_signal(signum)
        process.wait(timeout=120)
    finally:
        process.kill()
    text = log.read_text()
    assert process.returncode == code, text[-2000:]
    name = signal.Signals(signum).name
    stopped = re.search(
        rf"stopped by {name} at step (\d+); checkpoint written\. "
        rf"Continue with: facegan train --resume {re.escape(str(run_dir))}",
        text,
    )
    assert stopped, text[-2000:]
    step = int(stopped.group(1))
    # the checkpoint is at the very step the trainer stopped at, not an older one
    assert step >= 4 and listed_checkpoint_steps(run_dir)[-1] == step
    assert "Traceback" not in text
    assert not (run_dir / "lock").exists()  # released on the way out
    assert main(["train", "--resume", str(run_dir), "--steps", str(step + 2), "--no-progress"]) == 0
    assert listed_checkpoint_steps(run_dir)[-1] == step + 2


def test_signal_before_training_starts_stops_at_once(tmp_path, face_folder):
    run_dir = tmp_path / "run"
    process, log = start_trainer(tmp_path, run_dir, face_folder)
    try:
        wait_for_line(log, r"^data: ", process)  # setup under way, loop not started
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    finally:
        process.kill()
    text = log.read_text()
    assert process.returncode == 143, text[-2000:]
    assert "stopped by SIGTERM" in text and "Traceback" not in text
    assert not (run_dir / "lock").exists()


def test_second_ctrl_c_aborts_without_waiting_and_keeps_the_last_checkpoint(tmp_path, face_folder):
    run_dir = tmp_path / "run"
    process, log = start_trainer(tmp_path, run_dir, face_folder, checkpoint_every=2)
    try:
        wait_for_line(log, r"^step 6/", process)
        # Two signals back to back: the first asks for a clean stop, the second
        # (arriving before the step ends or during the save) aborts at once.
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130
    steps = listed_checkpoint_steps(run_dir)
    assert steps and steps[-1] >= 6  # whatever was listed is complete
    assert (
        main(["train", "--resume", str(run_dir), "--steps", str(steps[-1] + 1), "--no-progress"])
        == 0
    )
