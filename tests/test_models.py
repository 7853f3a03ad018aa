import json
import math
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from facegan.config import ModelConfig
from facegan.models import (
    build_discriminator,
    build_generator,
    float_to_uint8,
    latents_for_seed,
    synthesize,
)
from facegan.models.dcgan import block_channels
from facegan.models.layers import SpectralNorm
from facegan.models.stylegan2 import StyleGAN2Generator, num_ws


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
    cfg = ModelConfig(
        resolution=resolution, channels=channels, width=8, max_width=64, latent_dim=16
    )
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
    a, b, c = (
        build_generator(cfg, seed=1),
        build_generator(cfg, seed=1),
        build_generator(cfg, seed=2),
    )
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


def test_float_to_uint8_maps_range():
    out = float_to_uint8(np.array([[[[-1.0], [0.0], [1.0], [2.0]]]], np.float32)).numpy()
    assert out.dtype == np.uint8
    assert out.ravel().tolist() == [0, 128, 255, 255]


# -- the network families: dcgan options, resnet, stylegan2 -----------------------------------

LABELS = "gender:2,age:3"
FAMILIES = [
    ("resnet", False),
    ("resnet", True),
    ("stylegan2", False),
    ("stylegan2", True),
    ("dcgan", True),
]


def _cfg(arch: str, conditional: bool = False, **overrides) -> ModelConfig:
    settings = dict(
        arch=arch,
        resolution=16,
        channels=3,
        width=8,
        max_width=32,
        latent_dim=16,
        mapping_layers=2,
        label_classes=LABELS if conditional else None,
    )
    settings.update(overrides)
    return ModelConfig(**settings)


def _batch(cfg: ModelConfig, batch: int = 4, seed: int = 0):
    z = tf.random.stateless_normal([batch, cfg.latent_dim], seed=[seed, 1])
    labels = (
        tf.stack([tf.range(batch) % 2, tf.range(batch) % 3], axis=1) if cfg.conditional else None
    )
    real = tf.random.stateless_uniform(
        [batch, cfg.resolution, cfg.resolution, cfg.channels],
        seed=[seed, 2],
        minval=-1.0,
        maxval=1.0,
    )
    return z, labels, real


def _g(generator, cfg, z, labels, training):
    return generator([z, labels] if cfg.conditional else z, training=training)


def _d(discriminator, cfg, images, labels, training):
    return discriminator([images, labels] if cfg.conditional else images, training=training)


def _losses(generator, discriminator, cfg, z, labels, real):
    fake = _g(generator, cfg, z, labels, True)
    real_logits = _d(discriminator, cfg, real, labels, True)
    fake_logits = _d(discriminator, cfg, fake, labels, True)
    g_loss = tf.reduce_mean(tf.nn.softplus(-fake_logits))
    d_loss = tf.reduce_mean(tf.nn.softplus(-real_logits) + tf.nn.softplus(fake_logits))
    return g_loss, d_loss


@pytest.mark.parametrize("arch, conditional", FAMILIES)
def test_family_shapes_and_dtypes(arch, conditional):
    cfg = _cfg(arch, conditional)
    generator, discriminator = build_generator(cfg, seed=1), build_discriminator(cfg, seed=1)
    z, labels, _ = _batch(cfg)
    for training in (False, True):
        images = _g(generator, cfg, z, labels, training)
        assert images.shape == (4, 16, 16, 3) and images.dtype == tf.float32
        logits = _d(discriminator, cfg, images, labels, training)
        assert logits.shape == (4, 1) and logits.dtype == tf.float32
        assert np.all(np.isfinite(images.numpy())) and np.all(np.isfinite(logits.numpy()))


