"""`GAN.fit` against `facegan.train` under MirroredStrategy over two logical CPUs.

    python keras_fit_script.py WORKDIR STEPS

Needs a fresh process: logical CPU devices are fixed at start-up. Prints one
JSON object on its last line.
"""

import json
import sys
from pathlib import Path

import numpy as np

from facegan.config import Config, DataConfig, ModelConfig, TrainConfig
from facegan.training.distribute import make_strategy


def tiny(steps: int) -> Config:
    return Config(
        preset="tiny-test",
        data=DataConfig(source="embedded:lfw"),
        model=ModelConfig(resolution=16, width=8, max_width=32, latent_dim=16),
        train=TrainConfig(
            steps=steps,
            batch_size=8,
            seed=3,
            log_every=5,
            sample_every=100,
            checkpoint_every=100,
            strategy="mirrored",
            cpu_replicas=2,
            ema_kimg=0.01,
        ),
    )


def main() -> None:
    work, steps = Path(sys.argv[1]), int(sys.argv[2])
    config = tiny(steps)
    mirrored = make_strategy(config)  # first: splits the CPU in two
    import facegan
    import facegan.keras

    facegan.train(config, work / "loop", progress=False, strategy=mirrored)
    with mirrored.scope():
        gan = facegan.keras.GAN(config)
        gan.compile()
        history = gan.fit(gan.dataset(), epochs=1, steps_per_epoch=steps, verbose=0)
        loop = facegan.keras.GAN.from_run(work / "loop")
    ours, theirs = gan._state.checkpoint_variables(), loop._state.checkpoint_variables()
    relative = [
        float(np.max(np.abs(a.numpy() - b.numpy())) / max(float(np.max(np.abs(b.numpy()))), 1e-12))
        for a, b in zip(ours, theirs, strict=True)
    ]
    moved = facegan.keras.GAN(config)  # the initial weights: training must have moved them
    print(
        json.dumps(
            {
                "replicas": mirrored.num_replicas_in_sync,
                "steps": [gan.step, loop.step],
                "variables": len(relative),
                "max_relative_difference": max(relative),
                "moved": any(
                    not np.array_equal(a.numpy(), b.numpy())
                    for a, b in zip(ours, moved._state.checkpoint_variables())
                ),
                "g_loss": history.history["g_loss"][-1],
            }
        )
    )


if __name__ == "__main__":
    main()
