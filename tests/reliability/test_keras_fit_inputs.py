"""Data `GAN.fit` cannot train on is refused with one line, never trained on silently.

Issue 24, item 7: an empty uint8 dataset trained 0 steps with no error; a [0, 1]
batch with one stray value of 1.5 was taken as 0-255; a NaN in the first batch
was blamed on "images scaled to [0, 1]".
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import tiny_config

tf = pytest.importorskip("tensorflow")

from facegan.errors import ExitCode  # noqa: E402
from facegan.keras import GAN, InputError, prepare  # noqa: E402


def _config():
    return tiny_config(steps=4)  # the embedded faces: no folder to build


def _pixels(n: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "data",
    [
        tf.data.Dataset.from_tensor_slices(np.zeros((0, 16, 16, 3), np.uint8)).batch(4),
        np.zeros((0, 16, 16, 3), np.uint8),
        _pixels(5),  # fewer images than one batch of 8: no step either
        # cardinality unknown (a filter): found out by reading the first batch
        tf.data.Dataset.from_tensor_slices(_pixels(16)).filter(lambda x: False).batch(8),
    ],
    ids=["empty-dataset", "empty-array", "short-array", "filtered-to-nothing"],
)
def test_data_that_gives_no_full_batch_is_refused(data):
    with pytest.raises(InputError, match=r"no full batch of 8 images .*would train nothing"):
        prepare(data, _config())


def test_fit_on_an_empty_dataset_is_a_user_error_not_zero_steps():
    gan = GAN(_config())
    gan.compile()
    empty = tf.data.Dataset.from_tensor_slices(np.zeros((0, 16, 16, 3), np.uint8)).batch(8)
    with pytest.raises(InputError) as caught:
        gan.fit(empty, epochs=1, verbose=0)
    assert caught.value.exit_code == ExitCode.USER_ERROR
    assert "\n" not in str(caught.value)
    assert gan.step == 0


@pytest.mark.parametrize("stray", [1.5, 3.0, 200.0])
def test_unit_range_images_with_stray_values_are_not_taken_as_0_to_255(stray):
    unit = _pixels().astype(np.float32) / 255
    unit[0, 0, 0, 0] = stray
    with pytest.raises(InputError, match=r"scaled to \[0, 1\] are not taken") as caught:
        prepare(tf.data.Dataset.from_tensors(unit), _config())
    assert "1 of 6144 values above 1" in str(caught.value)


def test_a_nearly_black_0_to_255_batch_asks_for_the_range_and_takes_it_when_named():
    dark = np.zeros((8, 16, 16, 3), np.float32)
    dark[:, 0, 0] = 40.0  # one bright pixel per image: 24 of 6144 values above 1
    with pytest.raises(InputError, match="value_range='0-255'"):
        prepare(tf.data.Dataset.from_tensors(dark), _config())
    batch = next(iter(prepare(tf.data.Dataset.from_tensors(dark), _config(), "0-255")))
    assert float(tf.reduce_max(batch)) == pytest.approx(40 * 2 / 255 - 1)


@pytest.mark.parametrize(
    "low, high, message",
    [
        (-1.0, 1.5, r"lie in \[-1, 1.5\]: neither \[-1, 1\] nor 0-255"),
        (-3.0, 0.5, r"lie in \[-3, 0.5\]: neither \[-1, 1\] nor 0-255"),
        (0.0, 300.0, r"lie in \[0, 300\]: neither \[-1, 1\] nor 0-255"),
    ],
)
def test_values_that_fit_no_range_are_refused(low, high, message):
    images = np.linspace(low, high, 8 * 16 * 16 * 3, dtype=np.float32).reshape(8, 16, 16, 3)
    with pytest.raises(InputError, match=message):
        prepare(tf.data.Dataset.from_tensors(images), _config())


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_first_batch_is_named_as_such(bad):
    images = _pixels().astype(np.float32)
    images[3, 1, 2, 0] = bad
    with pytest.raises(InputError, match=r"the first batch holds 1 value that is not finite"):
        prepare(tf.data.Dataset.from_tensors(images), _config())


def test_a_non_finite_later_batch_stops_fit_with_one_line():
    images = np.concatenate([_pixels(8, 0), _pixels(8, 1)]).astype(np.float32)
    images[12, 0, 0, 0] = np.nan  # in the second batch: the first one reads clean
    gan = GAN(_config())
    gan.compile()
    with pytest.raises(InputError, match=r"a batch holds values that are not finite") as caught:
        gan.fit(images, epochs=1, shuffle=False, verbose=0)
    assert "\n" not in str(caught.value)
    assert gan.step == 1  # the clean first batch trained; the bad one did not
