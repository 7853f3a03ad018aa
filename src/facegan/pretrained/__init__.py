"""Trained generators that ship inside the package: `facegan models`, `--model NAME`.

Each model is a folder next to this file, named as users type it (`faces-64`):

  config.json    the resolved config it was trained with (what builds its networks)
  weights.npz    float16 arrays of its networks, keyed "<network>/<variable path>":
                 the EMA generator (what samples) and the discriminator (for
                 fine-tuning with `facegan train --init NAME`)
  card.md        its model card: data and the data's terms, recipe, steps,
                 CPU-minutes, machine, date, metrics and the commands behind them
  card.json      the same facts for programs (step, metrics, seed checksums)
  reference.npz  the faces of the checksum seeds (uint8), to compare on another CPU

A shipped model is read, never written: commands that would write into a run
write next to where they are called from instead, and `train --resume` refuses
one. TensorFlow-free: listing models and reading cards is instant.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from facegan.config import Config, ConfigError
from facegan.errors import UserError

MODELS_DIR = Path(__file__).parent
WEIGHTS_FILE = "weights.npz"
CARD_FILE = "card.md"
FACTS_FILE = "card.json"
CONFIG_FILE = "config.json"
# The networks a weights file holds; the EMA generator is what samples.
SHIPPED_NETWORKS = ("generator_ema", "discriminator")


class UnknownModelError(UserError):
    """A model name that is not shipped (the message lists the ones there are)."""


@dataclasses.dataclass(frozen=True)
class ShippedModel:
    """One shipped model: its name, folder, resolved config and card facts."""

    name: str
    directory: Path
    config: Config
    facts: dict

    @property
    def weights(self) -> Path:
        return self.directory / WEIGHTS_FILE

    @property
    def step(self) -> int:
        return int(self.facts["step"])

    @property
    def card(self) -> str:
        """The model card (Markdown)."""
        return (self.directory / CARD_FILE).read_text(encoding="utf-8")

    def summary(self) -> str:
        """One line for `facegan models`: size, training and its measured quality."""
        metrics = self.facts.get("metrics", {})
        model = self.config.model
        quality = ", ".join(
            f"{key.replace('_', ' ')} {metrics[key]:.3g}"
            for key in ("fid", "face_rate")
            if metrics.get(key) is not None
        )
        return (
            f"{model.resolution} px {model.arch} width {model.width}, "
            f"{self.step:,} steps ({self.facts.get('cpu_minutes', 0):.0f} CPU-min) on "
            f"{self.facts.get('data', '?')}" + (f"; {quality}" if quality else "")
        )


def model_names() -> list[str]:
    """The shipped models, sorted: every folder here with weights and a config."""
    return sorted(
        entry.name
        for entry in MODELS_DIR.iterdir()
        if entry.is_dir() and (entry / WEIGHTS_FILE).is_file() and (entry / CONFIG_FILE).is_file()
    )


def unknown_model_line(name: str) -> str:
    names = model_names()
    there = ", ".join(names) if names else "none are installed"
    return f"no shipped model {name!r}; the models are: {there} (`facegan models` describes them)"


def shipped_model(name: str) -> ShippedModel:
    """The shipped model called `name`.

    Raises:
        UnknownModelError: no model of that name (the line names the ones there are).
    """
    if name not in model_names():
        raise UnknownModelError(unknown_model_line(name))
    directory = MODELS_DIR / name
    try:
        config = Config.from_dict(json.loads((directory / CONFIG_FILE).read_text()))
        facts = json.loads((directory / FACTS_FILE).read_text())
    except (OSError, ValueError, ConfigError) as err:
        # The package itself is damaged: say which file, not a traceback.
        raise UnknownModelError(
            f"shipped model {name!r} is damaged ({err}); reinstall facegan"
        ) from None
    return ShippedModel(name, directory, config, facts)


def is_shipped_directory(path: str | Path) -> bool:
    """Whether `path` is (inside) the folder of a shipped model."""
    try:
        resolved = Path(path).resolve()
    except OSError:
        return False
    return resolved == MODELS_DIR or MODELS_DIR in resolved.parents


def render_card(facts: dict) -> str:
    """The model card (Markdown) from its facts: what `facegan models NAME` prints."""
    metrics = facts.get("metrics", {})
    lines = [
        f"# {facts['name']}",
        "",
        facts.get("summary", ""),
        "",
        "## Data",
        "",
        f"- Trained on: {facts['data']}",
        f"- Terms: {facts['data_terms']}",
        "",
        "## Training",
        "",
        f"- Recipe: {facts['recipe']}",
        f"- Steps: {facts['step']:,} (batch {facts.get('batch_size', '?')}), "
        f"{facts['cpu_minutes']:.0f} CPU-minutes of training loop",
        f"- Machine: {facts['machine']}",
        f"- Date: {facts['date']}",
        f"- Command: `{facts['command']}`",
        "",
        "## Measured",
        "",
    ]
    for key, label in (("fid", "FID"), ("kid", "KID"), ("face_rate", "face rate")):
        if metrics.get(key) is not None:
            value = metrics[key]
            spread = f" ± {metrics['kid_std']:.4f}" if key == "kid" and "kid_std" in metrics else ""
            lines.append(f"- {label}: {value:.4g}{spread}")
    if metrics:
        lines += [
            f"- On {metrics.get('num', '?')} generated against {metrics.get('real', '?')}",
            f"- Command: `{metrics.get('command', '?')}`",
        ]
    if facts.get("warped"):
        lines.append(f"- Warped faces among the first 16 of its grid: {facts['warped']}")
    storage = facts.get("storage", {})
    if storage:
        lines += [
            "",
            "## Storage",
            "",
            f"- Weights in {storage['dtype']}: the images differ from float32's by at most "
            f"{storage['max_pixel_diff']} of 255 ({storage['compared']})",
        ]
    if facts.get("notes"):
        lines += ["", "## Notes", "", facts["notes"]]
    return "\n".join(lines) + "\n"
