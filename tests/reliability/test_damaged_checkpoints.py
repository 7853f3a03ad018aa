"""Commands that use a run (generate, export, interpolate, serve) and damaged checkpoints.

The newest checkpoint damaged and an older one intact: the older one is used,
with one warning naming both. Every checkpoint damaged: one line naming the
damaged checkpoint, exit 2, nothing written, no traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from facegan.cli import main

pytestmark = pytest.mark.integration

COMMANDS = {
    "generate": ["generate", "--run", "{run}", "-n", "2", "--out", "{tmp}/out.png"],
    "export": ["export", "--run", "{run}", "--format", "savedmodel", "--out", "{tmp}/out"],
    "interpolate": ["interpolate", "--run", "{run}", "--seeds", "0,1", "--out", "{tmp}/out.gif"],
    "serve": ["serve", "--run", "{run}", "--port", "0"],
}


def _cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.fixture()
def two_checkpoints(tiny_run, tmp_path) -> Path:
    """A copy of the tiny run with ckpt-1 (a copy of its ckpt-2) listed before ckpt-2."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    folder = run / "checkpoints"
    for path in folder.glob("ckpt-2.*"):
        shutil.copy(path, folder / path.name.replace("ckpt-2", "ckpt-1"))
    (folder / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-2"\n'
        'all_model_checkpoint_paths: "ckpt-1"\nall_model_checkpoint_paths: "ckpt-2"\n'
    )
    return run


def _run(argv, run, tmp_path, capsys):
    code = main([a.format(run=run, tmp=tmp_path) for a in argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("damage", [_cut_in_half, _empty])
@pytest.mark.parametrize("command", ["generate", "export", "interpolate"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_intact_one_with_a_warning(
    two_checkpoints, tmp_path, capsys, command, damage
):
    for path in (two_checkpoints / "checkpoints").glob("ckpt-2.*"):
        damage(path)
    code, err = _run(COMMANDS[command], two_checkpoints, tmp_path, capsys)
    assert code == 0, err[-2000:]
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "ckpt-" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith("facegan: warning: checkpoint ckpt-2 ")
    assert "is damaged" in lines[0] and "using ckpt-1, the newest intact one" in lines[0]
    assert list(tmp_path.glob("out*"))
    # the run is only read: the damaged files and the state file stay as they were
    assert '"ckpt-2"' in (two_checkpoints / "checkpoints" / "checkpoint").read_text()


@pytest.mark.parametrize("damage", [_cut_in_half, _empty])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_checkpoints_all_damaged_are_one_line_naming_the_newest(
    tiny_run, tmp_path, capsys, command, damage
):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    for path in (run / "checkpoints").glob("ckpt-*"):
        damage(path)
    code, err = _run(COMMANDS[command], run, tmp_path, capsys)
    assert code == 2, err[-2000:]
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "ckpt-2 is damaged" in err and "config.json" not in err, err
    assert not list(tmp_path.glob("out*"))


def test_a_config_from_another_preset_is_one_line_without_tensorflow_warnings(tiny_run, tmp_path):
    """TensorFlow used to log ~60 `WARNING:tensorflow` lines about unrestored values at exit."""
    from facegan.presets import get_preset

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    config = get_preset("dcgan-64").to_dict()
    config["data"] = json.loads((run / "config.json").read_text())["data"]
    config["model"]["channels"] = 3
    (run / "config.json").write_text(json.dumps(config))
    # as a user runs it: without the suite's TF_CPP_MIN_LOG_LEVEL, the command quiets TensorFlow
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-m", "facegan.cli", "generate", "--run", str(run), "-n", "1"]
        + ["--out", str(tmp_path / "g.png")],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=300,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1, done.stderr[-3000:]
    assert "does not describe the network in ckpt-2" in done.stderr


def test_a_preset_config_with_automatic_channels_is_one_line_not_an_assertion(
    tiny_run, tmp_path, capsys
):
    """A preset's config.json copied into a run used to end in an AssertionError traceback."""
    from facegan.presets import get_preset

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "config.json").write_text(get_preset("quick-32").to_json())
    code, err = _run(COMMANDS["generate"], run, tmp_path, capsys)
    assert code == 2
    assert err.count("\n") == 1 and "leaves model.channels unset" in err, err
    assert not (tmp_path / "out.png").exists()
