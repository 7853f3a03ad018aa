"""Residual generator and discriminator (SNGAN, Miyato et al. 2018; a BigGAN-lite).

Generator: latent (concatenated with the summed label embeddings when
conditional; BigGAN conditions its batch norms instead, a possible later step)
-> dense -> 4x4 -> one up-block per doubling -> BN, ReLU, 3x3 conv, tanh.
An up-block is

    main: BN, ReLU, nearest 2x upsample, 3x3 conv, BN, ReLU, 3x3 conv
    skip: nearest 2x upsample, 1x1 conv
    out = main + skip

The upsample + 3x3 conv runs as one exactly equivalent 4x4 stride-2 transposed
convolution, and D's 3x3 conv + average pool as one 4x4 stride-2 convolution
(`layers.UpsampleConv2D`, `layers.ConvDownsample2D`: the same functions of the
same 3x3 kernels, ~2x faster); the 1x1 skips are applied at the low resolution.

Discriminator: one down-block per halving from R to 4x4, a last block at 4x4,
ReLU, global sum pooling, dense -> logit; when conditional, plus the
projection term <sum_a embed_a(label_a), h> (Miyato & Koyama 2018). Down-blocks
are pre-activation (ReLU, 3x3 conv, ReLU, 3x3 conv, 2x2 average pool; skip:
average pool then 1x1 conv, the same function as conv then pool at a quarter
of the cost); the first block has no ReLU before its first convolution (the
input is an image). No batch norm in D.

Spectral norm wraps every dense, convolution and embedding layer of D when
`cfg.d_spectral_norm`, and of G when `cfg.g_spectral_norm` (BigGAN uses both).
Generator batch norms are synchronized across replicas, as in dcgan. Biases
are left out of layers followed by a batch norm (it would cancel them; they
would get no gradient). Weights are Glorot-uniform, seeded.

TensorFlow 2.21's Grappler logs "remapper failed: ... fanout ... exist for
missing node .../down_*_add..." once when a training step with this D is
traced: it fuses a residual sum into the next block's ReLU although the sum
also feeds that block's skip path, notices, and leaves the graph unfused
(measured: no slower than with the remapper switched off).

Channel widths: `width` is the number of channels at the highest resolution;
each halving of the resolution doubles it, up to `max_width`:
`block_channels(cfg, r) = min(width * R / r, max_width)`. With width 64 at
64 px: 512 (4x4), 512 (8x8), 256 (16), 128 (32), 64 (64). G's block that
outputs resolution r has block_channels(r) channels; D's block that reads
resolution r has block_channels(r).
"""

from __future__ import annotations

from collections.abc import Iterator

import keras
from keras import layers

from facegan.config import ModelConfig
from facegan.models.layers import (
    ConvDownsample2D,
    GlobalSumPooling,
    LabelEmbedding,
    LabelProjection,
    UpsampleConv2D,
    maybe_spectral_norm,
    seed_stream,
)

_BN = dict(momentum=0.9, epsilon=1e-5)  # PyTorch's defaults, as in dcgan


