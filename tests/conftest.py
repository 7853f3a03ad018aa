"""Shared fixtures: tiny configs and tiny generated image folders, so the suite stays fast."""

from __future__ import annotations

import io
import os
import threading
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from PIL import Image

from facegan.config import Config, DataConfig, ModelConfig, TrainConfig

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def tiny_config(source: str = "embedded:lfw", **train) -> Config:
    """A 16 px, width-8 DCGAN with batch 8: a train step takes milliseconds."""
    schedule = dict(
        steps=4,
        batch_size=8,
        seed=3,
        log_every=2,
        sample_every=2,
        checkpoint_every=2,
        keep_checkpoints=3,
        sample_grid=4,
    )
    schedule.update(train)
    return Config(
        preset="tiny-test",
        data=DataConfig(source=source),
        model=ModelConfig(resolution=16, width=8, max_width=32, latent_dim=16),
        train=TrainConfig(**schedule),
    )


@contextmanager
def serving_in_thread(server):
    """Answers requests with `server` (a `facegan.serve` server) in a thread for the block."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# Fixtures that train a run: a test that uses one trains too, so it is an integration
# test (not in the fast tier, `-m "not integration and not slow"`).
TRAINING_FIXTURES = frozenset(
    {
        "tiny_run",
        "tiny_conditional_run",
        "cli_run",
        "varied_run",
        "stylegan2_run",
        "exported",
        "plain",
        "conditional",
        "page_url",
    }
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def mixed_bfloat16():
    """Keras' global dtype policy set to mixed_bfloat16 for one test, then back to float32."""
    import keras

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def tiny():
    return tiny_config


def _jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _face_like(size: int, seed: int) -> Image.Image:
    """A smooth random RGB image (real photos are not needed to test decoding)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)


@pytest.fixture(scope="session")
def mixed_folder(tmp_path_factory) -> Path:
    """A folder with every image kind the pipeline must accept, and a few broken files.

    Good: 14 images (jpg, png gray, RGBA, palette with transparency, 16-bit, animated
    gif, webp, bmp, pgm, ppm, CMYK jpg, non-square, nested, upper-case extension).
    Broken: 3 (random bytes, truncated jpeg, zero bytes). Ignored: 1 text file.
    """
    root = tmp_path_factory.mktemp("mixed")
    _face_like(40, 0).save(root / "rgb.jpg", quality=90)
    _face_like(40, 1).convert("L").save(root / "gray.png")
    rgba = Image.new("RGBA", (20, 20), (255, 0, 0, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 20, 10))  # top half fully transparent
    rgba.save(root / "rgba.png")
    palette = Image.new("P", (20, 20), 1)
    palette.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    palette.paste(0, (0, 0, 20, 10))  # top half uses index 0, declared transparent
    palette.save(root / "palette.png", transparency=0)
    wide = np.full((20, 20), 65535, np.uint16)
    wide[:10] = 32768
    Image.fromarray(wide).save(root / "sixteen.png")
    frames = [Image.new("RGB", (20, 20), (255, 0, 0)), Image.new("RGB", (20, 20), (0, 0, 255))]
    frames[0].save(root / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    _face_like(24, 2).save(root / "img.webp")
    _face_like(24, 3).save(root / "img.bmp")
    _face_like(24, 4).convert("L").save(root / "img.pgm")
    _face_like(24, 5).save(root / "img.ppm")
    _face_like(24, 6).convert("CMYK").save(root / "cmyk.jpg")
    _face_like(24, 7).resize((48, 24)).save(root / "wide.png")
    (root / "nested" / "deeper").mkdir(parents=True)
    _face_like(24, 8).save(root / "nested" / "deeper" / "inner.png")
    _face_like(24, 9).save(root / "UPPER.JPG", format="JPEG")
    (root / "corrupt.jpg").write_bytes(np.random.default_rng(0).bytes(500))
    (root / "truncated.jpg").write_bytes(_jpeg_bytes(_face_like(64, 10))[:300])
    (root / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an image")
    return root


MIXED_GOOD = 14
MIXED_BROKEN = {"corrupt.jpg", "truncated.jpg", "empty.png"}


@pytest.fixture(scope="session")
def face_folder(tmp_path_factory) -> Path:
    """24 small RGB images: enough for a few tiny training steps."""
    root = tmp_path_factory.mktemp("faces")
    for i in range(24):
        _face_like(20, 100 + i).save(root / f"face{i:02d}.png")
    return root


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, face_folder) -> Path:
    """A finished tiny unconditional run (16 px, latent 16, 2 steps, with EMA): its directory.

    Shared by every test that only reads a run (generate, export, serve,
    interpolate, project); tests must not write into it.
    """
    import facegan

    config = tiny_config(str(face_folder), steps=2, ema_kimg=0.01)
    run = facegan.train(config, tmp_path_factory.mktemp("tiny-run") / "run", progress=False)
    return run.directory


@pytest.fixture(scope="session")
def tiny_conditional_run(tmp_path_factory) -> Path:
    """A finished tiny class-conditional run: attributes age (bins 0-30, 30-120) and gender (0, 1)."""
    import facegan

    data = tmp_path_factory.mktemp("labelled-faces")
    rng = np.random.default_rng(0)
    for i in range(24):  # UTKFace-style names: age_gender_race_date.jpg.chip.jpg
        gender, age = i % 2, 10 + 3 * i
        pixels = np.clip(rng.normal(60 + 150 * gender, 10, (20, 20, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(
            data / f"{age}_{gender}_0_2017{i:04d}.jpg.chip.jpg", format="JPEG"
        )
    config = tiny_config(str(data), steps=2).with_overrides(
        {"data.labels": r"pattern:^(?P<age>\d+)_(?P<gender>\d)_", "data.label_bins": "age=0,30,120"}
    )
    run = facegan.train(config, tmp_path_factory.mktemp("tiny-cond-run") / "run", progress=False)
    return run.directory
