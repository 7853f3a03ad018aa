"""A full disk (ENOSPC) outside the checkpoints: the run lock, sample grids, packs, exports.

Each write fails the way a full file system makes it fail (monkeypatched, so the
tests run where no tmpfs can be mounted): one line, exit 4, nothing half-written.
"""

from __future__ import annotations

import builtins
import errno
import io
import os

import pytest

from conftest import tiny_config
from facegan.artifacts.rundir import RunLock, create_run_dir
from facegan.cli import main
from facegan.errors import ExitCode, WriteError

NO_SPACE = os.strerror(errno.ENOSPC)
EXPORTS = [("savedmodel", "m"), ("tflite", "m.tflite"), ("keras", "m.keras")]  # format, --out


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


def _disk_full_while_exporting(monkeypatch, fmt):
    """The export's own write fails as a full disk makes it fail, after half a file."""
    import pathlib

    import keras
    import tensorflow as tf

    def half_then_full(path):
        pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as half:
            half.write(b"\0" * 100)

    if fmt == "savedmodel":

        def save(obj, export_dir, *args, **kwargs):
            half_then_full(os.path.join(export_dir, "variables", "variables.data-00000-of-00001"))
            raise tf.errors.ResourceExhaustedError(
                None, None, f"{export_dir}/variables/part-00000.tempstate1; {NO_SPACE} [Op:SaveV2]"
            )

        monkeypatch.setattr(tf.saved_model, "save", save)
    elif fmt == "tflite":
        real = pathlib.Path.write_bytes

        def write_bytes(self, data):
            real(self, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, NO_SPACE)

        monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)
    else:

        def save(self, filepath, *args, **kwargs):
            half_then_full(filepath)
            raise OSError(errno.ENOSPC, NO_SPACE)

        monkeypatch.setattr(keras.Model, "save", save)


