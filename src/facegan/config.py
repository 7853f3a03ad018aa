"""Typed, frozen configuration for a facegan run.

A `Config` is the whole description of a run: data, model, loss, optimizers and
the training schedule. It is validated when it is built, so a bad value fails
before any data is read or any model is built, with a message that names the
field, the value received and what is allowed.

This module imports no TensorFlow: the CLI can validate a config (and print
`--help`) in milliseconds.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import types
import typing
from pathlib import Path
from typing import Any, Mapping

from facegan.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib


class ConfigError(UserError, ValueError):
    """A user-supplied configuration value is not allowed."""


EMBEDDED_LFW = "embedded:lfw"
ARCHITECTURES = ("dcgan", "resnet", "stylegan2")
LOSSES = ("nonsaturating", "hinge", "wasserstein", "least_squares")
AUGMENTS = ("none", "diffaugment", "ada")
DIFFAUGMENT_OPS = ("color", "translation", "cutout")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
UPDATES = ("simultaneous", "alternating")
STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")


def _fail(field: str, message: str, value: Any) -> None:
    raise ConfigError(f"`{field}` {message}; received {value!r}")


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


# 64 megapixels: above the largest common camera sensors (61 MP), below Pillow's own
# bomb warning (89 MP). One such image decodes to 192 MB of RGB; a few threads
# decoding at once stay within a laptop's memory, a 40000x40000 "photo" does not.
DEFAULT_MAX_PIXELS = 64_000_000
# Below 8 px on the short side there is no face to learn from (a 1x1 tracking pixel,
# a favicon); such files are skipped with a reason rather than upscaled.
DEFAULT_MIN_SIZE = 8
_MAX_MAX_PIXELS = 2**40


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the training images come from and how they are prepared.

    Attributes:
        source: a folder of images (searched recursively), a `.zip` of images,
            or `embedded:lfw` (the 100 LFW face crops that scikit-image ships).
        flip: randomly mirror images left-right (a free 2x for faces).
        max_pixels: images with more pixels (width x height) are skipped before
            they are decoded: a tiny file can declare 40000x40000 pixels and
            exhaust memory (a decompression bomb). The default, 64 million,
            admits every common camera sensor. Above ~179 million Pillow refuses
            an image itself, whatever this says.
        min_size: images whose short side is below this many pixels are skipped
            (a 1x1 tracking pixel holds no face); from 1 to 4096. Images larger
            than this but smaller than the training resolution are upscaled, with
            a warning from `facegan inspect-data`.
        labels: where class labels come from, for class-conditional training:
            empty (none), `pattern:REGEX` (a regular expression with named
            groups, matched against each file's path relative to the data
            folder: `pattern:^(?P<age>\\d+)_(?P<gender>\\d)_(?P<race>\\d)_` for
            UTKFace) or `csv:PATH` (a CSV whose first column is that relative
            path and whose other columns, with a header, are attributes). Files
            without labels are skipped and reported.
        label_bins: turns numeric attributes into classes by bin edges,
            `age=0,13,20,30,40,50,60,120` (`;` between attributes): class i holds
            values in [edge i, edge i+1). Other attributes are categorical: one
            class per distinct value.
        label_values: resolved when a run starts (leave it empty): the sorted
            distinct values of each categorical attribute, `gender=0,1;race=0,1,2,3,4`,
            so that class indices can be mapped back to what the data said.
    """

    source: str = EMBEDDED_LFW
    flip: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_size: int = DEFAULT_MIN_SIZE
    labels: str = ""
    label_bins: str = ""
    label_values: str = ""

    def __post_init__(self) -> None:
        if not self.source:
            _fail("data.source", "must be a folder, a .zip file or `embedded:lfw`", self.source)
        if self.source.startswith("embedded:") and self.source != EMBEDDED_LFW:
            _fail("data.source", f"names an unknown embedded dataset; allowed: {EMBEDDED_LFW}",
                  self.source)
        if isinstance(self.max_pixels, bool) or not 1 <= self.max_pixels <= _MAX_MAX_PIXELS:
            _fail("data.max_pixels", f"must be a positive integer up to {_MAX_MAX_PIXELS}",
                  self.max_pixels)
        if isinstance(self.min_size, bool) or not 1 <= self.min_size <= 4096:
            _fail("data.min_size", "must be an integer from 1 to 4096", self.min_size)
        if self.labels and not self.labels.startswith(("pattern:", "csv:")):
            _fail("data.labels", "must be empty, `pattern:REGEX` or `csv:PATH`", self.labels)
        if self.labels.startswith("pattern:"):
            import re

            try:
                compiled = re.compile(self.labels[len("pattern:"):])
            except re.error as err:
                _fail("data.labels", f"must hold a valid regular expression ({err})", self.labels)
            if not compiled.groupindex:
                _fail("data.labels", "needs named groups, e.g. (?P<gender>\\d)", self.labels)
        if self.label_bins and not self.labels:
            _fail("data.label_bins", "needs data.labels", self.label_bins)
        for part in filter(None, self.label_bins.split(";")):
            name, sep, edges = part.partition("=")
            try:
                values = [float(e) for e in edges.split(",")]
            except ValueError:
                values = []
            if not sep or not name.strip() or len(values) < 2 or values != sorted(set(values)):
                _fail("data.label_bins", "must be NAME=EDGE,EDGE,... with increasing edges "
                      "(`;` between attributes)", self.label_bins)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Generator and discriminator shape.

    Attributes:
        arch: network family.
        resolution: square image side, a power of two from 16 to 256.
        channels: 3 (RGB) or 1 (grayscale); None means "from the data" and is
            resolved when a run starts (1 for `embedded:lfw`, else 3).
        latent_dim: size of the generator's noise input.
        width: channels of the widest-resolution layer (DCGAN's ngf/ndf).
        max_width: cap on channels at the low resolutions.
        d_spectral_norm: spectral normalization on the discriminator's layers
            (dcgan, resnet; stylegan2's discriminator does not use it).
        g_spectral_norm: spectral normalization on the generator's layers
            (dcgan, resnet; BigGAN uses it in both).
        mapping_layers: stylegan2: fully connected layers of the mapping network
            (w has latent_dim features).
        label_classes: class counts of the conditioning attributes, e.g.
            `gender:2,age:7`; None (unconditional, or resolved from
            `data.labels` when a run starts).
    """

    arch: str = "dcgan"
    resolution: int = 64
    channels: int | None = None
    latent_dim: int = 128
    width: int = 64
    max_width: int = 512
    d_spectral_norm: bool = False
    g_spectral_norm: bool = False
    mapping_layers: int = 8
    label_classes: str | None = None

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            _fail("model.arch", f"must be one of {', '.join(ARCHITECTURES)}", self.arch)
        if not (_is_power_of_two(self.resolution) and 16 <= self.resolution <= 256):
            _fail("model.resolution", "must be a power of two from 16 to 256", self.resolution)
        if self.channels not in (None, 1, 3):
            _fail("model.channels", "must be 1 (grayscale) or 3 (RGB)", self.channels)
        if not 1 <= self.latent_dim <= 4096:
            _fail("model.latent_dim", "must be an integer from 1 to 4096", self.latent_dim)
        if not 1 <= self.width <= 4096:
            _fail("model.width", "must be an integer from 1 to 4096", self.width)
        if not self.width <= self.max_width <= 8192:
            _fail("model.max_width", f"must be from model.width ({self.width}) to 8192",
                  self.max_width)
        if not 1 <= self.mapping_layers <= 16:
            _fail("model.mapping_layers", "must be an integer from 1 to 16", self.mapping_layers)
        if self.label_classes is not None:
            parse_label_classes(self.label_classes)  # fails with the field's name

    @property
    def conditional(self) -> bool:
        return bool(self.label_classes)

    @property
    def label_sizes(self) -> list[tuple[str, int]]:
        """[(attribute, classes), ...] in order; [] when unconditional."""
        return parse_label_classes(self.label_classes) if self.label_classes else []


def parse_label_classes(text: str) -> list[tuple[str, int]]:
    """'gender:2,age:7' -> [('gender', 2), ('age', 7)] (validated)."""
    pairs = []
    for part in text.split(","):
        name, _, count = part.partition(":")
        try:
            classes = int(count)
        except ValueError:
            classes = 0
        if not name.strip() or not 2 <= classes <= 100000:
            _fail("model.label_classes", "must be NAME:CLASSES,... with at least 2 classes each",
                  text)
        pairs.append((name.strip(), classes))
    return pairs


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
            _fail("loss.kind", f"must be one of {', '.join(LOSSES)}", self.kind)
        if not (math.isfinite(self.r1_gamma) and 0 <= self.r1_gamma <= 1e4):
            _fail("loss.r1_gamma", "must be a number from 0 (off) to 10000", self.r1_gamma)
        if not 1 <= self.r1_every <= 1000:
            _fail("loss.r1_every", "must be an integer from 1 to 1000", self.r1_every)
        if not (math.isfinite(self.gp_weight) and 0 <= self.gp_weight <= 1e4):
            _fail("loss.gp_weight", "must be a number from 0 (off) to 10000", self.gp_weight)
        if not 1 <= self.n_critic <= 100:
            _fail("loss.n_critic", "must be an integer from 1 to 100", self.n_critic)


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
            _fail("augment.kind", f"must be one of {', '.join(AUGMENTS)}", self.kind)
        ops = [op.strip() for op in self.policy.split(",") if op.strip()]
        if not ops or any(op not in DIFFAUGMENT_OPS for op in ops):
            _fail("augment.policy", f"must be a comma-separated list of {', '.join(DIFFAUGMENT_OPS)}",
                  self.policy)
        if not (math.isfinite(self.ada_target) and 0 < self.ada_target < 1):
            _fail("augment.ada_target", "must be a number in (0, 1)", self.ada_target)
        if not (math.isfinite(self.ada_kimg) and 0 < self.ada_kimg <= 1e6):
            _fail("augment.ada_kimg", "must be a positive number up to 1000000", self.ada_kimg)
        if not 1 <= self.ada_interval <= 10000:
            _fail("augment.ada_interval", "must be an integer from 1 to 10000", self.ada_interval)


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
                _fail(f"optim.{name}", "must be a number in (0, 1]", value)
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value < 1):
                _fail(f"optim.{name}", "must be a number in [0, 1)", value)
        if not (math.isfinite(self.epsilon) and 0 < self.epsilon <= 1):
            _fail("optim.epsilon", "must be a number in (0, 1]", self.epsilon)


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
        sample_every: steps between sample grids.
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

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 10**9:
            _fail("train.steps", "must be an integer from 1 to 1000000000", self.steps)
        if not 1 <= self.batch_size <= 65536:
            _fail("train.batch_size", "must be an integer from 1 to 65536", self.batch_size)
        if not 0 <= self.seed < 2**31:
            _fail("train.seed", "must be an integer from 0 to 2147483647", self.seed)
        for name in ("log_every", "sample_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                _fail(f"train.{name}", "must be a positive integer", getattr(self, name))
        if not 1 <= self.keep_checkpoints <= 1000:
            _fail("train.keep_checkpoints", "must be an integer from 1 to 1000",
                  self.keep_checkpoints)
        if not 1 <= self.sample_grid <= 1024:
            _fail("train.sample_grid", "must be an integer from 1 to 1024", self.sample_grid)
        if self.eval_every < 0:
            _fail("train.eval_every", "must be 0 (never) or a positive integer", self.eval_every)
        if not 2 <= self.eval_num <= 100000:
            _fail("train.eval_num", "must be an integer from 2 to 100000", self.eval_num)
        if not 1 <= self.max_bad_steps <= 1000000:
            _fail("train.max_bad_steps", "must be an integer from 1 to 1000000", self.max_bad_steps)
        if not 0 <= self.max_rollbacks <= 1000:
            _fail("train.max_rollbacks", "must be an integer from 0 to 1000", self.max_rollbacks)
        if not (math.isfinite(self.rollback_lr_factor) and 0 < self.rollback_lr_factor <= 1):
            _fail("train.rollback_lr_factor", "must be a number in (0, 1]", self.rollback_lr_factor)
        if self.strategy not in STRATEGIES:
            _fail("train.strategy", f"must be one of {', '.join(STRATEGIES)}", self.strategy)
        if not 1 <= self.cpu_replicas <= 64:
            _fail("train.cpu_replicas", "must be an integer from 1 to 64", self.cpu_replicas)
        if not (math.isfinite(self.ema_kimg) and 0 <= self.ema_kimg <= 1e6):
            _fail("train.ema_kimg", "must be a number from 0 (off) to 1000000", self.ema_kimg)
        if not (math.isfinite(self.ema_rampup) and 0 <= self.ema_rampup <= 1):
            _fail("train.ema_rampup", "must be a number from 0 (off) to 1", self.ema_rampup)
        if self.precision not in PRECISIONS:
            _fail("train.precision", f"must be one of {', '.join(PRECISIONS)}", self.precision)
        if not (math.isfinite(self.minutes) and 0 <= self.minutes <= 1e7):
            _fail("train.minutes", "must be a number of minutes, 0 for no limit", self.minutes)
        if self.updates not in UPDATES:
            _fail("train.updates", f"must be one of {', '.join(UPDATES)}", self.updates)


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "loss": LossConfig,
    "augment": AugmentConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
}


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole run's configuration: one frozen section per concern."""

    preset: str | None = None
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        # Rules that join two sections.
        if self.loss.n_critic > 1 and self.train.updates != "alternating":
            _fail("loss.n_critic", "above 1 needs train.updates = \"alternating\"",
                  self.loss.n_critic)

    # -- conversions -------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-serialisable dict (sections as nested dicts)."""
        out: dict[str, Any] = {"preset": self.preset}
        for name in SECTIONS:
            out[name] = dataclasses.asdict(getattr(self, name))
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def to_toml(self) -> str:
        """TOML text that `Config.from_file` reads back to an equal config."""
        lines = []
        if self.preset is not None:
            lines.append(f"preset = {_toml_value(self.preset)}")
        for name in SECTIONS:
            lines.append(f"\n[{name}]")
            for key, value in dataclasses.asdict(getattr(self, name)).items():
                if value is None:  # TOML has no null: an absent key means "default"
                    lines.append(f"# {key} is unset (automatic)")
                else:
                    lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines).lstrip() + "\n"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], base: "Config | None" = None) -> "Config":
        """Builds a config from nested dicts, on top of `base` (defaults if None).

        Unknown sections or keys are errors, so a typo never goes unnoticed.
        """
        base = base or cls()
        if not isinstance(raw, Mapping):
            raise ConfigError(f"a config must be a table of sections; received {type(raw).__name__}")
        preset = base.preset
        sections = {name: getattr(base, name) for name in SECTIONS}
        for key, value in raw.items():
            if key == "preset":
                if value is not None and not isinstance(value, str):
                    _fail("preset", "must be a preset name", value)
                preset = value
            elif key in SECTIONS:
                if not isinstance(value, Mapping):
                    _fail(key, "must be a table of settings", value)
                sections[key] = _replace_section(sections[key], key, value)
            else:
                raise ConfigError(
                    f"unknown config section `{key}`; allowed: preset, {', '.join(SECTIONS)}")
        return cls(preset=preset, **sections)

    @classmethod
    def from_file(cls, path: str | Path, base: "Config | None" = None) -> "Config":
        """Reads a `.toml` or `.json` file (parsed as data, never executed)."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist or is not a file")
        text = path.read_bytes()
        try:
            if path.suffix.lower() == ".json":
                raw = json.loads(text)
            elif path.suffix.lower() == ".toml":
                raw = tomllib.loads(text.decode("utf-8"))
            else:
                raise ConfigError(
                    f"config file {str(path)!r} must end in .toml or .json; received {path.suffix!r}")
        except (ValueError, UnicodeDecodeError) as err:
            if isinstance(err, ConfigError):
                raise
            raise ConfigError(f"config file {str(path)!r} is not valid {path.suffix[1:].upper()}: {err}")
        return cls.from_dict(raw, base=base)

    def with_overrides(self, overrides: Mapping[str, Any]) -> "Config":
        """Applies dotted overrides: {"model.width": 32, "train.steps": "100"}.

        String values are parsed according to the field's type, so command-line
        `--set model.width=32` works.
        """
        nested: dict[str, dict[str, Any]] = {}
        for dotted, value in overrides.items():
            section, _, key = dotted.partition(".")
            if section not in SECTIONS or not key:
                raise ConfigError(
                    f"override `{dotted}` must be SECTION.KEY with SECTION one of "
                    f"{', '.join(SECTIONS)}")
            nested.setdefault(section, {})[key] = value
        return Config.from_dict(nested, base=self)


def _replace_section(current: Any, section: str, values: Mapping[str, Any]) -> Any:
    cls = type(current)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    changes = {}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"unknown config key `{section}.{key}`; allowed: {', '.join(names)}")
        changes[key] = _coerce(f"{section}.{key}", value, hints[key])
    return dataclasses.replace(current, **changes)


def _coerce(field: str, value: Any, annotation: Any) -> Any:
    """Checks (and, for strings from the command line, parses) one value."""
    allowed = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    optional = type(None) in allowed
    kinds = [a for a in allowed if a is not type(None)]
    assert len(kinds) == 1, f"unsupported annotation {annotation!r}"
    kind = kinds[0]
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "auto", "")):
        if optional:
            return None
        _fail(field, f"must be {_kind_name(kind)}", value)
    if isinstance(value, str) and kind is not str:
        value = _parse_scalar(field, value, kind)
    if kind is bool:
        if not isinstance(value, bool):
            _fail(field, "must be true or false", value)
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            _fail(field, "must be an integer", value)
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(field, "must be a number", value)
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            _fail(field, "must be a string", value)
        return value
    raise AssertionError(f"unsupported field type {kind!r}")


def _parse_scalar(field: str, text: str, kind: type) -> Any:
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        _fail(field, "must be true or false", text)
    try:
        return kind(float(text)) if kind is int and "e" in text.lower() else kind(text)
    except ValueError:
        _fail(field, f"must be {_kind_name(kind)}", text)


def _kind_name(kind: type) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[kind]


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)  # a JSON string is a valid TOML basic string
