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


def _disk_full_while_saving_pngs(monkeypatch):
    """PIL gets half a PNG out, then the disk is full."""
    from PIL import Image

    def save(self, fp, *args, **kwargs):
        with open(fp, "wb") as half:
            half.write(b"\x89PNG\r\n\x1a\n")
        raise OSError(errno.ENOSPC, NO_SPACE)

    monkeypatch.setattr(Image.Image, "save", save)


def test_a_png_that_does_not_fit_leaves_no_partial_file(tmp_path, monkeypatch):
    import numpy as np

    from facegan.artifacts.images import save_png

    _disk_full_while_saving_pngs(monkeypatch)
    with pytest.raises(OSError) as error:
        save_png(np.zeros((4, 4, 3), np.uint8), tmp_path / "samples" / "step-0000002.png")
    assert error.value.errno == errno.ENOSPC
    assert list((tmp_path / "samples").iterdir()) == []


@pytest.mark.integration
def test_a_sample_grid_on_a_full_disk_stops_a_new_run_cleanly(tmp_path, monkeypatch, capsys):
    from trainer_process import TINY_MODEL

    toml = tmp_path / "c.toml"
    toml.write_text(TINY_MODEL.format(log_every=2, checkpoint_every=2, sample_every=2))
    run_dir = tmp_path / "run"
    _disk_full_while_saving_pngs(monkeypatch)
    code = main(
        ["train", "--config", str(toml), "--steps", "4", "--run-dir", str(run_dir), "--no-progress"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == ExitCode.WRITE_FAILED, err[-20:]
    assert err[-1].startswith(f"facegan: error: cannot write to {str(run_dir)!r}: {NO_SPACE}")
    assert not list(run_dir.rglob("*.partial")) and not list(run_dir.glob("samples/*"))
    assert not (run_dir / "lock").exists()
