"""facegan.keras.GAN: Keras `fit` on facegan's own train step.

The promise: with the same config, batches and seed, N steps of `gan.fit` and
N steps of `facegan.train` leave the same weights; `fit` takes what Keras users
have (image_dataset_from_directory's float 0-255 batches of another size and
resolution) and works with Keras' standard callbacks; the result is a facegan run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_config

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

import facegan  # noqa: E402
import facegan.cli  # noqa: E402
import facegan.keras  # noqa: E402
from facegan.errors import UserError  # noqa: E402
from facegan.keras import GAN, InputError, SampleGrid, prepare  # noqa: E402

HERE = Path(__file__).parent


def _config(source, steps=4, **train):
    return tiny_config(str(source), steps=steps, ema_kimg=0.01, **train)


def _max_relative(ours, theirs) -> float:
    worst = 0.0
    for a, b in zip(ours, theirs, strict=True):
        a, b = np.asarray(a.numpy()), np.asarray(b.numpy())
        worst = max(worst, float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-12)))
    return worst


def _variables(gan: GAN):
    return gan._state.checkpoint_variables()


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    """20 RGB photos of 24 x 24 px in a class-less folder, as Keras users have them."""
    root = tmp_path_factory.mktemp("keras-photos")
    rng = np.random.default_rng(5)
    for i in range(20):
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(small).resize((24, 24), Image.Resampling.BICUBIC).save(
            root / f"p{i:02d}.png"
        )
    return root


# -- equivalence with the loop ---------------------------------------------------------


def test_fit_trains_the_same_weights_as_facegan_train(tmp_path, face_folder):
    config = _config(face_folder, steps=4)
    facegan.train(config, tmp_path / "loop", progress=False)
    loop = GAN.from_run(tmp_path / "loop")
    gan = GAN(config)
    before = [np.array(v.numpy()) for v in _variables(gan)]
    gan.compile()
    history = gan.fit(gan.dataset(), epochs=2, steps_per_epoch=2, verbose=0)
    assert gan.step == loop.step == 4
    # every variable a checkpoint holds: G, D, the moving average, both Adams' slots
    assert _max_relative(_variables(gan), _variables(loop)) <= 1e-5
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(before, _variables(gan)))
    assert set(history.history) >= {"g_loss", "d_loss", "d_real", "d_fake", "skipped"}
    assert history.history["skipped"] == [0.0, 0.0]


@pytest.mark.integration
def test_fit_under_mirrored_strategy_with_two_cpus_matches_the_loop(tmp_path):
    result = subprocess.run(
        [sys.executable, str(HERE / "distribute" / "keras_fit_script.py"), str(tmp_path), "4"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2 and report["steps"] == [4, 4] and report["moved"], report
    assert report["variables"] >= 20
    assert report["max_relative_difference"] <= 1e-5, report


# -- what Keras users pass ----------------------------------------------------------------


def test_fit_takes_image_dataset_from_directory_with_the_standard_callbacks(tmp_path, photo_folder):
    """float 0-255 batches of 5 at 24 px for a 16 px model with batch 8, and five callbacks."""
    data = keras.utils.image_dataset_from_directory(
        photo_folder, labels=None, batch_size=5, image_size=(24, 24), shuffle=False
    )
    gan = GAN(_config(photo_folder))
    gan.compile()
    seen_logs = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen_logs.append(dict(logs))

    grids = SampleGrid(tmp_path / "grids")
    callbacks = [
        keras.callbacks.TensorBoard(tmp_path / "tb"),
        keras.callbacks.BackupAndRestore(tmp_path / "backup"),
        keras.callbacks.ModelCheckpoint(
            str(tmp_path / "w-{epoch}.weights.h5"), save_weights_only=True
        ),
        keras.callbacks.EarlyStopping(monitor="d_loss", mode="min", patience=5),
        grids,
        Record(),
    ]
    gan.fit(data, epochs=3, callbacks=callbacks, verbose=0)
    # 20 photos -> batches of 8, the short one dropped: 2 steps per epoch; Keras learns
    # the epoch's end by running out of data, and that call must train nothing
    assert gan.step == 6 and int(gan.g_optimizer.iterations.numpy()) == 6
    assert len(seen_logs) == 3 and all(np.isfinite(log["g_loss"]) for log in seen_logs)
    assert sorted(p.name for p in (tmp_path / "grids").iterdir()) == [
        "step-0000002.png",
        "step-0000004.png",
        "step-0000006.png",
    ]
    with Image.open(grids.saved[-1]) as grid:
        assert grid.size == (2 * 16 + 3 * 2, 2 * 16 + 3 * 2)  # 4 faces, 2 px padding
    assert sorted(p.name for p in tmp_path.glob("w-*.weights.h5")) == [
        "w-1.weights.h5",
        "w-2.weights.h5",
        "w-3.weights.h5",
    ]
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))


def test_saved_weights_restore_every_variable_and_counter(tmp_path, face_folder):
    config = _config(face_folder)
    gan = GAN(config)
    gan.compile()
    gan.fit(gan.dataset(), epochs=1, steps_per_epoch=3, verbose=0)
    gan.save_weights(tmp_path / "gan.weights.h5")
    fresh = GAN(config)
    fresh.load_weights(tmp_path / "gan.weights.h5")
    assert fresh.step == 3
    assert _max_relative(_variables(fresh), _variables(gan)) == 0.0
    assert fresh.g_optimizer.iterations.numpy() == 3
    # and training on continues exactly as the original does
    fresh.compile()
    for model in (gan, fresh):
        model.fit(model.dataset(), epochs=1, steps_per_epoch=1, verbose=0)
    assert _max_relative(_variables(fresh), _variables(gan)) == 0.0


def test_a_fit_model_is_a_facegan_run(tmp_path, face_folder):
    gan = GAN(_config(face_folder, steps=6))
    gan.compile()
    gan.fit(gan.dataset(), epochs=1, steps_per_epoch=2, verbose=0)
    run = gan.save_run(tmp_path / "run")
    assert run.step == 2 and (tmp_path / "run" / "samples" / "step-0000002.png").is_file()
    # generate by seed: the same pixels from the model and from the run
    np.testing.assert_array_equal(gan.generate(4, seed=7), run.generate(4, seed=7))
    np.testing.assert_array_equal(gan.generate_seeds([9, 7]), run.generate_seeds([9, 7]))
    # export serves the same faces
    from facegan.artifacts.export import export

    served = tf.saved_model.load(str(export(run, "savedmodel", tmp_path / "served")))
    np.testing.assert_array_equal(
        served.signatures["from_seed"](seed=tf.constant([7, 8], tf.int64))["images"].numpy(),
        run.generate(2, seed=7),
    )
    # the loop continues it; the command line generates from it
    resumed = facegan.resume(tmp_path / "run", steps=3, progress=False)
    assert resumed.step == 3
    out = tmp_path / "faces"
    assert (
        facegan.cli.main(["generate", "--run", str(tmp_path / "run"), "-n", "2", "--out", str(out)])
        == 0
    )
    assert len(list(out.glob("*.png"))) == 2
    # saving again without a path adds a checkpoint to the same run, never a new directory
    again = GAN.from_run(tmp_path / "run")
    assert again.step == 3
    again.compile()
    again.fit(again.dataset(), epochs=1, steps_per_epoch=1, verbose=0)
    assert again.save_run().step == 4
    # another model never writes into an existing run
    with pytest.raises(UserError, match="already exists"):
        GAN(_config(face_folder)).save_run(tmp_path / "run")
    assert again.save_run().step == 4  # the same step again: the checkpoint is kept as it is


def test_numpy_uint8_arrays_train_like_floats_0_to_255(face_folder):
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 16, 3), dtype=np.uint8)
    results = []
    for images in (pixels, pixels.astype(np.float32)):
        gan = GAN(_config(face_folder))
        gan.compile()
        gan.fit(images, epochs=1, shuffle=False, verbose=0)
        results.append(_variables(gan))
        assert gan.step == 2
    assert _max_relative(*results) == 0.0


# -- inputs, without training --------------------------------------------------------------


def _first_batch(dataset):
    return next(iter(dataset))


def test_prepare_scales_resizes_converts_channels_and_regroups(face_folder):
    config = _config(face_folder).with_overrides({"model.channels": 1})
    rgb = np.full((11, 32, 24, 3), 255, np.uint8)
    rgb[:, :, :, 0] = 0  # no red
    dataset = prepare(tf.data.Dataset.from_tensor_slices(rgb).batch(3), config)
    batch = _first_batch(dataset)
    assert batch.shape == (8, 16, 16, 1) and batch.dtype == tf.float32
    expected = (0.587 + 0.114) * 2 - 1  # ITU-R 601 luma of (0, 255, 255), in [-1, 1]
    np.testing.assert_allclose(batch.numpy(), expected, atol=2e-3)
    assert len(list(dataset)) == 1  # 11 images: one full batch of 8, the rest dropped


def test_prepare_reads_the_value_range_from_the_first_batch(face_folder):
    config = _config(face_folder)
    pixels = np.random.default_rng(1).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    scaled = pixels.astype(np.float32) * (2 / 255) - 1
    for given in (pixels, pixels.astype(np.float32), scaled):
        out = _first_batch(prepare(tf.data.Dataset.from_tensors(given), config)).numpy()
        np.testing.assert_array_equal(out, scaled)
    with pytest.raises(InputError, match=r"scaled to \[0, 1\] are not taken"):
        prepare(tf.data.Dataset.from_tensors(pixels.astype(np.float32) / 255), config)
    named = prepare(
        tf.data.Dataset.from_tensors(pixels.astype(np.float32) / 255), config, value_range="-1-1"
    )
    assert _first_batch(named).shape == (8, 16, 16, 3)
    with pytest.raises(InputError, match="value_range must be one of"):
        prepare(tf.data.Dataset.from_tensors(pixels), config, value_range="0-1")


@pytest.mark.parametrize(
    "data, message",
    [
        ([1, 2, 3], "takes a tf.data.Dataset of images or a NumPy array"),
        (np.zeros((8, 16, 16), np.uint8), r"must be \[B, H, W, C\]"),
        (np.zeros((8, 16, 16, 3), np.int64), "must be uint8 or float"),
        ((np.zeros((8, 16, 16, 3), np.uint8),) * 3, "a tuple of 3"),
    ],
)
def test_prepare_refuses_what_the_step_cannot_take(face_folder, data, message):
    if isinstance(data, tuple):
        data = tf.data.Dataset.from_tensor_slices(data)
    with pytest.raises(InputError, match=message):
        prepare(data, _config(face_folder))


def test_compile_and_fit_refuse_what_the_config_owns(face_folder):
    gan = GAN(_config(face_folder))
    with pytest.raises(UserError, match="received optimizer, loss: the optimizers"):
        gan.compile(optimizer="adam", loss="mse")
    gan.compile()
    assert gan.jit_compile is False  # Keras' "auto" would pick XLA: slower on CPU
    assert gan.optimizer is gan.g_optimizer
    images = np.zeros((8, 16, 16, 3), np.uint8)
    with pytest.raises(UserError, match="takes no validation data"):
        gan.fit(images, validation_data=images)
    with pytest.raises(UserError, match=r"train.batch_size \(8\) or None; received 4"):
        gan.fit(images, batch_size=4)
    with pytest.raises(UserError, match="needs a run directory the first time"):
        gan.save_run()


def test_from_preset_resolves_precision_channels_and_overrides(face_folder):
    gan = GAN.from_preset("quick-32", data=face_folder, overrides={"model.width": 8})
    assert gan.config.model.channels == 3 and gan.config.model.width == 8
    assert gan.config.train.precision in ("float32", "mixed_bfloat16")
    assert gan.config.data.source == str(face_folder)
    images = gan(tf.zeros([2, gan.config.model.latent_dim]))
    assert images.shape == (2, 32, 32, 3)


def test_from_preset_on_a_pack_trains_on_the_streamed_batches(tmp_path, face_folder):
    """`data=PACK` is opened as a pack (it was once read as a folder of photos)."""
    from facegan.data import packing

    pack = tmp_path / "pack"
    packing.pack(
        str(face_folder),
        pack,
        32,
        images_per_shard=8,
        report=lambda line: None,
        show_progress=False,
    )
    gan = GAN.from_preset(
        "quick-32", data=pack, overrides={"model.width": 8, "train.batch_size": 8}
    )
    assert gan.config.model.channels == 3 and gan.config.data.source == str(pack)
    gan.compile()
    history = gan.fit(gan.dataset(), steps_per_epoch=2, epochs=1, verbose=0)
    assert gan.step == 2 and np.isfinite(history.history["g_loss"][-1])
    with pytest.raises(UserError, match="holds 32 px images"):
        GAN.from_preset("quick-32", data=pack, overrides={"model.resolution": 64})
