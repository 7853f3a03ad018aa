"""The building blocks in facegan.models.layers: tiny shapes, exact references."""

import copy

import keras
import numpy as np
import pytest
import tensorflow as tf

from facegan.models import layers as L
from facegan.models.layers.modulation import blur


def _largest_singular_value(kernel: np.ndarray, transposed: bool = False) -> float:
    if transposed:  # Conv2DTranspose: [kh, kw, out, in]
        kernel = kernel.transpose(0, 1, 3, 2)
    return float(np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0])


# -- spectral norm --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, inputs",
    [
        (
            lambda: keras.layers.Dense(
                6, kernel_initializer=keras.initializers.RandomNormal(0, 3, 1)
            ),
            np.ones((2, 5), np.float32),
        ),
        (
            lambda: keras.layers.Conv2D(
                4, 3, padding="same", kernel_initializer=keras.initializers.RandomNormal(0, 3, 2)
            ),
            np.ones((2, 6, 6, 3), np.float32),
        ),
        (
            lambda: keras.layers.Conv2DTranspose(
                4,
                4,
                strides=2,
                padding="same",
                kernel_initializer=keras.initializers.RandomNormal(0, 3, 3),
            ),
            np.ones((2, 3, 3, 5), np.float32),
        ),
        (
            lambda: keras.layers.Embedding(
                7, 4, embeddings_initializer=keras.initializers.RandomNormal(0, 3, 4)
            ),
            np.array([0, 3], np.int32),
        ),
        (
            lambda: L.UpsampleConv2D(
                4, kernel_initializer=keras.initializers.RandomNormal(0, 3, 5)
            ),
            np.ones((2, 3, 3, 2), np.float32),
        ),
    ],
)
def test_spectral_norm_bounds_the_largest_singular_value(make, inputs):
    inner = make()
    layer = L.SpectralNorm(inner, seed=1)
    layer(inputs)  # build
    original = _largest_singular_value(
        layer._kernel().numpy(), isinstance(inner, keras.layers.Conv2DTranspose)
    )
    assert original > 3  # so that normalizing is visible
    for _ in range(20):
        layer(inputs, training=True)
    normalized = layer.normalized_kernel().numpy()
    sigma = _largest_singular_value(normalized, isinstance(inner, keras.layers.Conv2DTranspose))
    assert abs(sigma - 1.0) < 0.03, sigma
    # the layer computes with the normalized kernel
    if isinstance(inner, keras.layers.Dense):
        expected = inputs @ normalized + inner.bias.numpy()
        np.testing.assert_allclose(layer(inputs).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_spectral_norm_u_is_non_trainable_and_moves_only_in_training_calls():
    layer = L.SpectralNorm(keras.layers.Dense(3), seed=4)
    x = tf.random.stateless_normal([4, 5], seed=[1, 2])
    layer(x)
    assert [w.name for w in layer.non_trainable_weights] == ["u"]
    assert {w.name for w in layer.trainable_weights} == {"kernel", "bias"}
    before = layer.u.numpy().copy()
    layer(x, training=False)
    np.testing.assert_array_equal(layer.u.numpy(), before)
    layer(x, training=True)
    assert not np.allclose(layer.u.numpy(), before)
    np.testing.assert_allclose(np.linalg.norm(layer.u.numpy()), 1.0, rtol=1e-5)


def test_spectral_norm_gradients_flow_through_sigma():
    layer = L.SpectralNorm(keras.layers.Conv2D(4, 3, padding="same"), seed=0)
    x = tf.random.stateless_normal([2, 5, 5, 3], seed=[3, 4])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(x, training=True)))
    grads = tape.gradient(loss, layer.trainable_weights)
    assert all(
        g is not None and np.all(np.isfinite(g.numpy())) and np.any(g.numpy()) for g in grads
    )


def test_spectral_norm_refuses_other_layers():
    with pytest.raises(TypeError, match="SpectralNorm wraps"):
        L.SpectralNorm(keras.layers.BatchNormalization())


def test_spectral_norm_under_mixed_precision_keeps_float32_state(mixed_bfloat16):
    layer = L.SpectralNorm(keras.layers.Dense(3), seed=0)
    out = layer(np.ones((2, 4), np.float32), training=True)
    assert out.dtype == tf.bfloat16
    assert layer.u.dtype == "float32" and layer.layer.kernel.dtype == "float32"
    logits = L.SpectralNorm(keras.layers.Dense(1, dtype="float32"))(np.ones((2, 4), np.float32))
    assert logits.dtype == tf.float32


