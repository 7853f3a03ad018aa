"""Differentiable augmentation: DiffAugment, ADA and its update of p (tiny tensors only)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from facegan.config import AugmentConfig
from facegan.training.augment import (
    CUTOUT_RATIO,
    TRANSLATION_RATIO,
    ada_adjust,
    ada_augment,
    cutout,
    diff_augment,
    make_augmenter,
    rotate90,
    scale,
    translate,
)

POLICY = ("color", "translation", "cutout")
SEED = tf.constant([7, 11], tf.int32)


def _images(batch=8, size=16, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.uniform(-1, 1, (batch, size, size, channels)).astype(np.float32))


def _diff(images, seed=SEED, policy=POLICY):
    return diff_augment(images, policy, seed)


def _ada(images, p=1.0, seed=SEED):
    return ada_augment(images, tf.constant(p, tf.float32), seed)


AUGMENTS = {"diffaugment": _diff, "ada": _ada}


# ------------------------------------------------------------------ both schemes


@pytest.mark.parametrize("name", sorted(AUGMENTS))
@pytest.mark.parametrize("channels", [1, 3])
def test_shape_and_dtype_are_kept(name, channels):
    for dtype in (tf.float32, tf.bfloat16):
        images = tf.cast(_images(channels=channels), dtype)
        out = AUGMENTS[name](images)
        assert out.shape == images.shape and out.dtype == dtype
        assert np.isfinite(tf.cast(out, tf.float32).numpy()).all()


@pytest.mark.parametrize("name", sorted(AUGMENTS))
def test_same_seed_same_output_other_seed_other_output(name):
    augment, images = AUGMENTS[name], _images()
    first = augment(images, seed=tf.constant([1, 2])).numpy()
    np.testing.assert_array_equal(first, augment(images, seed=tf.constant([1, 2])).numpy())
    other = augment(images, seed=tf.constant([1, 3])).numpy()
    changed = [not np.array_equal(a, b) for a, b in zip(first, other)]
    assert sum(changed) >= 6  # of 8: different parameters for (nearly) every image


@pytest.mark.parametrize("name", sorted(AUGMENTS))
def test_gradients_flow_to_the_images(name):
    images = _images()
    weights = _images(seed=1)  # a weighted sum: a plain sum hides sign errors
    with tf.GradientTape() as tape:
        tape.watch(images)
        total = tf.reduce_sum(AUGMENTS[name](images) * weights)
    gradient = tape.gradient(total, images)
    assert gradient is not None
    gradient = gradient.numpy()
    assert np.isfinite(gradient).all()
    assert (np.abs(gradient).reshape(len(gradient), -1).sum(axis=1) > 0).all()  # every image


@pytest.mark.parametrize("name", sorted(AUGMENTS))
@pytest.mark.integration
def test_works_in_tf_function_with_and_without_xla(name):
    augment, images = AUGMENTS[name], _images()
    eager = augment(images).numpy()
    graph = tf.function(lambda x, s: augment(x, seed=s))
    np.testing.assert_allclose(graph(images, SEED).numpy(), eager, atol=1e-6)
    # XLA draws its own random numbers for a seed (see the module doc): check it runs,
    # repeats itself, keeps the shape and lets gradients through.
    compiled = tf.function(lambda x, s: augment(x, seed=s), jit_compile=True)
    out = compiled(images, SEED).numpy()
    assert out.shape == images.shape and np.isfinite(out).all()
    np.testing.assert_array_equal(out, compiled(images, SEED).numpy())

    @tf.function(jit_compile=True)
    def gradient(x, s):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(augment(x, seed=s))
        return tape.gradient(total, x)

    assert np.abs(gradient(images, SEED).numpy()).sum() > 0


def test_batch_size_unknown_when_traced():
    images = _images()
    spec = [tf.TensorSpec([None, 16, 16, 3]), tf.TensorSpec([2], tf.int32)]
    diff = tf.function(lambda x, s: _diff(x, seed=s), input_signature=spec)
    ada = tf.function(lambda x, s: _ada(x, seed=s), input_signature=spec)
    np.testing.assert_allclose(diff(images, SEED).numpy(), _diff(images).numpy(), atol=1e-6)
    np.testing.assert_allclose(ada(images, SEED).numpy(), _ada(images).numpy(), atol=1e-6)


# ------------------------------------------------------------------ DiffAugment


def test_diffaugment_translation_shifts_content_by_at_most_an_eighth():
    images = _images(batch=16)  # random values: one shift explains each output
    out = _diff(images, policy=["translation"]).numpy()
    limit = int(16 * TRANSLATION_RATIO + 0.5)
    candidates = [(dy, dx) for dy in range(-limit, limit + 1) for dx in range(-limit, limit + 1)]
    shifts = []
    for image, moved in zip(images, out):
        every_shift = translate(tf.repeat(image[None], len(candidates), axis=0), candidates)
        matches = [
            shift
            for shift, shifted in zip(candidates, every_shift.numpy())
            if np.array_equal(shifted, moved)
        ]
        assert len(matches) == 1
        shifts.append(matches[0])
    assert len(set(shifts)) > 4  # random per image


def test_translate_moves_a_known_pattern_and_pads():
    image = np.arange(36, dtype=np.float32).reshape(1, 6, 6, 1) + 1  # every pixel distinct, > 0
    moved = translate(tf.constant(image), [[2, -1]]).numpy()[0, :, :, 0]
    source = image[0, :, :, 0]
    np.testing.assert_array_equal(moved[2:, :5], source[:4, 1:])  # down 2, left 1
    assert (moved[:2] == 0).all() and (moved[:, 5] == 0).all()  # zero padding
    mirrored = translate(tf.constant(image), [[2, 0]], padding="reflect").numpy()[0, :, :, 0]
    np.testing.assert_array_equal(mirrored[2:], source[:4])
    np.testing.assert_array_equal(mirrored[:2], source[[2, 1]])  # reflected about row 0


def test_diffaugment_cutout_zeroes_a_square_of_half_the_size():
    size = int(16 * CUTOUT_RATIO + 0.5)
    ones = tf.ones([64, 16, 16, 1])
    out = _diff(ones, policy=["cutout"]).numpy()[..., 0]
    inside = 0
    for image in out:
        assert set(np.unique(image)) <= {0.0, 1.0}
        rows, cols = np.nonzero(image == 0)
        top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        assert (image[top:bottom, left:right] == 0).all()  # one filled rectangle
        assert len(rows) == (bottom - top) * (right - left)
        for low, high in ((top, bottom), (left, right)):
            # a full side, unless the square reaches over the image's border
            assert high - low == size or (low == 0 or high == 16) and high - low < size
        inside += (bottom - top, right - left) == (size, size)
    assert inside > 8  # squares fully inside are common
    centred = cutout(ones[:1], [[8, 8]], (size, size)).numpy()
    assert (centred == 0).sum() == size * size
    assert (centred[0, 4:12, 4:12] == 0).all()


def test_diffaugment_color_on_gray_skips_saturation_and_changes_values():
    gray = _images(channels=1)
    out = _diff(gray, policy=["color"]).numpy()
    assert not np.allclose(out, gray.numpy())
    # brightness and contrast only: each image is an affine map of itself
    for before, after in zip(gray.numpy().reshape(8, -1), out.reshape(8, -1)):
        slope, offset = np.polyfit(before, after, 1)
        np.testing.assert_allclose(after, slope * before + offset, atol=1e-5)


def test_unknown_policy_op_is_refused():
    with pytest.raises(ValueError, match="unknown DiffAugment op 'blur'"):
        diff_augment(_images(), ["blur"], SEED)


# ------------------------------------------------------------------ ADA


def test_ada_with_p_zero_is_the_identity():
    for channels in (1, 3):
        images = _images(channels=channels)
        np.testing.assert_array_equal(_ada(images, p=0.0).numpy(), images.numpy())


def test_ada_with_p_one_changes_nearly_every_image():
    images = _images(batch=32)
    out = _ada(images, p=1.0).numpy()
    changed = sum(not np.allclose(a, b, atol=1e-3) for a, b in zip(out, images.numpy()))
    assert changed >= 31


def test_ada_applies_each_transform_to_about_p_of_the_images():
    # A gray ramp along x: every transform of a gray image changes it (saturation is
    # skipped), except a translation that happens to be vertical only (1 in 5).
    images = tf.tile(tf.reshape(tf.range(16, dtype=tf.float32), [1, 1, 16, 1]), [256, 16, 1, 1])
    moved = []
    for p in (0.2, 0.8):
        out = _ada(images, p=p).numpy()
        moved.append(np.mean([not np.allclose(a, b) for a, b in zip(out, images.numpy())]))
    expected = 1 - 0.8**6 * (1 - 0.8 * 0.2)  # p = 0.2: 6 sure changes, translation 4/5
    assert abs(moved[0] - expected) < 0.12
    assert moved[1] > 0.97


def test_rotate90_matches_numpy():
    images = _images(batch=4)
    out = rotate90(images, tf.constant([0, 1, 2, 3])).numpy()
    for k in range(4):
        np.testing.assert_array_equal(out[k], np.rot90(images.numpy()[k], k, axes=(0, 1)))


def test_scale_is_bilinear_about_the_centre():
    ramp = tf.tile(tf.reshape(tf.range(16, dtype=tf.float32), [1, 1, 16, 1]), [3, 16, 1, 1])
    out = scale(ramp, tf.constant([1.0, 1.25, 0.8])).numpy()
    np.testing.assert_array_equal(out[0], ramp.numpy()[0])  # 1: exactly the image
    centre = 7.5
    expected = centre + (np.arange(16) - centre) / 1.25  # inside the image: a linear ramp
    np.testing.assert_allclose(out[1, 5, :, 0], expected, atol=1e-5)
    # zooming out samples beyond the border, which reflection padding mirrors back in
    positions = centre + (np.arange(16) - centre) / 0.8
    mirrored = np.where(
        positions < 0, -positions, np.where(positions > 15, 30 - positions, positions)
    )
    np.testing.assert_allclose(out[2, 5, :, 0], mirrored, atol=1e-5)


def _adjusted(p: float, r_t: float, count: int, target: float = 0.6, kimg: float = 10) -> float:
    return float(
        ada_adjust(
            tf.constant(p), tf.constant(r_t * count), tf.constant(float(count)), target, kimg
        )
    )


def test_ada_adjust_moves_p_towards_the_target_and_clips():
    assert _adjusted(0.0, 0.9, 2000) == pytest.approx(0.2)  # D too sure: more augmentation
    assert _adjusted(0.2, 0.7, 1000) == pytest.approx(0.3)
    assert _adjusted(0.3, 0.1, 500) == pytest.approx(0.25)  # below target: less
    assert _adjusted(0.25, 0.6, 500) == pytest.approx(0.25)  # on target: unchanged
    assert _adjusted(0.25, -1.0, 10**6) == 0.0  # clipped at 0
    assert _adjusted(0.25, 1.0, 10**6) == 1.0  # and at 1
    assert _adjusted(0.5, 1.0, 0) == 0.5  # no images seen: no move


@pytest.mark.integration
def test_the_step_moves_p_with_ada_adjust_every_interval(tiny):
    """The real step: p moves only at the end of each interval, by `ada_adjust`'s rule."""
    from facegan.training.state import TrainState
    from facegan.training.steps import make_train_step

    config = tiny().with_overrides(
        {
            "model.channels": "3",
            "augment.kind": "ada",
            "augment.ada_interval": "2",
            "augment.ada_kimg": "0.1",
            "augment.ada_target": "0.6",
        }
    )
    state = TrainState.create(config)
    step = make_train_step(state, config, tf.distribute.get_strategy())
    real, go = tf.zeros([8, 16, 16, 3]), tf.constant(0)
    assert float(step(real, go)["augment_p"]) == 0.0  # mid-interval: p waits
    assert float(state.ada_count) == 8.0 and abs(float(state.ada_signs)) <= 8.0
    state.ada_signs.assign(100.0)  # D sure of the reals
    assert float(step(real, go)["augment_p"]) == pytest.approx(16 / 100)  # 16 images / 0.1 kimg
    assert float(state.ada_count) == 0.0 and float(state.ada_signs) == 0.0  # sums restart
    assert float(step(real, go)["augment_p"]) == pytest.approx(0.16)
    state.ada_signs.assign(-100.0)  # D unsure: less augmentation
    assert float(step(real, go)["augment_p"]) == pytest.approx(0.0)


