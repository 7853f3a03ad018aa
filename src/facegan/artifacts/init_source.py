"""Where a fine-tuning run's first weights come from (`train.init`), found without TensorFlow.

`train.init` names a shipped model (`faces-64`) or a run directory. The new run
takes the source's network (`model` section: architecture, resolution,
channels, widths); its generator, moving average and discriminator start as
the source's; the optimizers start fresh (`training.state.TrainState.load_init`
copies the weights in).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from facegan.artifacts.rundir import RunDirError, open_run_dir, require_resolved_config
from facegan.config import Config, ConfigError
from facegan.pretrained import (
    ShippedModel,
    is_shipped_directory,
    model_names,
    shipped_model,
    unknown_model_line,
)


@dataclasses.dataclass(frozen=True)
class InitSource:
    """A resolved `train.init`.

    Attributes:
        spec: what the run's config records: the model's name, or the run
            directory's absolute path.
        config: the source's resolved config (its `model` section builds the networks).
        shipped: the shipped model, or None for a run directory.
        checkpoint: the run's newest checkpoint prefix (None for a shipped model).
    """

    spec: str
    config: Config
    shipped: ShippedModel | None
    checkpoint: str | None


def resolve_init(spec: str) -> InitSource:
    """The shipped model or run directory `spec` names.

    Raises:
        ConfigError: `spec` is neither (the line lists the shipped models), or
            the run has no checkpoint yet.
    """
    path = Path(spec).expanduser()
    if path.is_dir() and is_shipped_directory(path):
        spec = path.resolve().name  # the package's own folder: the model by its name
    elif path.is_dir():
        try:
            paths, config = open_run_dir(path)
            require_resolved_config(paths, config)
        except RunDirError as err:
            raise ConfigError(f"train.init: {err}") from None
        indexes = sorted(
            paths.checkpoints.glob("*.index"), key=lambda p: int(p.stem.rsplit("-", 1)[1])
        )
        if not indexes:
            raise ConfigError(f"train.init: run {str(path)!r} has no checkpoint yet to start from")
        prefix = str(indexes[-1].with_suffix("").resolve())
        return InitSource(str(path.resolve()), config, None, prefix)
    if spec not in model_names():
        raise ConfigError(
            f"train.init {spec!r} is no run directory, and {unknown_model_line(spec)}"
        )
    shipped = shipped_model(spec)
    return InitSource(spec, shipped.config, shipped, None)


def with_init_network(config: Config) -> Config:
    """`config` with its `train.init` source's network, checked against the data settings.

    Unchanged when `train.init` is empty.

    Raises:
        ConfigError: no such source, or class labels asked of a source that has
            none (or the other way round).
    """
    if not config.train.init:
        return config
    source = resolve_init(config.train.init)
    model = source.config.model
    if bool(config.data.labels) != model.conditional:
        wants = "data.labels" if config.data.labels else "no data.labels"
        has = "is class-conditional" if model.conditional else "has no class labels"
        raise ConfigError(
            f"train.init {source.spec!r} {has}; a run started from it cannot use {wants}"
        )
    return dataclasses.replace(
        config, model=model, train=dataclasses.replace(config.train, init=source.spec)
    )


def model_conflicts(source: InitSource, wanted: Config) -> list[str]:
    """The network settings `wanted` asks for that `source`'s weights do not have.

    Args:
        source: the resolved `train.init`.
        wanted: the source's config with what the user gave applied on top (a
            config file, flags, `--set`): each `model.*` it changed is a conflict.
    """
    have, asked = source.config.model, wanted.model
    return [
        f"model.{field.name}={getattr(asked, field.name)}"
        for field in dataclasses.fields(asked)
        if getattr(asked, field.name) != getattr(have, field.name)
    ]