@pytest.mark.parametrize("arch, conditional", FAMILIES + [("dcgan", False)])
def test_family_under_mixed_bfloat16(arch, conditional, mixed_bfloat16):
    cfg = _cfg(arch, conditional, d_spectral_norm=True, g_spectral_norm=arch != "stylegan2")
    generator, discriminator = build_generator(cfg), build_discriminator(cfg)
    z, labels, real = _batch(cfg)
    with tf.GradientTape(persistent=True) as tape:
        g_loss, d_loss = _losses(generator, discriminator, cfg, z, labels, real)
    assert _g(generator, cfg, z, labels, False).dtype == tf.float32
    assert _d(discriminator, cfg, real, labels, False).dtype == tf.float32
    assert all(v.dtype == "float32" for v in generator.variables + discriminator.variables)
    grads = tape.gradient(g_loss, generator.trainable_variables)
    assert all(
        g is not None and np.all(np.isfinite(tf.convert_to_tensor(g).numpy())) for g in grads
    )
    assert np.isfinite(float(d_loss))


@pytest.mark.parametrize(
    "arch, conditional, spectral_norm",
    [
        ("resnet", False, False),
        ("resnet", True, True),
        ("stylegan2", False, False),
        ("stylegan2", True, False),
        ("dcgan", True, True),
    ],
)
def test_gradients_reach_every_trainable_weight(arch, conditional, spectral_norm):
    cfg = _cfg(arch, conditional, d_spectral_norm=spectral_norm, g_spectral_norm=spectral_norm)
    generator, discriminator = build_generator(cfg, seed=2), build_discriminator(cfg, seed=2)
    z, labels, real = _batch(cfg, batch=6)
    with tf.GradientTape(persistent=True) as tape:
        g_loss, d_loss = _losses(generator, discriminator, cfg, z, labels, real)
    for model, loss in ((generator, g_loss), (discriminator, d_loss)):
        grads = tape.gradient(loss, model.trainable_variables)
        for variable, grad in zip(model.trainable_variables, grads):
            assert grad is not None, variable.path
            grad = tf.convert_to_tensor(grad).numpy()
            assert np.all(np.isfinite(grad)), variable.path
            assert np.any(grad != 0), variable.path


@pytest.mark.parametrize("arch", ["resnet", "stylegan2"])
def test_family_building_is_deterministic(arch):
    cfg = _cfg(arch, True, d_spectral_norm=True, g_spectral_norm=True)
    for build in (build_generator, build_discriminator):
        a, b, c = build(cfg, seed=5), build(cfg, seed=5), build(cfg, seed=6)
        assert len(a.weights) == len(b.weights) > 0
        for va, vb in zip(a.weights, b.weights):
            np.testing.assert_array_equal(va.numpy(), vb.numpy())
        differs = [
            not np.array_equal(va.numpy(), vc.numpy())
            for va, vc in zip(a.weights, c.weights)
            if np.std(va.numpy()) > 0
        ]
        assert all(differs)


@pytest.mark.parametrize("arch", ["resnet", "stylegan2", "dcgan"])
def test_labels_condition_both_networks(arch):
    cfg = _cfg(arch, True)
    generator, discriminator = build_generator(cfg), build_discriminator(cfg)
    z, labels, real = _batch(cfg)
    other = (labels + 1) % tf.constant([[2, 3]])
    # projection discriminator: same images, other labels, other logits
    assert not np.allclose(
        _d(discriminator, cfg, real, labels, False).numpy(),
        _d(discriminator, cfg, real, other, False).numpy(),
    )
    assert not np.allclose(
        _g(generator, cfg, z, labels, False).numpy(), _g(generator, cfg, z, other, False).numpy()
    )


def _snapshot(model):
    return {id(v): v.numpy().copy() for v in model.variables}


def _changed(model, before) -> set:
    return {v.path for v in model.variables if not np.array_equal(v.numpy(), before[id(v)])}


