"""Every preset trains 50 steps with nothing non-finite: its recipe shrunk in CI, full size with -m slow."""

import json

import numpy as np
import pytest
import tensorflow as tf

import facegan
from facegan.presets import get_preset, preset_names

# Trains, starts processes or drives a browser: not in the fast tier.
pytestmark = pytest.mark.integration


def _shrunk(name: str, data: str):
    """The preset's recipe (loss, updates, augmentation, EMA, precision, arch) on a tiny model."""
    preset = get_preset(name)
    return preset.with_overrides(
        {
            "data.source": data,
            "model.resolution": 16,
            "model.width": 8,
            "model.max_width": 32,
            "model.latent_dim": 16,
            "train.batch_size": 8,
            "train.steps": 50,
            "train.log_every": 10,
            "train.sample_every": 50,
            "train.checkpoint_every": 50,
            "train.sample_grid": 4,
        }
    )


def _full_size(name: str, data: str):
    return get_preset(name).with_overrides(
        {
            "data.source": data,
            "train.batch_size": 4,
            "train.steps": 50,
            "train.log_every": 10,
            "train.sample_every": 50,
            "train.checkpoint_every": 50,
            "train.sample_grid": 4,
        }
    )


def _assert_50_finite_steps(run):
    records = [json.loads(line) for line in (run.directory / "metrics.jsonl").open()]
    logged = [r for r in records if "event" not in r]
    assert [r["step"] for r in logged] == [10, 20, 30, 40, 50]
    for record in logged:
        assert record["skipped"] == 0, record
        for key in ("g_loss", "d_loss", "d_real", "d_fake"):
            assert record[key] is not None and np.isfinite(record[key]), (key, record)
    assert not [r for r in records if r.get("event") == "rollback"]
    reader = tf.train.load_checkpoint(run.latest_checkpoint())
    for key in reader.get_variable_to_shape_map():
        value = reader.get_tensor(key)
        if np.asarray(value).dtype.kind == "f":
            assert np.isfinite(value).all(), key
    images = facegan.load(run.directory).generate(4, seed=0)
    assert images.dtype == np.uint8 and images.std() > 0


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_recipe_trains_50_steps_without_a_non_finite_value(
    name, tmp_path, face_folder
):
    run = facegan.train(_shrunk(name, str(face_folder)), tmp_path / name, progress=False)
    _assert_50_finite_steps(run)


@pytest.mark.slow
@pytest.mark.parametrize("name", preset_names())
def test_every_preset_at_full_size_trains_50_steps(name, tmp_path, face_folder):
    run = facegan.train(_full_size(name, str(face_folder)), tmp_path / name, progress=False)
    _assert_50_finite_steps(run)


@pytest.mark.parametrize("name, resolution", [("dcgan-64", 64), ("dcgan-128", 128)])
def test_the_dcgan_baselines_are_the_classic_recipe(name, resolution):
    config = get_preset(name)
    assert (config.model.arch, config.model.width, config.model.resolution) == (
        "dcgan",
        64,
        resolution,
    )
    assert not (config.model.d_minibatch_std or config.model.g_skip_excitation)
    assert config.model.d_width is None
    assert config.loss.kind == "nonsaturating" and config.loss.r1_gamma == 0
    assert config.augment.kind == "none" and config.train.ema_kimg == 0
    assert config.train.updates == "simultaneous" and config.train.precision == "float32"
    assert (config.optim.g_lr, config.optim.d_lr, config.optim.beta1) == (2e-4, 2e-4, 0.5)
    assert not config.model.d_spectral_norm and config.train.batch_size == 64


def test_the_long_budget_preset_is_faces_64_wider_and_the_shipped_models_recipe():
    import dataclasses

    from facegan.pretrained import shipped_model

    short, long = get_preset("faces-64"), get_preset("faces-64-long")
    assert (short.model.width, long.model.width) == (32, 48)
    same = dataclasses.replace(long, preset="faces-64", model=short.model)
    assert same == short  # only the width differs
    # the shipped model is this recipe, its channels filled in from the (RGB) data
    assert shipped_model("faces-64").config.model == dataclasses.replace(long.model, channels=3)
