"""StyleGAN2 generator and residual discriminator (Karras et al. 2020), CPU-friendly.

Generator = mapping network + synthesis network, with a tracked average w:

- mapping: z [B, Z] -> pixel norm -> (when conditional: concatenated with the
  pixel-normed sum of the label embeddings) -> `cfg.mapping_layers` equalized
  dense layers of Z features, leaky ReLU, learning-rate multiplier 0.01 -> w [B, Z].
  Computed in float32 under any policy (it is tiny).
- synthesis: ws [B, num_ws, Z] (w repeated; one row per style input, in
  StyleGAN2's order, so style mixing can feed different rows) -> a learned
  constant 4x4 -> per resolution: modulated + demodulated 3x3 convolutions
  (the first of each block upsamples 2x, bilinear), each followed by per-pixel
  noise with a learned strength (0 at first), a bias and leaky ReLU (x sqrt 2);
  a modulated 1x1 toRGB (no demodulation) per resolution, the RGB images summed
  through bilinear upsampling (the skip architecture). The image has no final
  tanh, as in the paper: it is float32, trained towards [-1, 1] and clipped
  only when converted to pixels.
- `w_avg`: a non-trainable [Z] variable, moved towards the batch mean of w
  on every training call (w_avg <- mean + 0.995 (w_avg - mean)); under
  `tf.distribute` the mean is all-reduced first, so all replicas hold the
  same value. Truncation lerps w towards it: `G(inputs, truncation=psi)`.

All weights use the equalized learning rate (N(0, 1) stored, scaled at run
time by 1/sqrt(fan_in); the mapping network also by its multiplier 0.01).

Noise randomness: in training calls each noise layer draws
`tf.random.stateless_normal` seeded from a hash of the call's w (see
`layers.NoiseKey`): no Python randomness, no random state to checkpoint, the
same under `tf.function`, XLA and every `tf.distribute` strategy, and a
resumed run draws what an uninterrupted one would. Inference calls add each
layer's fixed noise image instead, so `G(z, training=False)` is a
deterministic function of z (StyleGAN2's "const" noise mode).

Discriminator (StyleGAN2's residual D): 1x1 fromRGB + leaky ReLU, then per
resolution a residual block (3x3 conv, 3x3 conv that halves the resolution,
skip: 1x1 conv that halves it, sum times 1/sqrt 2); at 4x4 a minibatch
standard-deviation map (groups of 4), 3x3 conv, dense, dense -> logit; when
conditional, plus the projection term <sum_a embed_a(label_a), h> on the last
dense features h. Downsampling is a 2x2 average pool before the convolution
(the paper blurs and convolves with stride 2).

Channel widths follow `resnet.block_channels`: `width` channels at the output
resolution, doubling per halving up to `max_width` (StyleGAN2 config-f at
256 px is width 128, max_width 512).

Throughput, training-mode forward + backward at 64 px, batch 32, on the 2-core
AVX-512 CPU (`python bench/arch_throughput.py`; docs/benchmarks.md): width 32,
G 98 / D 119 / G+D step 34 img/s in fp32 and 142 / 196 / 55 with
mixed_bfloat16; width 64, 33 / 37 / 11 and 52 / 66 / 18. `layers.ModulatedConv2D`
documents the measured choices of its implementation.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import tensorflow as tf
from keras import layers

from facegan.config import ModelConfig
from facegan.models.layers import (
    BiasAct,
    ConstantInput,
    EqualizedConv2D,
    EqualizedDense,
    LabelEmbedding,
    LabelProjection,
    MinibatchStddev,
    ModulatedConv2D,
    NoiseInjection,
    NoiseKey,
    PixelNorm,
    seed_stream,
)
from facegan.models.resnet import block_channels

MAPPING_LR_MULTIPLIER = 0.01
W_AVG_BETA = 0.995


def num_ws(resolution: int) -> int:
    """Style rows of the synthesis network: two per resolution from 4x4 up.

    Each block's toRGB shares its row with the next block's first convolution,
    as in StyleGAN2 (it matters only when rows differ: style mixing).
    """
    return 2 * int(math.log2(resolution)) - 2


def build_mapping(cfg: ModelConfig, seed: int = 0) -> keras.Model:
    """z [B, Z] (and labels [B, A] int32 if conditional) -> w [B, Z], float32."""
    seeds = seed_stream(seed, salt=2)
    z = keras.Input(shape=(cfg.latent_dim,), name="latent")
    x = PixelNorm(dtype="float32", name="normalize_z")(z)
    inputs = [z]
    if cfg.conditional:
        labels = keras.Input(shape=(len(cfg.label_sizes),), dtype="int32", name="labels")
        inputs.append(labels)
        embedded = LabelEmbedding(
            cfg.label_sizes,
            cfg.latent_dim,
            seed=next(seeds),
            dtype="float32",
            name="label_embedding",
        )(labels)
        embedded = PixelNorm(dtype="float32", name="normalize_labels")(embedded)
        x = layers.Concatenate(dtype="float32", name="z_and_labels")([x, embedded])
    for index in range(cfg.mapping_layers):
        x = EqualizedDense(
            cfg.latent_dim,
            lr_multiplier=MAPPING_LR_MULTIPLIER,
            activation="lrelu",
            seed=next(seeds),
            dtype="float32",
            name=f"fc{index}",
        )(x)
    return keras.Model(inputs if cfg.conditional else z, x, name="mapping")


def build_synthesis(cfg: ModelConfig, seed: int = 0) -> keras.Model:
    """ws [B, num_ws, Z] -> images [B, R, R, C], float32, no output activation."""
    assert cfg.channels is not None, "resolve model.channels before building models"
    seeds = seed_stream(seed, salt=3)
    ws = keras.Input(shape=(num_ws(cfg.resolution), cfg.latent_dim), name="ws")
    key = NoiseKey(name="noise_key")(ws)
    noise_layers = 0

    def styled_conv(x, channels: int, w_index: int, name: str, upsample: bool = False):
        nonlocal noise_layers
        x = ModulatedConv2D(
            channels, 3, upsample=upsample, w_index=w_index, seed=next(seeds), name=f"{name}_conv"
        )([x, ws])
        x = NoiseInjection(salt=noise_layers, seed=next(seeds), name=f"{name}_noise")([x, key])
        noise_layers += 1
        return BiasAct("lrelu", name=f"{name}_act")(x)

    def to_rgb(x, w_index: int, name: str):
        # float32: the RGB sum is the image; these 1x1 convolutions are cheap.
        x = ModulatedConv2D(
            cfg.channels,
            1,
            demodulate=False,
            w_index=w_index,
            seed=next(seeds),
            dtype="float32",
            name=f"{name}_conv",
        )([x, ws])
        return BiasAct("linear", dtype="float32", name=f"{name}_bias")(x)

    x = ConstantInput(block_channels(cfg, 4), seed=next(seeds), name="const")(ws)
    x = styled_conv(x, block_channels(cfg, 4), 0, "b4")
    image = to_rgb(x, 1, "b4_rgb")
    resolution, w_index = 4, 1
    while resolution < cfg.resolution:
        resolution *= 2
        channels, name = block_channels(cfg, resolution), f"b{resolution}"
        x = styled_conv(x, channels, w_index, f"{name}_0", upsample=True)
        x = styled_conv(x, channels, w_index + 1, f"{name}_1")
        rgb = to_rgb(x, w_index + 2, f"{name}_rgb")
        image = layers.UpSampling2D(
            2, interpolation="bilinear", dtype="float32", name=f"{name}_image_up"
        )(image)
        image = layers.Add(dtype="float32", name=f"{name}_image")([image, rgb])
        w_index += 2
    return keras.Model(ws, image, name="synthesis")


@keras.saving.register_keras_serializable(package="facegan")
class StyleGAN2Generator(keras.Model):
    """z (or [z, labels]) -> images, with `mapping`, `synthesis` and `w_avg` exposed.

    Call as `G(inputs, training=..., truncation=1.0)`; `truncation` (psi, a
    float or scalar tensor) lerps w towards `w_avg` before synthesis:
    psi = 1 is plain synthesis, psi = 0 gives the average image.

    Args:
        cfg: the model config (arch "stylegan2").
        seed: weight seed.
        w_avg_beta: decay of the w average per training call.
    """

    supports_truncation = True

    def __init__(self, cfg: ModelConfig, seed: int = 0, w_avg_beta: float = W_AVG_BETA, **kwargs):
        kwargs.setdefault("name", "generator")
        # The outer model computes in float32 so z reaches the mapping network
        # unrounded; the synthesis network follows the global policy.
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.cfg, self.seed, self.w_avg_beta = cfg, int(seed), float(w_avg_beta)
        self.num_ws = num_ws(cfg.resolution)
        self.mapping = build_mapping(cfg, seed)
        self.synthesis = build_synthesis(cfg, seed)
        self.w_avg = self.add_weight(
            name="w_avg",
            shape=(cfg.latent_dim,),
            initializer="zeros",
            trainable=False,
            autocast=False,
        )
        self.built = True

    @property
    def conditional(self) -> bool:
        return self.cfg.conditional

    def call(self, inputs, training=False, truncation=1.0):
        w = self.mapping(inputs, training=training)  # [B, Z] float32
        if training:
            self._track_w_avg(w)
        if not (isinstance(truncation, (int, float)) and truncation == 1):
            w_avg = tf.convert_to_tensor(self.w_avg)
            w = w_avg + tf.cast(truncation, tf.float32) * (w - w_avg)
        return self.synthesize_from_w(w, training=training)

    def synthesize_from_w(self, w, training=False):
        """Images [B, R, R, C] from styles w [B, Z], one w broadcast to every layer."""
        w = tf.convert_to_tensor(w)
        ws = tf.tile(w[:, None, :], [1, self.num_ws, 1])  # [B, num_ws, Z]
        return self.synthesis(ws, training=training)

    def _track_w_avg(self, w: tf.Tensor) -> None:
        batch_mean = tf.reduce_mean(tf.stop_gradient(w), axis=0)  # [Z]
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            # Equal per-replica batches: the mean of the means is the global mean.
            batch_mean = context.all_reduce(tf.distribute.ReduceOp.MEAN, batch_mean)
        self.w_avg.assign(batch_mean + self.w_avg_beta * (self.w_avg - batch_mean))

    def get_config(self):
        return {
            "cfg": dataclasses.asdict(self.cfg),
            "seed": self.seed,
            "w_avg_beta": self.w_avg_beta,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(ModelConfig(**config.pop("cfg")), **config)


def build_generator(cfg: ModelConfig, seed: int = 0) -> StyleGAN2Generator:
    """z [B, Z] (and labels [B, A] int32 if conditional) -> images [B, R, R, C] (float32)."""
    return StyleGAN2Generator(cfg, seed)


def build_discriminator(cfg: ModelConfig, seed: int = 0) -> keras.Model:
    """Images [B, R, R, C] (and labels [B, A] int32 if conditional) -> logits [B, 1] (float32)."""
    assert cfg.channels is not None, "resolve model.channels before building models"
    seeds = seed_stream(seed, salt=4)
    images = keras.Input(shape=(cfg.resolution, cfg.resolution, cfg.channels), name="images")
    inputs = [images]
    x = EqualizedConv2D(
        block_channels(cfg, cfg.resolution),
        1,
        activation="lrelu",
        seed=next(seeds),
        name="from_rgb",
    )(images)
    resolution = cfg.resolution
    while resolution > 4:
        channels, name = block_channels(cfg, resolution // 2), f"b{resolution}"
        h = EqualizedConv2D(
            block_channels(cfg, resolution),
            3,
            activation="lrelu",
            seed=next(seeds),
            name=f"{name}_conv0",
        )(x)
        h = EqualizedConv2D(
            channels, 3, downsample=True, activation="lrelu", seed=next(seeds), name=f"{name}_conv1"
        )(h)
        skip = EqualizedConv2D(
            channels, 1, downsample=True, use_bias=False, seed=next(seeds), name=f"{name}_skip"
        )(x)
        x = layers.Add(name=f"{name}_add")([h, skip])
        x = layers.Rescaling(math.sqrt(0.5), name=f"{name}_scale")(x)  # keeps unit variance
        resolution //= 2
    x = MinibatchStddev(group_size=4, num_channels=1, name="mbstd")(x)
    x = EqualizedConv2D(
        block_channels(cfg, 4), 3, activation="lrelu", seed=next(seeds), name="b4_conv"
    )(x)
    x = layers.Flatten(name="b4_flatten")(x)
    h = EqualizedDense(block_channels(cfg, 4), activation="lrelu", seed=next(seeds), name="b4_fc")(
        x
    )
    logits = EqualizedDense(1, seed=next(seeds), dtype="float32", name="out")(h)
    if cfg.conditional:
        labels = keras.Input(shape=(len(cfg.label_sizes),), dtype="int32", name="labels")
        inputs.append(labels)
        # N(0, 1) embeddings used times 1/sqrt(features): equalized, like StyleGAN2-ADA's cmap.
        projection = LabelProjection(
            cfg.label_sizes,
            stddev=1.0,
            multiplier=1.0 / math.sqrt(block_channels(cfg, 4)),
            seed=next(seeds),
            name="projection",
        )([h, labels])
        logits = layers.Add(dtype="float32", name="logits")([logits, projection])
    return keras.Model(inputs if cfg.conditional else images, logits, name="discriminator")
