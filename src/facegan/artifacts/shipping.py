"""Making a shipped model from a finished run (the maintainers' step; `facegan.pretrained`).

`ship_run` writes a model folder: the run's resolved config, its EMA generator
and discriminator as float16 arrays (`weights_file`), the seed checksums the
tests compare against, and the card (`card.json`, `card.md`). It measures what
float16 storage costs: the largest pixel difference against the float32
generator on the same seeds, which must stay within 1/255.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from facegan.artifacts.checkpoints import sampling_network
from facegan.artifacts.run import Run, load
from facegan.artifacts.rundir import RunPaths
from facegan.artifacts.weights_file import write_weights
from facegan.errors import UserError
from facegan.models import build_discriminator, build_generator
from facegan.pretrained import (
    CARD_FILE,
    CONFIG_FILE,
    FACTS_FILE,
    WEIGHTS_FILE,
    ShippedModel,
    render_card,
)

CHECKSUM_SEEDS = (0, 1, 2, 3, 42, 1000)
REFERENCE_FILE = "reference.npz"  # the checksum seeds' faces, for a CPU of another family
# The instruction sets that pick oneDNN's convolution kernels: on another set the sums
# run in another order, and a pixel on a rounding boundary may come out one level off.
KERNEL_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni")


def cpu_family(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The kernel-choosing CPU flags present here, e.g. "avx2 avx512f" ("" if unknown)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return ""
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    flags = set(line.split(":", 1)[-1].split())
    return " ".join(flag for flag in KERNEL_FLAGS if flag in flags)


def image_checksum(image: np.ndarray) -> str:
    """sha256 of one uint8 image's bytes (with its shape), as the tests store it."""
    digest = hashlib.sha256(repr(image.shape).encode())
    digest.update(np.ascontiguousarray(image, np.uint8).tobytes())
    return digest.hexdigest()


def ship_run(run_dir: str | Path, out: Path, facts: dict, compare_seeds: int = 256) -> dict:
    """Writes `out/` (config, float16 weights, card) from the run's newest checkpoint.

    Args:
        run_dir: a finished run that keeps an EMA generator.
        out: the model's folder (created; an existing one is refused).
        facts: the card's facts (name, summary, data, data_terms, recipe,
            command, cpu_minutes, machine, date, metrics, warped); the step,
            batch size, storage and checksums are filled in here.
        compare_seeds: seeds on which float16 is compared with float32.

    Returns:
        The facts as written to card.json.
    """
    run = load(run_dir)
    if run.config.train.ema_kimg <= 0:
        raise UserError(f"run {str(run_dir)!r} keeps no EMA generator; ship one that does")
    if out.exists():
        raise UserError(f"{str(out)!r} exists; a shipped model is written once")
    networks = _restored_networks(run)
    out.mkdir(parents=True)
    write_weights(out / WEIGHTS_FILE, networks)
    (out / CONFIG_FILE).write_text(run.config.to_json())
    facts = dict(facts, step=run.step, batch_size=run.config.train.batch_size)
    reference = run.generate(compare_seeds, seed=0)  # float32, from the checkpoint
    # what users will load: the float16 file, through the shipped-model route
    half = Run(RunPaths(out), run.config, ShippedModel(facts["name"], out, run.config, facts))
    images = half.generate(compare_seeds, seed=0)
    facts["storage"] = {
        "dtype": "float16",
        "max_pixel_diff": int(np.abs(images.astype(int) - reference.astype(int)).max()),
        "compared": f"{compare_seeds} faces, seeds 0-{compare_seeds - 1}",
    }
    faces = half.generate_seeds(CHECKSUM_SEEDS)
    facts["checksums"] = {str(s): image_checksum(f) for s, f in zip(CHECKSUM_SEEDS, faces)}
    facts["checksum_cpu"] = cpu_family()
    np.savez_compressed(out / REFERENCE_FILE, seeds=np.array(CHECKSUM_SEEDS), faces=faces)
    (out / FACTS_FILE).write_text(json.dumps(facts, indent=2) + "\n")
    (out / CARD_FILE).write_text(render_card(facts), encoding="utf-8")
    return facts


def _restored_networks(run: Run) -> dict:
    """{"generator_ema": ..., "discriminator": ...} restored from the run's newest checkpoint."""
    import tensorflow as tf

    model, seed = run.config.model, run.config.train.seed
    generator, discriminator = build_generator(model, seed), build_discriminator(model, seed)
    parts = {sampling_network(True): generator, "discriminator": discriminator}
    tf.train.Checkpoint(**parts).restore(run.latest_checkpoint()).expect_partial()
    return parts
