"""Building blocks shared by the network families (resnet, stylegan2).

Written from the papers' descriptions:

- `SpectralNorm` (Miyato et al. 2018): a wrapper that divides a Dense, Conv2D,
  Conv2DTranspose or Embedding kernel by its largest singular value, estimated
  by power iteration; the iteration vector `u` is a non-trainable weight,
  advanced once per training call and left alone in inference calls.
- Equalized learning rate (Karras et al. 2018): `EqualizedDense` and
  `EqualizedConv2D` store N(0, 1/lr_multiplier) weights and scale them at run
  time by lr_multiplier / sqrt(fan_in), so that Adam's per-parameter step is
  the same relative change for every layer whatever its fan-in.
- StyleGAN2 (Karras et al. 2020): `PixelNorm`, `ModulatedConv2D` (with weight
  demodulation), `NoiseInjection`, `BiasAct`, `ConstantInput`, `NoiseKey` and
  the discriminator's `MinibatchStddev`.
- `UpsampleConv2D` (nearest 2x upsampling + 3x3 conv) and `ConvDownsample2D`
  (3x3 conv + 2x2 average pool): Conv2D subclasses that compute exactly those
  functions of their 3x3 kernel as one 4x4 stride-2 (transposed) convolution,
  about twice as fast.
- Conditioning: `LabelEmbedding` (a learned embedding per attribute, summed)
  and `LabelProjection`, the projection discriminator's inner product
  (Miyato & Koyama 2018).

Mixed precision: every layer here is built with `autocast=False` and casts by
hand, so that what needs float32 stays float32 under a `mixed_bfloat16` policy
(power iteration, styles and demodulation coefficients, minibatch statistics,
noise keys) while the convolutions run in the policy's compute dtype.

Determinism: every random initializer takes an integer seed; a layer that owns
several draws from `seed + k` for k < `SEED_STRIDE`, and `seed_stream` hands out
seeds `SEED_STRIDE` apart, so building a network twice from one seed gives
equal weights.
"""

from __future__ import annotations

import itertools
import math
from typing import Iterator, Sequence

import keras
import tensorflow as tf
from keras import layers

from facegan.seeds import Stream, rng

SEED_STRIDE = 16
_LRELU_SLOPE = 0.2
# StyleGAN2 multiplies leaky-ReLU outputs by sqrt(2), so activations keep unit
# variance through layers whose weights are N(0, 1) scaled by 1/sqrt(fan_in).
_LRELU_GAIN = math.sqrt(2.0)
_ACTIVATIONS = ("linear", "lrelu")
_SERIALIZABLE = keras.saving.register_keras_serializable(package="facegan")


def seed_stream(seed: int, salt: int = 0) -> Iterator[int]:
    """Distinct, deterministic initializer seeds, `SEED_STRIDE` apart.

    Args:
        seed: the network's seed (from the run's config).
        salt: separates the streams of networks built from one seed (G, D).
    """
    # A contiguous run per (seed, salt): a network's few hundred seeds never collide.
    start = int(rng(seed, Stream.WEIGHTS, part=salt).integers(2**26))
    return itertools.count(start * SEED_STRIDE, SEED_STRIDE)


def _activate(x: tf.Tensor, activation: str) -> tf.Tensor:
    if activation == "lrelu":
        return tf.nn.leaky_relu(x, _LRELU_SLOPE) * tf.cast(_LRELU_GAIN, x.dtype)
    return x


def _check_activation(activation: str) -> str:
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {_ACTIVATIONS}; received {activation!r}")
    return activation


class _Layer(layers.Layer):
    """A layer that never autocasts: `call` casts inputs and weights explicitly."""

    def __init__(self, **kwargs):
        kwargs.pop("autocast", None)
        # autocast=False: float inputs arrive as they are (float32 styles stay float32
        # under mixed precision) and weights are read in their own dtype.
        super().__init__(autocast=False, **kwargs)

    def _cast(self, x) -> tf.Tensor:
        return tf.cast(x, self.compute_dtype)


# -- spectral normalization ---------------------------------------------------------------


def _l2_normalize(x: tf.Tensor, epsilon: float) -> tf.Tensor:
    return x * tf.math.rsqrt(tf.maximum(tf.reduce_sum(tf.square(x)), epsilon**2))


