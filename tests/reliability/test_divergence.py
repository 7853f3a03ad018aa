"""Non-finite values never reach the weights; long streaks roll back; too many stop the run."""

import numpy as np
import pytest
import tensorflow as tf

import facegan
from conftest import tiny_config
from facegan.artifacts.logs import read_metrics
from facegan.cli import main
from facegan.data import pipeline  # the in-memory batches the loop trains on
from facegan.training.state import TrainState
from facegan.training.steps import make_train_step

# Trains, starts processes or drives a browser: not in the fast tier.
pytestmark = pytest.mark.integration

GO = tf.constant(0)  # the step's `stop` input: nobody asked to stop


def _values(variables) -> list[np.ndarray]:
    return [np.array(v.numpy()) for v in variables]


def test_a_nan_batch_skips_the_whole_update_inside_the_compiled_step():
    config = tiny_config().with_overrides({"model.channels": "1"})
    state = TrainState.create(config)
    step = make_train_step(state, config, tf.distribute.get_strategy())
    real = tf.random.uniform([8, 16, 16, 1], -1, 1)
    step(real, GO)  # one good step: optimizer slots are non-zero from here on
    everything = state.checkpoint_variables()
    before = _values(everything)
    poisoned = tf.tensor_scatter_nd_update(real, [[3, 5, 5, 0]], [np.nan])
    out = step(poisoned, GO)
    assert float(out["skipped"]) == 1 and int(out["bad_streak"]) == 1
    assert float(out["g_loss"]) == 0 and float(out["d_loss"]) == 0  # reported as zeros, not NaN
    after = _values(everything)
    # weights, batch-norm moving statistics, Adam moments and iteration counts: untouched
    for variable, a, b in zip(everything, before, after):
        np.testing.assert_array_equal(a, b, err_msg=getattr(variable, "path", variable.name))
    assert int(state.step.numpy()) == 2  # the step counter still counts the batch
    out = step(real, GO)
    assert float(out["skipped"]) == 0 and int(out["bad_streak"]) == 0  # the streak resets
    assert int(state.g_optimizer.iterations.numpy()) == 2
    assert all(np.isfinite(v).all() for v in _values(everything))


def test_infinities_are_caught_too():
    config = tiny_config().with_overrides({"model.channels": "1"})
    state = TrainState.create(config)
    step = make_train_step(state, config, tf.distribute.get_strategy())
    huge = tf.fill([8, 16, 16, 1], np.inf)
    before = _values(state.generator.variables)
    out = step(huge, GO)
    assert float(out["skipped"]) == 1
    for a, b in zip(before, _values(state.generator.variables)):
        np.testing.assert_array_equal(a, b)


def _poison(monkeypatch, from_step: int, poisoned_instances):
    """Makes the loop's input pipeline yield NaN batches from `from_step` on, in the given instances.

    The loop makes a new dataset at the start and after each rollback, so
    `poisoned_instances` (a set of 0-based instance numbers, or "all") decides
    whether the trouble is gone after a rollback. Returns the list of start
    steps of the datasets made so far.
    """
    real_dataset = pipeline.training_dataset
    starts = []

    def dataset(pixels, batch_size, seed, flip, start_step=0, labels=None):
        instance = len(starts)
        starts.append(start_step)
        clean = real_dataset(pixels, batch_size, seed, flip, start_step=start_step, labels=labels)
        if poisoned_instances != "all" and instance not in poisoned_instances:
            return clean
        steps = tf.data.Dataset.range(start_step + 1, 2**62)  # the step each batch trains
        return tf.data.Dataset.zip((steps, clean)).map(
            lambda s, batch: tf.where(s >= from_step, batch * np.nan, batch)
        )

    monkeypatch.setattr(pipeline, "training_dataset", dataset)
    return starts


def _checkpoint_arrays(path):
    reader = tf.train.load_checkpoint(path)
    return {
        k: reader.get_tensor(k)
        for k in reader.get_variable_to_shape_map()
        if "OBJECT_GRAPH" not in k
    }


def _assert_every_checkpoint_finite(run_dir):
    files = sorted((run_dir / "checkpoints").glob("ckpt-*.index"))
    assert files
    for index in files:
        for key, value in _checkpoint_arrays(str(index.with_suffix(""))).items():
            if np.issubdtype(np.asarray(value).dtype, np.floating):
                assert np.isfinite(value).all(), f"{index.name}: {key}"


def test_one_poisoned_batch_is_skipped_and_the_run_goes_on(tmp_path, monkeypatch):
    # Only the batch of step 5 is NaN.
    real_dataset = pipeline.training_dataset

    def one_bad(pixels, batch_size, seed, flip, start_step=0, labels=None):
        steps = tf.data.Dataset.range(start_step + 1, 2**62)
        clean = real_dataset(pixels, batch_size, seed, flip, start_step=start_step, labels=labels)
        return tf.data.Dataset.zip((steps, clean)).map(
            lambda s, batch: tf.where(tf.equal(s, 5), batch * np.nan, batch)
        )

    monkeypatch.setattr(pipeline, "training_dataset", one_bad)
    run = facegan.train(tiny_config(steps=8, checkpoint_every=2), tmp_path / "r", progress=False)
    assert run.step == 8
    records = [r for r in read_metrics(run.directory / "metrics.jsonl") if "event" not in r]
    assert [r["skipped"] for r in records] == [0, 0, 1, 0]  # logged per 2-step interval
    assert all(r["g_loss"] is not None for r in records)  # averaged over the good steps only
    log = (run.directory / "train.log").read_text()
    assert "step 5: non-finite loss or gradient; update skipped" in log
    assert "rollback" not in log
    _assert_every_checkpoint_finite(run.directory)


