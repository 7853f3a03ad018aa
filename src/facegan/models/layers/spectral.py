"""Spectral normalization (Miyato et al. 2018).

`SpectralNorm` wraps a Dense, Conv2D, Conv2DTranspose or Embedding layer and
divides its kernel by its largest singular value, estimated by power
iteration; the iteration vector `u` is a non-trainable weight, advanced once
per training call and left alone in inference calls.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from facegan.models.layers.base import serializable


def _l2_normalize(x: tf.Tensor, epsilon: float) -> tf.Tensor:
    return x * tf.math.rsqrt(tf.maximum(tf.reduce_sum(tf.square(x)), epsilon**2))


@serializable
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

    def __init__(
        self,
        layer: layers.Layer,
        power_iterations: int = 1,
        epsilon: float = 1e-12,
        seed: int = 0,
        **kwargs,
    ):
        if not isinstance(layer, self._SUPPORTED):
            raise TypeError(
                "SpectralNorm wraps Dense, Conv2D (and its subclasses), "
                f"Conv2DTranspose or Embedding; received {type(layer).__name__}"
            )
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
        self.u = self.add_weight(
            name="u",
            shape=(1, out),
            trainable=False,
            autocast=False,
            initializer=keras.initializers.RandomNormal(seed=self.seed),
        )
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
                x,
                kernel,
                strides=list(layer.strides),
                padding=layer.padding,
                output_padding=layer.output_padding,
                dilation_rate=layer.dilation_rate,
                data_format=layer.data_format,
            )
        else:  # Conv2D and its subclasses (UpsampleConv2D, ConvDownsample2D)
            y = layer.convolution_op(x, kernel)
        if layer.use_bias:
            channels_first = getattr(layer, "data_format", None) == "channels_first"
            y = tf.nn.bias_add(
                y,
                tf.cast(layer.bias, self.compute_dtype),
                data_format="NCHW" if channels_first else None,
            )
        return layer.activation(y) if layer.activation is not None else y

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(power_iterations=self.power_iterations, epsilon=self.epsilon, seed=self.seed)
        return config


def maybe_spectral_norm(layer: layers.Layer, enabled: bool, seed: int) -> layers.Layer:
    """`SpectralNorm(layer)` when `enabled`, else `layer` itself."""
    return SpectralNorm(layer, seed=seed, name=f"{layer.name}_sn") if enabled else layer
