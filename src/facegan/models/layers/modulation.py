"""StyleGAN2's synthesis pieces (Karras et al. 2020): `PixelNorm`, `ModulatedConv2D`
(with weight demodulation), `BiasAct` and `ConstantInput`."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from facegan.models.layers.base import Layer, activate, check_activation, serializable
from facegan.models.layers.equalized import EqualizedDense


@serializable
class PixelNorm(Layer):
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


@serializable
class ModulatedConv2D(Layer):
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

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        demodulate: bool = True,
        upsample: bool = False,
        w_index: int = 0,
        seed: int = 0,
        **kwargs,
    ):
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
        self.affine = EqualizedDense(
            channels, bias_init=1.0, seed=self.seed + 1, dtype="float32", name="affine"
        )
        self.affine.build((ws_shape[0], ws_shape[-1]))
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, self.kernel_size, channels, self.filters),
            autocast=False,
            initializer=keras.initializers.RandomNormal(0.0, 1.0, seed=self.seed),
        )

    def call(self, inputs):
        x, ws = inputs
        w = tf.cast(ws[:, self.w_index], tf.float32)  # [B, W]
        styles = self.affine(w) * self.weight_gain  # [B, Cin], float32
        x = self._cast(x) * self._cast(styles)[:, None, None, :]  # [B, H, W, Cin]
        if self.upsample:
            y = blur(self._transposed_conv(x))  # [B, 2H, 2W, Cout]
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
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            demodulate=self.demodulate,
            upsample=self.upsample,
            w_index=self.w_index,
            seed=self.seed,
        )
        return config


_BLUR_TAPS = (0.25, 0.75, 0.75, 0.25)  # [1, 3, 3, 1] / 8, times 2: gain 4 over both axes


def blur(x: tf.Tensor) -> tf.Tensor:
    """[B, 2H + 1, 2W + 1, C] -> [B, 2H, 2W, C]: separable [1, 3, 3, 1] filter, zero padding 1."""
    channels = x.shape[-1]
    taps = tf.constant(_BLUR_TAPS, dtype=x.dtype)
    kernel = tf.tile(taps[:, None, None, None], [1, 1, channels, 1])  # [4, 1, C, 1]
    x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    x = tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "VALID")  # along rows
    return tf.nn.depthwise_conv2d(x, tf.transpose(kernel, [1, 0, 2, 3]), [1, 1, 1, 1], "VALID")


@serializable
class BiasAct(Layer):
    """Adds a learned per-channel bias (zeros at first), then an activation.

    Args:
        activation: "linear" or "lrelu" (leaky ReLU 0.2, times sqrt(2)).
    """

    def __init__(self, activation: str = "lrelu", **kwargs):
        super().__init__(**kwargs)
        self.activation = check_activation(activation)

    def build(self, input_shape):
        self.bias = self.add_weight(
            name="bias", shape=(int(input_shape[-1]),), initializer="zeros", autocast=False
        )

    def call(self, inputs):
        return activate(tf.nn.bias_add(self._cast(inputs), self._cast(self.bias)), self.activation)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


@serializable
class ConstantInput(Layer):
    """A learned [size, size, channels] tensor, N(0, 1) at first, tiled over the batch.

    The input is only read for its batch size (StyleGAN's synthesis starts from
    this constant, not from the latent).
    """

    def __init__(self, channels: int, size: int = 4, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.size, self.seed = int(channels), int(size), int(seed)

    def build(self, input_shape):
        self.const = self.add_weight(
            name="const",
            shape=(1, self.size, self.size, self.channels),
            autocast=False,
            initializer=keras.initializers.RandomNormal(0.0, 1.0, seed=self.seed),
        )

    def call(self, inputs):
        return tf.tile(self._cast(self.const), [tf.shape(inputs)[0], 1, 1, 1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, self.channels)

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "size": self.size,
            "seed": self.seed,
        }
