"""A run whose config.json does not describe its checkpoints: one line and exit 2, everywhere."""

from __future__ import annotations

import json
import shutil

import pytest

from facegan.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture()
def edited_run(tiny_run, tmp_path):
    """A copy of the tiny run whose config.json asks for a wider generator."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    config = json.loads((run / "config.json").read_text())
    config["model"]["width"] *= 2
    (run / "config.json").write_text(json.dumps(config))
    return run


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "--run", "{run}", "-n", "2", "--out", "{tmp}/g.png"],
        ["export", "--run", "{run}", "--format", "savedmodel", "--out", "{tmp}/exported"],
        [
            "evaluate",
            "--run",
            "{run}",
            "--metrics",
            "fid",
            "--num",
            "8",
            "--inception-weights",
            "{tmp}/missing-weights.h5",
        ],
        ["serve", "--run", "{run}", "--port", "0"],
    ],
)
def test_a_config_that_does_not_match_the_checkpoint_is_one_line(
    edited_run, tmp_path, capsys, argv
):
    args = [a.format(run=edited_run, tmp=tmp_path) for a in argv]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    assert err.count("\n") == 1 and "its config.json does not describe the network" in err, err
    assert "ckpt-" in err and "Traceback" not in err
    assert not (tmp_path / "g.png").exists() and not (tmp_path / "exported").exists()


def test_a_config_with_an_extra_layer_is_caught_too(tiny_run, tmp_path):
    """Weights the checkpoint lacks would otherwise stay at their initial values, silently."""
    import facegan
    from facegan.artifacts.rundir import RunDirError

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    config = json.loads((run / "config.json").read_text())
    config["model"]["resolution"] = 32  # one more up-sampling block
    config["model"]["g_skip_excitation"] = True
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunDirError, match="does not describe the network"):
        facegan.load(run).generator()
