"""The public API of training: `train` starts a run, `resume` continues one.

Both make the same `Session` (`_session`: the run set up by
`facegan.training.setup.set_up_run`, which `facegan.keras.GAN` uses too, and
the evaluator) and hand it to `facegan.training.loop`.
Everything a user can get wrong is checked before a model is built: the data,
the batch against the replicas, the run directory, the FID weights when
in-training evaluation is on.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import tensorflow as tf

from facegan.artifacts.init_source import with_init_network
from facegan.artifacts.run import Run
from facegan.artifacts.rundir import (
    RunDirError,
    RunLock,
    RunPaths,
    create_run_dir,
    default_run_dir,
    open_run_dir,
    refuse_shipped,
    write_config,
)
from facegan.config import RESUME_CHANGES, Config
from facegan.evaluate import Evaluator
from facegan.progress import show_progress
from facegan.training.distribute import cluster_role, make_strategy
from facegan.training.loop import Session, run_session
from facegan.training.setup import set_up_run


def train(
    config: Config,
    run_dir: str | Path | None = None,
    *,
    overwrite: bool = False,
    progress: bool | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> Run:
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
    # A fine-tuning run takes its source's network (resolved once, at the start).
    config = with_init_network(config)
    strategy = strategy or make_strategy(config.train)
    role = cluster_role()
    if not role.is_chief:
        if run_dir is None:
            raise RunDirError(
                "a worker of a multi-worker run needs --run-dir: the chief's run "
                "directory, on storage that every worker shares"
            )
        return run_session(_session(RunPaths(Path(run_dir)), config, strategy, progress))
    # The run directory is made once the data and the settings are known to be usable.
    session = _session(None, config, strategy, progress)
    paths = create_run_dir(
        run_dir or default_run_dir(session.config), overwrite=overwrite, config=session.config
    )
    with RunLock(paths):
        return run_session(dataclasses.replace(session, paths=paths))


def resume(
    run_dir: str | Path,
    steps: int | None = None,
    *,
    minutes: float | None = None,
    progress: bool | None = None,
    strategy: tf.distribute.Strategy | None = None,
    execution: dict[str, object] | None = None,
) -> Run:
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
    refuse_shipped(run_dir)
    paths, config = open_run_dir(run_dir)
    changes = {k: v for k, v in (execution or {}).items() if v is not None}
    assert set(changes) <= set(RESUME_CHANGES), f"resume cannot change {set(changes)}"
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


def _session(
    paths: RunPaths | None, config: Config, strategy: tf.distribute.Strategy, progress: bool | None
) -> Session:
    """Resolves the config and opens the data (`set_up_run`); checks the FID weights."""
    role = cluster_role()
    evaluator: Evaluator | None = None

    def check_weights(resolved: Config) -> None:
        # Missing Inception weights fail here, before any decoding; only the chief evaluates.
        nonlocal evaluator
        evaluator = _evaluator(resolved) if role.is_chief else None

    setup = set_up_run(
        config,
        strategy,
        workers=role.num_workers,
        progress=show_progress(progress),
        before_decoding=check_weights,
    )
    return Session(
        paths=paths,
        config=setup.config,
        images=setup.images,
        strategy=strategy,
        role=role,
        progress=show_progress(progress) and role.is_chief,
        evaluator=evaluator,
    )


def _evaluator(config: Config) -> Evaluator | None:
    if not config.train.eval_every:
        return None
    from facegan.metrics.inception import cache_dir

    evaluator = Evaluator(cache_dir=cache_dir())
    evaluator.check_weights()
    return evaluator


__all__ = ["make_strategy", "resume", "train"]