def block_channels(cfg: ModelConfig, resolution: int) -> int:
    """Channels at `resolution`: `width` at the output resolution, doubling per halving."""
    return min(cfg.width * cfg.resolution // resolution, cfg.max_width)


class _Factory:
    """Makes seeded (and, if asked, spectrally normalized) layers for one network."""

    def __init__(self, seed: int, salt: int, spectral_norm: bool):
        self.seeds: Iterator[int] = seed_stream(seed, salt)
        self.spectral_norm = spectral_norm

    def _init(self):
        return keras.initializers.GlorotUniform(seed=next(self.seeds))

    def conv(
        self, filters: int, kernel: int, name: str, use_bias: bool = True, kind=layers.Conv2D
    ) -> layers.Layer:
        """A 'same' convolution; `kind` UpsampleConv2D or ConvDownsample2D fuses a resampling."""
        if kind is layers.Conv2D:
            conv = layers.Conv2D(
                filters,
                kernel,
                padding="same",
                use_bias=use_bias,
                kernel_initializer=self._init(),
                name=name,
            )
        else:
            conv = kind(filters, use_bias=use_bias, kernel_initializer=self._init(), name=name)
        return maybe_spectral_norm(conv, self.spectral_norm, next(self.seeds))

    def dense(
        self, units: int, name: str, use_bias: bool = True, dtype: str | None = None
    ) -> layers.Layer:
        dense = layers.Dense(
            units, use_bias=use_bias, kernel_initializer=self._init(), name=name, dtype=dtype
        )
        return maybe_spectral_norm(dense, self.spectral_norm, next(self.seeds))

    def batch_norm(self, name: str) -> layers.Layer:
        # Synchronized: statistics of the global batch under a multi-replica strategy.
        return layers.BatchNormalization(name=name, synchronized=True, **_BN)

    def label_embedding(self, cfg: ModelConfig, dim: int) -> LabelEmbedding:
        return LabelEmbedding(
            cfg.label_sizes,
            dim,
            stddev=1.0,
            spectral_norm=self.spectral_norm,
            seed=next(self.seeds),
            name="label_embedding",
        )

    def label_projection(self, cfg: ModelConfig) -> LabelProjection:
        # Small start: the class term should not drown the unconditional logit at first.
        return LabelProjection(
            cfg.label_sizes,
            stddev=0.02,
            spectral_norm=self.spectral_norm,
            seed=next(self.seeds),
            name="projection",
        )


def _inputs(cfg: ModelConfig, first: keras.KerasTensor) -> list:
    if not cfg.conditional:
        return [first]
    return [first, keras.Input(shape=(len(cfg.label_sizes),), dtype="int32", name="labels")]


def _up_block(make: _Factory, x, channels: int, resolution: int):
    """[B, r/2, r/2, Cin] -> [B, r, r, channels]."""
    name = f"up_{resolution}"
    # A 1x1 convolution commutes with nearest upsampling: convolve at the low resolution.
    skip = make.conv(channels, 1, f"{name}_skip_conv", use_bias=False)(x)
    skip = layers.UpSampling2D(2, name=f"{name}_skip_up")(skip)
    h = make.batch_norm(f"{name}_bn1")(x)
    h = layers.ReLU(name=f"{name}_relu1")(h)
    # Nearest 2x upsampling + 3x3 conv, fused exactly (see layers.UpsampleConv2D).
    h = make.conv(channels, 3, f"{name}_conv1", use_bias=False, kind=UpsampleConv2D)(h)
    h = make.batch_norm(f"{name}_bn2")(h)
    h = layers.ReLU(name=f"{name}_relu2")(h)
    h = make.conv(channels, 3, f"{name}_conv2", use_bias=False)(h)
    return layers.Add(name=f"{name}_add")([h, skip])


def build_generator(cfg: ModelConfig, seed: int = 0) -> keras.Model:
    """Latents [B, latent_dim] (and labels [B, A] int32 if conditional) -> images [B, R, R, C].

    Images are in [-1, 1] (tanh) and float32 under any precision policy.
    """
    assert cfg.channels is not None, "resolve model.channels before building models"
    make = _Factory(seed, salt=0, spectral_norm=cfg.g_spectral_norm)
    z = keras.Input(shape=(cfg.latent_dim,), name="latent")
    inputs = _inputs(cfg, z)
    h = z
    if cfg.conditional:
        embedded = make.label_embedding(cfg, cfg.latent_dim)(inputs[1])  # [B, Z]
        h = layers.Concatenate(name="latent_and_labels")([z, embedded])  # [B, 2Z]
    width = block_channels(cfg, 4)
    x = make.dense(4 * 4 * width, "project", use_bias=False)(h)
    x = layers.Reshape((4, 4, width), name="to_4x4")(x)
    resolution = 4
    while resolution < cfg.resolution:
        resolution *= 2
        x = _up_block(make, x, block_channels(cfg, resolution), resolution)
    x = make.batch_norm("out_bn")(x)
    x = layers.ReLU(name="out_relu")(x)
    x = make.conv(cfg.channels, 3, "to_image")(x)
    # float32 output even under a mixed-precision policy: images leave the model.
    images = layers.Activation("tanh", dtype="float32", name="tanh")(x)
    return keras.Model(inputs if cfg.conditional else z, images, name="generator")


def _down_block(
    make: _Factory, x, channels: int, resolution: int, first: bool, downsample: bool = True
):
    """[B, r, r, Cin] -> [B, r/2, r/2, channels] (or [B, r, r, channels] if not downsample)."""
    name = f"down_{resolution}" if downsample else f"block_{resolution}"
    h = x if first else layers.ReLU(name=f"{name}_relu1")(x)
    h = make.conv(channels, 3, f"{name}_conv1")(h)
    h = layers.ReLU(name=f"{name}_relu2")(h)
    # 3x3 conv + 2x2 average pool, fused exactly when downsampling (layers.ConvDownsample2D).
    h = make.conv(
        channels, 3, f"{name}_conv2", kind=ConvDownsample2D if downsample else layers.Conv2D
    )(h)
    skip = x
    if downsample:
        # Pooling commutes with the 1x1 convolution: pool first, convolve a quarter of the pixels.
        skip = layers.AveragePooling2D(2, name=f"{name}_skip_pool")(skip)
    if downsample or x.shape[-1] != channels:
        skip = make.conv(channels, 1, f"{name}_skip_conv")(skip)
    return layers.Add(name=f"{name}_add")([h, skip])


def build_discriminator(cfg: ModelConfig, seed: int = 0) -> keras.Model:
    """Images [B, R, R, C] (and labels [B, A] int32 if conditional) -> logits [B, 1] (float32)."""
    assert cfg.channels is not None, "resolve model.channels before building models"
    make = _Factory(seed, salt=1, spectral_norm=cfg.d_spectral_norm)
    images = keras.Input(shape=(cfg.resolution, cfg.resolution, cfg.channels), name="images")
    inputs = _inputs(cfg, images)
    x = images
    resolution = cfg.resolution
    while resolution > 4:
        x = _down_block(
            make, x, block_channels(cfg, resolution), resolution, first=resolution == cfg.resolution
        )
        resolution //= 2
    x = _down_block(make, x, block_channels(cfg, 4), 4, first=False, downsample=False)
    x = layers.ReLU(name="out_relu")(x)
    h = GlobalSumPooling(name="sum_pool")(x)  # [B, C]
    logits = make.dense(1, "logit", dtype="float32")(h)  # [B, 1], float32 under any policy
    if cfg.conditional:
        projection = make.label_projection(cfg)([h, inputs[1]])  # [B, 1]
        logits = layers.Add(dtype="float32", name="logits")([logits, projection])
    return keras.Model(inputs if cfg.conditional else images, logits, name="discriminator")
