"""Opening what `data.source` names: a folder, a zip, the embedded faces, or a pack.

The one place that tells the kinds apart. Everything above `facegan.data` opens
training data here and then knows only `TrainingImages`:

- `resolve_data_settings`: cheap checks (the source exists and fits the config)
  and the settings it fills in (`model.channels`); nothing is decoded.
- `open_training_data`: the same, then the training set itself: a folder is
  decoded into memory, a pack is streamed; the labels are recorded in the config.
- `dataset_size`, `real_images`: a dataset as the realism metrics read it.

Importing this module loads no TensorFlow (the command line uses it before).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from facegan.config import EMBEDDED_LFW, Config, ConfigError
from facegan.data.labels import schema_from_config
from facegan.data.packed import is_packed, read_pack_info
from facegan.data.sources import ImageSource, open_source

if TYPE_CHECKING:
    from facegan.data.training_images import TrainingImages


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
    changes = {k: v for k, v in changes.items() if v != getattr(config.data, k.split(".")[1])}
    return config.with_overrides(changes) if changes else config


def resolve_data_settings(config: Config, workers: int = 1) -> Config:
    """Checks `data.source` against the config and fills `model.channels` from it.

    Cheap: a pack's `dataset.json` is read, a folder is listed; nothing is decoded.

    Raises:
        DataError: the source does not exist or holds nothing usable, or a pack
            has fewer shards than workers.
        ConfigError: the config does not fit a pack (resolution, channels, labels).
    """
    return _open(config, workers)[0]


def open_training_data(
    config: Config,
    workers: int = 1,
    *,
    progress: bool = False,
    before_decoding: Callable[[Config], None] | None = None,
) -> tuple[Config, TrainingImages]:
    """The training set `config.data.source` names, and the config completed by it.

    Args:
        config: the run's config (data paths absolute, see `absolute_data_paths`).
        workers: input pipelines that will share the set (a pack needs a shard each).
        progress: show progress while scanning and decoding.
        before_decoding: called with the completed config once the source is known
            to be usable and before the (possibly long) decoding starts, for checks
            that should fail fast (e.g. the FID weights).

    Returns:
        (config with `model.channels`, `model.label_classes` and
        `data.label_values` filled in, the images: decoded or streamed).

    Raises:
        DataError, ConfigError: as `resolve_data_settings`; `resolve_labels`.
    """
    config, opened = _open(config, workers)
    if before_decoding is not None:
        before_decoding(config)
    if isinstance(opened, ImageSource):  # the one place where the kinds differ
        from facegan.data.pipeline import load_training_images

        opened = load_training_images(
            opened, config.data, config.model.resolution, config.model.channels, progress=progress
        )
    return resolve_labels(config, opened), opened


def _open(config: Config, workers: int) -> tuple[Config, object]:
    """(config with channels, an `ImageSource` to decode or a streamed `PackedImages`)."""
    if is_packed(config.data.source):
        from facegan.data.streaming import open_packed

        return open_packed(config, workers)
    source = open_source(config.data.source, links=config.data.links)
    return with_channels(config, source.natural_channels), source


def with_channels(config: Config, natural_channels: int) -> Config:
    """`model.channels` left automatic becomes the data's own channel count."""
    if config.model.channels is None:
        model = dataclasses.replace(config.model, channels=natural_channels)
        config = dataclasses.replace(config, model=model)
    return config


def resolve_labels(config: Config, images: TrainingImages) -> Config:
    """Records the class counts and values the data's labels resolved to.

    A resumed run must see the same classes it was built with: its stored
    values are reused while parsing, and a changed count is refused.

    Raises:
        ConfigError: the classes changed since the run started.
        LabelError: `data.label_names` does not name each class of an attribute.
    """
    if not images.conditional:
        return config
    if config.model.label_classes not in (None, images.label_classes):
        raise ConfigError(
            f"`model.label_classes` of this run is {config.model.label_classes!r}, but its data "
            f"now gives {images.label_classes!r}; the labels changed since the run started"
        )
    resolved = config.with_overrides(
        {"model.label_classes": images.label_classes, "data.label_values": images.label_values}
    )
    if resolved.data.label_names and images.label_classes:
        # data.label_names must fit the classes the data has, now, not when the
        # first `generate` after a whole run of training reads them
        schema_from_config(resolved.data, images.label_classes)
    return resolved


def dataset_size(spec: str) -> int:
    """Images in a pack, or files listed in a folder or zip (before any check)."""
    return read_pack_info(spec).count if is_packed(spec) else len(open_source(spec))


@dataclasses.dataclass(frozen=True)
class RealImages:
    """A seeded subset of a dataset, as the realism metrics compare with it.

    Attributes:
        key: names the subset's content and settings (for the feature cache).
        count: how many images it will hold (before decoding failures).
        description: for reports.
        load: decodes it: uint8 [N, R, R, C].
    """

    key: str
    count: int
    description: str
    load: Callable[[], np.ndarray]


def real_images(
    spec: str,
    resolution: int,
    channels: int,
    num: int | None,
    seed: int,
    skip: int,
    progress: bool = False,
) -> RealImages:
    """`num` images of `spec` (all if None) after the first `skip` of a seeded pick.

    Two calls with the same seed and skip=0 / skip=num give disjoint sets.

    Raises:
        ConfigError: nothing is left after `skip`.
    """
    if is_packed(spec):
        from facegan.data.streaming import packed_real_images

        return packed_real_images(spec, resolution, channels, num, seed, skip)
    from facegan.data.pipeline import folder_real_images

    return folder_real_images(spec, resolution, channels, num, seed, skip, progress)
