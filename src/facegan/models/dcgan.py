"""DCGAN generator and discriminator (Radford, Metz & Chintala, 2015).

All-convolutional: 4x4 kernels with stride 2 double (generator, transposed
convolutions) or halve (discriminator) the resolution at each block; batch norm
everywhere except the generator's output and the discriminator's input layer;
ReLU in the generator, LeakyReLU(0.2) in the discriminator; tanh output; weights
drawn from N(0, 0.02).

Channel widths follow the reference implementation: a block at resolution `r`
of a model for resolution `R` has `width * R / (2 r)` channels, capped at
`max_width`. With width 64 at 64 px that is 512-256-128-64, as in the paper.

Options beyond the paper (all off by default, so the classic recipe is
unchanged): `cfg.d_width` gives D its own width; `cfg.d_minibatch_std` appends
the minibatch standard deviation (ProGAN) before D's last layer;
`cfg.g_skip_excitation` gates every G block at 32 px and up, per channel, by a
squeeze of the block 8x smaller (FastGAN's skip-layer excitation);
`cfg.g_spectral_norm` / `cfg.d_spectral_norm` wrap
the generator's / discriminator's dense and convolution layers in spectral
normalization (the discriminator then drops its batch norms, as SNGAN's
"standard CNN" does: they would undo the Lipschitz bound). When `cfg` is
conditional, G concatenates z with the summed label embeddings, and D adds the
projection term <sum_a embed_a(label_a), h> on its flattened 4x4 features h.
"""

from __future__ import annotations

import keras
from keras import layers

from facegan.config import ModelConfig
from facegan.models.layers import (
    LabelEmbedding,
    LabelProjection,
    MinibatchStddev,
    maybe_spectral_norm,
    seed_stream,
)

# PyTorch's batch-norm defaults, which the DCGAN recipe was tuned with
# (Keras' own momentum of 0.99 makes the inference statistics lag far behind
# a generator that changes every step).
_BN = dict(momentum=0.9, epsilon=1e-5)


