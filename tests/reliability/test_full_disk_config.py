"""A full disk while config.json is written (a new run, or a resume that changes it): exit 4."""

from __future__ import annotations

import errno
import json
import pathlib

import pytest

import facegan
from conftest import tiny_config
from facegan.cli import main


def _disk_full_for_config(monkeypatch):
    """config.json.partial gets half its bytes, then ENOSPC, as on a full disk."""
    real = pathlib.Path.write_text

    def write_text(self, data, *args, **kwargs):
        if self.name == "config.json.partial":
            real(self, data[: len(data) // 2], *args, **kwargs)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", write_text)


def test_a_full_disk_when_a_run_starts_is_one_line_exit_4_and_leaves_nothing(
    tmp_path, monkeypatch, capsys
):
    _disk_full_for_config(monkeypatch)
    code = main(
        ["train", "--preset", "quick-32", "--steps", "1", "--run-dir", str(tmp_path / "run")]
    )
    err = capsys.readouterr().err
    assert code == 4, err[-2000:]
    assert err.count("\n") == 1 and "No space left on device" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no run, no .run.creating-PID, no .partial


@pytest.mark.integration
def test_a_full_disk_when_a_resume_rewrites_the_config_keeps_the_old_one(
    tmp_path, monkeypatch, capsys
):
    run = facegan.train(tiny_config(steps=1), tmp_path / "run", progress=False)
    before = (run.directory / "config.json").read_text()
    capsys.readouterr()
    _disk_full_for_config(monkeypatch)
    code = main(["train", "--resume", str(run.directory), "--steps", "2", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 4 and err.count("\n") == 1 and "No space left on device" in err, err[-2000:]
    assert (run.directory / "config.json").read_text() == before
    assert json.loads(before)["train"]["steps"] == 1
    assert not list(run.directory.glob("*.partial")) and not list(run.directory.glob("lock*"))
