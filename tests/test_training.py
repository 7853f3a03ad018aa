"""The loop end to end with tiny models: files, resume equivalence, no retracing."""

import json

import numpy as np
import pytest
import tensorflow as tf

import facegan
from conftest import tiny_config
from facegan.artifacts.logs import read_metrics
from facegan.training.state import TrainState
from facegan.training.steps import make_train_step

GO = tf.constant(0)  # the step's `stop` input: nobody asked to stop


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, face_folder):
    """One 6-step RGB run on a folder, shared by the tests that only read it."""
    config = tiny_config(str(face_folder), steps=6)
    return facegan.train(config, tmp_path_factory.mktemp("runs") / "tiny", progress=False)


def test_run_directory_contents(tiny_run):
    root = tiny_run.directory
    saved = json.loads((root / "config.json").read_text())
    assert saved["model"]["channels"] == 3  # resolved from the data, never left automatic
    assert saved["train"]["steps"] == 6
    assert sorted(p.name for p in (root / "samples").iterdir()) == [
        "step-0000000.png",
        "step-0000002.png",
        "step-0000004.png",
        "step-0000006.png",
    ]
    index_files = sorted(p.name for p in (root / "checkpoints").glob("*.index"))
    assert index_files == ["ckpt-2.index", "ckpt-4.index", "ckpt-6.index"]
    records = read_metrics(root / "metrics.jsonl")
    assert [r["step"] for r in records] == [2, 4, 6]
    for record in records:
        for key in ("g_loss", "d_loss", "d_real", "d_fake", "img_per_s", "time"):
            assert np.isfinite(record[key]), key
        assert 0 <= record["d_real"] <= 1 and 0 <= record["d_fake"] <= 1
    assert list((root / "logs").glob("events.out.tfevents.*"))
    assert "data: 24 images" in (root / "train.log").read_text()


def test_tensorboard_has_scalars_and_samples(tiny_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tiny_run.directory / "logs"), size_guidance={"tensors": 0})
    events.Reload()
    tags = set(events.Tags()["tensors"])
    assert {"g_loss", "d_loss", "d_real", "d_fake", "img_per_s", "samples"} <= tags
    assert [e.step for e in events.Tensors("g_loss")] == [2, 4, 6]


@pytest.mark.integration
def test_checkpoints_keep_the_last_three(tmp_path, face_folder):
    run = facegan.train(
        tiny_config(str(face_folder), steps=5, checkpoint_every=1), tmp_path / "r", progress=False
    )
    kept = sorted(
        int(p.name.split("-")[1].split(".")[0])
        for p in (run.directory / "checkpoints").glob("*.index")
    )
    assert kept == [3, 4, 5]


def _checkpoint_values(path: str) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(path)
    # save_counter counts saves (2 vs 3 here), not training state
    return {
        key: reader.get_tensor(key)
        for key in reader.get_variable_to_shape_map()
        if "OBJECT_GRAPH" not in key and not key.startswith("save_counter")
    }


def _faces_recipe_shrunk(steps: int):
    """faces-64's recipe (DiffAugment, EMA, auto precision) at 32 px, with the SLE and
    minibatch-stddev options on: their layers must resume exactly too."""
    from facegan.presets import get_preset

    return get_preset("faces-64").with_overrides(
        {
            "data.source": "embedded:lfw",
            "model.resolution": 32,
            "model.width": 8,
            "model.max_width": 32,
            "model.latent_dim": 16,
            "train.batch_size": 8,
            "train.steps": steps,
            "train.seed": 3,
            "train.log_every": 2,
            "train.sample_every": 2,
            "train.checkpoint_every": 2,
            "train.sample_grid": 4,
            "model.g_skip_excitation": True,
            "model.d_minibatch_std": True,
        }
    )