def block_channels(cfg: ModelConfig, resolution: int, width: int | None = None) -> int:
    """Channels of the block whose output is `resolution` pixels square."""
    return min((width or cfg.width) * cfg.resolution // (2 * resolution), cfg.max_width)


def _excitation(low: keras.KerasTensor, channels: int, inits, name: str) -> keras.KerasTensor:
    """Per-channel gates [B, 1, 1, channels] in (0, 1) from a small feature map (FastGAN's SLE).

    The map is averaged to 4x4, a 4x4 convolution squeezes it to one vector,
    and a 1x1 convolution and a sigmoid give one gate per channel of the
    larger block.
    """
    side = low.shape[1]
    if side > 4:
        low = layers.AveragePooling2D(side // 4, name=f"{name}_pool")(low)
    gates = layers.Conv2D(
        channels, 4, padding="valid", kernel_initializer=next(inits), name=f"{name}_squeeze"
    )(low)
    gates = layers.LeakyReLU(0.1, name=f"{name}_lrelu")(gates)
    gates = layers.Conv2D(channels, 1, kernel_initializer=next(inits), name=f"{name}_excite")(gates)
    return layers.Activation("sigmoid", name=f"{name}_gates")(gates)


def _initializers(seed: int, salt: int):
    """Distinct seeded N(0, 0.02) initializers, so building twice gives equal weights."""
    for init_seed in seed_stream(seed, salt):
        yield keras.initializers.RandomNormal(0.0, 0.02, seed=init_seed)


def _batch_norm(inits, name: str) -> layers.Layer:
    gamma = keras.initializers.RandomNormal(1.0, 0.02, seed=next(inits).seed)
    # Synchronized: under a multi-replica strategy each layer normalises with the
    # statistics of the whole global batch, so results do not depend on how many
    # devices share it (one small all-reduce per layer and call; free on one device).
    return layers.BatchNormalization(gamma_initializer=gamma, name=name, synchronized=True, **_BN)


def _labels_input(cfg: ModelConfig) -> keras.KerasTensor:
    return keras.Input(shape=(len(cfg.label_sizes),), dtype="int32", name="labels")


def build_generator(cfg: ModelConfig, seed: int = 0) -> keras.Model:
    """Noise [B, latent_dim] (and labels [B, A] if conditional) -> images [B, R, R, channels].

    Images are in [-1, 1] and float32 under any precision policy.
    """
    assert cfg.channels is not None, "resolve model.channels before building models"
    inits = _initializers(seed, salt=12)
    extra = seed_stream(seed, salt=10)  # label embeddings and spectral-norm vectors

    def sn(layer: layers.Layer) -> layers.Layer:
        return maybe_spectral_norm(layer, cfg.g_spectral_norm, next(extra))

    z = keras.Input(shape=(cfg.latent_dim,), name="latent")
    h = z
    if cfg.conditional:
        labels = _labels_input(cfg)
        embedded = LabelEmbedding(
            cfg.label_sizes,
            cfg.latent_dim,
            seed=next(extra),
            spectral_norm=cfg.g_spectral_norm,
            name="label_embedding",
        )(labels)
        h = layers.Concatenate(name="latent_and_labels")([z, embedded])
    width = block_channels(cfg, 4)
    x = sn(
        layers.Dense(4 * 4 * width, use_bias=False, kernel_initializer=next(inits), name="project")
    )(h)
    x = layers.Reshape((4, 4, width), name="to_4x4")(x)
    x = _batch_norm(inits, "bn_4")(x)
    x = layers.ReLU(name="relu_4")(x)
    resolution, blocks = 4, {4: x}
    while resolution * 2 < cfg.resolution:
        resolution *= 2
        x = sn(
            layers.Conv2DTranspose(
                block_channels(cfg, resolution),
                4,
                strides=2,
                padding="same",
                use_bias=False,
                kernel_initializer=next(inits),
                name=f"up_{resolution}",
            )
        )(x)
        x = _batch_norm(inits, f"bn_{resolution}")(x)
        x = layers.ReLU(name=f"relu_{resolution}")(x)
        if cfg.g_skip_excitation and resolution >= 32:
            gates = _excitation(
                blocks[max(4, resolution // 8)],
                block_channels(cfg, resolution),
                inits,
                f"excite_{resolution}",
            )
            x = layers.Multiply(name=f"excited_{resolution}")([x, gates])
        blocks[resolution] = x
    x = sn(
        layers.Conv2DTranspose(
            cfg.channels,
            4,
            strides=2,
            padding="same",
            kernel_initializer=next(inits),
            name=f"up_{cfg.resolution}",
        )
    )(x)
    # float32 output even under a mixed-precision policy: images leave the model.
    images = layers.Activation("tanh", dtype="float32", name="tanh")(x)
    return keras.Model([z, labels] if cfg.conditional else z, images, name="generator")


def build_discriminator(cfg: ModelConfig, seed: int = 0) -> keras.Model:
    """Images [B, R, R, channels] (and labels [B, A] if conditional) -> logits [B, 1] (float32)."""
    assert cfg.channels is not None, "resolve model.channels before building models"
    inits = _initializers(seed, salt=13)
    extra = seed_stream(seed, salt=11)
    spectral, width = cfg.d_spectral_norm, cfg.d_width or cfg.width

    def sn(layer: layers.Layer) -> layers.Layer:
        return maybe_spectral_norm(layer, spectral, next(extra))

    images = keras.Input(shape=(cfg.resolution, cfg.resolution, cfg.channels), name="images")
    resolution = cfg.resolution // 2
    x = sn(
        layers.Conv2D(
            block_channels(cfg, resolution, width),
            4,
            strides=2,
            padding="same",
            kernel_initializer=next(inits),
            name=f"down_{resolution}",
        )
    )(images)
    x = layers.LeakyReLU(0.2, name=f"lrelu_{resolution}")(x)
    while resolution > 4:
        resolution //= 2
        x = sn(
            layers.Conv2D(
                block_channels(cfg, resolution, width),
                4,
                strides=2,
                padding="same",
                use_bias=spectral,
                kernel_initializer=next(inits),
                name=f"down_{resolution}",
            )
        )(x)
        if not spectral:
            x = _batch_norm(inits, f"bn_{resolution}")(x)
        x = layers.LeakyReLU(0.2, name=f"lrelu_{resolution}")(x)
    features = x  # [B, 4, 4, C]
    if cfg.d_minibatch_std:
        x = MinibatchStddev(name="minibatch_std")(x)  # [B, 4, 4, C + 1]
    x = sn(layers.Conv2D(1, 4, padding="valid", kernel_initializer=next(inits), name="logit"))(x)
    logits = layers.Flatten(dtype="float32", name="logits")(x)
    if not cfg.conditional:
        return keras.Model(images, logits, name="discriminator")
    labels = _labels_input(cfg)
    h = layers.Flatten(name="features")(features)  # [B, 16 C]
    projection = LabelProjection(
        cfg.label_sizes, stddev=0.02, spectral_norm=spectral, seed=next(extra), name="projection"
    )([h, labels])
    logits = layers.Add(dtype="float32", name="logits_with_labels")([logits, projection])
    return keras.Model([images, labels], logits, name="discriminator")
