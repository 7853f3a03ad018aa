"""Where the data is: links that leave the data folder, and data.source stored absolute."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from facegan.cli import main
from facegan.data import problems as bad
from facegan.data.sources import open_source


@pytest.fixture()
def linked(tmp_path):
    """data/ with a.png, sub/c.png, c2.png -> sub/c.png (inside), b.png and more/ -> elsewhere/."""
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    (data / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    rng = np.random.default_rng(0)
    for path in (data / "a.png", data / "sub" / "c.png", elsewhere / "b.png"):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)
    os.symlink(elsewhere / "b.png", data / "b.png")
    os.symlink(elsewhere, data / "more")
    os.symlink(data / "sub" / "c.png", data / "c2.png")
    return data


def test_links_out_of_the_folder_are_followed_and_listed_by_default(linked):
    source = open_source(str(linked))
    assert sorted(source.names) == ["a.png", "b.png", "c2.png", "more/b.png", "sub/c.png"]
    assert sorted(name for name, _ in source.outside_links) == ["b.png", "more"]


def test_links_inside_keeps_them_out_and_reports_each(linked):
    source = open_source(str(linked), links="inside")
    assert sorted(source.names) == ["a.png", "c2.png", "sub/c.png"]
    assert sorted((name, kind) for name, kind, _ in source.problems) == [
        ("b.png", bad.OUTSIDE_LINK),
        ("more", bad.OUTSIDE_LINK),
    ]


def test_inspect_data_says_where_the_links_go(linked, capsys):
    main(["inspect-data", str(linked), "--no-cache", "--resolution", "32"])
    out = capsys.readouterr().out
    assert "2 symbolic link(s) point outside the data folder and were followed" in out
    assert "more -> " in out and "elsewhere" in out
    main(["inspect-data", str(linked), "--no-cache", "--resolution", "32", "--links", "inside"])
    out = capsys.readouterr().out
    assert "outside the data folder; not followed (data.links = inside)" in out


@pytest.mark.integration
def test_data_source_is_stored_absolute_so_resume_works_from_anywhere(
    linked, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "train",
                "--data",
                "data",
                "--preset",
                "quick-32",
                "--steps",
                "1",
                "--run-dir",
                "run",
                "--no-progress",
                "--set",
                "model.width=4",
                "--set",
                "train.batch_size=2",
            ]
        )
        == 0
    )
    stored = json.loads((tmp_path / "run" / "config.json").read_text())["data"]["source"]
    assert stored == str(linked)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["train", "--resume", str(tmp_path / "run"), "--steps", "2", "--no-progress"]) == 0
