"""Throughput of the train step on one device vs MirroredStrategy over N logical CPUs.

On a CPU the logical devices share the same cores, so this does not speed
anything up: it measures what distribution costs (per-replica graphs, gradient
all-reduce, synchronized batch norm) at the same global batch. Both sides use
facegan's real step and input pipeline; after a warm-up they alternate in
rounds. It also prints the all-reduce volume of one step (the parameter bytes
of G and D), the input of the cost model in docs/scaling.md.

    python bench/distribute_throughput.py                            # quick-32 shape
    python bench/distribute_throughput.py --resolution 64 --width 64 --channels 3

Prints numbers; asserts nothing about time.
"""

from __future__ import annotations

import argparse

from machine import describe_machine
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64, help="global batch")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20, help="steps per side per round")
    args = parser.parse_args()

    from facegan.config import Config, ModelConfig, TrainConfig
    from facegan.data.pipeline import DecodedImages
    from facegan.training.distribute import distributed_batches, make_strategy

    def config(strategy: str) -> Config:
        return Config(model=ModelConfig(resolution=args.resolution, width=args.width,
                                        channels=args.channels),
                      train=TrainConfig(batch_size=args.batch, seed=0, strategy=strategy,
                                        cpu_replicas=args.replicas))

    mirrored = make_strategy(config("mirrored"))  # before TensorFlow runs anything
    import keras
    import numpy as np
    import tensorflow as tf

    from facegan.training.state import TrainState
    from facegan.training.steps import make_train_step

    pixels = np.random.default_rng(0).integers(
        0, 256, (1024, args.resolution, args.resolution, args.channels), dtype=np.uint8)
    go = tf.constant(0)
    sides, sizes = {}, {}
    for name, strategy in (("one device", tf.distribute.get_strategy()),
                           (f"mirrored x{args.replicas}", mirrored)):
        with strategy.scope():
            state = TrainState.create(config("default"))
        batches = distributed_batches(strategy, DecodedImages.from_arrays(pixels), args.batch,
                                      0, True, 0)
        step = make_train_step(state, config("default"), strategy, batches.element_spec)
        sides[name] = (step, batches)
        sizes = {"G": state.generator.count_params(), "D": state.discriminator.count_params(),
                 "G trainable": sum(int(np.prod(v.shape)) for v in
                                    state.generator.trainable_variables),
                 "D trainable": sum(int(np.prod(v.shape)) for v in
                                    state.discriminator.trainable_variables)}

    def run(name: str, steps: int) -> float:
        step, batches = sides[name]
        began = time.perf_counter()
        for _ in range(steps):
            out = step(next(batches), go)
        float(out["g_loss"])  # wait for the last step
        return time.perf_counter() - began

    for name in sides:
        run(name, 3)  # trace and warm up
    seconds = {name: 0.0 for name in sides}
    for round_ in range(args.rounds):
        for name in (list(sides) if round_ % 2 == 0 else list(reversed(sides))):
            seconds[name] += run(name, args.steps)
    images = args.rounds * args.steps * args.batch
    trainable = sizes["G trainable"] + sizes["D trainable"]
    print(f"machine: {describe_machine()}, "
          f"TF {tf.__version__}, Keras {keras.__version__}")
    print(f"model: DCGAN {args.resolution}px width {args.width}, {args.channels} channel(s), "
          f"global batch {args.batch}, fp32; {args.rounds} alternating rounds x {args.steps} "
          f"steps per side")
    print(f"parameters: G {sizes['G']:,} D {sizes['D']:,}; gradient all-reduce per step: "
          f"{trainable:,} floats = {trainable * 4 / 2**20:.2f} MiB")
    base = images / seconds["one device"]
    for name, s in seconds.items():
        rate = images / s
        print(f"{name:<14}: {rate:8.1f} img/s  ({rate / base:.3f} of one device)")


if __name__ == "__main__":
    main()