@pytest.mark.parametrize(
    "arch, conditional, spectral_norm",
    [("resnet", True, True), ("stylegan2", True, False), ("dcgan", False, True)],
)
def test_forward_state_lives_in_non_trainable_variables(arch, conditional, spectral_norm):
    cfg = _cfg(arch, conditional, d_spectral_norm=spectral_norm, g_spectral_norm=spectral_norm)
    z, labels, real = _batch(cfg)
    for model, first in ((build_generator(cfg), z), (build_discriminator(cfg), real)):
        inputs = [first, labels] if conditional else first
        before = _snapshot(model)
        model(inputs, training=False)
        assert _changed(model, before) == set()
        model(inputs, training=True)
        changed = _changed(model, before)
        assert changed <= {v.path for v in model.non_trainable_variables}
        if spectral_norm:  # every u moves, the label embeddings' included
            sn_layers = [
                layer for layer in model._flatten_layers() if isinstance(layer, SpectralNorm)
            ]
            assert sn_layers and {layer.u.path for layer in sn_layers} <= changed
            assert all(not layer.u.trainable for layer in sn_layers)
        if arch == "stylegan2" and model.name == "generator":
            assert changed == {model.w_avg.path}


def test_dcgan_spectral_norm_replaces_discriminator_batch_norm():
    cfg = _cfg("dcgan", False, d_spectral_norm=True)
    discriminator = build_discriminator(cfg)
    kinds = {type(layer).__name__ for layer in discriminator.layers}
    assert "SpectralNorm" in kinds and "BatchNormalization" not in kinds


def test_resnet_channel_schedule_keeps_width_at_the_output_resolution():
    from facegan.models.resnet import block_channels as resnet_channels

    cfg = ModelConfig(arch="resnet", resolution=64, channels=3, width=64)
    assert [resnet_channels(cfg, r) for r in (4, 8, 16, 32, 64)] == [512, 512, 256, 128, 64]
    generator = build_generator(cfg)
    assert generator.get_layer("to_image").input.shape[-1] == 64