@_SERIALIZABLE
class SpectralNorm(layers.Wrapper):
    """Spectral normalization of a Dense, Conv2D, Conv2DTranspose or Embedding layer.

    The wrapped layer computes with `kernel / sigma`, sigma being the largest
    singular value of the kernel W seen as a matrix [fan_in, out] (out = output
    channels, or the embedding size). Sigma is estimated from the vector
    `u` [1, out], a non-trainable weight (so a training step can snapshot and
    restore it): v = norm(u W^T), sigma = v W u^T. A training call first runs
    `power_iterations` steps u = norm(v W), v = norm(u W^T) and stores the new
    u; an inference call uses the stored u and changes nothing (and so gets the
    sigma of the last training call, for unchanged weights). Gradients flow
    through sigma with u and v held constant, as in the paper.

    The wrapper runs the wrapped layer's computation itself (bias and
    activation included) with the normalized kernel, in the layer's dtype
    policy; the power iteration is float32.

    Args:
        layer: the layer to wrap (not yet built, or built).
        power_iterations: iterations per training call (1 is the paper's choice:
            u carries over between steps, and the weights move slowly).
        epsilon: guards the normalization of u and v.
        seed: seeds u's random start.
    """

    _SUPPORTED = (layers.Dense, layers.Conv2D, layers.Conv2DTranspose, layers.Embedding)

    def __init__(self, layer: layers.Layer, power_iterations: int = 1, epsilon: float = 1e-12,
                 seed: int = 0, **kwargs):
        if not isinstance(layer, self._SUPPORTED):
            raise TypeError("SpectralNorm wraps Dense, Conv2D (and its subclasses), "
                            f"Conv2DTranspose or Embedding; received {type(layer).__name__}")
        if power_iterations < 1:
            raise ValueError(f"power_iterations must be at least 1; received {power_iterations}")
        kwargs.setdefault("dtype", layer.dtype_policy)  # the wrapper computes what `layer` did
        kwargs.pop("autocast", None)
        super().__init__(layer, autocast=False, **kwargs)
        self.power_iterations = int(power_iterations)
        self.epsilon = float(epsilon)
        self.seed = int(seed)

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape)
        out = self._kernel().shape[-2 if self._transposed else -1]
        self.u = self.add_weight(name="u", shape=(1, out), trainable=False, autocast=False,
                                 initializer=keras.initializers.RandomNormal(seed=self.seed))
        self.built = True

    @property
    def _transposed(self) -> bool:
        # Conv2DTranspose kernels are [kh, kw, out, in]: output channels come second to last.
        return isinstance(self.layer, layers.Conv2DTranspose)

    def _kernel(self):
        if isinstance(self.layer, layers.Embedding):
            return self.layer.embeddings
        return self.layer.kernel

    def _as_matrix(self, kernel: tf.Tensor) -> tf.Tensor:
        if self._transposed:
            kernel = tf.transpose(kernel, [0, 1, 3, 2])
        return tf.reshape(kernel, [-1, kernel.shape[-1]])  # [fan_in, out]

    def normalized_kernel(self, training: bool = False) -> tf.Tensor:
        """The kernel divided by its estimated spectral norm (float32, kernel's shape).

        Args:
            training: advance the power iteration and store the new `u`.
        """
        kernel = tf.cast(self._kernel(), tf.float32)
        w = self._as_matrix(kernel)  # [m, n]
        u = tf.convert_to_tensor(self.u)  # [1, n]
        v = _l2_normalize(tf.matmul(u, w, transpose_b=True), self.epsilon)  # [1, m]
        if training:
            for _ in range(self.power_iterations):
                u = _l2_normalize(tf.matmul(v, w), self.epsilon)
                v = _l2_normalize(tf.matmul(u, w, transpose_b=True), self.epsilon)
            self.u.assign(u)
        u, v = tf.stop_gradient(u), tf.stop_gradient(v)
        sigma = tf.reduce_sum(tf.matmul(v, w) * u)  # v W u^T
        return kernel / sigma

    def call(self, inputs, training=None):
        layer = self.layer
        kernel = tf.cast(self.normalized_kernel(bool(training)), self.compute_dtype)
        if isinstance(layer, layers.Embedding):
            return tf.gather(kernel, tf.cast(inputs, tf.int32))
        x = tf.cast(inputs, self.compute_dtype)
        if isinstance(layer, layers.Dense):
            y = keras.ops.matmul(x, kernel)
        elif isinstance(layer, layers.Conv2DTranspose):
            y = keras.ops.conv_transpose(
                x, kernel, strides=list(layer.strides), padding=layer.padding,
                output_padding=layer.output_padding, dilation_rate=layer.dilation_rate,
                data_format=layer.data_format)
        else:  # Conv2D and its subclasses (UpsampleConv2D, ConvDownsample2D)
            y = layer.convolution_op(x, kernel)
        if layer.use_bias:
            channels_first = getattr(layer, "data_format", None) == "channels_first"
            y = tf.nn.bias_add(y, tf.cast(layer.bias, self.compute_dtype),
                               data_format="NCHW" if channels_first else None)
        return layer.activation(y) if layer.activation is not None else y

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(power_iterations=self.power_iterations, epsilon=self.epsilon,
                      seed=self.seed)
        return config


