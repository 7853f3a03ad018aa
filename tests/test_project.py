"""`facegan project`: optimise a latent (z, or stylegan2's w) to reproduce a photo."""

import json

import numpy as np
import pytest
from PIL import Image

import facegan
from conftest import tiny_config
from facegan import projection
from facegan.cli import main


@pytest.fixture(scope="module")
def run(tiny_run):
    return facegan.load(tiny_run)


@pytest.fixture(scope="module")
def varied_run(tmp_path_factory, face_folder):
    """A tiny DCGAN whose faces differ from seed to seed.

    `tiny_run`'s 2-step DCGAN still has its N(0, 0.02) initial weights: every
    latent gives the same gray image to within 2 levels, below what a uint8
    target can tell apart. 20 steps at a high learning rate spread the faces
    over the whole 0-255 range (in ~5 s).
    """
    config = tiny_config(str(face_folder), steps=20, checkpoint_every=20).with_overrides(
        {"optim.g_lr": "0.01", "optim.d_lr": "0.01"}
    )
    run = facegan.train(config, tmp_path_factory.mktemp("varied") / "run", progress=False)
    return facegan.load(run.directory)


@pytest.fixture(scope="module")
def generated_target(varied_run):
    return varied_run.generate(1, seed=5)[0]  # a face the generator can make exactly


@pytest.fixture(scope="module")
def projected(varied_run, generated_target):
    # candidates are seeds 100 .. 115: the target's own seed (5) is not among them
    return projection.project(varied_run, generated_target, steps=60, seed=100, candidates=16)


@pytest.mark.integration
def test_projection_lowers_the_loss_and_keeps_the_latent_shape(projected):
    assert projected.space == "z" and projected.w is None and projected.labels is None
    assert projected.latent.shape == (1, 16) and projected.latent.dtype == np.float32
    assert len(projected.loss) == 61 and len(projected.pixel_loss) == 61  # 60 steps + final
    assert projected.loss[-1] < projected.loss[0]
    assert projected.pixel_loss[-1] < 0.5 * projected.pixel_loss[0]


def test_projection_of_a_generated_face_beats_a_random_latent(
    varied_run, projected, generated_target
):
    run = varied_run
    random_mse, _ = projection.mse_psnr(run.generate(1, seed=6)[0], generated_target)
    assert projected.mse < 0.25 * random_mse
    # latent.npy reproduces the reconstruction through the ordinary sampling path
    np.testing.assert_array_equal(
        run.generate_from_latents(projected.latent)[0], projected.reconstruction
    )
    mse, psnr = projection.mse_psnr(projected.reconstruction, generated_target)
    assert (mse, psnr) == (projected.mse, projected.psnr) and psnr > 20


def test_cli_writes_every_file_next_to_the_image_and_refuses_to_repeat(run, tmp_path, capsys):
    photo = tmp_path / "face.png"
    # larger and not square: centre-cropped and resized like training data
    Image.fromarray(run.generate(1, seed=5)[0]).resize((32, 32)).crop((0, 0, 32, 40)).save(photo)
    args = [
        "project",
        "--run",
        str(run.directory),
        "--image",
        str(photo),
        "--steps",
        "12",
        "--candidates",
        "8",
    ]
    assert main(args) == 0
    out = tmp_path / "face-projection"
    printed = capsys.readouterr().out
    assert str(out) in printed and "PSNR" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "latent.npy",
        "progress.json",
        "reconstruction.png",
        "side-by-side.png",
    ]
    assert np.load(out / "latent.npy").shape == (1, 16)
    progress = json.loads((out / "progress.json").read_text())
    assert len(progress["loss"]) == 13 and progress["final_loss"] <= progress["initial_loss"]
    assert progress["space"] == "z" and progress["psnr"] > 0
    with Image.open(out / "reconstruction.png") as image:
        assert image.size == (16, 16)
    with Image.open(out / "side-by-side.png") as image:
        assert image.size[0] > 2 * 256 and image.size[1] > 256  # two upscaled tiles
    assert main(args) == 2  # the output folder exists now
    assert "already exists" in capsys.readouterr().err
    missing = str(tmp_path / "nope.jpg")
    assert main(["project", "--run", str(run.directory), "--image", missing]) == 2


def test_a_file_that_is_not_an_image_is_a_user_error(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    with pytest.raises(facegan.UserError, match="cannot be read"):
        projection.load_target(bad, 16, 3)


def test_conditional_projection_holds_requested_labels(tiny_conditional_run):
    run = facegan.load(tiny_conditional_run)
    target = run.generate(1, seed=2, labels={"gender": "1"})[0]
    result = projection.project(run, target, steps=3, candidates=8, request={"gender": "1"})
    assert result.labels.shape == (1, 2) and result.label_names["gender"] == "gender 1"
    assert result.loss[-1] <= result.loss[0]


@pytest.fixture(scope="module")
def stylegan2_run(tmp_path_factory, face_folder):
    config = tiny_config(str(face_folder), steps=1).with_overrides(
        {"model.arch": "stylegan2", "model.mapping_layers": "2"}
    )
    return facegan.train(config, tmp_path_factory.mktemp("sg2") / "run", progress=False).directory


@pytest.mark.integration
def test_stylegan2_projects_in_w_space(stylegan2_run, tmp_path):
    run = facegan.load(stylegan2_run)
    target = run.generate(1, seed=5)[0]
    result = projection.project(run, target, steps=20, candidates=8)
    assert result.space == "w" and result.latent is None and result.w.shape == (1, 16)
    assert result.pixel_loss[-1] < result.pixel_loss[0]
    out = projection.save_projection(result, tmp_path / "sg2-projection")
    assert (out / "w.npy").is_file() and not (out / "latent.npy").exists()
    np.testing.assert_array_equal(np.load(out / "w.npy"), result.w)
