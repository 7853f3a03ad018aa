"""Keras callbacks that show what a GAN learns."""

from __future__ import annotations

from pathlib import Path

import keras

from facegan.artifacts.images import save_png


class SampleGrid(keras.callbacks.Callback):
    """Saves the model's sample grid as `DIR/step-NNNNNNN.png` every `every` epochs.

    Named by the model's train step (as a run's grids are), which only grows
    across `fit` calls, so a later fit never writes over an earlier grid.

    The grid shows the same seeds every time (train.seed .. + count - 1, as a
    `facegan train` run's grids do), so successive grids compare face by face.

    Args:
        directory: where the PNGs go (created).
        every: epochs between grids.
        count: faces per grid (default the config's `train.sample_grid`).
    """

    def __init__(self, directory: str | Path, every: int = 1, count: int | None = None):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be at least 1; received {every}")
        self.directory, self.every, self.count = Path(directory), every, count
        self.saved: list[Path] = []

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if (epoch + 1) % self.every:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"step-{self.model.step:07d}.png"
        self.saved.append(save_png(self.model.sample_grid(self.count), path))