def test_stylegan2_structure():
    cfg = _cfg("stylegan2", True, mapping_layers=3)
    generator = build_generator(cfg)
    assert isinstance(generator, StyleGAN2Generator)
    assert [layer.name for layer in generator.mapping.layers if layer.name.startswith("fc")] == [
        "fc0",
        "fc1",
        "fc2",
    ]
    assert generator.num_ws == num_ws(16) == 6
    assert generator.synthesis.input.shape[1:] == (6, 16)
    assert [v.name for v in generator.non_trainable_variables if v.name == "w_avg"] == ["w_avg"]
    # equalized learning rate: mapping weights stored N(0, 1/0.01)
    fc0 = generator.mapping.get_layer("fc0").kernel.numpy()
    assert 80 < float(np.std(fc0)) < 120
    clone = StyleGAN2Generator.from_config(generator.get_config())  # same config and seed
    for a, b in zip(generator.weights, clone.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_stylegan2_truncation():
    cfg = _cfg("stylegan2", True)
    generator = build_generator(cfg, seed=3)
    z, labels, _ = _batch(cfg, batch=4)
    for _ in range(3):  # give w_avg a value
        generator([z, labels], training=True)
    same_labels = tf.zeros_like(labels)
    at_zero = synthesize(generator, z, same_labels, truncation=0.0).numpy()
    np.testing.assert_allclose(at_zero, np.broadcast_to(at_zero[:1], at_zero.shape), atol=1e-5)
    plain = generator([z, labels], training=False).numpy()
    np.testing.assert_array_equal(synthesize(generator, z, labels, truncation=1.0).numpy(), plain)
    np.testing.assert_allclose(
        synthesize(generator, z, labels, truncation=tf.constant(1.0)), plain, atol=1e-5
    )
    half = synthesize(generator, z, labels, truncation=0.5).numpy()
    assert not np.allclose(half, plain) and not np.allclose(half, at_zero)


def test_stylegan2_w_avg_moves_only_in_training_calls():
    cfg = _cfg("stylegan2")
    generator = build_generator(cfg)
    z, _, _ = _batch(cfg)
    np.testing.assert_array_equal(generator.w_avg.numpy(), 0.0)
    generator(z, training=False)
    synthesize(generator, z, truncation=0.7)
    np.testing.assert_array_equal(generator.w_avg.numpy(), 0.0)
    generator(z, training=True)
    w = generator.mapping(z).numpy()
    np.testing.assert_allclose(
        generator.w_avg.numpy(), 0.005 * w.mean(axis=0), rtol=1e-4, atol=1e-7
    )


def test_stylegan2_noise_is_drawn_from_w_in_training_and_fixed_in_inference():
    cfg = _cfg("stylegan2")
    generator = build_generator(cfg)
    for variable in generator.trainable_variables:  # make the noise visible
        if variable.name == "strength":
            variable.assign(0.5)
    z, _, _ = _batch(cfg)
    train_a, train_b = generator(z, training=True), generator(z, training=True)
    np.testing.assert_allclose(train_a.numpy(), train_b.numpy(), atol=1e-6)  # a function of w
    infer = generator(z, training=False).numpy()
    assert not np.allclose(train_a.numpy(), infer)
    np.testing.assert_array_equal(infer, generator(z, training=False).numpy())
    # a sample's inference image does not depend on its batch companions
    np.testing.assert_allclose(generator(z[:1], training=False).numpy(), infer[:1], atol=1e-5)


@pytest.mark.parametrize(
    "arch, conditional", [("dcgan", False), ("resnet", False), ("dcgan", True)]
)
def test_truncation_moves_dcgan_and_resnet_features_toward_their_mean(arch, conditional):
    from facegan.models.truncation import MEAN_LATENTS, anchor_latents, feature_split

    cfg = _cfg(arch, conditional)
    generator = build_generator(cfg)
    z, labels, _ = _batch(cfg)
    inputs = [z, labels] if conditional else z
    plain = generator(inputs, training=False).numpy()
    np.testing.assert_array_equal(synthesize(generator, z, labels).numpy(), plain)
    # a tensor psi of 1 takes the untouched path: the same pixels, bit for bit
    np.testing.assert_array_equal(
        synthesize(generator, z, labels, truncation=tf.constant(1.0)).numpy(), plain
    )
    # psi = 0: the image of the mean feature (per label row for a conditional model)
    head, tail = feature_split(generator)
    anchors = tf.constant(anchor_latents(cfg.latent_dim))
    if conditional:
        row = tf.repeat(labels[:1], MEAN_LATENTS, axis=0)
        mean = tf.reduce_mean(head([anchors, row], training=False), axis=0, keepdims=True)
    else:
        mean = tf.reduce_mean(head(anchors, training=False), axis=0, keepdims=True)
    at_zero = synthesize(generator, z, labels, truncation=0.0).numpy()
    np.testing.assert_allclose(at_zero[:1], tail(mean, training=False).numpy(), atol=1e-5)
    if not conditional:  # every latent gives the average face
        np.testing.assert_allclose(at_zero, np.broadcast_to(at_zero[:1], at_zero.shape), atol=1e-6)
    # it is not z scaling, and psi = 0.5 lies between the face and the average
    half = synthesize(generator, z, labels, truncation=tf.constant(0.5)).numpy()
    scaled = generator([0.5 * z, labels] if conditional else 0.5 * z, training=False).numpy()
    assert not np.allclose(half, scaled, atol=1e-4)
    assert np.abs(half - at_zero).mean() < np.abs(plain - at_zero).mean()


def test_synthesize_checks_labels():
    conditional = build_generator(_cfg("resnet", True))
    unconditional = build_generator(_cfg("stylegan2"))
    z = tf.zeros([2, 16])
    with pytest.raises(ValueError, match="conditional"):
        synthesize(conditional, z)
    with pytest.raises(ValueError, match="unconditional"):
        synthesize(unconditional, z, labels=tf.zeros([2, 2], tf.int32))


@pytest.mark.parametrize(
    "arch, conditional", [("resnet", True), ("stylegan2", True), ("stylegan2", False)]
)
@pytest.mark.integration
def test_train_steps_in_a_tf_function(arch, conditional):
    cfg = _cfg(arch, conditional, d_spectral_norm=arch == "resnet")
    generator, discriminator = build_generator(cfg), build_discriminator(cfg)
    g_opt, d_opt = keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3)
    g_opt.build(generator.trainable_variables)  # as the train state does: no variables in the step
    d_opt.build(discriminator.trainable_variables)
    z, labels, real = _batch(cfg)
    labels = labels if conditional else tf.zeros([4, 0], tf.int32)

    @tf.function
    def step(z, labels, real):
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            g_loss, d_loss = _losses(
                generator, discriminator, cfg, z, labels if conditional else None, real
            )
        g_opt.apply_gradients(
            zip(
                g_tape.gradient(g_loss, generator.trainable_variables),
                generator.trainable_variables,
            )
        )
        d_opt.apply_gradients(
            zip(
                d_tape.gradient(d_loss, discriminator.trainable_variables),
                discriminator.trainable_variables,
            )
        )
        return g_loss, d_loss

    before = _snapshot(generator)
    for i in range(2):
        g_loss, d_loss = step(z * (i + 1), labels, real)
        assert np.isfinite(float(g_loss)) and np.isfinite(float(d_loss))
    assert step.experimental_get_tracing_count() == 1
    assert _changed(generator, before)