# ------------------------------------------------------------------ factory


def test_make_augmenter():
    images = _images()
    assert make_augmenter(AugmentConfig(kind="none")) is None

    augment = make_augmenter(AugmentConfig(kind="diffaugment", policy="translation"))
    np.testing.assert_array_equal(
        augment(images, 0.0, SEED).numpy(), _diff(images, policy=["translation"]).numpy()
    )

    augment = make_augmenter(AugmentConfig(kind="ada"))
    p = tf.Variable(0.0)
    step = tf.function(lambda x: augment(x, p, SEED))  # reads p at every call, not at tracing
    np.testing.assert_array_equal(step(images).numpy(), images.numpy())  # p starts at 0
    p.assign(1.0)
    np.testing.assert_array_equal(step(images).numpy(), _ada(images, p=1.0).numpy())


@pytest.mark.integration
def test_replicas_augment_their_slices_as_one_device_augments_the_batch():
    script = Path(__file__).resolve().parent / "distribute" / "replica_slices_script.py"
    result = subprocess.run(
        [sys.executable, str(script), "augment"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {
        "replicas": 2,
        "p": 0.6,
        "diffaugment": True,
        "diffaugment_not_trivial": True,
        "ada": True,
        "ada_not_trivial": True,
    }


@pytest.mark.integration
def test_the_train_steps_augmented_batches_are_the_same_for_one_and_two_replicas():
    """Augmentation does not depend on the replica count (decided in `facegan.seeds`)."""
    script = Path(__file__).resolve().parent / "distribute" / "replica_slices_script.py"
    result = subprocess.run(
        [sys.executable, str(script), "step-augment"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    same = {
        "real": True,
        "fake": True,
        "noise": True,
        "augmented": True,
        "real_differs_from_fake": True,
    }
    assert report == {"replicas": 2, "diffaugment": same, "ada": same}