# -- exact fused resampling convolutions ----------------------------------------------------


def test_upsample_conv_equals_nearest_upsampling_then_conv():
    x = tf.random.stateless_normal([2, 5, 4, 3], seed=[0, 1])
    fused = L.UpsampleConv2D(6)
    y = fused(x)
    reference = keras.layers.Conv2D(6, 3, padding="same")
    reference.build((None, 10, 8, 3))
    reference.set_weights(fused.get_weights())
    expected = reference(keras.layers.UpSampling2D(2)(x))
    assert y.shape == (2, 10, 8, 6)
    np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_conv_downsample_equals_conv_then_average_pool():
    x = tf.random.stateless_normal([2, 8, 6, 3], seed=[2, 3])
    fused = L.ConvDownsample2D(5)
    y = fused(x)
    reference = keras.layers.Conv2D(5, 3, padding="same")
    reference.build((None, 8, 6, 3))
    reference.set_weights(fused.get_weights())
    expected = keras.layers.AveragePooling2D(2)(reference(x))
    assert y.shape == (2, 4, 3, 5)
    np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_fused_convs_refuse_other_kernel_sizes():
    with pytest.raises(ValueError, match="kernel_size must be 3"):
        L.UpsampleConv2D(4, kernel_size=5)


# -- equalized learning rate ------------------------------------------------------------------


def test_equalized_dense_scales_weights_at_run_time():
    layer = L.EqualizedDense(300, lr_multiplier=0.01, bias_init=0.5, seed=3)
    x = tf.random.stateless_normal([4, 200], seed=[5, 6])
    y = layer(x).numpy()
    # stored N(0, 1/0.01), used times 0.01/sqrt(fan_in): unit-variance outputs at first
    assert abs(float(np.std(layer.kernel.numpy())) - 100.0) < 3.0
    expected = x.numpy() @ (layer.kernel.numpy() * 0.01 / np.sqrt(200)) + 0.5
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    assert 0.8 < float(np.std(y - 0.5)) < 1.2


def test_equalized_conv_downsample_and_lrelu_gain():
    layer = L.EqualizedConv2D(4, 3, downsample=True, activation="lrelu", seed=1)
    x = tf.random.stateless_normal([2, 8, 8, 3], seed=[7, 8])
    y = layer(x)
    assert y.shape == (2, 4, 4, 4)
    pooled = tf.nn.avg_pool2d(x, 2, 2, "VALID")
    pre = tf.nn.conv2d(pooled, layer.kernel.numpy() / np.sqrt(27.0), 1, "SAME")
    np.testing.assert_allclose(
        y.numpy(), tf.nn.leaky_relu(pre, 0.2).numpy() * np.sqrt(2.0), rtol=1e-5, atol=1e-5
    )


# -- StyleGAN2 pieces ---------------------------------------------------------------------------


def _per_sample_modulated_conv(layer: L.ModulatedConv2D, x, ws) -> np.ndarray:
    """The textbook form: a separate modulated (and demodulated) kernel per sample."""
    styles = layer.affine(ws[:, layer.w_index]).numpy() * layer.weight_gain  # [B, Cin]
    outputs = []
    for b in range(x.shape[0]):
        weight = layer.kernel.numpy() * styles[b][None, None, :, None]  # [k, k, Cin, Cout]
        if layer.demodulate:
            weight = weight / np.sqrt(np.sum(weight**2, axis=(0, 1, 2), keepdims=True) + 1e-8)
        sample = x[b : b + 1]
        if layer.upsample:
            out_shape = [1, 2 * x.shape[1] + 1, 2 * x.shape[2] + 1, layer.filters]
            y = tf.nn.conv2d_transpose(sample, weight.transpose(0, 1, 3, 2), out_shape, 2, "VALID")
            y = blur(y)
        else:
            y = tf.nn.conv2d(sample, weight, 1, "SAME")
        outputs.append(y.numpy())
    return np.concatenate(outputs)