def maybe_spectral_norm(layer: layers.Layer, enabled: bool, seed: int) -> layers.Layer:
    """`SpectralNorm(layer)` when `enabled`, else `layer` itself."""
    return SpectralNorm(layer, seed=seed, name=f"{layer.name}_sn") if enabled else layer


# -- exact fused resampling convolutions ---------------------------------------------------------

# Row k of each matrix gives the 3x3 taps that land on tap k of the equivalent
# 4-tap kernel, along one axis (the 2D kernel is the outer product of two axes).
# Nearest 2x upsampling then a 'same' 3x3 conv: output row 2i reads input rows
# i-1 (tap 0) and i (taps 1, 2); row 2i+1 reads i (taps 0, 1) and i+1 (tap 2).
# As a stride-2 'same' transposed conv (output row q = 2p + k - 1): k=0 <- tap 2,
# k=1 <- taps 1+2, k=2 <- taps 0+1, k=3 <- tap 0.
_NEAREST_UP_TAPS = ((0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (1.0, 1.0, 0.0), (1.0, 0.0, 0.0))
# A 'same' 3x3 conv then 2x2 average pooling: output row o averages conv rows 2o
# and 2o+1, which read input rows 2o-1 .. 2o+2, i.e. a 4-tap stride-2 'same'
# conv with taps (w0, w0+w1, w1+w2, w2) / 2.
_POOL_DOWN_TAPS = ((0.5, 0.0, 0.0), (0.5, 0.5, 0.0), (0.0, 0.5, 0.5), (0.0, 0.0, 0.5))


def _fused_kernel(kernel: tf.Tensor, taps) -> tf.Tensor:
    """[3, 3, Cin, Cout] -> [4, 4, Cin, Cout]: 3x3 taps regrouped along both axes."""
    taps = tf.constant(taps, dtype=kernel.dtype)  # [4, 3]
    return tf.einsum("ay,bx,yxio->abio", taps, taps, kernel)


class _FusedConv(layers.Conv2D):
    """A 'same' 3x3 Conv2D whose `convolution_op` also resamples (NHWC only)."""

    def __init__(self, filters: int, kernel_size=3, **kwargs):
        _check_fused_conv(kernel_size, kwargs)
        kwargs.update(padding="same")
        super().__init__(filters, 3, **kwargs)


def _check_fused_conv(kernel_size, kwargs) -> None:
    if kernel_size not in (3, (3, 3)):
        raise ValueError(f"kernel_size must be 3; received {kernel_size!r}")
    for key, allowed in (("strides", (1, (1, 1))), ("padding", ("same",)),
                         ("dilation_rate", (1, (1, 1))), ("groups", (1,)),
                         ("data_format", (None, "channels_last"))):
        if key in kwargs and kwargs[key] not in allowed:
            raise ValueError(f"{key} must be {allowed[0]!r}; received {kwargs[key]!r}")


@_SERIALIZABLE
class UpsampleConv2D(_FusedConv):
    """Nearest-neighbour 2x upsampling followed by a 'same' 3x3 convolution (NHWC).

    The same function as `UpSampling2D(2)` then `Conv2D(filters, 3, padding="same")`,
    with the same 3x3 kernel, computed as one 4x4 stride-2 transposed convolution
    of the low-resolution input: 4 instead of 9 multiply-adds per output pixel
    and channel pair. Measured forward + backward, batch 32, fp32, 2-core CPU:
    37 against 78 ms (32 -> 64 px, 64 -> 32 channels), 40 against 60 ms
    (4 -> 8 px, 512 -> 256). Being a Conv2D, it can be wrapped in `SpectralNorm`.
    """

    def convolution_op(self, inputs, kernel):
        kernel = tf.transpose(_fused_kernel(kernel, _NEAREST_UP_TAPS), [0, 1, 3, 2])  # [4,4,O,I]
        shape = tf.shape(inputs)
        out_shape = tf.stack([shape[0], 2 * shape[1], 2 * shape[2], self.filters])
        return tf.nn.conv2d_transpose(inputs, kernel, out_shape, 2, "SAME")

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        return (b, None if h is None else 2 * h, None if w is None else 2 * w, self.filters)


@_SERIALIZABLE
class ConvDownsample2D(_FusedConv):
    """A 'same' 3x3 convolution followed by 2x2 average pooling (NHWC).

    The same function as `Conv2D(filters, 3, padding="same")` then
    `AveragePooling2D(2)`, with the same 3x3 kernel, computed as one 4x4 stride-2
    convolution: 4 instead of 9 multiply-adds per input pixel and channel pair.
    Measured forward + backward, batch 32, fp32, 2-core CPU: 36 against 80 ms
    (64 px, 32 -> 64 channels), 40 against 60 ms (8 px, 256 -> 512). Being a
    Conv2D, it can be wrapped in `SpectralNorm`.
    """

    def convolution_op(self, inputs, kernel):
        return tf.nn.conv2d(inputs, _fused_kernel(kernel, _POOL_DOWN_TAPS), 2, "SAME")

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        return (b, None if h is None else h // 2, None if w is None else w // 2, self.filters)


# -- equalized learning rate ------------------------------------------------------------------


@_SERIALIZABLE
class EqualizedDense(_Layer):
    """Fully connected layer with equalized learning rate.

    Weights are stored N(0, 1/lr_multiplier) and used times
    lr_multiplier / sqrt(fan_in); the bias is stored divided by lr_multiplier
    and used times it, so it starts at `bias_init`. A small lr_multiplier (0.01
    in StyleGAN2's mapping network) slows the layer's learning by that factor.

    Args:
        units: output features.
        lr_multiplier: learning-rate multiplier.
        bias_init: initial (effective) bias.
        use_bias: add a bias.
        activation: "linear" or "lrelu" (leaky ReLU 0.2, times sqrt(2)).
        seed: initializer seed.
    """

    def __init__(self, units: int, lr_multiplier: float = 1.0, bias_init: float = 0.0,
                 use_bias: bool = True, activation: str = "linear", seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.lr_multiplier = float(lr_multiplier)
        self.bias_init = float(bias_init)
        self.use_bias = bool(use_bias)
        self.activation = _check_activation(activation)
        self.seed = int(seed)

    def build(self, input_shape):
        fan_in = int(input_shape[-1])
        self.weight_gain = self.lr_multiplier / math.sqrt(fan_in)
        self.kernel = self.add_weight(
            name="kernel", shape=(fan_in, self.units), autocast=False,
            initializer=keras.initializers.RandomNormal(0.0, 1.0 / self.lr_multiplier,
                                                        seed=self.seed))
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.units,), autocast=False,
                initializer=keras.initializers.Constant(self.bias_init / self.lr_multiplier))

    def call(self, inputs):
        kernel = self._cast(self.kernel * self.weight_gain)
        y = tf.matmul(self._cast(inputs), kernel)  # [B, units]
        if self.use_bias:
            y = tf.nn.bias_add(y, self._cast(self.bias * self.lr_multiplier))
        return _activate(y, self.activation)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, lr_multiplier=self.lr_multiplier,
                      bias_init=self.bias_init, use_bias=self.use_bias,
                      activation=self.activation, seed=self.seed)
        return config


