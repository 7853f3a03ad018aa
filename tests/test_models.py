import math

import numpy as np
import pytest

from facegan.config import ModelConfig
from facegan.models import build_discriminator, build_generator, latents_for_seed, to_uint8
from facegan.models.dcgan import block_channels


def _trainable(model) -> int:
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))


def _expected_counts(cfg: ModelConfig) -> tuple[int, int]:
    """Trainable parameters by hand: 4x4 kernels, no bias before batch norm."""
    ch = lambda r: block_channels(cfg, r)  # noqa: E731
    res, c = cfg.resolution, cfg.channels
    g = cfg.latent_dim * 16 * ch(4) + 2 * ch(4)
    r = 8
    while r < res:
        g += 16 * ch(r // 2) * ch(r) + 2 * ch(r)
        r *= 2
    g += 16 * ch(res // 2) * c + c
    d = 16 * c * ch(res // 2) + ch(res // 2)
    r = res // 4
    while r >= 4:
        d += 16 * ch(2 * r) * ch(r) + 2 * ch(r)
        r //= 2
    d += 16 * ch(4) + 1
    return g, d


@pytest.mark.parametrize("resolution, channels", [(16, 1), (32, 3), (64, 3), (128, 1), (256, 3)])
def test_shapes_and_parameter_counts(resolution, channels):
    cfg = ModelConfig(resolution=resolution, channels=channels, width=8, max_width=64, latent_dim=16)
    generator, discriminator = build_generator(cfg), build_discriminator(cfg)
    images = generator(np.zeros((2, 16), np.float32), training=False)
    assert images.shape == (2, resolution, resolution, channels)
    assert images.dtype == "float32"
    assert np.all(np.abs(images.numpy()) <= 1.0)
    logits = discriminator(images, training=False)
    assert logits.shape == (2, 1)
    assert (_trainable(generator), _trainable(discriminator)) == _expected_counts(cfg)
    # one upsampling block per doubling from 4x4
    ups = [layer for layer in generator.layers if layer.name.startswith("up_")]
    assert len(ups) == int(math.log2(resolution)) - 2


def test_classic_dcgan64_matches_the_reference_sizes():
    # The PyTorch DCGAN tutorial (nz=100, ngf=ndf=64) has 3,576,704 G and 2,765,568 D
    # parameters. Ours differ only by a 128-d latent (+28*16*512), an output bias
    # in G (+3) and biases on D's first and last convolutions (+64, +1).
    cfg = ModelConfig(resolution=64, channels=3, width=64, latent_dim=128)
    assert [block_channels(cfg, r) for r in (4, 8, 16, 32)] == [512, 256, 128, 64]
    assert _trainable(build_generator(cfg)) == 3_576_704 + 28 * 16 * 512 + 3
    assert _trainable(build_discriminator(cfg)) == 2_765_568 + 64 + 1


def test_building_twice_with_one_seed_gives_equal_weights():
    cfg = ModelConfig(resolution=16, channels=3, width=8, latent_dim=8)
    a, b, c = build_generator(cfg, seed=1), build_generator(cfg, seed=1), build_generator(cfg, seed=2)
    for va, vb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    assert not np.array_equal(a.weights[0].numpy(), c.weights[0].numpy())
    # N(0, 0.02) initialisation, as in the paper
    assert abs(float(np.std(a.get_layer("project").kernel.numpy())) - 0.02) < 0.003


def test_latents_depend_only_on_seed_and_index():
    a = latents_for_seed(8, 16, seed=7).numpy()
    b = latents_for_seed(3, 16, seed=7).numpy()
    np.testing.assert_array_equal(a[:3], b)
    assert not np.allclose(a, latents_for_seed(8, 16, seed=8).numpy())


def test_to_uint8_maps_range():
    out = to_uint8(np.array([[[[-1.0], [0.0], [1.0], [2.0]]]], np.float32))
    assert out.dtype == np.uint8
    assert out.ravel().tolist() == [0, 128, 255, 255]
