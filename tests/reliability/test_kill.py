"""kill -9 at random moments: every time, the run resumes from its last complete checkpoint.

The trainer writes a checkpoint at every step, so many kills land inside a
save. After each kill the test resumes the run in-process for one step and
checks that it started exactly at the newest checkpoint that the state file
listed at the moment of the kill: never earlier, and never from a torn file.
CI runs 3 trials; `-m slow` runs 20 more.
"""

import random
import re
import time

import pytest
from trainer_process import listed_checkpoint_steps, start_trainer, wait_for_line

from facegan.cli import main

# Trains, starts processes or drives a browser: not in the fast tier.
pytestmark = pytest.mark.integration


def _kill_trials(tmp_path, data, trials: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    run_dir = tmp_path / "run"
    outcomes = []
    for trial in range(trials):
        resume = (run_dir / "config.json").exists()
        process, log = start_trainer(
            tmp_path / "logs", run_dir, data, resume=resume, checkpoint_every=1, log_every=1
        )
        try:
            if rng.random() < 0.3:  # somewhere in start-up: import, data, build, restore
                moment = "start-up"
                time.sleep(rng.uniform(0.0, 5.0))
            else:  # somewhere in training: steps, checkpoint writes, log lines
                moment = "training"
                wait_for_line(log, r"^step \d+/", process)
                time.sleep(rng.uniform(0.0, 1.5))
        finally:
            process.kill()  # SIGKILL: no handler, no cleanup
            process.wait(timeout=60)
        listed = listed_checkpoint_steps(run_dir)
        outcome = {
            "trial": trial,
            "moment": moment,
            "new_run": not resume,
            # a staging folder left behind: the kill landed inside a checkpoint save
            "mid_save": bool(list(run_dir.glob("checkpoints/*.partial"))),
            "listed_at_kill": listed[-1] if listed else None,
        }
        if (run_dir / "config.json").exists():
            expected = listed[-1] if listed else 0
            code = main(
                ["train", "--resume", str(run_dir), "--steps", str(expected + 1), "--no-progress"]
            )
            assert code == 0, f"trial {trial}: resume failed with exit code {code}"
            text = (run_dir / "train.log").read_text(errors="replace")
            starts = re.findall(r"resumed from \S+ at step (\d+)|training \S+ steps (\d+) ->", text)
            started = int([a or b for a, b in starts][-1])
            assert started == expected, (
                f"trial {trial}: resumed at step {started}, but the last "
                f"complete checkpoint was {expected}"
            )
            assert listed_checkpoint_steps(run_dir)[-1] == expected + 1
            outcome["resumed_at"] = started
        else:
            # Killed before the run directory appeared: nothing to resume, nothing half-made.
            assert not run_dir.exists(), f"trial {trial}: a run directory without config.json"
            outcome["resumed_at"] = None
        outcomes.append(outcome)
    print("\nkill -9 trials:")
    for outcome in outcomes:
        print(f"  {outcome}")
    return outcomes


def test_kill_9_at_random_moments_always_resumes_from_the_last_checkpoint(tmp_path, face_folder):
    outcomes = _kill_trials(tmp_path, face_folder, trials=3, seed=20261125)
    assert len(outcomes) == 3


@pytest.mark.slow
def test_kill_9_twenty_trials(tmp_path, face_folder):
    outcomes = _kill_trials(tmp_path, face_folder, trials=20, seed=4)
    assert sum(o["moment"] == "training" for o in outcomes) >= 10
