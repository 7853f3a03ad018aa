"""`Config`: a whole run's configuration, read from and written to TOML and JSON.

Sections are replaced, never mutated: `from_dict`, `from_file` and
`with_overrides` build a new frozen config and validate it. Unknown sections
and keys are errors (a typo never goes unnoticed); strings from the command
line are parsed by the field's type.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from facegan.config.common import ConfigError, fail
from facegan.config.data_model import DataConfig, ModelConfig
from facegan.config.training import AugmentConfig, LossConfig, OptimConfig, TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "loss": LossConfig,
    "augment": AugmentConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
}


# What `train --resume` may change: how long and how a run executes, never what it
# trains. The command's flags for them are these names with dashes (--cpu-replicas).
RESUME_CHANGES = ("train.steps", "train.minutes", "train.strategy", "train.cpu_replicas")


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
            fail("loss.n_critic", 'above 1 needs train.updates = "alternating"', self.loss.n_critic)

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
    def from_dict(cls, raw: Mapping[str, Any], base: Config | None = None) -> Config:
        """Builds a config from nested dicts, on top of `base` (defaults if None).

        Unknown sections or keys are errors, so a typo never goes unnoticed.
        """
        base = base or cls()
        if not isinstance(raw, Mapping):
            raise ConfigError(
                f"a config must be a table of sections; received {type(raw).__name__}"
            )
        preset = base.preset
        sections = {name: getattr(base, name) for name in SECTIONS}
        for key, value in raw.items():
            if key == "preset":
                if value is not None and not isinstance(value, str):
                    fail("preset", "must be a preset name", value)
                preset = value
            elif key in SECTIONS:
                if not isinstance(value, Mapping):
                    fail(key, "must be a table of settings", value)
                sections[key] = _replace_section(sections[key], key, value)
            else:
                raise ConfigError(
                    f"unknown config section `{key}`; allowed: preset, {', '.join(SECTIONS)}"
                )
        return cls(preset=preset, **sections)

    @classmethod
    def from_file(cls, path: str | Path, base: Config | None = None) -> Config:
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
                    f"config file {str(path)!r} must end in .toml or .json; received {path.suffix!r}"
                )
        except (ValueError, UnicodeDecodeError) as err:
            if isinstance(err, ConfigError):
                raise
            raise ConfigError(
                f"config file {str(path)!r} is not valid {path.suffix[1:].upper()}: {err}"
            ) from None
        return cls.from_dict(raw, base=base)

    def with_overrides(self, overrides: Mapping[str, Any]) -> Config:
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
                    f"{', '.join(SECTIONS)}"
                )
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
    if value is None or (
        optional and isinstance(value, str) and value.lower() in ("none", "auto", "")
    ):
        if optional:
            return None
        fail(field, f"must be {_kind_name(kind)}", value)
    if isinstance(value, str) and kind is not str:
        value = _parse_scalar(field, value, kind)
    if kind is bool:
        if not isinstance(value, bool):
            fail(field, "must be true or false", value)
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            fail(field, "must be an integer", value)
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(field, "must be a number", value)
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            fail(field, "must be a string", value)
        return value
    raise AssertionError(f"unsupported field type {kind!r}")


def _parse_scalar(field: str, text: str, kind: type) -> Any:
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        fail(field, "must be true or false", text)
    try:
        return kind(float(text)) if kind is int and "e" in text.lower() else kind(text)
    except ValueError:
        fail(field, f"must be {_kind_name(kind)}", text)


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
