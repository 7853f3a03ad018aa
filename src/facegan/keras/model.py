"""`facegan.keras.GAN`: facegan's train step behind Keras' `compile` / `fit`.

A Keras GAN tutorial overrides `train_step`; so does this class, but the body
is facegan's own per-replica step (`facegan.training.steps.make_replica_step`:
the same losses, R1, augmentation, EMA, loss scaling and NaN guard as the
`facegan train` loop). Keras' `fit` already calls `train_step` once per replica
inside `strategy.run`; the step's cross-replica half (sum over replicas, EMA,
ADA, the step counter) runs in a `merge_call`, which is what the loop does after
its own `strategy.run`. With the same batches, both front ends therefore move
the same weights (tests/test_keras_fit.py).

Everything a run checkpoints is also in the Keras weights (`save_weights`,
`ModelCheckpoint`, `BackupAndRestore`): networks, moving average, both Adams and
the counters. `save_run` writes a facegan run directory that `facegan generate`,
`evaluate`, `serve`, `export` and `train --resume` accept.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from facegan.artifacts.checkpoints import COUNTERS
from facegan.artifacts.images import make_grid
from facegan.artifacts.init_source import with_init_network
from facegan.artifacts.run import Run, load
from facegan.artifacts.rundir import RunDirError, RunLock, RunPaths, create_run_dir, open_run_dir
from facegan.config import Config
from facegan.errors import UserError
from facegan.keras.inputs import NOT_FINITE, InputError, prepare
from facegan.keras.sampling import LiveRun
from facegan.models import synthesize
from facegan.presets import get_preset
from facegan.seeds import seed_range
from facegan.training.setup import build_state, set_up_run
from facegan.training.steps import make_replica_step

# The step's scalars that `fit` reports as running means (Keras metrics).
MEAN_METRICS = ("g_loss", "d_loss", "d_real", "d_fake", "d_real_positive", "skipped")


class GAN(keras.Model):
    """A facegan GAN as a `keras.Model`: `compile()`, then `fit(dataset, ...)`.

    Build it inside the distribution strategy's scope, as any Keras model:

        gan = facegan.keras.GAN.from_preset("faces-64")
        gan.compile()
        gan.fit(keras.utils.image_dataset_from_directory("faces/", labels=None,
                                                         image_size=(64, 64)),
                epochs=10, callbacks=[facegan.keras.SampleGrid("grids/")])
        gan.generate(16, seed=0)          # uint8 [16, 64, 64, 3], as Run.generate
        gan.save_run("runs/fit")          # a facegan run: generate, evaluate, serve, export

    Args:
        config: a facegan `Config` (e.g. `facegan.presets.get_preset(name)`).
            Its automatic settings are resolved here: `train.precision` "auto"
            for this strategy's devices, `model.channels` from `data.source`.
            With `train.init` (a shipped model's name or a run directory) the
            GAN takes that source's network and starts from its weights.
    """

    def __init__(self, config: Config, **kwargs):
        # False when a checkpoint is restored next (`from_run`): `train.init` only starts runs.
        load_init = kwargs.pop("load_init", True)
        kwargs.setdefault("name", f"facegan_{(config.preset or 'custom').replace('-', '_')}")
        super().__init__(**kwargs)
        strategy = tf.distribute.get_strategy()
        self.config = resolve_for_keras(
            with_init_network(config) if load_init else config, strategy
        )
        self._state = build_state(self.config, strategy)
        if load_init and self.config.train.init:
            self._state.load_init(self.config.train.init)
        self.generator = self._state.generator
        self.discriminator = self._state.discriminator
        self.generator_ema = self._state.generator_ema
        self.g_optimizer = self._state.g_optimizer
        self.d_optimizer = self._state.d_optimizer
        self.trackers = [keras.metrics.Mean(name=name) for name in MEAN_METRICS]
        self._replica_step, self._reduce_and_finish = make_replica_step(
            self._state, self.config, strategy
        )
        self._live = LiveRun(self)
        self._run_dir: Path | None = None
        self.built = True

    # -- construction -----------------------------------------------------------
    @classmethod
    def from_preset(
        cls, name: str, *, data: str | Path | None = None, overrides: dict | None = None, **kwargs
    ) -> GAN:
        """The preset `name`, with `data` as `data.source` and dotted `overrides`.

        `data` is recorded in the config (what `evaluate` compares with and
        `dataset()` reads) and sets `model.channels` when the preset leaves it
        automatic; `fit` may still be given any dataset.
        """
        config = get_preset(name)
        changes = dict(overrides or {})
        if data is not None:
            changes["data.source"] = str(data)
        return cls(config.with_overrides(changes) if changes else config, **kwargs)

    @classmethod
    def from_run(cls, run_dir: str | Path, **kwargs) -> GAN:
        """A run's latest checkpoint (from `facegan train` or `save_run`), ready to fit on."""
        from facegan.keras.runs import restore_checkpoint

        paths, config = open_run_dir(run_dir)
        gan = cls(config, load_init=False, **kwargs)
        if restore_checkpoint(gan, paths) is None:
            raise RunDirError(f"run {str(paths.root)!r} has no checkpoint yet")
        gan._run_dir = paths.root
        return gan

    # -- Keras ------------------------------------------------------------------
    def compile(
        self,
        optimizer=None,
        loss=None,
        metrics=None,
        *,
        jit_compile="auto",
        steps_per_execution: int = 1,
        run_eagerly: bool = False,
        **kwargs,
    ) -> None:
        """Prepares `fit`. The optimizers, losses and metrics come from the config.

        `jit_compile="auto"` follows `train.jit` (False by default: XLA made the
        step slower on the CPUs measured, docs/benchmarks.md), not Keras' "auto".

        Raises:
            UserError: an optimizer, loss or metrics were given.
        """
        if optimizer is not None or loss is not None or metrics is not None or kwargs:
            given = [
                k
                for k, v in (("optimizer", optimizer), ("loss", loss), ("metrics", metrics))
                if v is not None
            ] + sorted(kwargs)
            raise UserError(
                f"GAN.compile takes jit_compile, steps_per_execution and run_eagerly only; "
                f"received {', '.join(given)}: the optimizers (optim.*), losses (loss.*) and "
                f"metrics come from the facegan config"
            )
        if jit_compile == "auto":
            jit_compile = self.config.train.jit
        super().compile(
            optimizer=None,
            jit_compile=jit_compile,
            steps_per_execution=steps_per_execution,
            run_eagerly=run_eagerly,
        )
        # Keras' callbacks (TensorBoard, BackupAndRestore) read `model.optimizer`:
        # the generator's Adam, whose iterations count the steps that trained.
        self.optimizer = self.g_optimizer

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return list(self.trackers)

    def fit(
        self,
        x=None,
        y=None,
        *,
        value_range: str | None = None,
        shuffle: bool = True,
        batch_size: int | None = None,
        validation_data=None,
        validation_split: float = 0.0,
        **kwargs,
    ):
        """Keras `fit`, on any image dataset (see `facegan.keras.inputs.prepare`).

        Args:
            x: a tf.data.Dataset of images [B, H, W, C] (float 0-255, uint8 or
                [-1, 1]), e.g. `keras.utils.image_dataset_from_directory(dir,
                labels=None)`; or a NumPy array of images. Resized to the model's
                resolution and channels, regrouped into the config's global batch.
            y: labels for a class-conditional model given NumPy images.
            value_range: "0-255" or "-1-1"; default read from the first batch.
            shuffle, **kwargs: as Keras' `fit` (epochs, steps_per_epoch, callbacks,
                initial_epoch, verbose).

        Raises:
            UserError: data the step cannot take (`InputError`: no full batch, a
                value range it cannot tell, a NaN or inf in any batch), a
                batch_size other than the config's, or validation data (a GAN has no validation loss; use
                `facegan evaluate` on `save_run`'s run).
        """
        if batch_size not in (None, self.config.train.batch_size):
            raise UserError(
                f"fit's batch_size must be the config's train.batch_size "
                f"({self.config.train.batch_size}) or None; received {batch_size}"
            )
        if validation_data is not None or validation_split:
            raise UserError(
                "GAN.fit takes no validation data: a GAN has no validation loss; "
                "measure realism with `facegan evaluate` on a saved run"
            )
        if y is not None:
            x = (x, y)
        for callback in kwargs.get("callbacks") or ():
            _check_backup(callback)
        dataset = prepare(x, self.config, value_range=value_range, shuffle=shuffle)
        with warnings.catch_warnings():
            if kwargs.get("steps_per_epoch") is None:
                # Regrouped batches have no known count, so Keras learns an epoch's
                # length by running out of data, and says so as if it were a mistake.
                warnings.filterwarnings("ignore", message="Your input ran out of data")
            try:
                # shuffle=False: the order is the dataset's (NumPy arrays were shuffled above)
                return super().fit(dataset, shuffle=False, **kwargs)
            except tf.errors.InvalidArgumentError as err:
                if NOT_FINITE not in str(err):
                    raise
                raise InputError(
                    f"{NOT_FINITE} after step {self.step}; images must be finite "
                    f"(the steps before it trained)"
                ) from None

    def train_step(self, data) -> dict[str, tf.Tensor]:
        """One facegan train step on this replica's slice of the global batch."""
        out = self._replica_step(data, tf.constant(0, tf.int32))  # no stop request
        # The loop's own cross-replica half (`make_train_step` calls it after strategy.run).
        result = tf.distribute.get_replica_context().merge_call(
            self._reduce_and_finish, args=(out,)
        )
        for tracker in self.trackers:
            tracker.update_state(result[tracker.name])
        logs = {tracker.name: tracker.result() for tracker in self.trackers}
        logs["step"] = tf.cast(self._state.step.read_value(), tf.float32)
        if "augment_p" in result:
            logs["augment_p"] = result["augment_p"]
        return logs

    def call(self, latents, labels=None, training: bool = False):
        """Images in [-1, 1] from latents [N, Z] (the moving average's, when kept)."""
        return synthesize(self._state.sampling_generator, latents, labels, training=training)

    # -- state beyond layers: saved with the Keras weights ------------------------
    def save_own_variables(self, store) -> None:
        super().save_own_variables(store)
        for name in COUNTERS:  # state that is not a layer's weight, as a checkpoint holds it
            store[f"facegan_{name}"] = np.asarray(getattr(self._state, name).numpy())

    def load_own_variables(self, store) -> None:
        for name in COUNTERS:
            getattr(self._state, name).assign(store[f"facegan_{name}"][()])

    # -- using the model, as a Run ------------------------------------------------
    @property
    def step(self) -> int:
        """Completed train steps (what a run's checkpoint number would be)."""
        return int(self._state.step.numpy())

    @property
    def sampling_generator(self) -> keras.Model:
        """The generator that samples: the moving average when the config keeps one."""
        return self._state.sampling_generator

    def generate(self, n: int, seed: int = 0, **kwargs) -> np.ndarray:
        """uint8 [n, R, R, C]: the faces of seeds seed .. seed + n - 1, as `Run.generate`."""
        return self._live.generate(n, seed, **kwargs)

    def generate_seeds(self, seeds, **kwargs) -> np.ndarray:
        """uint8 [N, R, R, C]: the face of each seed, as `Run.generate_seeds`."""
        return self._live.generate_seeds(seeds, **kwargs)

    def sample_grid(self, count: int | None = None, seed: int | None = None) -> np.ndarray:
        """The grid a facegan run draws: seeds train.seed .. + count - 1, uint8 [H, W, C]."""
        train = self.config.train
        count = count or train.sample_grid
        return make_grid(
            self._live.generate_seeds(seed_range(train.seed if seed is None else seed, count))
        )

    def dataset(self) -> tf.data.Dataset:
        """facegan's own endless pipeline on `data.source` (what `facegan train` reads).

        Batch k is the batch of step `self.step + k` of a `facegan train` run
        with this config, so `fit(gan.dataset(), steps_per_epoch=N)` trains the
        same steps that `facegan.train` does.
        """
        from facegan.keras.runs import facegan_dataset

        return facegan_dataset(self.config, self.step)

    def save_run(self, run_dir: str | Path | None = None, *, overwrite: bool = False) -> Run:
        """Writes this model as a facegan run and returns it (`facegan.load`).

        A new directory gets config.json, a checkpoint at the current step and
        a sample grid; with no `run_dir`, the run this model was loaded from
        or last saved to gets a new checkpoint. An existing directory is never
        written into (`overwrite` moves it aside, never deletes it).
        """
        from facegan.keras.runs import save_checkpoint

        if run_dir is None and self._run_dir is None:
            raise UserError(
                "save_run needs a run directory the first time: gan.save_run('runs/my-fit')"
            )
        if run_dir is None or Path(run_dir).absolute() == self._run_dir:
            paths = RunPaths(self._run_dir)
        else:
            paths = create_run_dir(run_dir, overwrite=overwrite, config=self.config)
        with RunLock(paths):
            save_checkpoint(self, paths)
        self._run_dir = paths.root.absolute()
        return load(paths.root)


def _check_backup(callback) -> None:
    """Refuses a `BackupAndRestore` backup that Keras would fail to load, in one line.

    Keras writes `latest.weights.h5` in place, so a process killed during that
    write leaves a damaged file, and Keras' own restore then fails with an h5py
    traceback at every later `fit` (it falls back only to a readable `.bkp`,
    kept with `double_checkpoint=True`). The file is the user's: it is named,
    never deleted.

    Raises:
        UserError: the backup, and any `.bkp` copy, cannot be read.
    """
    if not isinstance(callback, keras.callbacks.BackupAndRestore):
        return
    latest = Path(callback._weights_path)
    if not latest.exists() or _readable_h5(latest):
        return
    if _readable_h5(Path(callback._prev_weights_path)):
        return  # Keras restores from its previous copy
    raise UserError(
        f"keras.callbacks.BackupAndRestore's backup {str(latest)!r} is damaged (a process "
        f"killed while writing it?); delete {str(Path(callback.backup_dir))!r} to start "
        f"over, or save with facegan.keras.RunCheckpoint, whose checkpoints survive a kill"
    )


def _readable_h5(path: Path) -> bool:
    import h5py  # Keras' own dependency for .weights.h5

    try:
        with h5py.File(path, "r") as handle:
            handle.visit(lambda name: None)  # walks the tree: a cut-off file fails here
        return True
    except (OSError, RuntimeError, KeyError):
        return False


def resolve_for_keras(config: Config, strategy: tf.distribute.Strategy) -> Config:
    """The config's automatic settings resolved as `facegan train` resolves them.

    The same set-up as `facegan train` (`facegan.training.setup.set_up_run`),
    without opening the data: `fit` brings its own (`data.source` is read only
    when it must fill `model.channels`).

    Raises:
        UserError: a batch the replicas cannot share, a data source that does
            not exist, a class-conditional config whose classes are unknown.
    """
    config = set_up_run(config, strategy, open_data=False).config
    if config.data.labels and not config.model.conditional:
        raise UserError(
            "a class-conditional GAN needs `model.label_classes` (e.g. "
            "'gender:2'); or train it with `facegan train`, then GAN.from_run"
        )
    return config
