"""A finished (or running) run, loaded for generation: `facegan.load(run_dir)`."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from facegan.artifacts.rundir import RunDirError, RunPaths, open_run_dir
from facegan.artifacts.sampler import Sampler
from facegan.config import Config
from facegan.models import build_generator, latents_for_seed, latents_from_seeds
from facegan.seeds import Stream, rng


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
        self._sampler: Sampler | None = None
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
        """The sampling generator restored from `checkpoint` (default: the latest).

        That is the moving average of the generator's weights when the run
        keeps one (`train.ema_kimg` > 0), else the generator itself, computing
        in float32 even if the run trained in mixed precision.

        Raises:
            RunDirError: if the run has no checkpoint yet.
        """
        path = checkpoint or self.latest_checkpoint()
        if path is None:
            raise RunDirError(f"run {str(self.directory)!r} has no checkpoint yet")
        if self._generator is None or path != self._checkpoint_path:
            # Built in float32 whatever the run trained in: the weights are float32
            # either way, and sampling at full precision costs little.
            generator = build_generator(self.config.model, seed=self.config.train.seed)
            name = "generator_ema" if self.config.train.ema_kimg > 0 else "generator"
            # expect_partial: the checkpoint also holds D and optimizers, unused here.
            tf.train.Checkpoint(**{name: generator}).restore(path).expect_partial()
            self._generator, self._checkpoint_path = generator, path
            self._sampler = None
        return self._generator

    def sampler(self, checkpoint: str | None = None) -> Sampler:
        """The compiled uint8 sampling functions around `generator(checkpoint)`.

        `generate`, the web page and `export` all sample through it, so their
        images agree bit for bit.
        """
        generator = self.generator(checkpoint)
        if self._sampler is None or self._sampler.generator is not generator:
            self._sampler = Sampler(generator, self.config.model.latent_dim,
                                    [classes for _, classes in self.config.model.label_sizes])
        return self._sampler

    def latents(self, n: int, seed: int = 0) -> np.ndarray:
        """The latents [n, Z] that `generate(n, seed)` uses; row i from (seed, LATENT, i)."""
        Sampler.check_seeds([seed])
        return latents_for_seed(n, self.config.model.latent_dim, seed).numpy()

    def latents_for_seeds(self, seeds) -> np.ndarray:
        """Latents [N, Z], one per seed: seed s's face is `generate(1, seed=s)`'s."""
        seeds = Sampler.check_seeds(list(seeds))
        return latents_from_seeds(seeds, self.config.model.latent_dim).numpy()

    def labels_for(self, n: int, seed: int,
                   request: dict[str, str] | None = None) -> np.ndarray | None:
        """Class labels [n, A] for a conditional run (None for an unconditional one).

        Attributes named in `request` ({"gender": "1", "age": "25"}, values as the
        data had them; binned attributes take any value in a bin) are fixed; the
        others are drawn uniformly from their classes, from (seed, i) like the
        latents.

        Raises:
            UserError: a request for an unconditional run, or an unknown
                attribute or value (the message lists what is allowed).
        """
        model = self.config.model
        if not model.conditional:
            if request:
                raise RunDirError(f"run {str(self.directory)!r} is not class-conditional; it "
                                  f"takes no labels")
            return None
        from facegan.data.labels import schema_from_config

        wanted = schema_from_config(self.config.data, model.label_classes).encode(request or {})
        draw = rng(seed, Stream.LABELS)
        labels = np.stack([draw.integers(0, classes, n) for _, classes in model.label_sizes],
                          axis=1).astype(np.int32)
        for column, value in enumerate(wanted):
            if value is not None:
                labels[:, column] = value
        return labels

    def generate(self, n: int, seed: int = 0, batch_size: int = 64, *,
                 labels: dict[str, str] | np.ndarray | None = None,
                 truncation: float = 1.0) -> np.ndarray:
        """Generates `n` images as uint8 [n, R, R, C].

        Image `i` depends only on (seed, i): the same seed gives the same
        images, and `generate(8, s)` is the first 8 of `generate(64, s)`.

        Args:
            n: how many.
            seed: seeds the latents (and the labels left free).
            batch_size: images per generator call.
            labels: conditional runs: a request like {"gender": "1"} (see
                `labels_for`) or class indices [n, A].
            truncation: psi in [0, 1]: 1 = the full distribution; lower trades
                variety for typical, cleaner faces.
        """
        if labels is None or isinstance(labels, dict):
            labels = self.labels_for(n, seed, labels)
        return self.generate_from_latents(self.latents(n, seed), labels=labels,
                                          truncation=truncation, batch_size=batch_size)

    def generate_from_latents(self, latents: np.ndarray, *, labels: np.ndarray | None = None,
                              truncation: float = 1.0, batch_size: int = 64) -> np.ndarray:
        """uint8 images [N, R, R, C] from latents [N, Z] (and class indices [N, A]).

        The same compiled function as `generate` and the exported SavedModel.

        Raises:
            SamplingError: truncation outside [0, 1], labels for an unconditional
                run or none (or out-of-range ones) for a conditional one, latents of
                the wrong shape (checked once, by the `Sampler`).
        """
        return self.sampler().images(latents, labels=labels, truncation=truncation,
                                     batch_size=batch_size)


def load(run_dir: str | Path) -> Run:
    """Opens a run directory for generation: `facegan.load("runs/x").generate(16, seed=7)`."""
    paths, config = open_run_dir(run_dir)
    return Run(paths, config)