@pytest.mark.parametrize(
    "demodulate, upsample, kernel", [(True, False, 3), (True, True, 3), (False, False, 1)]
)
def test_modulated_conv_equals_per_sample_kernels(demodulate, upsample, kernel):
    layer = L.ModulatedConv2D(
        5, kernel, demodulate=demodulate, upsample=upsample, w_index=1, seed=2
    )
    x = tf.random.stateless_normal([3, 4, 4, 6], seed=[1, 1])
    ws = tf.random.stateless_normal([3, 2, 8], seed=[2, 2])
    y = layer([x, ws]).numpy()
    assert y.shape == ((3, 8, 8, 5) if upsample else (3, 4, 4, 5))
    np.testing.assert_allclose(y, _per_sample_modulated_conv(layer, x, ws), rtol=1e-4, atol=1e-4)


def test_blur_after_transposed_conv_is_a_smooth_upsampling():
    # A constant image stays constant (away from the zero-padded border) with gain 4.
    ones = tf.ones([1, 9, 9, 1])  # a stride-2 transposed 3x3 conv of a 4x4 input is 9x9
    blurred = blur(ones).numpy()[0, :, :, 0]
    assert blurred.shape == (8, 8)
    np.testing.assert_allclose(blurred[2:-2, 2:-2], 4.0)


def test_noise_injection_strength_starts_at_zero_and_learns():
    layer = L.NoiseInjection(salt=1, seed=3)
    x = tf.random.stateless_normal([2, 4, 4, 3], seed=[0, 0])
    key = tf.constant(12345, tf.int64)
    np.testing.assert_array_equal(layer([x, key], training=True).numpy(), x.numpy())
    assert [w.name for w in layer.trainable_weights] == ["strength"]
    assert [w.name for w in layer.non_trainable_weights] == ["fixed_noise"]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(
            layer([x, key], training=True) * tf.random.stateless_normal([2, 4, 4, 3], seed=[4, 4])
        )
    assert float(tape.gradient(loss, layer.strength)) != 0.0


def test_noise_is_a_function_of_the_key_in_training_and_fixed_in_inference():
    layer = L.NoiseInjection(salt=0, seed=3)
    zeros = tf.zeros([2, 4, 4, 3])
    layer([zeros, tf.constant(0, tf.int64)])
    layer.strength.assign(1.0)

    def noise(key, training):
        return layer([zeros, tf.constant(key, tf.int64)], training=training).numpy()

    np.testing.assert_array_equal(noise(7, True), noise(7, True))
    assert not np.allclose(noise(7, True), noise(8, True))
    assert not np.allclose(noise(7, True)[0], noise(7, True)[1])  # per sample
    np.testing.assert_array_equal(noise(7, True)[..., 0], noise(7, True)[..., 2])  # per pixel
    np.testing.assert_array_equal(noise(7, False), noise(8, False))
    np.testing.assert_array_equal(noise(7, False)[0], noise(7, False)[1])
    assert 0.5 < float(np.std(noise(7, True))) < 1.5


def test_noise_differs_between_layers_with_one_key():
    a, b = L.NoiseInjection(salt=0), L.NoiseInjection(salt=1)
    zeros, key = tf.zeros([1, 4, 4, 1]), tf.constant(3, tf.int64)
    for layer in (a, b):
        layer([zeros, key])
        layer.strength.assign(1.0)
    assert not np.allclose(a([zeros, key], training=True), b([zeros, key], training=True))


def test_tensor_hash_is_deterministic_and_sensitive():
    x = tf.random.stateless_normal([4, 8], seed=[9, 9])
    h = int(L.tensor_hash(x))
    assert h == int(L.tensor_hash(tf.identity(x)))
    assert 0 <= h < 2**32
    assert h != int(L.tensor_hash(tf.tensor_scatter_nd_add(x, [[0, 0]], [1e-6])))
    assert h != int(L.tensor_hash(tf.reverse(x, [0])))  # order matters
    assert h == int(tf.function(L.tensor_hash)(x))


def test_pixel_norm_gives_unit_rms():
    y = L.PixelNorm()(tf.random.stateless_normal([3, 16], seed=[1, 2]) * 5.0).numpy()
    np.testing.assert_allclose(np.sqrt(np.mean(y**2, axis=-1)), 1.0, rtol=1e-4)


# -- discriminator pieces -----------------------------------------------------------------------


