"""A full disk (ENOSPC) outside the checkpoints: the run lock, sample grids, packs, exports.

Each write fails the way a full file system makes it fail (monkeypatched, so the
tests run where no tmpfs can be mounted): one line, exit 4, nothing half-written.
"""

from __future__ import annotations

import errno
import os

import pytest

from conftest import tiny_config
from facegan.artifacts.rundir import RunLock, create_run_dir
from facegan.cli import main
from facegan.errors import ExitCode, WriteError

NO_SPACE = os.strerror(errno.ENOSPC)


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, NO_SPACE)


def test_a_lock_that_cannot_be_written_is_not_left_behind(tmp_path, monkeypatch):
    paths = create_run_dir(tmp_path / "run", config=tiny_config())
    monkeypatch.setattr(os, "pwrite", _no_space)
    with pytest.raises(WriteError) as error:
        RunLock(paths).acquire()
    assert error.value.exit_code == ExitCode.WRITE_FAILED
    assert not (paths.root / "lock").exists()
    monkeypatch.undo()  # space freed: the run can be locked again
    with RunLock(paths):
        assert (paths.root / "lock").is_file()


def test_resume_on_a_full_disk_is_one_line_exit_4_and_leaves_no_lock(tmp_path, monkeypatch, capsys):
    paths = create_run_dir(tmp_path / "run", config=tiny_config())
    before = sorted(p.name for p in paths.root.iterdir())
    monkeypatch.setattr(os, "pwrite", _no_space)
    code = main(["train", "--resume", str(paths.root), "--no-progress"])
    err = capsys.readouterr().err
    assert code == ExitCode.WRITE_FAILED, err[-2000:]
    assert err == (
        f"facegan: error: could not write {str(paths.root / 'lock')!r}: {NO_SPACE}; "
        f"nothing was changed: free some space and run the same command again\n"
    )
    assert sorted(p.name for p in paths.root.iterdir()) == before  # no 0-byte lock
