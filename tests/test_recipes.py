"""The modern recipes inside the compiled step: alternating updates, R1, EMA, ADA, precision."""

import numpy as np
import pytest
import tensorflow as tf

import facegan
from conftest import tiny_config
from facegan.training.state import TrainState
from facegan.training.steps import images_per_step, make_train_step

# Trains, starts processes or drives a browser: not in the fast tier.
pytestmark = pytest.mark.integration

GO = tf.constant(0)  # the step's `stop` input: nobody asked to stop


def _gray(config):
    return config.with_overrides({"model.channels": "1"})


def _stepper(config):
    state = TrainState.create(config)
    step = make_train_step(state, config, tf.distribute.get_strategy())
    batch = tf.random.stateless_uniform([images_per_step(config), 16, 16, 1], [1, 2], -1, 1)
    return state, lambda: step(batch, GO)


def test_alternating_wgan_gp_makes_n_critic_d_updates_per_g_update():
    config = _gray(tiny_config()).with_overrides(
        {
            "loss.kind": "wasserstein",
            "loss.n_critic": "3",
            "train.updates": "alternating",
            "model.d_spectral_norm": "true",
        }
    )
    assert images_per_step(config) == 24  # a fresh real batch for every critic update
    state, run = _stepper(config)
    for _ in range(2):
        out = run()
    assert int(state.d_optimizer.iterations.numpy()) == 6
    assert int(state.g_optimizer.iterations.numpy()) == 2
    assert np.isfinite(float(out["d_loss"])) and float(out["skipped"]) == 0


def test_only_a_loss_that_requires_the_gradient_penalty_gets_it():
    # The same models, data and noise: only gp_weight differs, so D's first loss does too.
    def first_d_loss(kind: str, gp_weight: str) -> float:
        config = _gray(tiny_config()).with_overrides(
            {"loss.kind": kind, "loss.gp_weight": gp_weight, "train.updates": "alternating"}
        )
        return float(_stepper(config)[1]()["d_loss"])

    assert first_d_loss("wasserstein", "10") > first_d_loss("wasserstein", "0")
    assert first_d_loss("hinge", "10") == first_d_loss("hinge", "0")


def test_lazy_r1_is_added_only_every_r1_every_steps():
    base = _gray(tiny_config()).with_overrides(
        {"loss.kind": "hinge", "train.updates": "alternating"}
    )
    plain = _stepper(base)[1]
    with_r1 = _stepper(base.with_overrides({"loss.r1_gamma": "1000", "loss.r1_every": "3"}))[1]
    # the same models, data and noise: D's loss differs exactly at steps 0, 3, ... by the
    # (large) penalty; in between only because the weights have drifted apart a little
    differences = [float(with_r1()["d_loss"]) - float(plain()["d_loss"]) for _ in range(4)]
    assert differences[0] > 1.0 and differences[3] > 1.0
    assert abs(differences[1]) < 0.1 * differences[0] and abs(differences[2]) < 0.1 * differences[0]


def test_ema_follows_the_generator_with_the_configured_half_life():
    config = _gray(tiny_config()).with_overrides({"train.ema_kimg": "0.008"})  # 8 images
    state, run = _stepper(config)
    start = [v.numpy().copy() for v in state.generator_ema.trainable_variables]
    np.testing.assert_array_equal(start[0], state.generator.trainable_variables[0].numpy())
    previous = [v.numpy().copy() for v in state.generator.trainable_variables]
    run()
    beta = 0.5 ** (8 / 8)  # batch 8, half-life 8 images
    for average, before, _now, weight in zip(
        state.generator_ema.trainable_variables,
        start,
        previous,
        state.generator.trainable_variables,
    ):
        expected = weight.numpy() + (before - weight.numpy()) * beta
        np.testing.assert_allclose(average.numpy(), expected, rtol=1e-5, atol=1e-7)
    # statistics are copied, not averaged
    for average, value in zip(
        state.generator_ema.non_trainable_variables, state.generator.non_trainable_variables
    ):
        np.testing.assert_array_equal(average.numpy(), value.numpy())
    assert state.sampling_generator is state.generator_ema