def test_a_long_streak_rolls_back_with_lower_learning_rates_and_recovers(tmp_path, monkeypatch):
    starts = _poison(monkeypatch, from_step=7, poisoned_instances={0})
    config = tiny_config(steps=12, checkpoint_every=4, max_bad_steps=3)
    run = facegan.train(config, tmp_path / "r", progress=False)
    # steps 7, 8, 9 are non-finite -> back to the checkpoint of step 4 with a clean dataset
    assert starts == [0, 4]
    assert run.step == 12
    events = [
        r for r in read_metrics(run.directory / "metrics.jsonl") if r.get("event") == "rollback"
    ]
    assert len(events) == 1 and events[0]["step"] == 9 and events[0]["to_step"] == 4
    assert events[0]["g_lr"] == pytest.approx(config.optim.g_lr * 0.5)
    log = (run.directory / "train.log").read_text()
    assert "rollback 1 of 3: steps 7-9 had non-finite losses or gradients; back to step 4" in log
    _assert_every_checkpoint_finite(run.directory)
    final = _checkpoint_arrays(run.latest_checkpoint())
    lr_keys = [k for k in final if "learning_rate" in k]
    assert lr_keys and all(final[k] == pytest.approx(config.optim.g_lr * 0.5) for k in lr_keys)
    assert [v for k, v in final.items() if k.startswith("rollbacks")] == [1]
    # no checkpoint is written inside a streak (step 8 was due): ckpt-8 exists only
    # from the clean pass after the rollback
    assert log.index("rollback 1 of 3") < log.index(
        "checkpoint " + str(run.directory / "checkpoints" / "ckpt-8")
    )


def test_after_max_rollbacks_the_run_stops_with_exit_3_and_a_good_checkpoint(
    tmp_path, monkeypatch, capsys
):
    starts = _poison(monkeypatch, from_step=5, poisoned_instances="all")
    toml = tmp_path / "c.toml"
    toml.write_text(
        "[model]\nresolution = 16\nwidth = 8\nmax_width = 32\nlatent_dim = 16\n"
        "[train]\nbatch_size = 8\nlog_every = 2\ncheckpoint_every = 2\n"
        "sample_every = 100\nmax_bad_steps = 2\nmax_rollbacks = 2\n"
    )
    run_dir = tmp_path / "r"
    code = main(
        [
            "train",
            "--config",
            str(toml),
            "--steps",
            "20",
            "--run-dir",
            str(run_dir),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 3
    last_line = err.strip().splitlines()[-1]
    assert last_line.startswith("facegan: error: training diverged: steps 5-6 all had non-finite")
    assert "after 2 rollback(s)" in last_line and "ckpt-4 is intact" in last_line
    assert starts == [0, 4, 4]  # two rollbacks to the step-4 checkpoint
    _assert_every_checkpoint_finite(run_dir)
    assert not (run_dir / "lock").exists()
    # the learning rate was halved twice, and the checkpoint on disk is still usable
    images = facegan.load(run_dir).generate(4, seed=1)
    assert images.shape == (4, 16, 16, 1) and images.std() > 0


def test_a_streak_before_the_first_checkpoint_rolls_back_to_the_initial_weights(
    tmp_path, monkeypatch
):
    starts = _poison(monkeypatch, from_step=3, poisoned_instances={0})
    config = tiny_config(steps=6, checkpoint_every=100, max_bad_steps=2)
    run = facegan.train(config, tmp_path / "r", progress=False)
    assert starts == [0, 0] and run.step == 6
    log = (run.directory / "train.log").read_text()
    assert "back to step 0 (the initial weights) with learning rates G 0.0001" in log
    assert "steps 3-4 had non-finite" in log
    _assert_every_checkpoint_finite(run.directory)


def test_reset_to_initial_restores_exactly_the_state_a_new_run_starts_from():
    config = tiny_config().with_overrides({"model.channels": "1"})
    state = TrainState.create(config)
    step = make_train_step(state, config, tf.distribute.get_strategy())
    for _ in range(3):
        step(tf.random.uniform([8, 16, 16, 1], -1, 1), GO)
    state.reset_to_initial(config)
    fresh = TrainState.create(config)
    for live, initial in zip(state.checkpoint_variables(), fresh.checkpoint_variables()):
        np.testing.assert_array_equal(
            live.numpy(), initial.numpy(), err_msg=getattr(live, "path", live.name)
        )
    assert int(state.step.numpy()) == 0
