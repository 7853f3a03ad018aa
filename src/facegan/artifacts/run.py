"""A finished (or running) run, loaded for generation: `facegan.load(run_dir)`."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from facegan.artifacts.rundir import RunDirError, RunPaths, open_run_dir
from facegan.config import Config
from facegan.models import build_generator, generate_uint8, latents_for_seed


class Run:
    """A run directory: its config, its checkpoints and its generator.

    Attributes:
        paths: where the run's files are.
        config: the resolved config the run was trained with.
    """

    def __init__(self, paths: RunPaths, config: Config):
        self.paths = paths
        self.config = config
        self._generator: keras.Model | None = None
        self._checkpoint_path: str | None = None

    @property
    def directory(self) -> Path:
        return self.paths.root

    def latest_checkpoint(self) -> str | None:
        return tf.train.latest_checkpoint(str(self.paths.checkpoints))

    @property
    def step(self) -> int:
        """The step of the latest checkpoint (0 if there is none)."""
        latest = self.latest_checkpoint()
        return int(latest.rsplit("-", 1)[1]) if latest else 0

    def generator(self, checkpoint: str | None = None) -> keras.Model:
        """The generator restored from `checkpoint` (default: the latest).

        Raises:
            RunDirError: if the run has no checkpoint yet.
        """
        path = checkpoint or self.latest_checkpoint()
        if path is None:
            raise RunDirError(f"run {str(self.directory)!r} has no checkpoint yet")
        if self._generator is None or path != self._checkpoint_path:
            generator = build_generator(self.config.model, seed=self.config.train.seed)
            # expect_partial: the checkpoint also holds D and optimizers, unused here.
            tf.train.Checkpoint(generator=generator).restore(path).expect_partial()
            self._generator, self._checkpoint_path = generator, path
        return self._generator

    def generate(self, n: int, seed: int = 0, batch_size: int = 64) -> np.ndarray:
        """Generates `n` images as uint8 [n, R, R, C].

        Image `i` depends only on (seed, i): the same seed gives the same
        images, and `generate(8, s)` is the first 8 of `generate(64, s)`.
        """
        generator = self.generator()
        if n == 0:
            model = self.config.model
            return np.zeros((0, model.resolution, model.resolution, model.channels), np.uint8)
        return generate_uint8(generator, latents_for_seed(n, self.config.model.latent_dim, seed),
                              batch_size)


def load(run_dir: str | Path) -> Run:
    """Opens a run directory for generation: `facegan.load("runs/x").generate(16, seed=7)`."""
    paths, config = open_run_dir(run_dir)
    return Run(paths, config)
