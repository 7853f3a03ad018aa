"""The `facegan` command: help, exit codes, one-line user errors, train -> generate."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from facegan.cli import main


def _run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv", [[], ["train"], ["generate"], ["presets"], ["config"]])
def test_help_for_every_command(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    assert "usage: facegan" in capsys.readouterr().out


def test_train_help_lists_presets_and_examples(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for needle in ("dcgan-64", "quick-32", "--resume", "--data", "--steps", "--run-dir", "--jit"):
        assert needle in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["train", "--set", "model.resolution=100"],
            "`model.resolution` must be a power of two from 16 to 256; received 100",
        ),
        (
            ["train", "--preset", "nope"],
            "`preset` must be one of dcgan-64, dcgan-128, quick-32, faces-64, faces-64-long, faces-128, stylegan2-128, stylegan2-256; received 'nope'",
        ),
        (["train", "--data", "/definitely/not/here"], "'/definitely/not/here' does not exist"),
        (
            ["train", "--set", "model.width"],
            "--set takes SECTION.KEY=VALUE; received 'model.width'",
        ),
        (["train", "--config", "missing.toml"], "config file 'missing.toml' does not exist"),
        (
            ["train", "--resume", "runs/x", "--seed", "3"],
            "--resume continues a run with its saved config",
        ),
        (["train", "--resume", "no-such-run"], "run directory 'no-such-run' does not exist"),
        (
            ["generate", "--run", "no-such-run", "--out", "g.png"],
            "run directory 'no-such-run' does not exist",
        ),
        (["generate", "--run", "r", "--out", "g.jpg"], "--out must be a .png file"),
    ],
)
def test_user_errors_are_one_line_exit_2_and_create_nothing(
    argv, message, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run_cli(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("facegan: error: ")
    assert message in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no run directory, no files


def test_argparse_errors_also_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--steps", "0"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--steps: must be a positive integer; received '0'" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "parse, good, bad, allowed",
    [
        ("positive_float", ["1e-3", "2.5"], ["0", "-1", "inf", "nan", "x"], "a positive number"),
        (
            "non_negative_float",
            ["0", "7.5"],
            ["-0.1", "inf", "-inf", "nan", "x"],
            "a number 0 or more",
        ),
        (
            "unit_float",
            ["0", "1", "0.7"],
            ["-0.1", "1.01", "inf", "nan", "x"],
            "a number from 0 to 1",
        ),
    ],
)
def test_float_arguments_take_finite_numbers_in_their_range(parse, good, bad, allowed):
    import argparse
    import re

    from facegan.cli import common

    parse = getattr(common, parse)
    for text in good:
        assert parse(text) == float(text)
    for text in bad:
        with pytest.raises(
            argparse.ArgumentTypeError,
            match=f"^{re.escape(f'must be {allowed}; received {text!r}')}$",
        ):
            parse(text)


def test_a_float_argument_error_names_the_option(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "--run", "r", "--truncation", "1.5"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--truncation: must be a number from 0 to 1; received '1.5'" in err
    assert err.count("\n") == 1


def test_config_command_prints_loadable_toml(capsys, tmp_path):
    code, out, _ = _run_cli(capsys, "config", "--preset", "dcgan-64", "--set", "train.steps=77")
    assert code == 0
    path = tmp_path / "c.toml"
    path.write_text(out)
    from facegan.config import Config

    assert Config.from_file(path).train.steps == 77


TINY_MODEL_TOML = """
[model]
resolution = 16
width = 8
max_width = 32
latent_dim = 16
"""


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, face_folder):
    root = tmp_path_factory.mktemp("cli")
    config = root / "tiny.toml"
    config.write_text(
        TINY_MODEL_TOML
        + """
