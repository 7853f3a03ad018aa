"""`GAN.generate` through the same code as `Run.generate`.

A `LiveRun` is a `Run` whose generator is not read from a checkpoint but
copied from the Keras model's current sampling weights, into a float32 copy
(as `Run.generator` builds it whatever precision trained), so that
`gan.generate(n, seed)` and `facegan.load(gan.save_run(d)).generate(n, seed)`
give the same pixels.
"""

from __future__ import annotations

from pathlib import Path

import keras

from facegan.artifacts.run import Run
from facegan.artifacts.rundir import RunPaths
from facegan.models import build_generator


class LiveRun(Run):
    """The seeds, labels, truncation and sampler of `Run`, on a model being trained."""

    def __init__(self, gan: keras.Model):
        # The path only names the model in error messages; nothing is read from it.
        super().__init__(RunPaths(Path(f"<keras model {gan.name}>")), gan.config)
        self._gan = gan
        self._copy: keras.Model | None = None

    def latest_checkpoint(self) -> str | None:
        return None

    @property
    def step(self) -> int:
        return self._gan.step

    def generator(self, checkpoint: str | None = None) -> keras.Model:
        assert checkpoint is None, "a Keras model has no checkpoints to choose from"
        if self._copy is None:
            self._copy = build_generator(self.config.model, seed=self.config.train.seed)
        live = self._gan.sampling_generator
        for target, source in zip(self._copy.variables, live.variables, strict=True):
            target.assign(source)
        return self._copy