@pytest.mark.parametrize("fmt, name", EXPORTS)
def test_an_export_onto_a_full_disk_is_one_line_exit_4_and_leaves_nothing(
    tiny_run, tmp_path, monkeypatch, capsys, fmt, name
):
    out = tmp_path / "new" / "folder" / name
    _disk_full_while_exporting(monkeypatch, fmt)
    code = main(["export", "--run", str(tiny_run), "--format", fmt, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == ExitCode.WRITE_FAILED, err[-2000:]
    assert err == (
        f"facegan: error: could not write {str(out)!r}: {NO_SPACE}; nothing was written: "
        f"free some space and run the same command again\n"
    )
    assert list(tmp_path.iterdir()) == []  # not even the folders the export made


@pytest.mark.parametrize("fmt, name", EXPORTS)
def test_an_export_into_a_folder_that_keeps_others_keeps_them(
    tiny_run, tmp_path, monkeypatch, capsys, fmt, name
):
    (tmp_path / "mine.txt").write_text("the user's")
    _disk_full_while_exporting(monkeypatch, fmt)
    code = main(["export", "--run", str(tiny_run), "--format", fmt, "--out", str(tmp_path / name)])
    assert code == ExitCode.WRITE_FAILED, capsys.readouterr().err[-2000:]
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


@pytest.mark.parametrize("fmt, name", EXPORTS)
def test_an_export_under_a_file_is_refused_before_anything_is_loaded(
    tiny_run, tmp_path, capsys, fmt, name
):
    blocker = tmp_path / "somefile"
    blocker.write_text("not a folder")
    out = blocker / "sub" / name
    code = main(["export", "--run", str(tiny_run), "--format", fmt, "--out", str(out)])
    assert code == ExitCode.USER_ERROR
    assert capsys.readouterr().err == (
        f"facegan: error: --out {str(out)!r} cannot be made: {str(blocker)!r} is a file, "
        f"not a folder; choose another --out\n"
    )
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("fmt, name", EXPORTS)
def test_an_export_into_a_read_only_folder_is_one_line_exit_4(
    tiny_run, tmp_path, monkeypatch, capsys, fmt, name
):
    # Root ignores permission bits and no read-only mount is made here: the folder
    # refuses new files and folders as a read-only file system does.
    folder = tmp_path / "ro"
    folder.mkdir()
    real_open, real_mkdir, real_builtin_open = os.open, os.mkdir, builtins.open

    def inside(path):
        return os.path.abspath(path) == str(folder) or str(folder) + os.sep in os.path.abspath(path)

    def refuse(real):
        def call(path, *args, **kwargs):
            if inside(path):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real(path, *args, **kwargs)

        return call

    monkeypatch.setattr(os, "open", refuse(real_open))
    monkeypatch.setattr(os, "mkdir", refuse(real_mkdir))
    monkeypatch.setattr(builtins, "open", refuse(real_builtin_open))
    monkeypatch.setattr(io, "open", refuse(real_builtin_open))  # pathlib's way in
    out = folder / name
    code = main(["export", "--run", str(tiny_run), "--format", fmt, "--out", str(out)])
    assert code == ExitCode.WRITE_FAILED
    assert capsys.readouterr().err == (
        f"facegan: error: could not write {str(out)!r}: {os.strerror(errno.EROFS)}; "
        f"nothing was written: choose a place you can write to\n"
    )
    assert list(folder.iterdir()) == []


def _pack(out):
    return main(
        [
            "pack",
            "embedded:lfw",
            "--out",
            str(out),
            "--resolution",
            "8",
            "--images-per-shard",
            "40",
            "--no-progress",
        ]
    )


def test_a_pack_onto_a_full_disk_keeps_its_finished_shards_and_resumes(
    tmp_path, monkeypatch, capsys
):
    import tensorflow as tf

    from facegan.data.packed import is_packed

    real = tf.io.TFRecordWriter

    class FullAtTheSecondShard:
        """TensorFlow's writer, but the disk is full halfway through shard 2 of 3."""

        def __init__(self, path, *args, **kwargs):
            self.path, self.writer = path, real(path, *args, **kwargs)

        def write(self, record):
            self.writer.write(record)
            if "shard-00001" in self.path:
                raise tf.errors.ResourceExhaustedError(None, None, f"{self.path}; {NO_SPACE}")

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            self.writer.close()

    monkeypatch.setattr(tf.io, "TFRecordWriter", FullAtTheSecondShard)
    out = tmp_path / "faces.pack"
    code = _pack(out)
    err = capsys.readouterr().err.splitlines()
    assert code == ExitCode.WRITE_FAILED, err[-20:]
    assert err[-1] == (
        f"facegan: error: could not write {str(out)!r}: {NO_SPACE}; 1 of 3 shard(s) "
        f"finished and kept: free some space and run the same command again"
    )
    assert "Traceback" not in "\n".join(err)
    assert not list(out.glob("*.partial")) and not is_packed(str(out))
    monkeypatch.undo()  # space freed: the same command finishes the pack
    assert _pack(out) == 0
    assert is_packed(str(out)) and sorted(p.name for p in out.iterdir()) == [
        "dataset.json",
        "shard-00000-of-00003.tfrecord",
        "shard-00001-of-00003.tfrecord",
        "shard-00002-of-00003.tfrecord",
    ]


def test_a_pack_whose_bookkeeping_does_not_fit_leaves_no_partial_file(
    tmp_path, monkeypatch, capsys
):
    real = builtins.open

    def open_(file, mode="r", *args, **kwargs):
        if str(file).endswith(".json.partial"):
            real(file, mode, *args, **kwargs).close()  # created; its bytes never fit
            raise OSError(errno.ENOSPC, NO_SPACE)
        return real(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_)
    out = tmp_path / "faces.pack"
    code = _pack(out)
    err = capsys.readouterr().err.splitlines()
    assert code == ExitCode.WRITE_FAILED, err[-20:]
    assert err[-1].startswith(f"facegan: error: could not write {str(out)!r}: {NO_SPACE}")
    assert not list(tmp_path.rglob("*.partial"))
