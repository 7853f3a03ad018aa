"""Equalized learning rate (Karras et al. 2018).

`EqualizedDense` and `EqualizedConv2D` store N(0, 1/lr_multiplier) weights and
scale them at run time by lr_multiplier / sqrt(fan_in), so that Adam's
per-parameter step is the same relative change for every layer whatever its
fan-in.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from facegan.models.layers.base import Layer, activate, check_activation, serializable


@serializable
class EqualizedDense(Layer):
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

    def __init__(
        self,
        units: int,
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
        use_bias: bool = True,
        activation: str = "linear",
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = int(units)
        self.lr_multiplier = float(lr_multiplier)
        self.bias_init = float(bias_init)
        self.use_bias = bool(use_bias)
        self.activation = check_activation(activation)
        self.seed = int(seed)

    def build(self, input_shape):
        fan_in = int(input_shape[-1])
        self.weight_gain = self.lr_multiplier / math.sqrt(fan_in)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(fan_in, self.units),
            autocast=False,
            initializer=keras.initializers.RandomNormal(
                0.0, 1.0 / self.lr_multiplier, seed=self.seed
            ),
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                autocast=False,
                initializer=keras.initializers.Constant(self.bias_init / self.lr_multiplier),
            )

    def call(self, inputs):
        kernel = self._cast(self.kernel * self.weight_gain)
        y = tf.matmul(self._cast(inputs), kernel)  # [B, units]
        if self.use_bias:
            y = tf.nn.bias_add(y, self._cast(self.bias * self.lr_multiplier))
        return activate(y, self.activation)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            lr_multiplier=self.lr_multiplier,
            bias_init=self.bias_init,
            use_bias=self.use_bias,
            activation=self.activation,
            seed=self.seed,
        )
        return config


@serializable
class EqualizedConv2D(Layer):
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

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        downsample: bool = False,
        use_bias: bool = True,
        activation: str = "linear",
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.downsample = bool(downsample)
        self.use_bias = bool(use_bias)
        self.activation = check_activation(activation)
        self.seed = int(seed)

    def build(self, input_shape):
        fan_in = int(input_shape[-1]) * self.kernel_size**2
        self.weight_gain = 1.0 / math.sqrt(fan_in)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, self.kernel_size, int(input_shape[-1]), self.filters),
            autocast=False,
            initializer=keras.initializers.RandomNormal(0.0, 1.0, seed=self.seed),
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,), autocast=False, initializer="zeros"
            )

    def call(self, inputs):
        x = self._cast(inputs)  # [B, H, W, Cin]
        if self.downsample:
            x = tf.nn.avg_pool2d(x, 2, 2, "VALID")  # [B, H/2, W/2, Cin]
        y = tf.nn.conv2d(x, self._cast(self.kernel * self.weight_gain), 1, "SAME")
        if self.use_bias:
            y = tf.nn.bias_add(y, self._cast(self.bias))
        return activate(y, self.activation)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        if self.downsample:
            h, w = (None if h is None else h // 2), (None if w is None else w // 2)
        return (b, h, w, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            downsample=self.downsample,
            use_bias=self.use_bias,
            activation=self.activation,
            seed=self.seed,
        )
        return config
