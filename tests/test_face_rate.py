"""Face rate with MTCNN: real face crops pass, noise does not, inputs are checked."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import SHARED_DATA
from facegan.errors import UserError
from facegan.metrics.face_rate import FaceDetector, _working_shape, detect_faces, face_rate

UTKFACE = SHARED_DATA / "utkface"


def load_faces(folder, count: int, size: int) -> np.ndarray:
    """The first `count` images of `folder` by sorted file name, RGB, bicubic to size x size."""
    files = sorted(p for p in folder.iterdir() if p.is_file())[:count]
    return np.stack(
        [
            np.asarray(Image.open(f).convert("RGB").resize((size, size), Image.Resampling.BICUBIC))
            for f in files
        ]
    )


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


@pytest.fixture(scope="module")
def faces():
    """200 UTKFace crops at 64 px, uint8 [200, 64, 64, 3]."""
    if not UTKFACE.is_dir():
        pytest.skip(f"real-face check needs the shared UTKFace folder, missing: {UTKFACE}")
    return load_faces(UTKFACE, 200, 64)


@pytest.fixture(scope="module")
def face_scores(detector, faces):
    return detector.face_scores(faces)


@pytest.mark.integration
def test_real_faces_at_64px_are_found(detector, faces, face_scores):
    assert face_scores.shape == (200,) and face_scores.dtype == np.float64
    assert face_rate(faces, detector=detector) >= 0.9


def test_random_noise_has_no_faces(detector):
    noise = np.random.default_rng(0).integers(0, 256, size=(200, 64, 64, 3), dtype=np.uint8)
    assert face_rate(noise, detector=detector) <= 0.05


def test_per_image_booleans_agree_with_scores_and_rate(detector, faces, face_scores):
    found = detect_faces(faces[:40], threshold=0.9, detector=detector, batch_size=16)
    assert found.dtype == np.bool_ and found.shape == (40,)
    np.testing.assert_array_equal(found, face_scores[:40] >= 0.9)
    assert ((face_scores >= 0) & (face_scores <= 1)).all()
    assert face_rate(faces[:40], detector=detector) == pytest.approx(found.mean())


def test_result_does_not_depend_on_batch_size(detector, faces, face_scores):
    np.testing.assert_allclose(
        detector.face_scores(faces[:24], batch_size=5), face_scores[:24], atol=1e-5
    )


def test_compiled_networks_score_like_the_eager_library(faces, face_scores):
    eager = FaceDetector(compiled=False).face_scores(faces[:30])
    np.testing.assert_allclose(eager, face_scores[:30], atol=1e-5)


@pytest.mark.parametrize("to_gray", [lambda x: x, lambda x: x[..., None]], ids=["NHW", "NHW1"])
def test_grayscale_images_repeat_to_rgb(detector, faces, to_gray):
    gray = np.asarray([np.asarray(Image.fromarray(x).convert("L")) for x in faces[:20]])
    assert face_rate(to_gray(gray), detector=detector) >= 0.8


def test_small_images_are_upscaled(detector, faces):
    small = np.stack(
        [
            np.asarray(Image.fromarray(x).resize((24, 24), Image.Resampling.BICUBIC))
            for x in faces[:30]
        ]
    )
    assert face_rate(small, detector=detector) >= 0.8


def test_working_size_keeps_the_aspect_ratio():
    assert _working_shape(32, 32, 64) == (64, 64)
    assert _working_shape(256, 128, 64) == (128, 64)
    assert _working_shape(64, 64, 64) == (64, 64)


@pytest.mark.parametrize(
    "images, kwargs",
    [
        (np.zeros((2, 64, 64, 3), np.float32), {}),  # not uint8
        (np.zeros((2, 64, 64, 4), np.uint8), {}),  # RGBA
        (np.zeros((64, 64), np.uint8), {}),  # a single image without the batch axis
        (np.zeros((0, 64, 64, 3), np.uint8), {}),  # nothing to rate
        (np.zeros((2, 64, 64, 3), np.uint8), {"threshold": 1.5}),
        (np.zeros((2, 64, 64, 3), np.uint8), {"batch_size": 0}),
    ],
)
def test_rejects_bad_input(detector, images, kwargs):
    with pytest.raises(UserError):
        face_rate(images, detector=detector, **kwargs)


def test_rejects_a_working_size_too_small_for_the_detector():
    with pytest.raises(UserError, match="image_size"):
        FaceDetector(image_size=16)
