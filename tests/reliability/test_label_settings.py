"""Class labels that do not fit the data are refused when training starts, not after it.

UTKFace has one file with gender 3: `data.label_names = "gender=male,female"` must
stop `facegan train` at once (not every `generate` after a whole run), a class that
rare is named in a warning, a finished run takes class names for one command
(`--set data.label_names=...`) without being changed, and a bad `--label` lists
the class names.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from facegan.config import DataConfig
from facegan.data.labels import LabelError, label_items, schema_from_config

GENDER = r"pattern:^\d+_(?P<gender>\d)_"


def _utk_folder(folder, genders):
    """UTKFace-style files, one per entry of `genders`: age_gender_race_date.jpg.chip.jpg."""
    folder.mkdir()
    for i, gender in enumerate(genders):
        pixels = np.full((20, 20, 3), 40 + 60 * gender, np.uint8)
        Image.fromarray(pixels).save(folder / f"{20 + i}_{gender}_0_2017{i:04d}.jpg.chip.jpg")
    return folder


def test_train_refuses_label_names_that_miss_a_class_before_training(tmp_path, capsys):
    from facegan.cli import main

    data = _utk_folder(tmp_path / "utk", [0, 1] * 4 + [3])  # one stray gender 3, as in UTKFace
    code = main(
        [
            "train",
            "--data",
            str(data),
            "--steps",
            "2",
            "--run-dir",
            str(tmp_path / "run"),
            "--set",
            f"data.labels={GENDER}",
            "--set",
            "data.label_names=gender=male,female",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(
        "facegan: error: data.label_names gives `gender` 2 names but it has 3 classes "
        "(one of 0, 1, 3): name each class in that order"
    )
    assert not list((tmp_path / "run").glob("checkpoints/ckpt-*"))  # no step was trained


def test_rare_classes_are_counted_and_named():
    names = [f"{20 + i}_{g}_0_x.jpg" for i, g in enumerate([0, 1] * 30 + [3])]
    labelled = label_items(names, DataConfig(labels=GENDER))
    assert labelled.schema.rare_classes(labelled.labels) == ["gender 3: 1 image"]
    assert labelled.schema.rare_classes(labelled.labels, minimum=31) == [
        "gender 0: 30 images",
        "gender 1: 30 images",
        "gender 3: 1 image",
    ]


def test_training_start_warns_about_rare_classes(tmp_path, caplog):
    from facegan.data import open_source
    from facegan.data.pipeline import load_training_images
    from facegan.training.console import report_data

    data = _utk_folder(tmp_path / "utk", [0, 1] * 10 + [3])
    images = load_training_images(
        open_source(str(data)),
        DataConfig(source=str(data), labels=GENDER),
        16,
        3,
        cache_dir=tmp_path / "cache",
    )
    # Not under "facegan": a training test may have stopped that logger propagating.
    log = logging.getLogger("test-rare-classes")
    with caplog.at_level(logging.WARNING, logger=log.name):
        report_data(log, images)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("labels: 3 class(es) have fewer than 20 images")
    assert "gender 0: 10 images; gender 1: 10 images; gender 3: 1 image" in warnings[0]
    assert "as often as any other" in warnings[0]


def test_a_bad_label_request_lists_the_class_names():
    data = DataConfig(label_values="gender=0,1", label_names="gender=male,female")
    schema = schema_from_config(data, "gender:2")
    with pytest.raises(LabelError) as raised:
        schema.encode({"gender": "woman"})
    assert str(raised.value) == "label gender=woman: gender must be one of male, female (or 0, 1)"


@pytest.mark.integration
def test_a_finished_run_takes_label_names_for_one_command(tiny_conditional_run, tmp_path, capsys):
    from facegan.cli import main

    config_before = (tiny_conditional_run / "config.json").read_bytes()
    out = tmp_path / "by-gender"
    names = ["--set", "data.label_names=gender=man,woman"]
    run = ["--run", str(tiny_conditional_run), "-n", "2"]
    assert main(["generate", *run, "--by", "gender", "--out", str(out), *names]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["00-gender-man.png", "01-gender-woman.png"]
    assert (
        main(
            ["generate", *run, "--label", "gender=woman", "--out", str(tmp_path / "w.png")] + names
        )
        == 0
    )
    assert (tmp_path / "w.png").is_file()
    capsys.readouterr()

    # wrong names, or any other setting, fail at once with one line; the run is never changed
    bad = ["--set", "data.label_names=gender=man,woman,other"]
    assert main(["generate", *run, "--out", str(tmp_path / "x.png"), *bad]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "gives `gender` 3 names but it has 2 classes" in err
    assert main(["serve", "--run", str(tiny_conditional_run), "--set", "model.width=4"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "facegan: error: --set on a finished run takes only data.label_names=...; received "
        "'model.width=4' (the rest was fixed when the run was trained)\n"
    )
    assert (tiny_conditional_run / "config.json").read_bytes() == config_before