def test_ada_raises_p_while_d_is_sure_of_the_reals_and_the_value_is_checkpointed(tmp_path):
    config = _gray(tiny_config()).with_overrides(
        {
            "augment.kind": "ada",
            "augment.ada_target": "0.01",
            "augment.ada_interval": "2",
            "augment.ada_kimg": "0.1",
        }
    )
    state, run = _stepper(config)
    values = [float(run()["augment_p"]) for _ in range(6)]
    # r_t = E[sign D(x)] starts near 0 and the target is 0.01: p moves every 2 steps
    assert values[0] == 0.0 and values[-1] != 0.0 and len(set(values)) >= 3
    assert all(0.0 <= v <= 1.0 for v in values)
    path = state.checkpoint().write(str(tmp_path / "ckpt"))
    fresh = TrainState.create(config)
    fresh.checkpoint().read(path).assert_existing_objects_matched()
    assert float(fresh.augment_p.numpy()) == pytest.approx(values[-1])


@pytest.mark.parametrize("kind", ["diffaugment", "ada"])
def test_augmented_training_keeps_gradients_flowing_to_g(kind):
    config = _gray(tiny_config()).with_overrides({"augment.kind": kind})
    state, run = _stepper(config)
    before = state.generator.trainable_variables[0].numpy().copy()
    out = run()
    assert float(out["skipped"]) == 0
    assert not np.allclose(before, state.generator.trainable_variables[0].numpy())


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_computes_in_half_keeps_float32_weights_and_losses(precision):
    config = _gray(tiny_config()).with_overrides({"train.precision": precision})
    state, run = _stepper(config)
    half = "bfloat16" if precision == "mixed_bfloat16" else "float16"
    assert any(layer.compute_dtype == half for layer in state.generator.layers)
    assert all(v.dtype == "float32" for v in state.generator.trainable_variables)
    assert (
        state.generator.output.dtype == "float32" and state.discriminator.output.dtype == "float32"
    )
    for _ in range(4):
        out = run()
    assert out["g_loss"].dtype == tf.float32 and np.isfinite(float(out["g_loss"]))
    assert all(np.isfinite(v.numpy()).all() for v in state.checkpoint_variables())
    if precision == "mixed_float16":
        assert type(state.g_optimizer).__name__ == "LossScaleOptimizer"
    from keras import config as keras_config

    assert keras_config.dtype_policy().name == "float32"  # the global policy was put back


def test_a_conditional_run_trains_generates_by_label_and_refuses_bad_requests(tmp_path, capsys):
    from PIL import Image

    from facegan.cli import main

    data = tmp_path / "faces"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):  # UTKFace-style names: age_gender_race_date.jpg.chip.jpg
        gender, age = i % 2, 10 + 3 * i
        tone = 60 + 150 * gender  # make the label visible in the pixels
        pixels = np.clip(rng.normal(tone, 10, (20, 20, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(
            data / f"{age}_{gender}_0_2017{i:04d}.jpg.chip.jpg", format="JPEG"
        )
    config = tiny_config(str(data), steps=4).with_overrides(
        {"data.labels": r"pattern:^(?P<age>\d+)_(?P<gender>\d)_", "data.label_bins": "age=0,30,120"}
    )
    run = facegan.train(config, tmp_path / "run", progress=False)
    assert run.config.model.label_classes == "age:2,gender:2"
    assert run.config.data.label_values == "gender=0,1"
    images = run.generate(6, seed=1, labels={"gender": "1", "age": "45"})
    assert images.shape == (6, 16, 16, 3)
    out = tmp_path / "by-gender"
    capsys.readouterr()
    assert (
        main(
            [
                "generate",
                "--run",
                str(run.directory),
                "-n",
                "4",
                "--by",
                "gender",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["00-gender-0.png", "01-gender-1.png"]
    assert (
        main(
            [
                "generate",
                "--run",
                str(run.directory),
                "--label",
                "gender=7",
                "--out",
                str(tmp_path / "x.png"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "gender" in err and err.count("\n") == 1