@_SERIALIZABLE
class EqualizedConv2D(_Layer):
    """'Same'-padded convolution with equalized learning rate (NHWC).

    Args:
        filters: output channels.
        kernel_size: square kernel side.
        downsample: halve the resolution first with a 2x2 average pool. (StyleGAN2
            blurs and convolves with stride 2; pooling first costs a quarter of
            the full-resolution convolution and is nearly the same filter.)
        use_bias: add a bias.
        activation: "linear" or "lrelu" (leaky ReLU 0.2, times sqrt(2)).
        seed: initializer seed.
    """

    def __init__(self, filters: int, kernel_size: int = 3, downsample: bool = False,
                 use_bias: bool = True, activation: str = "linear", seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.downsample = bool(downsample)
        self.use_bias = bool(use_bias)
        self.activation = _check_activation(activation)
        self.seed = int(seed)

    def build(self, input_shape):
        fan_in = int(input_shape[-1]) * self.kernel_size**2
        self.weight_gain = 1.0 / math.sqrt(fan_in)
        self.kernel = self.add_weight(
            name="kernel", shape=(self.kernel_size, self.kernel_size, int(input_shape[-1]),
                                  self.filters),
            autocast=False, initializer=keras.initializers.RandomNormal(0.0, 1.0, seed=self.seed))
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,), autocast=False,
                                        initializer="zeros")

    def call(self, inputs):
        x = self._cast(inputs)  # [B, H, W, Cin]
        if self.downsample:
            x = tf.nn.avg_pool2d(x, 2, 2, "VALID")  # [B, H/2, W/2, Cin]
        y = tf.nn.conv2d(x, self._cast(self.kernel * self.weight_gain), 1, "SAME")
        if self.use_bias:
            y = tf.nn.bias_add(y, self._cast(self.bias))
        return _activate(y, self.activation)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        if self.downsample:
            h, w = (None if h is None else h // 2), (None if w is None else w // 2)
        return (b, h, w, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size,
                      downsample=self.downsample, use_bias=self.use_bias,
                      activation=self.activation, seed=self.seed)
        return config


# -- StyleGAN2 generator pieces ------------------------------------------------------------------


@_SERIALIZABLE
class PixelNorm(_Layer):
    """Scales each feature vector to unit root-mean-square over its last axis (float32)."""

    def __init__(self, epsilon: float = 1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        x = tf.cast(inputs, tf.float32)
        x = x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=-1, keepdims=True) + self.epsilon)
        return self._cast(x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@_SERIALIZABLE
class ModulatedConv2D(_Layer):
    """StyleGAN2's modulated convolution, optionally demodulated and 2x upsampling.

    Inputs `[x, ws]`: x [B, H, W, Cin] and ws [B, num_ws, W]; the layer reads
    w = ws[:, w_index], maps it to per-input-channel styles s [B, Cin] with its
    own equalized dense layer (bias 1, so styles start near 1), and computes

        y[b] = conv(x[b], weight * s[b]) * d[b],
        d[b, o] = 1 / sqrt(sum_{kh, kw, i} (weight[kh, kw, i, o] s[b, i])^2 + 1e-8)

    without building per-sample weights: scaling the kernel's input channels
    by s[b] equals scaling x[b]'s channels by s[b], and demodulation scales
    each output channel, so one shared-weight convolution over the whole
    batch does it (StyleGAN2's "non-fused" path). Measured on the 2-core
    AVX-512 CPU, fp32, batch 32, forward + backward of one 3x3 layer (ms):

        resolution, channels   scale activations   grouped conv   patches + matmul
        64 px, 32 -> 32               74                  66              142
        32 px, 64 -> 64               43                  53               81
        16 px, 128 -> 128             37                  74               77
        8 px, 256 -> 256              34                 213              118

    (grouped conv: reshape the batch into channels, [1, H, W, B*Cin], and
    tf.nn.conv2d with per-sample kernels [3, 3, Cin, B*Cout]; patches:
    tf.image.extract_patches then a batched matmul with per-sample kernels.)
    Only at the highest resolution with few channels is the grouped
    convolution a little faster; everywhere else, and over a whole network,
    scaling activations wins, and it maps onto cuDNN's plain convolutions on
    GPUs too.

    Styles and demodulation coefficients are computed in float32; the
    convolution runs in the layer's compute dtype.

    Args:
        filters: output channels.
        kernel_size: square kernel side (3 for convolutions, 1 for toRGB).
        demodulate: normalize each output channel to unit expected scale.
        upsample: double the resolution as StyleGAN2 does: a stride-2
            transposed convolution, then a [1, 3, 3, 1] blur (gain 4) that
            removes its checkerboard (output pixel centres at half-pixel
            offsets, as bilinear resizing). Measured forward + backward,
            batch 32, 2-core CPU, fp32 / bf16 (ms): 64 -> 32 channels to 64 px:
            95 / 59 for bilinear resize then a 3x3 conv, 34 / 21 this way;
            256 -> 128 channels to 16 px: 64 / 40 against 28 / 16.
        w_index: which of ws's rows this layer reads.
        seed: initializer seed (the affine layer uses seed + 1).
    """

    def __init__(self, filters: int, kernel_size: int = 3, demodulate: bool = True,
                 upsample: bool = False, w_index: int = 0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.demodulate = bool(demodulate)
        self.upsample = bool(upsample)
        self.w_index = int(w_index)
        self.seed = int(seed)

    def build(self, input_shape):
        x_shape, ws_shape = input_shape
        channels = int(x_shape[-1])
        self.weight_gain = 1.0 / math.sqrt(channels * self.kernel_size**2)
        # Styles are float32 whatever the policy: they scale the demodulation sum.
        self.affine = EqualizedDense(channels, bias_init=1.0, seed=self.seed + 1, dtype="float32",
                                     name="affine")
        self.affine.build((ws_shape[0], ws_shape[-1]))
        self.kernel = self.add_weight(
            name="kernel", shape=(self.kernel_size, self.kernel_size, channels, self.filters),
            autocast=False, initializer=keras.initializers.RandomNormal(0.0, 1.0, seed=self.seed))

    def call(self, inputs):
        x, ws = inputs
        w = tf.cast(ws[:, self.w_index], tf.float32)  # [B, W]
        styles = self.affine(w) * self.weight_gain  # [B, Cin], float32
        x = self._cast(x) * self._cast(styles)[:, None, None, :]  # [B, H, W, Cin]
        if self.upsample:
            y = _blur(self._transposed_conv(x))  # [B, 2H, 2W, Cout]
        else:
            y = tf.nn.conv2d(x, self._cast(self.kernel), 1, "SAME")  # [B, H, W, Cout]
        if self.demodulate:
            energy = tf.reduce_sum(tf.square(self.kernel), axis=[0, 1])  # [Cin, Cout]
            demod = tf.math.rsqrt(tf.matmul(tf.square(styles), energy) + 1e-8)  # [B, Cout]
            y = y * self._cast(demod)[:, None, None, :]
        return y

    def _transposed_conv(self, x: tf.Tensor) -> tf.Tensor:
        """[B, H, W, Cin] -> [B, 2H + k - 2, 2W + k - 2, Cout], stride 2, no padding."""
        shape = tf.shape(x)
        grow = self.kernel_size - 2
        out_shape = tf.stack([shape[0], 2 * shape[1] + grow, 2 * shape[2] + grow, self.filters])
        kernel = tf.transpose(self._cast(self.kernel), [0, 1, 3, 2])  # [k, k, Cout, Cin]
        return tf.nn.conv2d_transpose(x, kernel, out_shape, 2, "VALID")

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape[0]
        if self.upsample:
            h, w = (None if h is None else 2 * h), (None if w is None else 2 * w)
        return (b, h, w, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size,
                      demodulate=self.demodulate, upsample=self.upsample, w_index=self.w_index,
                      seed=self.seed)
        return config


_BLUR_TAPS = (0.25, 0.75, 0.75, 0.25)  # [1, 3, 3, 1] / 8, times 2: gain 4 over both axes


def _blur(x: tf.Tensor) -> tf.Tensor:
    """[B, 2H + 1, 2W + 1, C] -> [B, 2H, 2W, C]: separable [1, 3, 3, 1] filter, zero padding 1."""
    channels = x.shape[-1]
    taps = tf.constant(_BLUR_TAPS, dtype=x.dtype)
    kernel = tf.tile(taps[:, None, None, None], [1, 1, channels, 1])  # [4, 1, C, 1]
    x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    x = tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "VALID")  # along rows
    return tf.nn.depthwise_conv2d(x, tf.transpose(kernel, [1, 0, 2, 3]), [1, 1, 1, 1], "VALID")


def _mix32(x: tf.Tensor) -> tf.Tensor:
    """An avalanching hash of 32-bit values held in int64 (products stay below 2^59)."""
    for _ in range(2):
        x = tf.bitwise.bitwise_xor(tf.bitwise.right_shift(x, 16), x)
        x = tf.bitwise.bitwise_and(x * 0x45D9F3B, 0xFFFFFFFF)
    return tf.bitwise.bitwise_xor(tf.bitwise.right_shift(x, 16), x)


def tensor_hash(x: tf.Tensor) -> tf.Tensor:
    """A deterministic int64 scalar in [0, 2^32) from the bits of a float tensor.

    Integer sums are exact in any order, so the result does not depend on how
    the reduction is split across threads or devices.
    """
    bits = tf.bitcast(tf.reshape(tf.cast(x, tf.float32), [-1]), tf.int32)
    bits = tf.bitwise.bitwise_and(tf.cast(bits, tf.int64), 0xFFFFFFFF)
    position = _mix32(tf.range(tf.size(bits, out_type=tf.int64), dtype=tf.int64) + 0x9E3779B9)
    mixed = _mix32(tf.bitwise.bitwise_xor(bits, position))
    return _mix32(tf.bitwise.bitwise_and(tf.reduce_sum(mixed), 0xFFFFFFFF))


@_SERIALIZABLE
class NoiseKey(_Layer):
    """ws [B, num_ws, W] -> an int64 scalar that seeds the per-pixel noise of one call.

    Noise must be random in training, yet drawn inside the graph, work under
    `tf.function` and `tf.distribute`, and let a resumed run draw exactly what
    an uninterrupted one would. Hashing the first w row of every sample gives
    all that: w is a deterministic function of the step's latents (themselves
    drawn statelessly from the run's seed and step), different batches and
    replicas get different keys, and no random state needs saving.
    """

    def call(self, inputs):
        return tensor_hash(inputs[:, 0])

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((), dtype="int64")


@_SERIALIZABLE
class NoiseInjection(_Layer):
    """Adds per-pixel Gaussian noise times a learned scalar strength (initialised to 0).

    Inputs `[x, key]`: x [B, H, W, C] and the int64 key from `NoiseKey`. In
    training calls the noise [B, H, W, 1] is `tf.random.stateless_normal`
    seeded with (key, salt), `salt` telling the layers apart; inference calls
    add a fixed noise image (a non-trainable weight drawn from `seed`, the
    same for every sample), so generation is a deterministic function of w, as
    StyleGAN2's "const" noise mode.

    Args:
        salt: distinguishes this layer's noise from the other layers'.
        seed: seeds the fixed inference noise.
    """

    def __init__(self, salt: int = 0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.salt = int(salt)
        self.seed = int(seed)

    def build(self, input_shape):
        _, h, w, _ = input_shape[0]
        self.strength = self.add_weight(name="strength", shape=(), initializer="zeros",
                                        autocast=False)
        self.fixed_noise = self.add_weight(
            name="fixed_noise", shape=(1, h, w, 1), trainable=False, autocast=False,
            initializer=keras.initializers.RandomNormal(0.0, 1.0, seed=self.seed))

    def call(self, inputs, training=None):
        x, key = inputs
        x = self._cast(x)
        if training:
            shape = tf.concat([tf.shape(x)[:3], [1]], axis=0)
            seed = tf.stack([tf.cast(key, tf.int64), tf.constant(self.salt, tf.int64)])
            noise = tf.random.stateless_normal(shape, seed=seed)  # [B, H, W, 1]
        else:
            noise = tf.convert_to_tensor(self.fixed_noise)  # [1, H, W, 1]
        return x + self._cast(noise * self.strength)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "salt": self.salt, "seed": self.seed}


@_SERIALIZABLE
class BiasAct(_Layer):
    """Adds a learned per-channel bias (zeros at first), then an activation.

    Args:
        activation: "linear" or "lrelu" (leaky ReLU 0.2, times sqrt(2)).
    """

    def __init__(self, activation: str = "lrelu", **kwargs):
        super().__init__(**kwargs)
        self.activation = _check_activation(activation)

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=(int(input_shape[-1]),),
                                    initializer="zeros", autocast=False)

    def call(self, inputs):
        return _activate(tf.nn.bias_add(self._cast(inputs), self._cast(self.bias)), self.activation)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