@pytest.mark.parametrize("arch", ["resnet", "stylegan2"])
@pytest.mark.integration
def test_models_under_mirrored_strategy(arch):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    cfg = _cfg(arch, True, d_spectral_norm=True, g_spectral_norm=arch == "resnet")
    with strategy.scope():
        generator, discriminator = build_generator(cfg), build_discriminator(cfg)
    z, labels, real = _batch(cfg)

    @tf.function
    def run(z, labels, real):
        def replica(z, labels, real):
            with tf.GradientTape() as tape:
                _, d_loss = _losses(generator, discriminator, cfg, z, labels, real)
            grads = tape.gradient(d_loss, discriminator.trainable_variables)
            finite = [tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(g))) for g in grads]
            return d_loss, tf.reduce_all(tf.stack(finite))

        loss, finite = strategy.run(replica, args=(z, labels, real))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None), finite

    before = {**_snapshot(generator), **_snapshot(discriminator)}
    loss, finite = run(z, labels, real)
    assert np.isfinite(float(loss)) and bool(finite)
    changed = _changed(generator, before) | _changed(discriminator, before)
    assert changed and changed <= {
        v.path for v in generator.non_trainable_variables + discriminator.non_trainable_variables
    }


_TWO_REPLICAS = textwrap.dedent("""
    import json, numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from facegan.config import ModelConfig
    from facegan.models import build_discriminator, build_generator
    cfg = ModelConfig(arch="stylegan2", resolution=16, channels=3, width=8, max_width=32,
                      latent_dim=16, mapping_layers=2, d_spectral_norm=True)
    resnet = ModelConfig(arch="resnet", resolution=16, channels=3, width=8, max_width=32,
                         latent_dim=16, d_spectral_norm=True, g_spectral_norm=True)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        g, d = build_generator(cfg), build_discriminator(resnet)
    z = tf.random.stateless_normal([8, 16], seed=[1, 2])
    images = tf.random.stateless_uniform([8, 16, 16, 3], seed=[3, 4])
    batches = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors((z, images)).unbatch().batch(8))

    @tf.function
    def step(batch):
        def replica(z, images):
            fake = g(z, training=True)
            return tf.reduce_mean(d(images, training=True)) + tf.reduce_mean(fake) * 0
        return strategy.run(replica, args=batch)

    step(next(iter(batches)))
    w_avg = [v.numpy() for v in g.w_avg.value.values]
    expected = 0.005 * g.mapping(z).numpy().mean(axis=0)
    u = [[v.numpy() for v in layer.u.value.values] for layer in d._flatten_layers()
         if hasattr(layer, "power_iterations")]
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "w_avg_equal": bool(np.array_equal(w_avg[0], w_avg[1])),
        "w_avg_global_mean": bool(np.allclose(w_avg[0], expected, rtol=1e-4, atol=1e-7)),
        "u_layers": len(u),
        "u_equal": all(np.array_equal(a, b) for a, b in u),
    }))
""")


