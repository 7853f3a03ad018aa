"""Named starting configurations.

A preset is a complete `Config`; a config file or command-line overrides are
applied on top of it. `dcgan-64` is the classic recipe and stays unchanged so
that results against it remain comparable. `quick-32` is the default, sized to
show faces within minutes on a 2-core CPU; `faces-64` is the best recipe found
for a CPU at 64 px for an hour or less, `faces-64-long` the same network wider for
longer budgets, and `faces-128` the same recipe at 128 px (docs/recipes.md
has the measurements behind them); `dcgan-128` is the classic recipe at 128 px;
`stylegan2-128` and `stylegan2-256` are sized for a GPU.
"""

from __future__ import annotations

from facegan.config import (
    AugmentConfig,
    Config,
    ConfigError,
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
)

DEFAULT_PRESET = "quick-32"


def _stylegan2(
    name: str, resolution: int, width: int, r1_gamma: float, steps: int, sample_grid: int
) -> Config:
    """StyleGAN2's recipe (Karras et al. 2020) at one size: what the GPU presets share."""
    return Config(
        preset=name,
        model=ModelConfig(
            arch="stylegan2",
            resolution=resolution,
            width=width,
            max_width=512,
            latent_dim=512,
            mapping_layers=8,
        ),
        loss=LossConfig(kind="nonsaturating", r1_gamma=r1_gamma, r1_every=16),
        augment=AugmentConfig(kind="ada", ada_target=0.6, ada_kimg=100, ada_interval=4),
        optim=OptimConfig(g_lr=2.5e-3, d_lr=2.5e-3, beta1=0.0, beta2=0.99),
        train=TrainConfig(
            steps=steps,
            batch_size=32,
            log_every=100,
            sample_every=2000,
            checkpoint_every=2000,
            ema_kimg=10.0,
            ema_rampup=0.05,
            updates="alternating",
            precision="auto",
            sample_grid=sample_grid,
        ),
    )


def _dcgan(name: str, resolution: int) -> Config:
    """The classic DCGAN (Radford et al. 2015) at one size: the baselines, unchanged."""
    return Config(
        preset=name,
        model=ModelConfig(resolution=resolution, width=64, latent_dim=128),
        optim=OptimConfig(g_lr=2e-4, d_lr=2e-4, beta1=0.5),
        train=TrainConfig(
            steps=20000, batch_size=64, log_every=50, sample_every=500, checkpoint_every=1000
        ),
    )


def _faces(name: str, resolution: int, width: int, sample_every: int) -> Config:
    """The CPU recipe (docs/recipes.md has the search behind it) at one size.

    Batch 64. Batch 32 won a 6-minute proxy (FID-1k 127 against 196) but lost
    the 30-minute runs that decide (FID 58.0 against 51.5; its curve flattened
    after 20 minutes while batch 64's kept falling): a short proxy favours more,
    noisier updates. Skip-layer excitation and minibatch stddev
    (`model.g_skip_excitation`, `model.d_minibatch_std`) lost their proxy (no
    better per step, 16 % slower per step): off. docs/recipes.md has the table.
    """
    return Config(
        preset=name,
        model=ModelConfig(resolution=resolution, width=width, latent_dim=128),
        augment=AugmentConfig(kind="diffaugment", policy="color,translation,cutout"),
        optim=OptimConfig(g_lr=2e-4, d_lr=2e-4, beta1=0.5),
        train=TrainConfig(
            steps=30000,
            batch_size=64,
            log_every=100,
            sample_every=sample_every,
            checkpoint_every=1000,
            ema_kimg=10.0,
            ema_rampup=0.05,
            precision="auto",
        ),
    )


_PRESETS: dict[str, tuple[str, Config]] = {
    "dcgan-64": (
        "the classic DCGAN (Radford et al. 2015): 64 px, width 64, batch 64, Adam 2e-4/0.5",
        _dcgan("dcgan-64", 64),
    ),
    "dcgan-128": (
        "the classic DCGAN at 128 px (width 64): the baseline faces-128 is measured against",
        _dcgan("dcgan-128", 128),
    ),
    "quick-32": (
        "CPU default: 32 px DCGAN, width 32, EMA and DiffAugment; faces in ~2 min on 2 cores",
        # Width 32 runs 3.6x faster than 64 at 32 px on a 2-core CPU. The default data
        # is only 100 faces: DiffAugment keeps D from memorising them and the moving
        # average of G smooths the samples (docs/recipes.md).
        Config(
            preset="quick-32",
            data=DataConfig(flip=True),
            model=ModelConfig(resolution=32, width=32, latent_dim=128),
            augment=AugmentConfig(kind="diffaugment", policy="translation,cutout"),
            optim=OptimConfig(g_lr=2e-4, d_lr=2e-4, beta1=0.5),
            train=TrainConfig(
                steps=2000,
                batch_size=64,
                log_every=50,
                sample_every=250,
                checkpoint_every=500,
                ema_kimg=5.0,
                ema_rampup=0.05,
            ),
        ),
    ),
    "faces-64": (
        "best CPU recipe at 64 px for up to an hour: narrow DCGAN, bf16 where native, EMA",
        _faces("faces-64", 64, width=32, sample_every=1000),
    ),
    "faces-64-long": (
        "faces-64 at width 48, for budgets over an hour: slower per step, better per step",
        # Width 32 leads at 60 minutes (FID-1k 50.9 against 56.5) because it runs 1.65x
        # the steps, but width 48 is ahead at equal steps and the lead grows; its curve
        # was still falling at 150 minutes (docs/benchmarks.md, issue #25). The shipped
        # model faces-64 is this recipe.
        _faces("faces-64-long", 64, width=48, sample_every=1000),
    ),
    "faces-128": (
        "the faces-64 recipe at 128 px, width 16: recognisable faces in an hour on 2 cores",
        _faces("faces-128", 128, width=16, sample_every=1000),
    ),
    "stylegan2-128": (
        "GPU: StyleGAN2 generator + residual D at 128 px, R1, ADA, EMA; ~1 day on one GPU",
        _stylegan2(
            "stylegan2-128", resolution=128, width=128, r1_gamma=0.1, steps=200000, sample_grid=64
        ),
    ),
    "stylegan2-256": (
        "GPU: StyleGAN2 at 256 px (FFHQ-like config-F, narrower), R1, ADA, EMA; several GPUs",
        _stylegan2(
            "stylegan2-256", resolution=256, width=64, r1_gamma=1.0, steps=400000, sample_grid=32
        ),
    ),
}


def preset_names() -> list[str]:
    return list(_PRESETS)


def describe_presets() -> str:
    """One line per preset, for `--help` and `facegan presets`."""
    return "\n".join(f"  {name:<13} {summary}" for name, (summary, _) in _PRESETS.items())


def get_preset(name: str) -> Config:
    """Returns the named preset's config.

    Raises:
        ConfigError: if no preset has that name.
    """
    try:
        return _PRESETS[name][1]
    except KeyError:
        raise ConfigError(
            f"`preset` must be one of {', '.join(_PRESETS)}; received {name!r}"
        ) from None
