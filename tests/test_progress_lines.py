"""Long commands are never silent in a log file: lines on stderr when it is not a terminal."""

from __future__ import annotations

import json

import pytest

import facegan
import facegan.progress
from conftest import tiny_config
from facegan.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture()
def every_line(monkeypatch):
    """Progress lines at every update (the real interval is ~10 s)."""
    monkeypatch.setattr(facegan.progress, "LINE_EVERY", 0.0)


def test_evaluate_reports_its_progress_when_stderr_is_a_file(
    tiny_run, tmp_path, capsys, every_line
):
    # capsys' stderr is not a terminal, as in `facegan evaluate ... 2> log`
    code = main(["evaluate", "--run", str(tiny_run), "--metrics", "fid", "-n", "8"])
    err = capsys.readouterr().err
    assert code == 0, err[-2000:]
    assert "inception features: " in err and "img/s" in err


def test_export_says_it_is_still_writing(tiny_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(facegan.progress, "LINE_EVERY", 0.02)
    assert (
        main(
            [
                "export",
                "--run",
                str(tiny_run),
                "--format",
                "savedmodel",
                "--out",
                str(tmp_path / "faces"),
            ]
        )
        == 0
    )
    assert "export: writing savedmodel to " in capsys.readouterr().err


def test_a_timed_run_shows_its_budget_and_draws_grids_at_start_end_and_by_minutes(
    tmp_path, face_folder
):
    config = tiny_config(
        str(face_folder), steps=4, sample_every=1000, log_every=2, minutes=30.0, sample_minutes=1e-9
    )
    run = facegan.train(config, tmp_path / "run", progress=False)
    grids = sorted(p.name for p in (run.directory / "samples").glob("step-*.png"))
    # step 0 (the untrained generator), then every step: sample_minutes has always passed
    assert grids == [f"step-000000{k}.png" for k in range(5)]
    text = (run.directory / "train.log").read_text()
    assert "time budget: 30 min of training (train.minutes)" in text
    assert "/30 min" in text  # the step lines show the minutes spent
    records = [json.loads(line) for line in (run.directory / "metrics.jsonl").open()]
    assert [r["step"] for r in records if "g_loss" in r] == [2, 4]


def test_an_untimed_run_draws_the_step_0_and_last_grids(tmp_path, face_folder):
    config = tiny_config(str(face_folder), steps=3, sample_every=1000)
    run = facegan.train(config, tmp_path / "run", progress=False)
    grids = sorted(p.name for p in (run.directory / "samples").glob("step-*.png"))
    assert grids == ["step-0000000.png", "step-0000003.png"]
