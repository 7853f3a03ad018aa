"""Shipped models as a mechanism: `facegan models`, `--model NAME` in every command that
takes `--run`, `facegan.load(NAME)`, `train --init`, and a model never written to.

A tiny trained run is shipped (`artifacts.shipping.ship_run`) into a temporary
models folder that stands in for the package's own; the real shipped models'
weights are tested in tests/test_shipped_models.py.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import facegan
import facegan.pretrained as pretrained
from conftest import serving_in_thread, tiny_config
from facegan.cli import main

NAME = "tiny-model"
FACTS = {
    "name": NAME,
    "summary": "a 16 px test model",
    "data": "24 generated test images",
    "data_terms": "test data, no terms (UTKFace-style note: non-commercial research use only)",
    "recipe": "tiny-test",
    "command": "pytest",
    "cpu_minutes": 0.01,
    "machine": "the test machine",
    "date": "2026-12-06",
    "metrics": {"fid": 400.0, "face_rate": 0.0, "num": 8, "real": "nothing", "command": "none"},
}


@pytest.fixture(scope="session")
def models_folder(tmp_path_factory, tiny_run) -> Path:
    from facegan.artifacts.shipping import ship_run

    folder = tmp_path_factory.mktemp("models")
    ship_run(tiny_run, folder / NAME, FACTS, compare_seeds=16)
    return folder


@pytest.fixture
def model(models_folder, monkeypatch) -> Path:
    """The tiny model, installed as if it shipped with facegan."""
    monkeypatch.setattr(pretrained, "MODELS_DIR", models_folder)
    return models_folder / NAME


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_model_folder_holds_weights_config_and_card(model, tiny_run):
    names = {p.name for p in model.iterdir()}
    assert names == {"weights.npz", "config.json", "card.md", "card.json", "reference.npz"}
    facts = json.loads((model / "card.json").read_text())
    assert facts["step"] == facegan.load(tiny_run).step
    with np.load(model / "weights.npz") as weights:
        assert {key.split("/")[0] for key in weights} == {"generator_ema", "discriminator"}
        assert all(weights[k].dtype == np.float16 for k in weights if "seed" not in k)
    # float16 storage costs at most 1/255 of a pixel (measured by ship_run)
    assert facts["storage"]["max_pixel_diff"] <= 1


def test_models_lists_them_and_prints_a_card(model, capsys):
    code, out, _ = _cli(capsys, "models")
    assert code == 0 and out.startswith(NAME) and "16 px dcgan" in out
    code, out, _ = _cli(capsys, "models", NAME)
    assert code == 0 and out.startswith(f"# {NAME}")
    assert "non-commercial research use only" in out and "Steps:" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "--model", "nope", "--seeds", "0-3"],
        ["serve", "--model", "nope", "--port", "0"],
        ["export", "--model", "nope", "--format", "tflite"],
        ["interpolate", "--model", "nope", "--seeds", "0,1", "--out", "x.gif"],
        ["project", "--model", "nope", "--image", "IMAGE", "--out", "p"],
        ["evaluate", "--model", "nope", "--real", "FACES"],
        ["models", "nope"],
        ["train", "--data", "FACES", "--init", "nope"],
    ],
)
def test_a_bad_model_name_is_one_line_naming_the_models(
    model, argv, capsys, tmp_path, monkeypatch, face_folder
):
    monkeypatch.chdir(tmp_path)
    image = next(face_folder.iterdir())
    argv = [{"IMAGE": image, "FACES": face_folder}.get(a, a) for a in argv]
    code, out, err = _cli(capsys, *argv)
    assert code == 2, err
    assert err.count("\n") == 1 and NAME in err and "'nope'" in err, err
    assert not any(tmp_path.iterdir())


def test_load_by_name_draws_the_runs_faces_within_one_level(model, tiny_run):
    shipped = facegan.load(NAME)
    assert shipped.shipped is not None and shipped.name == NAME
    assert shipped.step == facegan.load(tiny_run).step
    faces = shipped.generate_seeds([0, 1, 2, 3, 42, 1000])
    exact = facegan.load(tiny_run).generate_seeds([0, 1, 2, 3, 42, 1000])
    assert np.abs(faces.astype(int) - exact.astype(int)).max() <= 1
    # seeds mean the same faces: generate(n, seed) and generate_seeds agree bit for bit
    assert np.array_equal(shipped.generate(4, seed=0), faces[:4])
    assert np.array_equal(facegan.load(model=NAME).generate(1, seed=42)[0], faces[4])


def test_generated_faces_match_the_cards_checksums(model):
    from facegan.artifacts.shipping import CHECKSUM_SEEDS, image_checksum

    checksums = json.loads((model / "card.json").read_text())["checksums"]
    faces = facegan.load(NAME).generate_seeds(CHECKSUM_SEEDS)
    assert {str(s): image_checksum(f) for s, f in zip(CHECKSUM_SEEDS, faces)} == checksums


def test_generate_with_a_model_writes_a_named_grid_here(model, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = _digest(model)
    code, out, err = _cli(capsys, "generate", "--model", NAME, "--seeds", "0-3")
    assert code == 0, err
    grid = tmp_path / f"{NAME}-seeds-0-3.png"
    assert out.strip() == grid.name and Image.open(grid).size == (2 * 16 + 3 * 2, 2 * 16 + 3 * 2)
    # the same command again refuses to overwrite it
    code, _, err = _cli(capsys, "generate", "--model", NAME, "--seeds", "0-3")
    assert code == 2 and "already exists" in err
    assert _digest(model) == before


def test_interpolate_export_project_and_evaluate_take_a_model(
    model, capsys, tmp_path, monkeypatch, face_folder
):
    monkeypatch.chdir(tmp_path)
    before = _digest(model)
    code, _, err = _cli(
        capsys,
        "interpolate",
        "--model",
        NAME,
        "--seeds",
        "0,1",
        "--frames",
        "3",
        "--out",
        tmp_path / "walk.gif",
    )
    assert code == 0 and (tmp_path / "walk.gif").is_file(), err
    code, out, err = _cli(capsys, "export", "--model", NAME, "--format", "tflite")
    assert code == 0, err
    exported = Path(out.strip().splitlines()[-1])
    assert exported.is_file() and exported.resolve().is_relative_to(tmp_path.resolve())
    image = next(face_folder.iterdir())
    code, _, err = _cli(
        capsys,
        "project",
        "--model",
        NAME,
        "--image",
        image,
        "--steps",
        "2",
        "--out",
        tmp_path / "projected",
    )
    assert code == 0, err
    code, out, err = _cli(
        capsys,
        "evaluate",
        "--model",
        NAME,
        "--real",
        face_folder,
        "--metrics",
        "face_rate",
        "-n",
        "8",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["step"] == json.loads((model / "card.json").read_text())["step"]
    assert _digest(model) == before  # nothing was written into the model


def test_the_page_serves_a_model(model):
    from facegan.serve import FaceApp, make_server

    app = FaceApp(facegan.load(model=NAME))
    with serving_in_thread(make_server("127.0.0.1", 0, app)) as server:
        with urllib.request.urlopen(f"{server.url}api/info") as response:
            info = json.loads(response.read())
    assert info["run"] == NAME


def test_a_shipped_model_is_never_trained_further(model, capsys, tmp_path):
    before = _digest(model)
    for argv in (
        ["train", "--resume", NAME],
        ["train", "--resume", model],
        ["train", "--run-dir", model, "--overwrite", "--steps", "1"],
        ["train", "--run-dir", model, "--auto-resume"],
    ):
        code, _, err = _cli(capsys, *argv)
        assert code == 2, (argv, err)
        assert err.count("\n") == 1 and "never trained further" in err and "--init" in err
    assert _digest(model) == before


def _variables(model) -> list[np.ndarray]:
    return [np.asarray(v.numpy()) for v in model.variables]


def test_init_starts_from_the_models_weights_with_fresh_optimizers(model):
    import tensorflow as tf

    from facegan.artifacts.init_source import with_init_network
    from facegan.artifacts.weights_file import load_weights
    from facegan.models import build_discriminator, build_generator
    from facegan.training.setup import build_state

    config = with_init_network(
        tiny_config("embedded:lfw", ema_kimg=0.01).with_overrides(
            {"train.init": NAME, "model.width": 4}
        )
    )
    assert config.model == facegan.load(NAME).config.model  # the model's network, not width 4
    state = build_state(config, tf.distribute.get_strategy())
    state.load_init(NAME)
    expected_g = build_generator(config.model)
    expected_d = build_discriminator(config.model)
    load_weights(model / "weights.npz", {"generator_ema": expected_g, "discriminator": expected_d})
    for net in (state.generator, state.generator_ema):
        for got, want in zip(_variables(net), _variables(expected_g), strict=True):
            np.testing.assert_array_equal(got, want)
    for got, want in zip(_variables(state.discriminator), _variables(expected_d), strict=True):
        np.testing.assert_array_equal(got, want)
    assert all(not np.any(v.numpy()) for v in state.g_optimizer.variables[2:])  # fresh moments


def test_init_from_a_run_restores_its_networks(tiny_run):
    import tensorflow as tf

    from facegan.artifacts.init_source import with_init_network
    from facegan.training.setup import build_state

    config = with_init_network(
        tiny_config(ema_kimg=0.01).with_overrides({"train.init": str(tiny_run)})
    )
    state = build_state(config, tf.distribute.get_strategy())
    state.load_init(str(tiny_run))
    exact = facegan.load(tiny_run).generator()
    for got, want in zip(_variables(state.generator_ema), _variables(exact), strict=True):
        np.testing.assert_array_equal(got, want)


def test_train_init_on_grey_photos_makes_an_rgb_run(model, capsys, tmp_path):
    grey = tmp_path / "grey"
    grey.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (20, 20), np.uint8), "L").save(grey / f"{i}.png")
    run_dir = tmp_path / "tuned"
    code, _, err = _cli(
        capsys,
        "train",
        "--data",
        grey,
        "--init",
        NAME,
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--run-dir",
        run_dir,
        "--no-progress",
    )
    assert code == 0, err
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train"]["init"] == NAME and config["model"]["channels"] == 3
    assert config["model"] == json.loads((model / "config.json").read_text())["model"]
    assert (
        "starting from the weights of shipped model tiny-model"
        in (run_dir / "train.log").read_text()
    )


def test_init_refuses_network_settings_its_weights_cannot_take(model, capsys, tmp_path):
    code, _, err = _cli(
        capsys,
        "train",
        "--data",
        tmp_path,
        "--init",
        NAME,
        "--set",
        "model.width=32",
        "--set",
        "model.resolution=64",
    )
    assert code == 2 and err.count("\n") == 1
    assert "model.width=32" in err and "model.resolution=64" in err and "cannot apply" in err
    code, _, err = _cli(capsys, "train", "--init", NAME)
    assert code == 2 and "--data" in err