@pytest.mark.integration
@pytest.mark.parametrize("recipe", ["tiny", "faces"])
def test_resume_gives_the_same_weights_as_one_go(tmp_path, recipe):
    steps = 6
    config = tiny_config(steps=steps) if recipe == "tiny" else _faces_recipe_shrunk(steps)
    assert recipe == "tiny" or config.model.g_skip_excitation
    whole = facegan.train(config, tmp_path / "whole", progress=False)
    half = facegan.train(
        config.with_overrides({"train.steps": steps // 2}), tmp_path / "half", progress=False
    )
    assert half.step == steps // 2
    resumed = facegan.resume(tmp_path / "half", steps=steps, progress=False)
    assert resumed.step == steps

    a, b = (
        _checkpoint_values(whole.latest_checkpoint()),
        _checkpoint_values(resumed.latest_checkpoint()),
    )
    assert a.keys() == b.keys()
    # generator, discriminator (batch-norm statistics included), both optimizers'
    # moments and iteration counts, the step counter (noise is stateless in the step)
    assert any("g_optimizer" in k for k in a) and any(k.startswith("step") for k in a)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-6, atol=1e-6, err_msg=key)
    # the resumed run appended to its metrics history, marking where it resumed
    history = [
        (r["step"], r.get("event")) for r in read_metrics(tmp_path / "half" / "metrics.jsonl")
    ]
    assert history == [(2, None), (3, None), (3, "resume"), (4, None), (6, None)]


@pytest.mark.integration
def test_train_step_is_traced_once_and_runs_under_a_strategy():
    config = tiny_config().with_overrides({"model.channels": "1"})
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        state = TrainState.create(config)
    step = make_train_step(state, config, strategy)
    real = tf.random.uniform([8, 16, 16, 1], -1, 1)
    before = state.generator.trainable_variables[0].numpy().copy()
    for _ in range(25):
        out = step(real, GO)
    assert step.experimental_get_tracing_count() == 1
    assert int(state.step.numpy()) == 25
    assert int(state.g_optimizer.iterations.numpy()) == 25
    assert set(out) == {
        "g_loss",
        "d_loss",
        "d_real",
        "d_fake",
        "d_real_positive",
        "skipped",
        "bad_streak",
        "stop",
    }
    assert float(out["skipped"]) == 0 and int(out["bad_streak"]) == 0
    assert not np.allclose(before, state.generator.trainable_variables[0].numpy())
    with pytest.raises((ValueError, TypeError)):
        step(tf.zeros([4, 16, 16, 1]), GO)  # the signature is fixed: no silent retrace


@pytest.mark.integration
def test_xla_switch_compiles_the_step():
    config = tiny_config().with_overrides({"model.channels": "1", "train.jit": "true"})
    state = TrainState.create(config)
    step = make_train_step(state, config, tf.distribute.get_strategy())
    out = step(tf.random.uniform([8, 16, 16, 1], -1, 1), GO)
    assert np.isfinite(float(out["g_loss"])) and int(state.step.numpy()) == 1


def test_generate_is_deterministic_per_seed(tiny_run):
    run = facegan.load(tiny_run.directory)
    a, b, c = run.generate(6, seed=7), run.generate(6, seed=7), run.generate(6, seed=8)
    assert a.dtype == np.uint8 and a.shape == (6, 16, 16, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(run.generate(2, seed=7), a[:2])


def test_generated_images_match_the_sample_grid_generator(tiny_run):
    # The last sample grid was drawn from the final weights through the same compiled
    # Sampler as `generate`: loading must give those weights, and the grid shows the
    # faces of `generate --seed <train.seed>`.
    from PIL import Image

    from facegan.artifacts.images import make_grid

    run = facegan.load(tiny_run.directory)
    grid = make_grid(run.generate(4, seed=run.config.train.seed))
    saved = np.asarray(Image.open(tiny_run.directory / "samples" / "step-0000006.png"))
    np.testing.assert_array_equal(grid, saved)


def test_resume_of_a_finished_run_does_nothing(tiny_run):
    before = sorted(p.name for p in (tiny_run.directory / "checkpoints").iterdir())
    run = facegan.resume(tiny_run.directory, progress=False)
    assert run.step == 6
    assert sorted(p.name for p in (tiny_run.directory / "checkpoints").iterdir()) == before


@pytest.mark.integration
def test_broken_files_are_skipped_counted_and_named(tmp_path, mixed_folder):
    from conftest import MIXED_BROKEN, MIXED_GOOD

    run = facegan.train(tiny_config(str(mixed_folder), steps=1), tmp_path / "r", progress=False)
    log = (run.directory / "train.log").read_text()
    assert f"data: {MIXED_GOOD} images" in log
    assert f"skipped {len(MIXED_BROKEN)} file(s) that cannot be used" in log
    for name in MIXED_BROKEN:
        assert f"skipped {name}: " in log
    assert run.step == 1
