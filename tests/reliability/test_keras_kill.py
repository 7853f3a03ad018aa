"""kill -9 during `fit` with `facegan.keras.RunCheckpoint`: the run always resumes.

Issue 24, item 7: `keras.callbacks.BackupAndRestore` killed just after a backup
left a damaged `latest.weights.h5`, and every later `fit` failed. facegan's own
callback saves through the run's checkpoint store (staged, fsynced, renamed),
so a process killed at any moment, even inside a save, leaves a run that the
same script, run again, continues from its newest listed checkpoint.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from trainer_process import listed_checkpoint_steps

from conftest import tiny_config

tf = pytest.importorskip("tensorflow")

from facegan.errors import UserError  # noqa: E402
from facegan.keras import GAN, RunCheckpoint  # noqa: E402

pytestmark = pytest.mark.integration  # starts processes and trains

TESTS = Path(__file__).resolve().parents[1]

# The user's script: fit with a checkpoint at every step, forever; reports where it started.
SCRIPT = """
import sys
sys.path.insert(0, sys.argv[2])
import keras, numpy as np
from conftest import tiny_config
from facegan.keras import GAN, RunCheckpoint

class Started(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        print(f"started at step {self.model.step}", flush=True)

gan = GAN(tiny_config(steps=4))
gan.compile()
pixels = np.random.default_rng(0).integers(0, 256, (64, 16, 16, 3), dtype=np.uint8)
checkpoints = RunCheckpoint(sys.argv[1], every_n_steps=1)
gan.fit(pixels, epochs=1_000_000, callbacks=[checkpoints, Started()], verbose=0)
"""


def _wait(condition, process: subprocess.Popen, log: Path, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if process.poll() is not None:
            raise AssertionError(
                f"fit exited ({process.returncode}) before {what}:\n{log.read_text()[-3000:]}"
            )
        time.sleep(0.001)
    return None


def _kill_during_a_save(run: Path, log: Path, started_at: int) -> bool:
    """Starts the script, checks where it started, kills it inside a save; True if it was."""
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(run), str(TESTS)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
    try:
        line = _wait(
            lambda: re.search(r"started at step (\d+)", log.read_text()), process, log, 180, "start"
        )
        assert line and int(line.group(1)) == started_at, log.read_text()[-2000:]
        _wait(
            lambda: (listed_checkpoint_steps(run) or [0])[-1] >= started_at + 2,
            process,
            log,
            120,
            "two checkpoints",
        )
        # A staging folder exists only while a checkpoint is being written: kill then.
        mid_save = _wait(
            lambda: any((run / "checkpoints").glob("*.partial")), process, log, 10, "a save"
        )
    finally:
        process.kill()  # SIGKILL: no handler, no cleanup
        process.wait(timeout=60)
    return bool(mid_save)


def test_kill_9_inside_run_checkpoint_saves_leaves_a_run_fit_continues(tmp_path):
    run = tmp_path / "run"
    started_at, kills_mid_save = 0, 0
    for trial in range(3):  # bounded: each trial is one process start
        kills_mid_save += _kill_during_a_save(run, tmp_path / f"fit-{trial}.log", started_at)
        listed = listed_checkpoint_steps(run)
        assert listed and listed[-1] > started_at
        started_at = listed[-1]  # the next start must continue exactly here
    # The same in-process: a fresh GAN, the callback restores, one more step trains.
    gan = GAN(tiny_config(steps=4))
    gan.compile()
    pixels = np.random.default_rng(0).integers(0, 256, (64, 16, 16, 3), dtype=np.uint8)
    checkpoints = RunCheckpoint(run, every_n_steps=1)
    gan.fit(pixels, epochs=started_at + 1, steps_per_epoch=1, callbacks=[checkpoints], verbose=0)
    assert checkpoints.restored_step == started_at and gan.step == started_at + 1
    assert GAN.from_run(run).step == started_at + 1
    assert not list((run / "checkpoints").glob("*.partial"))  # the restore cleared leftovers
    print(f"{kills_mid_save} of 3 kills landed inside a checkpoint save")


def test_a_damaged_backup_and_restore_file_is_one_line_not_a_traceback_every_fit(tmp_path):
    """What a kill inside Keras' in-place `latest.weights.h5` write leaves behind."""
    import keras

    gan = GAN(tiny_config(steps=4))
    gan.compile()
    backup = tmp_path / "backup"
    backup.mkdir()
    latest = backup / "latest.weights.h5"
    gan.save_weights(latest)
    whole = latest.read_bytes()
    latest.write_bytes(whole[: len(whole) // 2])  # cut off mid-write
    pixels = np.zeros((8, 16, 16, 3), np.uint8)
    with pytest.raises(UserError, match=r"BackupAndRestore's backup .* is damaged") as caught:
        gan.fit(pixels, epochs=1, callbacks=[keras.callbacks.BackupAndRestore(backup)], verbose=0)
    assert "\n" not in str(caught.value) and "RunCheckpoint" in str(caught.value)
    assert latest.read_bytes() == whole[: len(whole) // 2]  # the user's file, untouched
    assert gan.step == 0
