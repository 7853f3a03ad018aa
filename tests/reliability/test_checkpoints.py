"""Checkpoints are complete or absent: atomic saves, a full disk, damaged files, lost state."""

import errno
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from trainer_process import TINY_MODEL, listed_checkpoint_steps

from conftest import tiny_config
from facegan.artifacts.checkpoints import CheckpointStore, CheckpointWriteError
from facegan.cli import main


def _store(directory, keep=3):
    counter = tf.Variable(0, dtype=tf.int64)
    weights = tf.Variable(np.arange(1000, dtype=np.float32))
    return (
        CheckpointStore(tf.train.Checkpoint(counter=counter, weights=weights), directory, keep),
        counter,
        weights,
    )


def _disk_full_while_writing(monkeypatch):
    """The next tf.train.Checkpoint.write leaves half a file behind and fails with ENOSPC."""

    def write(self, prefix, options=None):
        Path(prefix).parent.mkdir(parents=True, exist_ok=True)
        with open(f"{prefix}.data-00000-of-00001", "wb") as half:
            half.write(b"\0" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tf.train.Checkpoint, "write", write)


def test_saves_keep_the_last_n_and_list_them_in_tensorflows_format(tmp_path):
    store, counter, _ = _store(tmp_path, keep=2)
    for step in (1, 2, 3):
        counter.assign(step)
        store.save(step)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint",
        "ckpt-2.data-00000-of-00001",
        "ckpt-2.index",
        "ckpt-3.data-00000-of-00001",
        "ckpt-3.index",
    ]
    assert tf.train.latest_checkpoint(str(tmp_path)) == str(tmp_path / "ckpt-3")


def test_a_relative_folder_keeps_the_last_n_too(tmp_path, monkeypatch):
    # A run started as `--run-dir runs/x` hands the store a relative folder; older
    # checkpoints must still be pruned and `latest` must name a real file.
    monkeypatch.chdir(tmp_path)
    store, counter, _ = _store(Path("runs") / "x" / "checkpoints", keep=2)
    for step in (1, 2, 3):
        counter.assign(step)
        store.save(step)
    folder = tmp_path / "runs" / "x" / "checkpoints"
    assert sorted(p.name for p in folder.glob("*.index")) == ["ckpt-2.index", "ckpt-3.index"]
    assert store.latest == str(folder / "ckpt-3")
    assert Path(store.latest + ".index").is_file()


