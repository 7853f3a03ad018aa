"""A finished (or running) run, or a shipped model, loaded for generation.

`facegan.load("runs/x")` opens a run directory; `facegan.load("faces-64")` (or
`load(model="faces-64")`) a model shipped in the package (`facegan.pretrained`).
Both are a `Run`: the same sampler, seeds and commands.
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from facegan.artifacts.checkpoints import (
    CheckpointReadError,
    CheckpointStore,
    checkpoint_damage,
    sampling_network,
)
from facegan.artifacts.rundir import (
    RunDirError,
    RunPaths,
    open_model,
    open_run_dir,
    require_resolved_config,
)
from facegan.artifacts.sampler import Sampler
from facegan.artifacts.weights_file import load_weights
from facegan.config import Config
from facegan.models import build_generator, latents_from_seeds
from facegan.pretrained import ShippedModel, model_names, unknown_model_line
from facegan.seeds import Stream, rng, seed_range


class Run:
    """A run directory: its config, its checkpoints and its generator.

    Attributes:
        paths: where the run's files are.
        config: the resolved config the run was trained with.
        shipped: the shipped model this is (None: a run directory). A shipped
            model is read-only: what would be written into a run goes to
            `outputs` (the current directory) instead.
    """

    def __init__(self, paths: RunPaths, config: Config, shipped: ShippedModel | None = None):
        self.paths = paths
        self.config = config
        self.shipped = shipped
        self._generator: keras.Model | None = None
        self._sampler: Sampler | None = None
        self._checkpoint_path: str | None = None  # the checkpoint restored
        self._wanted: str | None = None  # what was asked for (None: the newest)

    @property
    def directory(self) -> Path:
        return self.paths.root

    @property
    def name(self) -> str:
        """What to call it: the model's name, or the run folder's."""
        return self.shipped.name if self.shipped else self.paths.root.resolve().name

    @property
    def outputs(self) -> Path:
        """Where commands write what belongs to it (exports, evaluation grids)."""
        return Path.cwd() if self.shipped else self.paths.root

    def latest_checkpoint(self) -> str | None:
        if self.shipped:
            return None
        return tf.train.latest_checkpoint(str(self.paths.checkpoints))

    @property
    def step(self) -> int:
        """The step of the checkpoint the generator came from (before loading: the latest's)."""
        if self.shipped:
            return self.shipped.step
        latest = self._checkpoint_path or self.latest_checkpoint()
        return int(latest.rsplit("-", 1)[1]) if latest else 0

    def generator(self, checkpoint: str | None = None) -> keras.Model:
        """The sampling generator restored from `checkpoint` (default: the newest intact one).

        That is the moving average of the generator's weights when the run
        keeps one (`train.ema_kimg` > 0), else the generator itself, computing
        in float32 even if the run trained in mixed precision. A damaged newest
        checkpoint is skipped with a warning on stderr naming it and the one used.

        Raises:
            RunDirError: the run has no checkpoint yet, or config.json does
                not describe the network in its checkpoints.
            CheckpointReadError: every checkpoint is damaged (or `checkpoint` is).
        """
        if self.shipped:
            if checkpoint is not None:
                raise RunDirError(f"shipped model {self.shipped.name!r} has no checkpoints")
            if self._generator is None:
                self._generator = build_generator(self.config.model, seed=self.config.train.seed)
                load_weights(self.shipped.weights, {"generator_ema": self._generator})
            return self._generator
        wanted = checkpoint or self.latest_checkpoint()
        if self._generator is None or wanted != self._wanted:
            if wanted is None:
                raise RunDirError(f"run {str(self.directory)!r} has no checkpoint yet")
            require_resolved_config(self.paths, self.config)
            # Built in float32 whatever the run trained in: the weights are float32
            # either way, and sampling at full precision costs little.
            generator = build_generator(self.config.model, seed=self.config.train.seed)
            restored = self._restore(self._store_of(generator), checkpoint)
            self._generator, self._wanted, self._checkpoint_path = generator, wanted, restored
            self._sampler = None
        return self._generator

    def _store_of(self, generator: keras.Model) -> CheckpointStore:
        name = sampling_network(self.config.train.ema_kimg > 0)
        # chief=False: reading a run never changes its folder (training may be writing it).
        return CheckpointStore(
            tf.train.Checkpoint(**{name: generator}),
            self.paths.checkpoints,
            self.config.train.keep_checkpoints,
            chief=False,
        )

    def _restore(self, store: CheckpointStore, checkpoint: str | None) -> str:
        """Restores `checkpoint` (default: the newest intact one) into the store's generator.

        Returns:
            The prefix restored.

        Raises:
            RunDirError: a weight of the generator config.json describes is
                missing from an intact checkpoint or has another shape
                (config.json edited, or copied from another run).
            CheckpointReadError: the checkpoint(s) are damaged.
        """
        try:
            if checkpoint is not None:
                failure = store.restore(checkpoint)
                if failure is not None:
                    raise CheckpointReadError(
                        f"run {str(self.directory)!r}: checkpoint {failure.describe()}", [failure]
                    )
                return checkpoint
            restored = store.restore_latest()
            if restored is None:
                raise RunDirError(f"run {str(self.directory)!r} has no checkpoint yet")
        except CheckpointReadError as err:
            mismatch = next((f for f in err.failures if not f.damaged), None)
            if mismatch is None:
                raise
            raise RunDirError(
                f"run {str(self.directory)!r}: its config.json does not describe the network "
                f"in {mismatch.name} ({mismatch.reason[:160]}); put back the config.json that "
                f"training wrote"
            ) from None
        latest = self.latest_checkpoint()
        if latest is not None and restored != latest:
            damage = checkpoint_damage(latest) or "it does not read back"
            print(
                f"facegan: warning: checkpoint {Path(latest).name} of run "
                f"{str(self.directory)!r} is damaged ({damage}); using {Path(restored).name}, "
                f"the newest intact one",
                file=sys.stderr,
            )
        return restored

    def sampler(self, checkpoint: str | None = None) -> Sampler:
        """The compiled uint8 sampling functions around `generator(checkpoint)`.

        `generate`, the web page and `export` all sample through it, so their
        images agree bit for bit.
        """
        generator = self.generator(checkpoint)
        if self._sampler is None or self._sampler.generator is not generator:
            self._sampler = Sampler(
                generator,
                self.config.model.latent_dim,
                [classes for _, classes in self.config.model.label_sizes],
            )
        return self._sampler

    def latents(self, n: int, seed: int = 0) -> np.ndarray:
        """The latents [n, Z] that `generate(n, seed)` uses: seeds seed .. seed + n - 1."""
        return self.latents_for_seeds(seed_range(seed, n))

    def latents_for_seeds(self, seeds) -> np.ndarray:
        """Latents [N, Z], one per seed: seed s's face is `generate(1, seed=s)`'s."""
        seeds = Sampler.check_seeds(list(seeds))
        if not len(seeds):
            return np.zeros((0, self.config.model.latent_dim), np.float32)
        return latents_from_seeds(seeds, self.config.model.latent_dim).numpy()

    def labels_for(
        self, n: int, seed: int, request: dict[str, str] | None = None
    ) -> np.ndarray | None:
        """Class labels [n, A] of seeds seed .. seed + n - 1 (None for an unconditional run)."""
        return self.labels_for_seeds(seed_range(seed, n), request)

    def labels_for_seeds(self, seeds, request: dict[str, str] | None = None) -> np.ndarray | None:
        """Class labels [N, A], one row per seed, for a conditional run (else None).

        Attributes named in `request` ({"gender": "1", "age": "25"}, values as the
        data had them; binned attributes take any value in a bin) are fixed; the
        others are drawn uniformly from their classes, from the face's seed
        alone (like its latent), so seed s has the same labels wherever it is drawn.

        Raises:
            UserError: a request for an unconditional run, or an unknown
                attribute or value (the message lists what is allowed).
        """
        model = self.config.model
        if not model.conditional:
            if request:
                raise RunDirError(
                    f"run {str(self.directory)!r} is not class-conditional; it takes no labels"
                )
            return None
        from facegan.data.labels import schema_from_config

        wanted = schema_from_config(self.config.data, model.label_classes).encode(request or {})
        sizes = [classes for _, classes in model.label_sizes]
        labels = np.zeros((len(seeds), len(sizes)), np.int32)
        for row, seed in enumerate(Sampler.check_seeds(list(seeds))):
            draw = rng(int(seed), Stream.LABELS)
            labels[row] = [draw.integers(0, classes) for classes in sizes]
        for column, value in enumerate(wanted):
            if value is not None:
                labels[:, column] = value
        return labels

    def generate(
        self,
        n: int,
        seed: int = 0,
        batch_size: int = 64,
        *,
        labels: dict[str, str] | np.ndarray | None = None,
        truncation: float = 1.0,
    ) -> np.ndarray:
        """Generates `n` images as uint8 [n, R, R, C].

        Image `i` is the face of seed `seed + i` (StyleGAN2-ADA's convention):
        `generate(1, seed=s + i)`, the web page's tile for seed s + i and an
        export's `from_seed(s + i)` give the same pixels, and `generate(8, s)`
        is the first 8 of `generate(64, s)`.

        Args:
            n: how many.
            seed: the first face's seed (its latent and the labels left free).
            batch_size: images per generator call.
            labels: conditional runs: a request like {"gender": "1"} (see
                `labels_for`) or class indices [n, A].
            truncation: psi in [0, 1]: 1 = the full distribution; lower trades
                variety for typical, cleaner faces.
        """
        return self.generate_seeds(
            seed_range(seed, n), labels=labels, truncation=truncation, batch_size=batch_size
        )

    def generate_seeds(
        self,
        seeds,
        *,
        labels: dict[str, str] | np.ndarray | None = None,
        truncation: float = 1.0,
        batch_size: int = 64,
    ) -> np.ndarray:
        """uint8 [N, R, R, C]: the face of each seed (`facegan generate --seeds`).

        Args:
            seeds: integers from 0 to 2^63 - 1 (e.g. `facegan.seeds.parse_seeds("0-15,42")`).
            labels, truncation, batch_size: as in `generate`.
        """
        seeds = list(seeds)
        if labels is None or isinstance(labels, dict):
            labels = self.labels_for_seeds(seeds, labels)
        return self.generate_from_latents(
            self.latents_for_seeds(seeds),
            labels=labels,
            truncation=truncation,
            batch_size=batch_size,
        )

    def generate_from_latents(
        self,
        latents: np.ndarray,
        *,
        labels: np.ndarray | None = None,
        truncation: float = 1.0,
        batch_size: int = 64,
    ) -> np.ndarray:
        """uint8 images [N, R, R, C] from latents [N, Z] (and class indices [N, A]).

        The same compiled function as `generate` and the exported SavedModel.

        Raises:
            SamplingError: truncation outside [0, 1], labels for an unconditional
                run or none (or out-of-range ones) for a conditional one, latents of
                the wrong shape (checked once, by the `Sampler`).
        """
        return self.sampler().images(
            latents, labels=labels, truncation=truncation, batch_size=batch_size
        )


def load(
    run_dir: str | Path | None = None,
    *,
    model: str | None = None,
    label_names: str | None = None,
) -> Run:
    """Opens a run directory or a shipped model for generation.

        facegan.load("runs/x").generate(16, seed=7)
        facegan.load("faces-64").generate(16, seed=7)   # a model in the package

    Args:
        run_dir: the run directory; a name that is no directory but a shipped
            model's (`facegan models`) opens that model.
        model: a shipped model's name (instead of `run_dir`).
        label_names: class names for a conditional run, as `data.label_names`
            takes them ("gender=male,female"), for this `Run` only: a run
            trained without them (or with wrong ones) gets them without
            retraining; the run directory is not changed.

    Raises:
        RunDirError: no such run directory, and no shipped model of that name.
        UnknownModelError: `model` names no shipped model.
    """
    if model is None and run_dir is not None and not Path(run_dir).exists():
        if str(run_dir) in model_names():
            model = str(run_dir)
        elif "/" not in str(run_dir) and "\\" not in str(run_dir):
            raise RunDirError(
                f"no run directory {str(run_dir)!r}, and {unknown_model_line(str(run_dir))}"
            )
    if model is not None:
        return Run(*open_model(model, label_names=label_names))
    paths, config = open_run_dir(run_dir, label_names=label_names)
    return Run(paths, config)
