"""How a run is set up, for both front ends: `facegan train` and `facegan.keras.GAN`.

`set_up_run` resolves the config (the batch against the replicas, absolute data
paths, `train.precision` "auto", `model.channels` and the labels from the data)
and opens the training data; `build_state` builds the networks, the optimizers
and the counters whose checkpoint both front ends save and restore
(`TrainState.checkpoint`, `TrainState.store`). So a run made by either is the
same run: `facegan train --resume` continues a `GAN.save_run` and
`GAN.from_run` continues a `facegan train` run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import tensorflow as tf

from facegan.config import Config
from facegan.data.opening import absolute_data_paths, open_training_data, resolve_data_settings
from facegan.data.training_images import TrainingImages
from facegan.training.distribute import per_replica_batch
from facegan.training.precision import resolve_precision
from facegan.training.state import TrainState


@dataclasses.dataclass(frozen=True)
class RunSetup:
    """A resolved config and, when it was opened, the training set.

    Attributes:
        config: every automatic setting filled in.
        images: the training set, or None when the data was not opened
            (Keras `fit` brings its own).
    """

    config: Config
    images: TrainingImages | None


def set_up_run(
    config: Config,
    strategy: tf.distribute.Strategy,
    *,
    open_data: bool = True,
    workers: int = 1,
    progress: bool = False,
    before_decoding: Callable[[Config], None] | None = None,
) -> RunSetup:
    """Resolves `config` for `strategy` and (by default) opens its training data.

    Args:
        config: the run's config.
        strategy: the distribution strategy the run trains under.
        open_data: open `data.source` (decode a folder, stream a pack); when
            False, the source is read only to fill `model.channels` if the
            config leaves it automatic.
        workers: input pipelines of a multi-worker cluster.
        progress: show progress while the data is scanned and decoded.
        before_decoding: see `facegan.data.opening.open_training_data`.

    Raises:
        UserError: a batch the replicas cannot share, a missing or unusable data
            source, a config that does not fit a pack, labels that changed.
    """
    per_replica_batch(strategy, config.train.batch_size)
    config = absolute_data_paths(config)
    config = config.with_overrides(
        {"train.precision": resolve_precision(config.train.precision, strategy)}
    )
    if open_data:
        config, images = open_training_data(
            config, workers, progress=progress, before_decoding=before_decoding
        )
        return RunSetup(config, images)
    if config.model.channels is None:
        config = resolve_data_settings(config, workers)
    return RunSetup(config, None)


def build_state(config: Config, strategy: tf.distribute.Strategy) -> TrainState:
    """The networks, both Adams and the counters, built in `strategy`'s scope."""
    with strategy.scope():
        return TrainState.create(config)
