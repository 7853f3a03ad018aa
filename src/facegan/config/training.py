"""The `loss`, `augment`, `optim` and `train` sections: how the networks are trained."""

from __future__ import annotations

import dataclasses
import math

from facegan.config.common import (
    AUGMENTS,
    DIFFAUGMENT_OPS,
    LOSSES,
    PRECISIONS,
    STRATEGIES,
    UPDATES,
    fail,
)


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Adversarial loss and regularizers.

    Attributes:
        kind: `nonsaturating` (the classic: binary cross-entropy on logits, the
            generator maximises log D(G(z))), `hinge`, `wasserstein` (WGAN) or
            `least_squares` (LSGAN).
        r1_gamma: weight of the R1 penalty, gamma/2 * |grad D(x)|^2 on real images;
            0 = off.
        r1_every: lazy regularization: R1 every N steps, scaled by N (StyleGAN2).
        gp_weight: gradient-penalty weight for `wasserstein` (WGAN-GP), on
            interpolates x_hat = a x + (1 - a) G(z), a ~ U[0, 1] per image; 0 = off.
        n_critic: discriminator steps per generator step (5 for WGAN-GP).
    """

    kind: str = "nonsaturating"
    r1_gamma: float = 0.0
    r1_every: int = 16
    gp_weight: float = 10.0
    n_critic: int = 1

    def __post_init__(self) -> None:
        if self.kind not in LOSSES:
            fail("loss.kind", f"must be one of {', '.join(LOSSES)}", self.kind)
        if not (math.isfinite(self.r1_gamma) and 0 <= self.r1_gamma <= 1e4):
            fail("loss.r1_gamma", "must be a number from 0 (off) to 10000", self.r1_gamma)
        if not 1 <= self.r1_every <= 1000:
            fail("loss.r1_every", "must be an integer from 1 to 1000", self.r1_every)
        if not (math.isfinite(self.gp_weight) and 0 <= self.gp_weight <= 1e4):
            fail("loss.gp_weight", "must be a number from 0 (off) to 10000", self.gp_weight)
        if not 1 <= self.n_critic <= 100:
            fail("loss.n_critic", "must be an integer from 1 to 100", self.n_critic)


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Differentiable augmentation of everything D sees (real and fake alike).

    Attributes:
        kind: `none`, `diffaugment` (Zhao et al. 2020: a fixed policy on every
            image) or `ada` (Karras et al. 2020: each transformation applied with
            probability p, p adapted so that the share of real images D calls
            real stays near `ada_target`; p is checkpointed).
        policy: diffaugment: comma-separated, from color, translation, cutout.
        ada_target: ada: the wanted E[sign D(x_real)].
        ada_kimg: ada: p can move from 0 to 1 in this many thousand images.
        ada_interval: ada: steps between adjustments of p.
    """

    kind: str = "none"
    policy: str = "color,translation,cutout"
    ada_target: float = 0.6
    ada_kimg: float = 100.0
    ada_interval: int = 4

    def __post_init__(self) -> None:
        if self.kind not in AUGMENTS:
            fail("augment.kind", f"must be one of {', '.join(AUGMENTS)}", self.kind)
        ops = [op.strip() for op in self.policy.split(",") if op.strip()]
        if not ops or any(op not in DIFFAUGMENT_OPS for op in ops):
            fail(
                "augment.policy",
                f"must be a comma-separated list of {', '.join(DIFFAUGMENT_OPS)}",
                self.policy,
            )
        if not (math.isfinite(self.ada_target) and 0 < self.ada_target < 1):
            fail("augment.ada_target", "must be a number in (0, 1)", self.ada_target)
        if not (math.isfinite(self.ada_kimg) and 0 < self.ada_kimg <= 1e6):
            fail("augment.ada_kimg", "must be a positive number up to 1000000", self.ada_kimg)
        if not 1 <= self.ada_interval <= 10000:
            fail("augment.ada_interval", "must be an integer from 1 to 10000", self.ada_interval)


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """Two Adam optimizers, one per network (DCGAN's defaults)."""

    g_lr: float = 2e-4
    d_lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    epsilon: float = 1e-8

    def __post_init__(self) -> None:
        for name in ("g_lr", "d_lr"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 < value <= 1):
                fail(f"optim.{name}", "must be a number in (0, 1]", value)
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value < 1):
                fail(f"optim.{name}", "must be a number in [0, 1)", value)
        if not (math.isfinite(self.epsilon) and 0 < self.epsilon <= 1):
            fail("optim.epsilon", "must be a number in (0, 1]", self.epsilon)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The training schedule.

    Attributes:
        steps: total number of training steps of the run (a resumed run
            continues until it reaches this number).
        batch_size: images per step: the global batch, split evenly over the
            replicas of a distribution strategy (it must divide by their count).
        seed: seeds weights, noise, data order and the fixed sample batch.
        jit: compile the train step with XLA (slower on CPU, measured).
        log_every: steps between log lines (metrics.jsonl, TensorBoard).
        sample_every: steps between sample grids (one is also drawn at step 0
            and at the end).
        sample_minutes: also a grid every this many minutes of the training
            loop, so a short timed run shows several; 0 = steps only.
        checkpoint_every: steps between checkpoints (one is also written at the end).
        keep_checkpoints: how many recent checkpoints to keep.
        sample_grid: number of images in a sample grid (a square number is tidiest).
        eval_every: steps between in-training evaluations (FID and face rate on
            `eval_num` generator samples against the training data); 0 = never.
            The checkpoint with the best FID is kept in checkpoints/best/.
        eval_num: generated (and at most real) images per in-training evaluation.
        max_bad_steps: consecutive steps skipped for a non-finite loss or
            gradient before the run rolls back to its last checkpoint (K).
        max_rollbacks: rollbacks allowed before the run stops as diverged (R).
        rollback_lr_factor: both learning rates are multiplied by this at each
            rollback.
        strategy: the `tf.distribute` strategy: `auto` (MirroredStrategy over all
            GPUs when there are several, else the default one-device strategy),
            `default`, `mirrored` (every local GPU, or the logical CPUs of
            `cpu_replicas`), `multiworker` (MultiWorkerMirroredStrategy from
            TF_CONFIG) or `tpu` (TPUStrategy; TPU_NAME names the TPU).
        cpu_replicas: split the CPU into this many logical devices, so that
            `mirrored` can run without GPUs (for trying it out: no speed-up).
        ema_kimg: half-life, in thousands of images, of an exponential moving
            average of the generator's weights; the average is what samples,
            evaluation and generation use. 0 = no average.
        ema_rampup: early in a run the half-life is at most this fraction of
            the images seen so far, so the average does not drag the random
            initial weights along (StyleGAN2's 0.05); 0 = no ramp-up.
        precision: `float32`, `mixed_bfloat16`, `mixed_float16` (with dynamic
            loss scaling) or `auto` (resolved when a run starts and saved:
            mixed_bfloat16 on TPUs, GPUs from compute capability 8.0 and CPUs
            with AVX512_BF16 or AMX; mixed_float16 on GPUs 7.x; else float32).
            Losses and discriminator outputs stay float32.
        minutes: stop training after this many minutes of the training loop
            (start-up not counted), as if `steps` had been reached; 0 = no limit.
            A resumed run gets the budget again.
        updates: `simultaneous`: G and D are both updated from one forward pass
            (the DCGAN / TensorFlow-tutorial loop); `alternating`: `loss.n_critic`
            D updates, each on its own real batch, then a G update through the
            updated D (SNGAN, WGAN-GP, StyleGAN2). A step then consumes
            `batch_size * n_critic` real images.
        init: start from trained weights instead of random ones (fine-tuning):
            a shipped model's name (`facegan models`) or a run directory. The
            generator, its moving average and the discriminator are copied in;
            the optimizers start fresh; the run takes the source's `model`
            section (architecture, resolution, channels). "" = random weights.
    """

    steps: int = 2000
    batch_size: int = 64
    seed: int = 0
    jit: bool = False
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    sample_grid: int = 64
    eval_every: int = 0
    eval_num: int = 1000
    max_bad_steps: int = 20
    max_rollbacks: int = 3
    rollback_lr_factor: float = 0.5
    strategy: str = "auto"
    cpu_replicas: int = 1
    ema_kimg: float = 0.0
    ema_rampup: float = 0.0
    precision: str = "float32"
    updates: str = "simultaneous"
    minutes: float = 0.0
    sample_minutes: float = 0.0
    init: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 10**9:
            fail("train.steps", "must be an integer from 1 to 1000000000", self.steps)
        if not 1 <= self.batch_size <= 65536:
            fail("train.batch_size", "must be an integer from 1 to 65536", self.batch_size)
        if not 0 <= self.seed < 2**31:
            fail("train.seed", "must be an integer from 0 to 2147483647", self.seed)
        for name in ("log_every", "sample_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                fail(f"train.{name}", "must be a positive integer", getattr(self, name))
        if not 1 <= self.keep_checkpoints <= 1000:
            fail(
                "train.keep_checkpoints", "must be an integer from 1 to 1000", self.keep_checkpoints
            )
        if not 1 <= self.sample_grid <= 1024:
            fail("train.sample_grid", "must be an integer from 1 to 1024", self.sample_grid)
        if self.eval_every < 0:
            fail("train.eval_every", "must be 0 (never) or a positive integer", self.eval_every)
        if not 2 <= self.eval_num <= 100000:
            fail("train.eval_num", "must be an integer from 2 to 100000", self.eval_num)
        if not 1 <= self.max_bad_steps <= 1000000:
            fail("train.max_bad_steps", "must be an integer from 1 to 1000000", self.max_bad_steps)
        if not 0 <= self.max_rollbacks <= 1000:
            fail("train.max_rollbacks", "must be an integer from 0 to 1000", self.max_rollbacks)
        if not (math.isfinite(self.rollback_lr_factor) and 0 < self.rollback_lr_factor <= 1):
            fail("train.rollback_lr_factor", "must be a number in (0, 1]", self.rollback_lr_factor)
        if self.strategy not in STRATEGIES:
            fail("train.strategy", f"must be one of {', '.join(STRATEGIES)}", self.strategy)
        if not 1 <= self.cpu_replicas <= 64:
            fail("train.cpu_replicas", "must be an integer from 1 to 64", self.cpu_replicas)
        if not (math.isfinite(self.ema_kimg) and 0 <= self.ema_kimg <= 1e6):
            fail("train.ema_kimg", "must be a number from 0 (off) to 1000000", self.ema_kimg)
        if not (math.isfinite(self.ema_rampup) and 0 <= self.ema_rampup <= 1):
            fail("train.ema_rampup", "must be a number from 0 (off) to 1", self.ema_rampup)
        if self.precision not in PRECISIONS:
            fail("train.precision", f"must be one of {', '.join(PRECISIONS)}", self.precision)
        if not (math.isfinite(self.minutes) and 0 <= self.minutes <= 1e7):
            fail("train.minutes", "must be a number of minutes, 0 for no limit", self.minutes)
        if not (math.isfinite(self.sample_minutes) and 0 <= self.sample_minutes <= 1e7):
            fail(
                "train.sample_minutes",
                "must be a number of minutes, 0 for steps only",
                self.sample_minutes,
            )
        if self.updates not in UPDATES:
            fail("train.updates", f"must be one of {', '.join(UPDATES)}", self.updates)
