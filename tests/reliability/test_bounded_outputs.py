"""Bounded work and clean failures of the commands that write a run's faces to disk.

`generate` writes as it goes (memory flat, progress shown), `interpolate`
refuses a walk that cannot fit in memory before rendering it, `project`
refuses a decompression bomb in one line, and a read-only or full --out is one
line, exit 4, with nothing half-written left behind.
"""

from __future__ import annotations

import errno

import pytest
from PIL import Image
from test_bad_inputs import png_declaring

from facegan.artifacts import animation
from facegan.artifacts.run import Run
from facegan.cli import main
from facegan.errors import ExitCode

pytestmark = pytest.mark.integration


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err[-3000:]
    return err.strip()


def _read_only_after(monkeypatch, good: int = 0):
    """PIL's save writes half a file, then EROFS, as on a read-only disk (after `good` saves)."""
    real = Image.Image.save
    saves = []

    def save(self, fp, *args, **kwargs):
        saves.append(fp)
        if len(saves) > good:
            with open(fp, "wb") as partial:
                partial.write(b"\x89PNG half")
            raise OSError(errno.EROFS, "Read-only file system")
        return real(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    return saves


def test_generate_writes_each_batch_before_drawing_the_next(
    tiny_run, tmp_path, monkeypatch, capsys
):
    events = []
    real = Run.generate_seeds

    def generate_seeds(self, seeds, **kwargs):
        events.append(("draw", len(list(seeds))))
        return real(self, seeds, **kwargs)

    monkeypatch.setattr(Run, "generate_seeds", generate_seeds)
    real_save = Image.Image.save
    monkeypatch.setattr(
        Image.Image,
        "save",
        lambda self, fp, *a, **k: (events.append(("save", 1)), real_save(self, fp, *a, **k))[1],
    )
    out = tmp_path / "faces"
    args = ["generate", "--run", str(tiny_run), "--seeds", "0-299", "--out", str(out)]
    assert main([*args, "--progress"]) == 0
    err = capsys.readouterr().err
    assert len(list(out.iterdir())) == 300
    draws = [count for kind, count in events if kind == "draw"]
    assert len(draws) > 1 and max(draws) <= 256 and sum(draws) == 300
    assert events.index(("save", 1)) < len(events) - 1 - events[::-1].index(("draw", draws[-1]))
    assert "generate:" in err and "/300 " in err  # the progress bar, counting faces


def test_generate_to_a_read_only_folder_is_one_line_exit_4_and_leaves_nothing(
    tiny_run, tmp_path, monkeypatch, capsys
):
    _read_only_after(monkeypatch, good=3)
    out = tmp_path / "faces"
    code = main(["generate", "--run", str(tiny_run), "--seeds", "0-9", "--out", str(out)])
    line = _one_line(capsys.readouterr().err)
    assert code == ExitCode.WRITE_FAILED
    assert "Read-only file system" in line and str(out) in line
    assert list(tmp_path.iterdir()) == []  # no folder, no faces, no .partial


def test_generate_into_the_users_empty_folder_keeps_the_folder(
    tiny_run, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "mine"
    out.mkdir()
    _read_only_after(monkeypatch, good=1)
    code = main(["generate", "--run", str(tiny_run), "-n", "4", "--out", str(out)])
    _one_line(capsys.readouterr().err)
    assert code == ExitCode.WRITE_FAILED
    assert out.is_dir() and list(out.iterdir()) == []


def test_a_grid_on_a_read_only_disk_is_one_line_exit_4_and_leaves_nothing(
    tiny_run, tmp_path, monkeypatch, capsys
):
    _read_only_after(monkeypatch)
    out = tmp_path / "grid.png"
    code = main(["generate", "--run", str(tiny_run), "-n", "4", "--out", str(out)])
    line = _one_line(capsys.readouterr().err)
    assert code == ExitCode.WRITE_FAILED and "Read-only file system" in line
    assert list(tmp_path.iterdir()) == []


def test_interpolate_on_a_read_only_disk_is_one_line_exit_4_and_leaves_nothing(
    tiny_run, tmp_path, monkeypatch, capsys
):
    _read_only_after(monkeypatch)
    out = tmp_path / "walk.gif"
    args = ["interpolate", "--run", str(tiny_run), "--seeds", "0,1", "--frames", "2"]
    code = main([*args, "--out", str(out)])
    line = _one_line(capsys.readouterr().err)
    assert code == ExitCode.WRITE_FAILED and "Read-only file system" in line
    assert list(tmp_path.iterdir()) == []


def test_interpolate_refuses_a_walk_too_large_for_memory_before_rendering(
    tiny_run, tmp_path, monkeypatch, capsys
):
    def render(*args, **kwargs):
        raise AssertionError("rendered a walk that cannot fit in memory")

    monkeypatch.setattr(animation, "walk_frames", render)
    out = tmp_path / "walk.gif"
    args = ["interpolate", "--run", str(tiny_run), "--seeds", "0,1", "--frames", "1000000"]
    code = main([*args, "--size", "1024", "--out", str(out)])
    line = _one_line(capsys.readouterr().err)
    assert code == ExitCode.USER_ERROR
    assert "1000001 frames" in line and "1024" in line and "at most" in line
    assert list(tmp_path.iterdir()) == []


def test_project_refuses_a_decompression_bomb_in_one_line(tiny_run, tmp_path, capsys):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_declaring(30000, 30000))  # 900 MP declared in ~150 bytes
    code = main(["project", "--run", str(tiny_run), "--image", str(bomb), "--steps", "1"])
    line = _one_line(capsys.readouterr().err)
    assert code == ExitCode.USER_ERROR
    assert "900,000,000 pixels" in line and "decompression bomb" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.png"]