@pytest.mark.integration
def test_two_replicas_agree_on_w_avg_and_spectral_norm_vectors():
    """w_avg is all-reduced (the global batch's mean); u vectors stay identical per replica."""
    result = subprocess.run(
        [sys.executable, "-c", _TWO_REPLICAS], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {
        "replicas": 2,
        "w_avg_equal": True,
        "w_avg_global_mean": True,
        "u_layers": report["u_layers"],
        "u_equal": True,
    }
    assert report["u_layers"] > 5


@pytest.mark.parametrize("arch", ["resnet", "stylegan2", "dcgan"])
def test_models_round_trip_through_a_checkpoint(arch, tmp_path):
    """Every variable is saved: label embeddings, spectral-norm vectors, w_avg, noise."""
    cfg = _cfg(arch, True, d_spectral_norm=True, g_spectral_norm=arch != "stylegan2")
    z, labels, real = _batch(cfg)
    for build in (build_generator, build_discriminator):
        source, target = build(cfg, seed=1), build(cfg, seed=2)
        inputs = [z if build is build_generator else real, labels]
        source(inputs, training=True)  # move u / w_avg / batch-norm statistics
        path = tf.train.Checkpoint(model=source).write(str(tmp_path / f"{arch}-{source.name}"))
        tf.train.Checkpoint(model=target).read(path).assert_consumed()
        assert len(tf.train.list_variables(path)) == len(source.variables) + 1  # + object graph
        for a, b in zip(source.variables, target.variables, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
        if build is build_generator:
            np.testing.assert_array_equal(
                synthesize(target, z, labels, truncation=0.5).numpy(),
                synthesize(source, z, labels, truncation=0.5).numpy(),
            )


def test_dcgan_recipe_options_change_only_what_they_name():
    base = ModelConfig(resolution=64, width=16, latent_dim=32, channels=3)
    g0, d0 = build_generator(base), build_discriminator(base)
    wide_d = ModelConfig(resolution=64, width=16, d_width=24, latent_dim=32, channels=3)
    assert _trainable(build_generator(wide_d)) == _trainable(g0)
    conv = build_discriminator(wide_d).get_layer("down_32")
    assert conv.kernel.shape[-1] == block_channels(wide_d, 32, 24) == 24
    stddev = build_discriminator(
        ModelConfig(resolution=64, width=16, latent_dim=32, channels=3, d_minibatch_std=True)
    )
    assert stddev.get_layer("minibatch_std").output.shape[-1] == block_channels(base, 4) + 1
    # the logit's kernel sees one more input channel: 16 more weights
    assert _trainable(stddev) == _trainable(d0) + 16
    assert _trainable(build_discriminator(base)) == _expected_counts(base)[1]


def test_dcgan_skip_excitation_gates_the_blocks_from_32_px():
    cfg = ModelConfig(resolution=128, width=16, latent_dim=32, channels=3, g_skip_excitation=True)
    g = build_generator(cfg)
    names = {layer.name for layer in g.layers}
    assert {"excited_32", "excited_64"} <= names and "excited_16" not in names
    # the gates of 64 px come from the 8 px block, those of 32 px from 4 px
    assert g.get_layer("excite_64_pool").input.shape[1] == 8
    assert "excite_32_pool" not in names
    gates = keras.Model(g.input, g.get_layer("excite_64_gates").output)
    out = gates(latents_for_seed(4, cfg.latent_dim, 3))
    assert out.shape == (4, 1, 1, block_channels(cfg, 64))
    assert float(tf.reduce_min(out)) > 0.0 and float(tf.reduce_max(out)) < 1.0
    images = g(latents_for_seed(4, cfg.latent_dim, 3), training=False)
    assert images.shape == (4, 128, 128, 3) and bool(tf.reduce_all(tf.math.is_finite(images)))


def test_dcgan_d_width_is_checked():
    from facegan.config import ConfigError

    with pytest.raises(ConfigError, match="model.d_width"):
        ModelConfig(d_width=0)
