"""Throughput of facegan's compiled train step against the bare tutorial loop.

The reference is the TensorFlow DCGAN tutorial's step and nothing else: a
`@tf.function` that draws noise, runs G, D(real) and D(fake) under two
GradientTapes, computes the two BCE losses and applies two Adam optimizers.
Both sides use the same DCGAN models (built by facegan, identical weights),
the same batch, fp32, in one process. After a warm-up they run alternately in
rounds, so drift in machine speed hits both equally; the ratio is
facegan / reference img/s (1.0 = no overhead). A last row times facegan's step
fed by its real tf.data pipeline, to show the input side costs nothing either.

    python bench/step_throughput.py                      # DCGAN-64, batch 64
    python bench/step_throughput.py --resolution 32 --rounds 3
    python bench/step_throughput.py --fit                # Keras fit vs the loop

`--fit` compares instead the two front ends of facegan's step on the same
model and the same tf.data batches: the loop (the compiled step called from
Python, as `facegan train` does) and `facegan.keras.GAN.fit` (Keras' own
train function around the same per-replica step), with `jit_compile` False
(facegan's default) and, with `--jit`, True (what Keras' "auto" would pick).
Each side's rate is the steady state: the seconds from the end of its
`--warmup`-th step to the end of its last, so `fit`'s start-up per call is
not counted (it is printed apart).

Prints numbers; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from machine import describe_machine  # noqa: E402

from facegan.config import Config, ModelConfig, TrainConfig  # noqa: E402
from facegan.data.pipeline import training_dataset  # noqa: E402
from facegan.models import build_discriminator, build_generator  # noqa: E402
from facegan.training.state import TrainState  # noqa: E402
from facegan.training.steps import make_train_step  # noqa: E402


def reference_step_fn(config: Config):
    """The tutorial loop, verbatim in spirit: nothing but the GAN update."""
    generator = build_generator(config.model, seed=config.train.seed)
    discriminator = build_discriminator(config.model, seed=config.train.seed)
    g_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
    d_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
    batch, latent = config.train.batch_size, config.model.latent_dim

    @tf.function
    def step(images):
        noise = tf.random.normal([batch, latent])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated = generator(noise, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated, training=True)
            gen_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
            disc_loss = (cross_entropy(tf.ones_like(real_output), real_output)
                         + cross_entropy(tf.zeros_like(fake_output), fake_output))
        g_grads = gen_tape.gradient(gen_loss, generator.trainable_variables)
        d_grads = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        g_opt.apply_gradients(zip(g_grads, generator.trainable_variables))
        d_opt.apply_gradients(zip(d_grads, discriminator.trainable_variables))
        return gen_loss, disc_loss

    return step


def facegan_step_fn(config: Config):
    state = TrainState.create(config)
    step = make_train_step(state, config, tf.distribute.get_strategy())
    go = tf.constant(0)  # nobody asked to stop
    return lambda real: step(real, go)


def _sync(result) -> None:
    # Reading a value waits for the step to finish (matters on GPUs).
    first = result["g_loss"] if isinstance(result, dict) else result[0]
    first.numpy()


def time_steps(step, inputs, steps: int) -> float:
    began = time.perf_counter()
    result = None
    for _ in range(steps):
        result = step(next(inputs))
    _sync(result)
    return time.perf_counter() - began


class _BatchClock(keras.callbacks.Callback):
    """perf_counter at the end of every fit batch (reading the logs waits for the step)."""

    def __init__(self):
        super().__init__()
        self.ends: list[float] = []
        self.began = 0.0

    def on_train_begin(self, logs=None):
        self.began = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def fit_vs_loop(args, config: Config) -> None:
    """Steady-state img/s of the loop's step and of `GAN.fit`, alternating in rounds."""
    import facegan.keras

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (512, args.resolution, args.resolution, args.channels),
                          dtype=np.uint8)
    steps = args.warmup + args.steps

    def dataset():
        return training_dataset(pixels, args.batch, seed=0, flip=True)

    loop = facegan_step_fn(config)

    def loop_rate() -> float:
        batches = iter(dataset())
        time_steps(loop, batches, args.warmup)
        return args.steps * args.batch / time_steps(loop, batches, args.steps)

    def fit_side(jit: bool):
        gan = facegan.keras.GAN(config)
        gan.compile(jit_compile=jit)
        startup = []

        def rate() -> float:
            clock = _BatchClock()
            gan.fit(dataset(), epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[clock])
            startup.append(clock.ends[0] - clock.began)
            return args.steps * args.batch / (clock.ends[-1] - clock.ends[args.warmup - 1])
        return rate, startup

    sides = {"loop": (loop_rate, [])}
    sides["fit"] = fit_side(False)
    if args.jit:
        sides["fit, jit_compile=True"] = fit_side(True)
    for rate, _ in sides.values():
        rate()  # traces (and compiles) once
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(args.rounds):
        order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
        for name in order:
            rates[name].append(sides[name][0]())
    print(f"machine: {describe_machine()}, TF {tf.__version__}, Keras {keras.__version__}")
    print(f"model: DCGAN {args.resolution}px width {args.width}, batch {args.batch}, "
          f"{config.train.precision}; {args.rounds} alternating rounds x {args.steps} steps "
          f"per side after {args.warmup} warm-up steps")
    loop_median = float(np.median(rates["loop"]))
    for name, values in rates.items():
        median = float(np.median(values))
        startup = sides[name][1]
        extra = (f"  first fit step after {np.median(startup[1:]):.2f} s (median per call)"
                 if startup else "")
        print(f"{name:24s}: {median:8.1f} img/s  ratio to loop {median / loop_median:6.3f}  "
              f"(rounds {min(values):.1f}-{max(values):.1f}){extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="steps per side per round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--fit", action="store_true",
                        help="compare Keras fit (facegan.keras.GAN) with the loop instead")
    parser.add_argument("--jit", action="store_true",
                        help="with --fit: also fit with jit_compile=True (XLA)")
    args = parser.parse_args()

    config = Config(model=ModelConfig(resolution=args.resolution, width=args.width,
                                      channels=args.channels),
                    train=TrainConfig(batch_size=args.batch, seed=0, precision="float32"))
    if args.fit:
        return fit_vs_loop(args, config)
    rng = np.random.default_rng(0)
    real = tf.constant(rng.uniform(-1, 1, (args.batch, args.resolution, args.resolution,
                                           args.channels)).astype(np.float32))

    def same_batch():
        while True:
            yield real

    reference, ours = reference_step_fn(config), facegan_step_fn(config)
    sides = {"reference": reference, "facegan": ours}
    for step in sides.values():
        time_steps(step, same_batch(), args.warmup)  # traces, then warms caches

    seconds = {name: 0.0 for name in sides}
    round_ratios = []
    for round_ in range(args.rounds):
        order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
        this_round = {}
        for name in order:
            this_round[name] = time_steps(sides[name], same_batch(), args.steps)
            seconds[name] += this_round[name]
        round_ratios.append(this_round["reference"] / this_round["facegan"])
    images = args.rounds * args.steps * args.batch
    rate = {name: images / s for name, s in seconds.items()}

    pixels = rng.integers(0, 256, (512, args.resolution, args.resolution, args.channels),
                          dtype=np.uint8)
    pipeline = iter(training_dataset(pixels, args.batch, seed=0, flip=True))
    time_steps(ours, pipeline, args.warmup)
    piped = args.rounds * args.steps * args.batch / time_steps(ours, pipeline,
                                                               args.rounds * args.steps)

    print(f"machine: {describe_machine()}, "
          f"TF {tf.__version__}, Keras {keras.__version__}")
    print(f"model: DCGAN {args.resolution}px width {args.width}, batch {args.batch}, fp32; "
          f"{args.rounds} alternating rounds x {args.steps} steps per side")
    print(f"reference tutorial step : {rate['reference']:8.1f} img/s")
    print(f"facegan train step      : {rate['facegan']:8.1f} img/s")
    print(f"ratio facegan/reference : {rate['facegan'] / rate['reference']:8.3f}  "
          f"(per round: min {min(round_ratios):.3f}, max {max(round_ratios):.3f})")
    print(f"facegan step + tf.data  : {piped:8.1f} img/s")


if __name__ == "__main__":
    main()