[train]
batch_size = 8
log_every = 2
sample_every = 2
checkpoint_every = 2
sample_grid = 4
"""
    )
    run_dir = root / "run"
    code = main(
        [
            "train",
            "--data",
            str(face_folder),
            "--config",
            str(config),
            "--steps",
            "2",
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ]
    )
    assert code == 0
    return run_dir


@pytest.mark.integration
def test_existing_run_dir_is_never_overwritten(cli_run, capsys):
    before = sorted(p.name for p in cli_run.rglob("*"))
    code, _, err = _run_cli(capsys, "train", "--run-dir", str(cli_run), "--steps", "1")
    assert code == 2 and "already exists; use --resume" in err
    assert sorted(p.name for p in cli_run.rglob("*")) == before


@pytest.mark.integration
def test_overwrite_moves_the_old_run_aside(tmp_path, face_folder, capsys):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "precious.txt").write_text("keep me")
    code, _, _ = _run_cli(
        capsys,
        "train",
        "--data",
        str(face_folder),
        "--run-dir",
        str(run_dir),
        "--steps",
        "1",
        "--set",
        "model.resolution=16",
        "--set",
        "model.width=4",
        "--batch-size",
        "4",
        "--no-progress",
        "--overwrite",
    )
    assert code == 0
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("r.old-")]
    assert len(aside) == 1 and (aside[0] / "precious.txt").read_text() == "keep me"
    assert (run_dir / "config.json").exists()


@pytest.mark.integration
def test_resume_continues_to_the_new_total(cli_run, capsys, tmp_path):
    code, _, _ = _run_cli(
        capsys, "train", "--resume", str(cli_run), "--steps", "4", "--no-progress"
    )
    assert code == 0
    assert (cli_run / "checkpoints" / "ckpt-4.index").exists()
    assert (cli_run / "samples" / "step-0000004.png").exists()


@pytest.mark.integration
def test_generate_grid_and_folder(cli_run, capsys, tmp_path):
    code, _, _ = _run_cli(
        capsys,
        "generate",
        "--run",
        str(cli_run),
        "-n",
        "9",
        "--seed",
        "7",
        "--out",
        str(tmp_path / "grid.png"),
    )
    assert code == 0
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size == (3 * 18 + 2, 3 * 18 + 2)  # 3x3 tiles of 16 px, 2 px padding
    code, _, _ = _run_cli(
        capsys,
        "generate",
        "--run",
        str(cli_run),
        "-n",
        "3",
        "--seed",
        "7",
        "--out",
        str(tmp_path / "single"),
    )
    assert code == 0
    files = sorted((tmp_path / "single").iterdir())
    # -n 3 --seed 7 means seeds 7, 8, 9 (StyleGAN2-ADA's convention and names)
    assert [f.name for f in files] == ["seed0007.png", "seed0008.png", "seed0009.png"]
    first = np.asarray(Image.open(files[0]))
    np.testing.assert_array_equal(first, np.asarray(grid)[2:18, 2:18])  # same seed, same face
    # an existing output is refused, not overwritten
    code, _, err = _run_cli(
        capsys, "generate", "--run", str(cli_run), "--out", str(tmp_path / "grid.png")
    )
    assert code == 2 and "already exists" in err


@pytest.mark.integration
def test_installed_entry_point_answers_help():
    result = subprocess.run(["facegan", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "train" in result.stdout and "generate" in result.stdout
    module = subprocess.run(
        [sys.executable, "-m", "facegan.cli", "presets"], capture_output=True, text=True, timeout=60
    )
    assert module.returncode == 0 and "quick-32" in module.stdout


_NO_TENSORFLOW = """
import json, sys
from facegan.cli import main
code = main(sys.argv[1:])
print(json.dumps([code, "tensorflow" in sys.modules]))
"""


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["generate", "--run", "{tmp}/missing-run", "-n", "1", "--out", "{tmp}/x.png"],
            "run directory '{tmp}/missing-run' does not exist",
        ),
        (["generate", "--run", "{run}", "--out", "{tmp}/exists.png"], "already exists"),
        (["export", "--run", "{tmp}/missing-run", "--format", "tflite"], "does not exist"),
        (
            ["export", "--run", "{run}", "--format", "tflite", "--out", "{tmp}/exists.tflite"],
            "already exists; facegan never overwrites an export",
        ),
        (
            ["export", "--run", "{run}", "--format", "keras", "--out", "{tmp}/model.h5"],
            "must be a .keras file",
        ),
        (["evaluate", "--run", "{tmp}/missing-run"], "does not exist"),
        (["evaluate", "--run", "{run}", "--data", "{tmp}/no-photos"], "does not exist"),
        (
            ["interpolate", "--run", "{tmp}/missing-run", "--seeds", "1,2", "--out", "{tmp}/w.gif"],
            "does not exist",
        ),
        (
            ["project", "--run", "{tmp}/missing-run", "--image", "{tmp}/exists.png"],
            "does not exist",
        ),
        (["serve", "--run", "{tmp}/missing-run"], "does not exist"),
        (["train", "--data", "{tmp}/no-photos"], "does not exist"),
        (["train", "--resume", "{tmp}/missing-run"], "does not exist"),
        (["generate", "--model", "no-such-model", "--seeds", "0"], "no shipped model"),
        (["serve", "--model", "no-such-model"], "no shipped model 'no-such-model'"),
        (["evaluate", "--model", "no-such-model", "--real", "{run}"], "no shipped model"),
        (["train", "--data", "{run}", "--init", "no-such-model"], "no shipped model"),
        (["models", "no-such-model"], "the models are:"),
    ],
)
@pytest.mark.integration
def test_user_errors_that_need_no_tensorflow_come_before_it(argv, message, tmp_path):
    """A missing run, an existing output or a bad path answers at once: TensorFlow never loads."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"preset": "quick-32"}')  # a run (config only)
    for name in ("exists.png", "exists.tflite"):
        (tmp_path / name).write_bytes(b"x")
    fill = {"tmp": str(tmp_path), "run": str(run)}
    result = subprocess.run(
        [sys.executable, "-c", _NO_TENSORFLOW, *[arg.format(**fill) for arg in argv]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    code, imported = json.loads(result.stdout.strip().splitlines()[-1])
    assert (code, imported) == (2, False), result.stderr
    assert message.format(**fill) in result.stderr and result.stderr.count("\n") == 1


def test_every_command_and_option_has_help_text():
    import argparse

    from facegan.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    summaries = {choice.dest: choice.help for choice in commands._choices_actions}
    missing = []
    for name, sub in commands.choices.items():
        if not summaries.get(name) or not sub.description:
            missing.append(name)
        missing += [
            f"{name} {action.option_strings or action.dest}"
            for action in sub._actions
            if not action.help and not isinstance(action, argparse._HelpAction)
        ]
    assert missing == []


def test_an_existing_run_is_always_run_and_a_count_always_n():
    from facegan.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["train", "--run", "runs/x"]).resume == "runs/x"
    assert parser.parse_args(["train", "--resume", "runs/x"]).resume == "runs/x"
    assert parser.parse_args(["evaluate", "--run", "r", "-n", "7"]).num == 7
    assert parser.parse_args(["generate", "--run", "r", "-n", "7", "--out", "o.png"]).num == 7


def test_a_usage_error_shows_the_commands_usage_in_its_one_line(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["generate", "--run", "r", "--out", "o.png", "-n", "0"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert "usage: facegan generate [-h] (--run DIR | --model NAME) [-n N]" in err
    assert "-n/--num" in err


def test_a_misspelt_option_shows_the_commands_usage_and_the_nearest_option(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--stpes", "10"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert err.startswith(
        "facegan: error: unrecognized arguments: --stpes (did you mean --steps?) 10 "
        "(usage: facegan train [-h]"
    )
    with pytest.raises(SystemExit):
        main(["generate", "--run", "r", "--out", "o.png", "--sed=3"])
    err = capsys.readouterr().err
    assert "--sed=3 (did you mean --seed?)" in err and "usage: facegan generate" in err
    with pytest.raises(SystemExit):
        main(["serve", "--run", "r", "--zzzzzz"])  # nothing near: no guess
    err = capsys.readouterr().err
    assert "unrecognized arguments: --zzzzzz (usage: facegan serve" in err