def _minibatch_stddev_reference(x: np.ndarray, group: int) -> np.ndarray:
    n = x.shape[0] // group
    stats = np.empty(x.shape[0], np.float32)
    for j in range(n):
        members = x[j::n]  # sample i belongs to group i % n
        value = np.mean(np.sqrt(np.var(members, axis=0) + 1e-8))
        stats[j::n] = value
    return stats


@pytest.mark.parametrize("batch, group", [(8, 4), (6, 3), (2, 2), (5, 1)])
def test_minibatch_stddev(batch, group):
    x = tf.random.stateless_normal([batch, 4, 4, 3], seed=[batch, 0])
    y = L.MinibatchStddev(group_size=4)(x).numpy()
    assert y.shape == (batch, 4, 4, 4)
    np.testing.assert_array_equal(y[..., :3], x.numpy())
    expected = _minibatch_stddev_reference(x.numpy(), group)
    np.testing.assert_allclose(y[:, 0, 0, 3], expected, rtol=1e-5)
    assert np.all(y[..., 3] == y[:, :1, :1, 3])  # constant maps


def test_minibatch_stddev_with_an_unknown_batch_size():
    layer = L.MinibatchStddev(group_size=4)
    fn = tf.function(layer, input_signature=[tf.TensorSpec([None, 4, 4, 2], tf.float32)])
    for batch in (6, 8, 3):
        x = tf.random.stateless_normal([batch, 4, 4, 2], seed=[1, batch])
        np.testing.assert_allclose(fn(x).numpy(), layer(x).numpy(), rtol=1e-6)


def test_label_projection_is_the_inner_product_with_summed_embeddings():
    layer = L.LabelProjection([("a", 3), ("b", 2)], seed=5)
    h = tf.random.stateless_normal([4, 6], seed=[3, 3])
    labels = tf.constant([[0, 1], [2, 0], [1, 1], [0, 0]], tf.int32)
    out = layer([h, labels]).numpy()
    table_a = layer.embedding.embeddings[0].embeddings.numpy()
    table_b = layer.embedding.embeddings[1].embeddings.numpy()
    embedded = table_a[labels.numpy()[:, 0]] + table_b[labels.numpy()[:, 1]]
    np.testing.assert_allclose(out[:, 0], np.sum(embedded * h.numpy(), axis=1), rtol=1e-5)
    assert out.shape == (4, 1) and out.dtype == np.float32


# -- serialization ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: L.SpectralNorm(keras.layers.Dense(3), power_iterations=2, seed=5),
        lambda: L.SpectralNorm(L.ConvDownsample2D(4, use_bias=False), seed=1),
        lambda: L.UpsampleConv2D(4, use_bias=False),
        lambda: L.EqualizedDense(4, lr_multiplier=0.1, bias_init=1.0, activation="lrelu", seed=3),
        lambda: L.EqualizedConv2D(4, 1, downsample=True, use_bias=False, seed=2),
        lambda: L.ModulatedConv2D(4, 1, demodulate=False, upsample=True, w_index=3, seed=6),
        lambda: L.NoiseInjection(salt=4, seed=9),
        lambda: L.NoiseKey(),
        lambda: L.BiasAct("linear"),
        lambda: L.ConstantInput(8, size=4, seed=2),
        lambda: L.PixelNorm(epsilon=1e-6),
        lambda: L.MinibatchStddev(group_size=2, num_channels=2),
        lambda: L.GlobalSumPooling(),
        lambda: L.LabelEmbedding(
            [("gender", 2), ("age", 7)], 8, stddev=0.5, multiplier=2.0, spectral_norm=True, seed=4
        ),
        lambda: L.LabelProjection([("gender", 2)], stddev=0.1, multiplier=0.5, seed=1),
    ],
)
def test_get_config_round_trip(make):
    layer = make()
    config = layer.get_config()
    clone = type(layer).from_config(copy.deepcopy(config))
    assert clone.get_config() == config
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


def test_seed_streams_are_distinct_and_deterministic():
    a = [next(s) for s in [L.seed_stream(3, 0)] for _ in range(5)]
    assert a == [next(s) for s in [L.seed_stream(3, 0)] for _ in range(5)]
    assert len(set(a)) == 5 and all(y - x == L.SEED_STRIDE for x, y in zip(a, a[1:]))
    assert next(L.seed_stream(3, 1)) not in a and next(L.seed_stream(4, 0)) not in a
