"""The one compiled sampling path: what it renders, and what it refuses (once, here)."""

import numpy as np
import pytest
import tensorflow as tf

from facegan.artifacts.sampler import Sampler, SamplingError
from facegan.config import ModelConfig
from facegan.models import build_generator, float_to_uint8, latents_for_seed, synthesize

LABELS = "a:2,b:3"


def _cfg(arch: str, conditional: bool = False) -> ModelConfig:
    return ModelConfig(
        arch=arch,
        resolution=16,
        channels=3,
        width=8,
        max_width=32,
        latent_dim=16,
        mapping_layers=2,
        label_classes=LABELS if conditional else None,
    )


def _sampler(arch: str = "stylegan2", conditional: bool = True) -> Sampler:
    cfg = _cfg(arch, conditional)
    return Sampler(build_generator(cfg), cfg.latent_dim, [2, 3] if conditional else [])


def test_images_with_labels_and_truncation_in_batches():
    sampler = _sampler("stylegan2", True)
    z = latents_for_seed(5, 16, seed=1).numpy()
    labels = np.array([[0, 0], [1, 2], [0, 1], [1, 0], [0, 2]], np.int32)
    pixels = sampler.images(z, batch_size=2, labels=labels, truncation=0.7)
    assert pixels.shape == (5, 16, 16, 3) and pixels.dtype == np.uint8
    # batching does not change an image
    whole = sampler.images_from_latent(tf.constant(z), tf.constant(0.7), tf.constant(labels))
    np.testing.assert_array_equal(pixels, whole["images"].numpy())
    # and it renders the generator's function (graph rounding may move a pixel by one level)
    eager = float_to_uint8(synthesize(sampler.generator, z, labels, truncation=0.7)).numpy()
    assert np.abs(pixels.astype(int) - eager.astype(int)).max() <= 1
    # an unconditional dcgan through the same path
    assert _sampler("dcgan", False).images(z, batch_size=4).shape == (5, 16, 16, 3)


def test_seeds_and_latents_give_the_same_faces():
    sampler = _sampler("dcgan", False)
    seeds = tf.constant([0, 7, 2**40], tf.int64)
    from facegan.models import latents_from_seeds

    by_seed = sampler.images_from_seed(seeds, tf.constant(1.0))["images"].numpy()
    by_latent = sampler.images(latents_from_seeds(seeds, 16).numpy())
    np.testing.assert_array_equal(by_seed, by_latent)


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda s: s.images(np.zeros((2, 15))),
            r"latents must have shape \[N, 16\]; received \[2, 15\]",
        ),
        (lambda s: s.images(np.full((1, 16), np.nan), labels=np.zeros((1, 2), int)), "finite"),
        (lambda s: s.images(np.zeros((2, 16))), "class-conditional: pass labels"),
        (
            lambda s: s.images(np.zeros((2, 16)), labels=np.zeros((2, 3), int)),
            r"labels must be integers of shape \[2, 2\]",
        ),
        (
            lambda s: s.images(np.zeros((1, 16)), labels=np.array([[0, 3]])),
            r"class indices below \[2, 3\]",
        ),
        (
            lambda s: s.images(np.zeros((1, 16)), labels=np.zeros((1, 2), int), truncation=1.5),
            "truncation must be from 0 to 1; received 1.5",
        ),
        (lambda s: s.check_seeds([3, -1]), "seeds must be integers from 0 to"),
        (lambda s: s.images_from_w(np.zeros((1, 4))), r"w must have shape \[N, 16\]"),
    ],
)
def test_bad_requests_are_one_line_user_errors(call, message):
    with pytest.raises(SamplingError, match=message):
        call(_sampler("stylegan2", True))


def test_an_unconditional_generator_refuses_labels_and_dcgan_has_no_w():
    sampler = _sampler("dcgan", False)
    with pytest.raises(SamplingError, match="not class-conditional"):
        sampler.images(np.zeros((1, 16)), labels=np.zeros((1, 2), int))
    with pytest.raises(SamplingError, match="only a stylegan2 generator renders from w"):
        sampler.images_from_w(np.zeros((1, 16)))
    assert sampler.images(np.zeros((0, 16))).shape == (0, 16, 16, 3)


def test_images_from_w_matches_synthesis():
    sampler = _sampler("stylegan2", False)
    w = np.random.default_rng(0).normal(size=(3, 16)).astype(np.float32)
    eager = float_to_uint8(sampler.generator.synthesize_from_w(tf.constant(w))).numpy()
    assert np.abs(sampler.images_from_w(w).astype(int) - eager.astype(int)).max() <= 1
