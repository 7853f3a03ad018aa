"""Training-mode throughput of each network family: forward + backward, no optimizer.

For each (arch, width) it times three compiled functions on one batch:
`G` (G(z) and the gradient of a scalar of the images w.r.t. G's weights),
`D` (D(images) and the gradient w.r.t. D's weights) and `step` (the GAN
step's compute: G(z), D(real), D(fake), two tapes, both gradients). It prints
images per second: batch / the fastest of `--repeats` calls (best-of, because
the 2-core machine is shared and other work only ever slows a call down).

    python bench/arch_throughput.py                          # 64 px, batch 32, all archs
    python bench/arch_throughput.py --archs stylegan2 --widths 32 --precision mixed_bfloat16
    python bench/arch_throughput.py --resolution 128 --repeats 5

Prints numbers; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from machine import describe_machine  # noqa: E402

from facegan.config import ModelConfig  # noqa: E402
from facegan.models import build_discriminator, build_generator  # noqa: E402


def _count(model: keras.Model) -> int:
    return sum(int(tf.size(v)) for v in model.trainable_variables)


def time_arch(arch: str, width: int, args) -> dict[str, float]:
    cfg = ModelConfig(arch=arch, resolution=args.resolution, channels=3, width=width,
                      max_width=args.max_width, latent_dim=args.latent_dim,
                      d_spectral_norm=args.spectral_norm, g_spectral_norm=False)
    generator, discriminator = build_generator(cfg, seed=0), build_discriminator(cfg, seed=0)
    z = tf.random.stateless_normal([args.batch, cfg.latent_dim], seed=[1, 2])
    real = tf.random.stateless_uniform([args.batch, cfg.resolution, cfg.resolution, 3],
                                       seed=[3, 4], minval=-1.0, maxval=1.0)

    @tf.function(jit_compile=False)
    def g_only():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(generator(z, training=True)))
        return tape.gradient(loss, generator.trainable_variables)

    @tf.function(jit_compile=False)
    def d_only():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.softplus(discriminator(real, training=True)))
        return tape.gradient(loss, discriminator.trainable_variables)

    @tf.function(jit_compile=False)
    def step():
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generator(z, training=True)
            real_logits = discriminator(real, training=True)
            fake_logits = discriminator(fake, training=True)
            g_loss = tf.reduce_mean(tf.nn.softplus(-fake_logits))
            d_loss = tf.reduce_mean(tf.nn.softplus(-real_logits) + tf.nn.softplus(fake_logits))
        return (g_tape.gradient(g_loss, generator.trainable_variables),
                d_tape.gradient(d_loss, discriminator.trainable_variables))

    out = {"G params (M)": _count(generator) / 1e6, "D params (M)": _count(discriminator) / 1e6}
    for name, fn in (("G img/s", g_only), ("D img/s", d_only), ("step img/s", step)):
        tf.nest.map_structure(lambda t: t.numpy(), fn())  # trace and warm up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            tf.nest.map_structure(lambda t: t.numpy(), fn())
            times.append(time.perf_counter() - start)
        out[name] = args.batch / min(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["dcgan", "resnet", "stylegan2"])
    parser.add_argument("--widths", nargs="+", type=int, default=[32, 64])
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--latent-dim", type=int, default=128)
    parser.add_argument("--max-width", type=int, default=512)
    parser.add_argument("--spectral-norm", action="store_true", help="spectral norm in D")
    parser.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    keras.mixed_precision.set_global_policy(args.precision)
    print(f"# {describe_machine()}, TF {tf.__version__}, "
          f"{args.resolution} px, batch {args.batch}, {args.precision}")
    header = ["arch", "width", "G params (M)", "D params (M)", "G img/s", "D img/s", "step img/s"]
    print(" | ".join(header))
    for arch in args.archs:
        for width in args.widths:
            row = time_arch(arch, width, args)
            print(" | ".join([arch, str(width)] + [f"{row[k]:.1f}" if "params" not in k
                                                   else f"{row[k]:.2f}" for k in header[2:]]),
                  flush=True)


if __name__ == "__main__":
    main()