def test_a_full_disk_keeps_the_previous_checkpoint_and_leaves_no_partial_files(
    tmp_path, monkeypatch
):
    store, counter, weights = _store(tmp_path)
    counter.assign(1)
    store.save(1)
    before = sorted(p.name for p in tmp_path.iterdir())
    state_before = (tmp_path / "checkpoint").read_text()
    _disk_full_while_writing(monkeypatch)
    counter.assign(2)
    with pytest.raises(CheckpointWriteError) as error:
        store.save(2)
    assert error.value.errno == errno.ENOSPC and error.value.exit_code == 4
    assert str(error.value).endswith(
        "No space left on device; the previous checkpoint ckpt-1 is intact"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no ckpt-2 files, no staging
    assert (tmp_path / "checkpoint").read_text() == state_before
    monkeypatch.undo()
    counter.assign(99)
    weights.assign(tf.zeros_like(weights))
    assert store.restore_latest() == str(tmp_path / "ckpt-1")
    assert int(counter.numpy()) == 1 and weights.numpy()[999] == 999


@pytest.mark.integration
def test_a_full_disk_during_training_stops_with_exit_4_and_the_run_resumes(
    tmp_path, monkeypatch, capsys
):
    toml = tmp_path / "c.toml"
    toml.write_text(TINY_MODEL.format(log_every=2, checkpoint_every=2, sample_every=100))
    run_dir = tmp_path / "r"
    real_save = CheckpointStore.save

    def save(self, number):
        if number == 4:
            _disk_full_while_writing(monkeypatch)
        return real_save(self, number)

    monkeypatch.setattr(CheckpointStore, "save", save)
    code = main(
        ["train", "--config", str(toml), "--steps", "8", "--run-dir", str(run_dir), "--no-progress"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 4
    assert err[-1] == (
        f"facegan: error: could not write checkpoint ckpt-4 in "
        f"'{run_dir / 'checkpoints'}': No space left on device; the previous "
        f"checkpoint ckpt-2 is intact"
    )
    assert listed_checkpoint_steps(run_dir) == [2]
    assert not list((run_dir / "checkpoints").glob("ckpt-4*"))
    assert not (run_dir / "lock").exists()
    monkeypatch.undo()  # space freed
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    assert "resumed from" in (run_dir / "train.log").read_text()
    assert listed_checkpoint_steps(run_dir)[-1] == 8


@pytest.mark.integration
def test_a_really_full_file_system_stops_the_trainer_cleanly(tmp_path, face_folder):
    """A real ENOSPC: the trainer runs on a 1 MB tmpfs (in a private user and mount
    namespace) that a filler file makes full while it trains."""
    probe = subprocess.run(["unshare", "-Urm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(
            "unprivileged user namespaces (unshare -Urm) are not available here, "
            "so no private tmpfs can be filled; the simulated ENOSPC tests still ran"
        )
    disk, saved = tmp_path / "disk", tmp_path / "saved"
    disk.mkdir()
    toml = tmp_path / "c.toml"
    toml.write_text(TINY_MODEL.format(log_every=1000, checkpoint_every=1, sample_every=100000))
    script = textwrap.dedent(f"""
        set -u
        mount -t tmpfs -o size=1m tmpfs {disk}
        {sys.executable} -m facegan.cli train --data {face_folder} --config {toml} \\
            --steps 1000000 --run-dir {disk}/run --no-progress 2> {tmp_path}/trainer.log &
        pid=$!
        for i in $(seq 600); do
            grep -q 'ckpt-20"' {disk}/run/checkpoints/checkpoint 2>/dev/null && break
            sleep 0.1
        done
        dd if=/dev/zero of={disk}/filler bs=4k 2>/dev/null
        wait $pid
        echo $? > {tmp_path}/exit_code
        rm {disk}/filler
        cp -a {disk}/run {saved}
    """)
    subprocess.run(["unshare", "-Urm", "bash", "-c", script], timeout=300, check=True)
    log = (tmp_path / "trainer.log").read_text()
    assert (tmp_path / "exit_code").read_text().strip() == "4", log[-3000:]
    last = log.strip().splitlines()[-1]
    assert re.fullmatch(
        r"facegan: error: could not write checkpoint ckpt-\d+ in '.*': No space "
        r"left on device; the previous checkpoint ckpt-\d+ is intact",
        last,
    ), last
    assert "Traceback" not in log
    steps = listed_checkpoint_steps(saved)
    assert steps and steps[-1] >= 20
    assert not list((saved / "checkpoints").glob("*.partial"))
    # the copied run continues where its last complete checkpoint was
    config = (saved / "config.json").read_text()
    assert str(face_folder) in config
    (saved / "lock").unlink(missing_ok=True)  # the lock names a PID of the namespace
    assert (
        main(["train", "--resume", str(saved), "--steps", str(steps[-1] + 2), "--no-progress"]) == 0
    )
    assert listed_checkpoint_steps(saved)[-1] == steps[-1] + 2


def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(tmp_path):
    store, counter, _ = _store(tmp_path)
    for step in (1, 2):
        counter.assign(step)
        store.save(step)
    data = tmp_path / "ckpt-2.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:20])  # a disk fault, not a kill: saves are atomic
    warnings = []

    class Log:
        def warning(self, *args):
            warnings.append(args[0] % args[1:])

    counter.assign(0)
    assert store.restore_latest(Log()) == str(tmp_path / "ckpt-1")
    assert int(counter.numpy()) == 1
    assert warnings and "ckpt-2 could not be read" in warnings[0]
    assert tf.train.latest_checkpoint(str(tmp_path)) == str(tmp_path / "ckpt-1")


def test_a_lost_state_file_does_not_send_the_run_back_to_step_0(tmp_path):
    store, counter, _ = _store(tmp_path)
    for step in (3, 7):
        counter.assign(step)
        store.save(step)
    (tmp_path / "checkpoint").unlink()
    (tmp_path / "ckpt-9.partial").mkdir()  # an interrupted save's staging folder
    counter.assign(0)
    assert store.restore_latest() == str(tmp_path / "ckpt-7")
    assert int(counter.numpy()) == 7
    assert not (tmp_path / "ckpt-9.partial").exists()


def test_a_save_interrupted_before_publishing_is_invisible(tmp_path, monkeypatch):
    """Killed between writing the files and listing them: the old state still rules."""
    store, counter, _ = _store(tmp_path)
    counter.assign(1)
    store.save(1)
    monkeypatch.setattr(
        CheckpointStore,
        "_write_state",
        lambda self, prefixes: (_ for _ in ()).throw(KeyboardInterrupt),
    )
    counter.assign(2)
    with pytest.raises(KeyboardInterrupt):
        store.save(2)
    monkeypatch.undo()
    assert CheckpointStore(store.checkpoint, tmp_path, 3).latest == str(tmp_path / "ckpt-1")


def test_the_run_directory_appears_with_its_config_or_not_at_all(tmp_path, monkeypatch):
    from facegan.artifacts import rundir

    seen = []
    real_rename = rundir.os.rename

    def rename(src, dst):
        seen.append(sorted(p.name for p in __import__("pathlib").Path(src).iterdir()))
        return real_rename(src, dst)

    monkeypatch.setattr(rundir.os, "rename", rename)
    paths = rundir.create_run_dir(tmp_path / "run", config=tiny_config())
    assert seen == [["config.json"]]  # complete before it became visible under its name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert paths.config.is_file()


def test_checkpoints_that_all_fail_to_read_stop_the_run_instead_of_restarting_it(tmp_path):
    from facegan.artifacts.checkpoints import CheckpointReadError

    store, counter, _ = _store(tmp_path)
    counter.assign(5)
    store.save(5)
    # a different model (another config, another facegan) cannot restore from it
    other = CheckpointStore(tf.train.Checkpoint(other=tf.Variable([1.0, 2.0])), tmp_path, 3)
    with pytest.raises(CheckpointReadError, match=r"none of the 1 checkpoint\(s\) .* can be read"):
        other.restore_latest()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint",
        "ckpt-5.data-00000-of-00001",
        "ckpt-5.index",
    ]  # nothing touched


def test_a_full_disk_while_listing_the_new_checkpoint_removes_its_files(tmp_path, monkeypatch):
    """The data and index were renamed into place, then the state file could not be
    written: the unlisted files go (they take the space the disk lacks) and the old
    list rules."""
    store, counter, _ = _store(tmp_path)
    counter.assign(1)
    store.save(1)

    def full(self, prefixes):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(CheckpointStore, "_write_state", full)
    counter.assign(2)
    with pytest.raises(CheckpointWriteError, match="ckpt-1 is intact"):
        store.save(2)
    assert not list(tmp_path.glob("ckpt-2*"))
    monkeypatch.undo()
    assert store.restore_latest() == str(tmp_path / "ckpt-1")