@_SERIALIZABLE
class ConstantInput(_Layer):
    """A learned [size, size, channels] tensor, N(0, 1) at first, tiled over the batch.

    The input is only read for its batch size (StyleGAN's synthesis starts from
    this constant, not from the latent).
    """

    def __init__(self, channels: int, size: int = 4, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.size, self.seed = int(channels), int(size), int(seed)

    def build(self, input_shape):
        self.const = self.add_weight(
            name="const", shape=(1, self.size, self.size, self.channels), autocast=False,
            initializer=keras.initializers.RandomNormal(0.0, 1.0, seed=self.seed))

    def call(self, inputs):
        return tf.tile(self._cast(self.const), [tf.shape(inputs)[0], 1, 1, 1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "size": self.size,
                "seed": self.seed}


# -- discriminator pieces -------------------------------------------------------------------------


def _group_size(batch: int, group_size: int) -> int:
    return max(g for g in range(1, min(group_size, batch) + 1) if batch % g == 0)


@_SERIALIZABLE
class MinibatchStddev(_Layer):
    """Appends the minibatch standard deviation as extra feature maps (ProGAN, StyleGAN2).

    The batch is split into groups of `group_size` samples (the largest divisor
    of the batch not above it); within a group, the standard deviation of every
    feature is averaged over pixels and channels (per channel group of
    C / num_channels), and the result is appended to each member as
    `num_channels` constant maps. It lets the discriminator see a lack of
    variety. Statistics are float32; under `tf.distribute` a group never spans
    replicas (each replica sees its own slice of the batch).

    Args:
        group_size: samples per group (4 in StyleGAN2).
        num_channels: statistics maps appended (1 in StyleGAN2).
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.group_size, self.num_channels = int(group_size), int(num_channels)

    def call(self, inputs):
        x = self._cast(inputs)
        static_batch = x.shape[0]
        batch = tf.shape(x)[0]
        if static_batch is not None:
            group = _group_size(static_batch, self.group_size)
        else:  # the largest divisor of the batch not above group_size, found in the graph
            candidates = tf.range(self.group_size, 0, -1)
            fits = tf.equal(tf.math.floormod(batch, candidates), 0)
            group = tf.minimum(tf.gather(candidates, tf.argmax(tf.cast(fits, tf.int32))), batch)
        h, w, c = x.shape[1], x.shape[2], x.shape[3]
        f = self.num_channels
        y = tf.reshape(tf.cast(x, tf.float32), [group, -1, h, w, f, c // f])  # [G, n, H, W, F, c]
        y = y - tf.reduce_mean(y, axis=0)
        y = tf.sqrt(tf.reduce_mean(tf.square(y), axis=0) + 1e-8)  # [n, H, W, F, c]
        y = tf.reduce_mean(y, axis=[1, 2, 4])  # [n, F]
        # Sample i of the batch is member i // n of group i % n: tile the groups.
        y = tf.tile(y[:, None, None, :], [group, h, w, 1])  # [B, H, W, F]
        return tf.concat([x, self._cast(y)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + self.num_channels)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size,
                "num_channels": self.num_channels}


@_SERIALIZABLE
class GlobalSumPooling(_Layer):
    """[B, H, W, C] -> [B, C], summed over pixels (SNGAN, BigGAN)."""

    def call(self, inputs):
        return tf.reduce_sum(self._cast(inputs), axis=[1, 2])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


# -- conditioning ------------------------------------------------------------------------------


def _label_sizes(label_sizes: Sequence[Sequence]) -> list[tuple[str, int]]:
    return [(str(name), int(classes)) for name, classes in label_sizes]


@_SERIALIZABLE
class LabelEmbedding(_Layer):
    """Labels [B, A] (class index per attribute) -> the sum of per-attribute embeddings [B, dim].

    Args:
        label_sizes: [(attribute, classes), ...], as `ModelConfig.label_sizes`.
        dim: embedding size.
        stddev: the embeddings' initial standard deviation.
        multiplier: run-time scale (equalized learning rate: stddev 1 and
            multiplier 1/sqrt(dim), say).
        spectral_norm: spectrally normalize each embedding matrix.
        seed: initializer seed (attribute a uses seed + a; A < SEED_STRIDE).
    """

    def __init__(self, label_sizes: Sequence[Sequence], dim: int, stddev: float = 1.0,
                 multiplier: float = 1.0, spectral_norm: bool = False, seed: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        self.label_sizes = _label_sizes(label_sizes)
        if not self.label_sizes:
            raise ValueError("LabelEmbedding needs at least one attribute")
        self.dim, self.stddev, self.multiplier = int(dim), float(stddev), float(multiplier)
        self.spectral_norm, self.seed = bool(spectral_norm), int(seed)
        for index, (name, classes) in enumerate(self.label_sizes):
            embedding = layers.Embedding(
                classes, self.dim, dtype="float32", name=f"embed_{index}",
                embeddings_initializer=keras.initializers.RandomNormal(
                    0.0, self.stddev, seed=self.seed + index))
            # One attribute per attribute-embedding: tf.train.Checkpoint does not
            # follow a list of layers held by a Keras 3 layer (it would not be saved).
            setattr(self, f"embed_{index}", maybe_spectral_norm(
                embedding, self.spectral_norm, self.seed + SEED_STRIDE // 2 + index))

    @property
    def embeddings(self) -> list[layers.Layer]:
        """The per-attribute embedding layers (possibly SpectralNorm-wrapped), in order."""
        return [getattr(self, f"embed_{index}") for index in range(len(self.label_sizes))]

    def build(self, input_shape):
        for embedding in self.embeddings:
            embedding.build((input_shape[0],))

    def call(self, inputs, training=None):
        labels = tf.cast(inputs, tf.int32)  # [B, A]
        total = tf.add_n([embedding(labels[:, index], training=training)
                          for index, embedding in enumerate(self.embeddings)])  # [B, dim]
        return self._cast(total * self.multiplier)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        config = super().get_config()
        config.update(label_sizes=[list(pair) for pair in self.label_sizes], dim=self.dim,
                      stddev=self.stddev, multiplier=self.multiplier,
                      spectral_norm=self.spectral_norm, seed=self.seed)
        return config


@_SERIALIZABLE
class LabelProjection(_Layer):
    """The projection discriminator's class term: <sum_a embed_a(label_a), h> (float32 [B, 1]).

    Inputs `[h, labels]`: features h [B, F] and labels [B, A]. Added to an
    unconditional head's logit, it makes D(x, y) = head(h) + <embed(y), h>
    (Miyato & Koyama 2018). Arguments as `LabelEmbedding`'s; `dim` is F.
    """

    def __init__(self, label_sizes: Sequence[Sequence], stddev: float = 1.0,
                 multiplier: float = 1.0, spectral_norm: bool = False, seed: int = 0,
                 **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.label_sizes = _label_sizes(label_sizes)
        self.stddev, self.multiplier = float(stddev), float(multiplier)
        self.spectral_norm, self.seed = bool(spectral_norm), int(seed)

    def build(self, input_shape):
        h_shape, labels_shape = input_shape
        self.embedding = LabelEmbedding(self.label_sizes, int(h_shape[-1]), stddev=self.stddev,
                                        multiplier=self.multiplier,
                                        spectral_norm=self.spectral_norm, seed=self.seed,
                                        dtype="float32", name="embedding")
        self.embedding.build(labels_shape)

    def call(self, inputs, training=None):
        h, labels = inputs
        embedded = self.embedding(labels, training=training)  # [B, F]
        return tf.reduce_sum(embedded * tf.cast(h, tf.float32), axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self):
        config = super().get_config()
        config.update(label_sizes=[list(pair) for pair in self.label_sizes], stddev=self.stddev,
                      multiplier=self.multiplier, spectral_norm=self.spectral_norm,
                      seed=self.seed)
        return config
