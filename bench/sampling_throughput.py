"""Sampling at the network's speed: `Run.generate` against the bare generator network.

`facegan generate`, the web page and the in-training grids all sample through
`Run.generate` / the `Sampler`: seeds -> latents -> G -> uint8. This times,
in one process on one machine, for the same generator (faces-64's by default,
random weights: speed does not depend on them), in float32 as `Run` samples:

    bare      a compiled G(z) on latents already made (the reference)
    generate  Run.generate(n, seed): latents from seeds, G, uint8 on the host

and prints images per second for each, best of `--repeats` rounds in which the
two take turns (the 2-core machine is shared; other work only ever slows a call
down), and their ratio
(DESIGN.md: sampling runs at the network's speed; aim for >= 0.8).

    python bench/sampling_throughput.py
    python bench/sampling_throughput.py --preset faces-128 --images 512 --batch 64

Prints numbers; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from machine import describe_machine  # noqa: E402

from facegan.artifacts.checkpoints import sampling_network  # noqa: E402
from facegan.artifacts.run import load  # noqa: E402
from facegan.artifacts.rundir import create_run_dir  # noqa: E402
from facegan.models import build_generator  # noqa: E402
from facegan.presets import get_preset  # noqa: E402


def make_run(preset: str, root: str):
    """A run directory of `preset` with one checkpoint of an untrained generator."""
    config = get_preset(preset).with_overrides({"model.channels": 3})  # RGB, as from photos
    paths = create_run_dir(os.path.join(root, "run"), config=config)
    generator = build_generator(config.model, seed=config.train.seed)
    name = sampling_network(config.train.ema_kimg > 0)
    tf.train.Checkpoint(**{name: generator}).write(str(paths.checkpoints / "ckpt-1"))
    (paths.checkpoints / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-1"\nall_model_checkpoint_paths: "ckpt-1"\n'
    )
    return load(paths.root), generator


def best_rates(calls: dict, images: dict, repeats: int) -> dict:
    """Images per second of each call's fastest run; the calls take turns, round by round.

    Interleaving matters on a shared machine: a burst of other work slows
    whichever call runs during it, and taking turns spreads bursts over all.
    """
    for call in calls.values():
        call()  # warm-up: tracing, first allocation
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeats):
        for name, call in calls.items():
            best[name] = min(best[name], _seconds(call))
    return {name: images[name] / best[name] for name in calls}


def _seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="faces-64")
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        run, _ = make_run(args.preset, root)
        generator = run.generator()
        z = tf.random.stateless_normal([args.batch, run.config.model.latent_dim], seed=[1, 2])
        bare_call = tf.function(lambda z: generator(z, training=False))
        batches = -(-args.images // args.batch)

        def bare():
            for _ in range(batches):
                bare_call(z).numpy()

        def generate():
            run.generate(args.images, seed=0, batch_size=args.batch)

        rates = best_rates(
            {"bare": bare, "generate": generate},
            {"bare": batches * args.batch, "generate": args.images},
            args.repeats,
        )
        bare_rate, generate_rate = rates["bare"], rates["generate"]
    print(describe_machine())
    print(
        f"{args.preset}, float32, batch {args.batch}, {args.images} images, best of {args.repeats}"
    )
    print(f"bare network   {bare_rate:8.0f} img/s")
    print(f"Run.generate   {generate_rate:8.0f} img/s")
    print(f"ratio          {generate_rate / bare_rate:8.3f}")


if __name__ == "__main__":
    main()
