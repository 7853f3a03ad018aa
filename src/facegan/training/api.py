"""The public API of training: `train` starts a run, `resume` continues one.

Both make the same `Session` (`_session`: strategy checks, the data, the
resolved config, the evaluator) and hand it to `facegan.training.loop`.
Everything a user can get wrong is checked before a model is built: the data,
the batch against the replicas, the run directory, the FID weights when
in-training evaluation is on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path

import tensorflow as tf

from facegan.artifacts.run import Run
from facegan.artifacts.rundir import (RunDirError, RunLock, RunPaths, create_run_dir,
                                      default_run_dir, open_run_dir, write_config)
from facegan.config import EMBEDDED_LFW, Config, ConfigError
from facegan.data.pipeline import DecodedImages, load_training_images
from facegan.data.packed import is_packed
from facegan.data.sources import ImageSource, open_source
from facegan.data.streaming import PackedImages, open_packed
from facegan.evaluate import Evaluator
from facegan.progress import show_progress
from facegan.training.distribute import cluster_role, make_strategy, per_replica_batch
from facegan.training.loop import Session, run_session
from facegan.training.precision import resolve_precision

# What `resume` may change: how a run executes, never what it trains.
_EXECUTION_KEYS = frozenset({"train.strategy", "train.cpu_replicas"})


def train(config: Config, run_dir: str | Path | None = None, *, overwrite: bool = False,
          progress: bool | None = None, strategy: tf.distribute.Strategy | None = None) -> Run:
    """Trains a new run from `config` and returns it.

    Args:
        config: the run's configuration (see `facegan.presets`).
        run_dir: where to write; default `runs/<preset>-<timestamp>` (a worker of a
            multi-worker cluster must name the chief's run directory).
        overwrite: if `run_dir` exists, move it aside (never deleted) instead of failing.
        progress: show a progress bar; default: when stderr is a terminal.
        strategy: the `tf.distribute` strategy; default `make_strategy(config.train)`,
            which must then run before TensorFlow has done anything else.

    Raises:
        UserError: for bad data paths, a batch the replicas cannot share, or an
            existing run directory, before any model is built.
    """
    strategy = strategy or make_strategy(config.train)
    role = cluster_role()
    if not role.is_chief:
        if run_dir is None:
            raise RunDirError("a worker of a multi-worker run needs --run-dir: the chief's run "
                              "directory, on storage that every worker shares")
        return run_session(_session(RunPaths(Path(run_dir)), config, strategy, progress))
    # The run directory is made once the data and the settings are known to be usable.
    session = _session(None, config, strategy, progress)
    paths = create_run_dir(run_dir or default_run_dir(session.config), overwrite=overwrite,
                           config=session.config)
    with RunLock(paths):
        return run_session(dataclasses.replace(session, paths=paths))


def resume(run_dir: str | Path, steps: int | None = None, *, minutes: float | None = None,
           progress: bool | None = None, strategy: tf.distribute.Strategy | None = None,
           execution: dict[str, object] | None = None) -> Run:
    """Continues a run from its latest checkpoint until `steps` (default: the run's own).

    Args:
        run_dir: the run.
        steps: the new total; default the run's `train.steps`.
        minutes: this session's wall-clock budget for the training loop (0: none);
            default the run's `train.minutes`.
        progress: show a progress bar; default: when stderr is a terminal.
        strategy: see `train`.
        execution: changes to how the run executes, not what it trains:
            `train.strategy` and `train.cpu_replicas` (e.g. resume a one-GPU
            run on eight GPUs); None values are ignored.
    """
    paths, config = open_run_dir(run_dir)
    changes = {k: v for k, v in (execution or {}).items() if v is not None}
    assert set(changes) <= _EXECUTION_KEYS, f"resume cannot change {set(changes) - _EXECUTION_KEYS}"
    if steps is not None:
        changes["train.steps"] = steps
    if minutes is not None:
        changes["train.minutes"] = minutes
    config = config.with_overrides(changes) if changes else config
    strategy = strategy or make_strategy(config.train)
    chief = cluster_role().is_chief
    # Before anything is written: another trainer may be at work here.
    with RunLock(paths) if chief else contextlib.nullcontext():
        session = _session(paths, config, strategy, progress)
        if chief and (changes or session.config != config):
            write_config(paths, session.config)
        return run_session(session)


def _session(paths: RunPaths | None, config: Config, strategy: tf.distribute.Strategy,
             progress: bool | None) -> Session:
    """Checks the batch, reads the data, resolves the config's automatic settings."""
    role = cluster_role()
    per_replica_batch(strategy, config.train.batch_size)
    config = absolute_data_paths(config)
    packed = is_packed(config.data.source)
    if packed:  # streamed: checked against the config now, read while training
        config, images = open_packed(config, role.num_workers)
    else:
        source = open_source(config.data.source, links=config.data.links)
        config = resolve_config(config, source)
    config = config.with_overrides(
        {"train.precision": resolve_precision(config.train.precision, strategy)})
    # Missing Inception weights fail here, before any decoding; only the chief evaluates.
    evaluator = _evaluator(config) if role.is_chief else None
    if not packed:
        images = load_training_images(source, config.data, config.model.resolution,
                                      config.model.channels, progress=show_progress(progress))
    config = resolve_labels(config, images)
    return Session(paths=paths, config=config, images=images, strategy=strategy, role=role,
                   progress=show_progress(progress) and role.is_chief, evaluator=evaluator)


def absolute_data_paths(config: Config) -> Config:
    """data.source (and a csv: labels file) as absolute paths, as config.json stores them.

    A run resumed from another working directory must find the same data.
    Symbolic links in the path are kept as the user wrote them (abspath, not
    realpath), so a link that is later repointed is followed.
    """
    changes = {}
    if config.data.source != EMBEDDED_LFW:
        changes["data.source"] = os.path.abspath(os.path.expanduser(config.data.source))
    kind, sep, path = (config.data.labels or "").partition(":")
    if sep and kind == "csv":
        changes["data.labels"] = "csv:" + os.path.abspath(os.path.expanduser(path))
    changes = {k: v for k, v in changes.items()
               if v != getattr(config.data, k.split(".")[1])}
    return config.with_overrides(changes) if changes else config


def resolve_config(config: Config, source: ImageSource) -> Config:
    """Fills the settings left automatic (model.channels) from the data source."""
    if config.model.channels is None:
        model = dataclasses.replace(config.model, channels=source.natural_channels)
        config = dataclasses.replace(config, model=model)
    return config


def resolve_labels(config: Config, images: DecodedImages | PackedImages) -> Config:
    """Records the class counts and values the data's labels resolved to.

    A resumed run must see the same classes it was built with: its stored
    values are reused while parsing, and a changed count is refused.
    """
    if not images.conditional:
        return config
    if config.model.label_classes not in (None, images.label_classes):
        raise ConfigError(
            f"`model.label_classes` of this run is {config.model.label_classes!r}, but its data "
            f"now gives {images.label_classes!r}; the labels changed since the run started")
    return config.with_overrides({"model.label_classes": images.label_classes,
                                  "data.label_values": images.label_values})


def _evaluator(config: Config) -> Evaluator | None:
    if not config.train.eval_every:
        return None
    from facegan.metrics.inception import cache_dir

    evaluator = Evaluator(cache_dir=cache_dir())
    evaluator.check_weights()
    return evaluator


__all__ = ["make_strategy", "resolve_config", "resolve_labels", "resume", "train"]
