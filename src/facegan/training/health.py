"""Watching a run's health: divergence, mode collapse, discriminator overfitting.

Divergence is handled in two layers. The compiled step skips any update whose
loss or gradient is not finite (see `facegan.training.steps`). A few skipped
steps are noise (one poisoned batch); many in a row mean the run has diverged,
and the loop then rolls back to the last checkpoint with lower learning rates
(`Divergence`). The two monitors below only warn: they measure things a person
would otherwise notice hours later in the sample grids.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from facegan.errors import ExitCode, UserError


class Diverged(UserError):
    """Training kept producing non-finite values after every allowed rollback."""

    exit_code = ExitCode.DIVERGED


@dataclasses.dataclass
class Divergence:
    """Decides when a streak of skipped steps becomes a rollback, and when to give up.

    Attributes:
        max_bad_steps: consecutive skipped steps that trigger a rollback (K).
        max_rollbacks: rollbacks allowed in a run (R); one more streak stops it.
        lr_factor: learning-rate multiplier applied at each rollback.
    """

    max_bad_steps: int
    max_rollbacks: int
    lr_factor: float

    def needs_rollback(self, bad_streak: int) -> bool:
        return bad_streak >= self.max_bad_steps

    def may_roll_back(self, rollbacks_so_far: int) -> bool:
        return rollbacks_so_far < self.max_rollbacks


def diversity(images: np.ndarray) -> float:
    """Mean per-pixel standard deviation across a batch of uint8 images, in [0, 1].

    Measured at 16x16 (block means), so it tracks what differs between faces
    (pose, colour, layout) rather than pixel noise. A collapsed generator maps
    every latent to (nearly) the same image: this goes to 0.
    """
    pixels = images.astype(np.float32) / 255.0  # [N, H, W, C]
    n, height, width, channels = pixels.shape
    block = max(1, height // 16)
    small = pixels[:, : height // block * block, : width // block * block]
    small = small.reshape(n, height // block, block, width // block, block, channels).mean((2, 4))
    return float(small.std(axis=0).mean())


class CollapseMonitor:
    """Warns when the fixed-latent sample batch loses its diversity (mode collapse).

    The reference is the diversity of an equally sized batch of training images;
    the warning fires when the samples fall below `threshold` of it. The
    generator's very first outputs are nearly uniform, so the check starts only
    once the samples have been diverse at least once.
    """

    def __init__(self, real_images: np.ndarray, threshold: float = 0.25):
        self.reference = max(diversity(real_images), 1e-6)
        self.threshold = threshold
        self._armed = False
        self._warned = False

    def check(self, samples: np.ndarray) -> tuple[float, str | None]:
        """Returns (samples' diversity relative to the training data, warning or None)."""
        ratio = diversity(samples) / self.reference
        if ratio >= self.threshold:
            self._armed, self._warned = True, False
            return ratio, None
        if not self._armed or self._warned:
            return ratio, None
        self._warned = True  # once per episode, not at every sample interval
        return ratio, (
            f"possible mode collapse: the fixed-latent samples vary {ratio:.0%} as much "
            f"as the training images (below {self.threshold:.0%}); look at the latest "
            f"sample grid; if they look alike, resume from an earlier checkpoint with "
            f"a lower optim.g_lr or more data"
        )


class OverfitMonitor:
    """Warns when D calls nearly every real training image real (discriminator overfitting).

    The signal is the share of positive D(real) logits, averaged over a log
    interval (ADA's r_t = E[sign D(x)] is the same quantity rescaled). On a
    small dataset a discriminator that memorises it drives this to 1 while
    its outputs on fresh images drift; the generator then stops improving.
    Fires after `patience` consecutive intervals above `threshold`, once per
    episode; an episode ends after `patience` consecutive intervals below it.
    """

    def __init__(self, threshold: float = 0.95, patience: int = 3):
        self.threshold, self.patience = threshold, patience
        self._above = self._below = 0
        self._warned = False

    def check(self, share_positive: float | None) -> str | None:
        if share_positive is None:
            return None
        if share_positive < self.threshold:
            self._above, self._below = 0, self._below + 1
            if self._below >= self.patience:  # recovered for as long as it took to warn
                self._warned = False
            return None
        self._above, self._below = self._above + 1, 0
        if self._above < self.patience or self._warned:
            return None
        self._warned = True
        return (
            f"discriminator may be overfitting: it has called {share_positive:.0%} of real "
            f"images real for {self._above} log intervals; more data, augmentation or a "
            f"lower optim.d_lr usually help"
        )
