"""Data at scale: packing speed, the streamed pipeline against the in-memory one.

    python bench/data_throughput.py --workdir /tmp/facegan-data --count 100000

1. Makes a synthetic source of COUNT different JPEG faces (random crops, flips and
   slight colour changes of ../shared/data/utkface photos, 160 px), once.
2. Packs it at 128 px (`facegan pack`, timed, cold scan cache), and packs the
   real UTKFace folder at 64 px (200x200 JPEG -> 64 px: the packing-speed target).
3. In a fresh process each: the streamed pipeline alone (images/s after the first
   batch, time to the first batch from step 0 and from the middle of an epoch,
   peak RSS) and the in-memory path on the same images (decode time, images/s,
   peak RSS); then a short training run at 128 px on a 10,000-image pack and on
   the COUNT-image pack (peak RSS of the whole `facegan train` process).

Prints one markdown row per measurement; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from machine import describe_machine

HERE = Path(__file__).resolve().parent
UTKFACE = HERE.parent.parent / "shared" / "data" / "utkface"


def _make_one(job: tuple[int, str, str]) -> None:
    index, photo, out = job
    rng = np.random.default_rng(index)
    with Image.open(photo) as image:
        image = image.convert("RGB")
        side = int(rng.integers(150, 200))
        left, top = rng.integers(0, 200 - side + 1, 2)
        image = image.crop((left, top, left + side, top + side)).resize((160, 160))
        if rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        pixels = np.asarray(image, np.float32) * rng.uniform(0.9, 1.1, 3)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, quality=90)


def make_source(folder: Path, count: int) -> None:
    """COUNT different 160 px JPEG faces in folders of 1,000, made from UTKFace once."""
    if (folder / "done").exists():
        return
    photos = sorted(str(p) for p in UTKFACE.glob("*.jpg"))
    jobs = []
    for index in range(count):
        sub = folder / f"{index // 1000:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        jobs.append((index, photos[index % len(photos)], str(sub / f"face{index:06d}.jpg")))
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(_make_one, jobs, chunksize=256))
    (folder / "done").write_text(str(count))


def _timed(command: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS of the command in GB, its stderr)."""
    began = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "peak_kb=%M", *command], capture_output=True,
                            text=True, env=env)
    wall = time.perf_counter() - began
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    peak_kb = int(result.stderr.strip().splitlines()[-1].split("=")[1])
    return wall, peak_kb / 1e6, result.stderr


def _child(mode: str, *args: str, env: dict | None = None) -> dict:
    """Runs one measurement in a fresh process; returns its JSON line."""
    result = subprocess.run([sys.executable, __file__, "--child", mode, *args],
                            capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"child {mode} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def child_stream(pack: str, batches: int) -> dict:
    """The streamed pipeline alone: first batch from step 0 and mid-epoch, then images/s."""
    began = time.perf_counter()
    import tensorflow as tf  # noqa: F401 (imported before the clock of the first batch)

    from facegan.data.packed import read_pack_info
    from facegan.data.streaming import PackedImages

    images = PackedImages(read_pack_info(pack))
    imported = time.perf_counter() - began
    start = time.perf_counter()
    stream = iter(images.batches(64, seed=0, flip=True, start_step=0))
    next(stream)
    first = time.perf_counter() - start
    start = time.perf_counter()
    mid = len(images) // 64 // 2
    next(iter(images.batches(64, seed=0, flip=True, start_step=mid)))
    first_mid = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(batches):
        next(stream)
    rate = batches * 64 / (time.perf_counter() - start)
    return {"img_per_s": rate, "first_batch_s": first, "first_batch_mid_epoch_s": first_mid,
            "import_s": imported, "peak_rss_gb": _peak_rss_gb()}


def child_memory(folder: str, resolution: int, batches: int) -> dict:
    """The in-memory path on a folder: scan + decode everything, then its batches."""
    import tensorflow as tf  # noqa: F401

    from facegan.config import DataConfig
    from facegan.data.pipeline import load_training_images, training_dataset
    from facegan.data.sources import open_source

    start = time.perf_counter()
    decoded = load_training_images(open_source(folder), DataConfig(source=folder), resolution, 3)
    stream = iter(training_dataset(decoded.pixels, 64, seed=0, flip=True))
    next(stream)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(batches):
        next(stream)
    rate = batches * 64 / (time.perf_counter() - start)
    return {"img_per_s": rate, "first_batch_s": first, "images": len(decoded),
            "decoded_gb": decoded.pixels.nbytes / 1e9, "peak_rss_gb": _peak_rss_gb()}


def _train_rss(pack: Path, run: Path, steps: int, env: dict) -> tuple[float, float]:
    command = ["facegan", "train", "--data", str(pack), "--preset", "faces-64", "--set",
               "model.resolution=128", "--steps", str(steps), "--run-dir", str(run),
               "--set", "train.sample_every=100000", "--no-progress"]
    wall, peak, _ = _timed(command, env)
    return wall, peak


def _subset(work: Path, count: int) -> Path:
    """The first `count` synthetic images, hard-linked into a folder of their own."""
    subset = work / f"source-{count}"
    if not (subset / "done").exists():
        files = sorted((work / "source").rglob("*.jpg"))[:count]
        for file in files:
            target = subset / file.parent.name / file.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.link(file, target)
        (subset / "done").write_text(str(count))
    return subset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/facegan-data")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, *rest = args.child
        out = child_stream(rest[0], int(rest[1])) if mode == "stream" else \
            child_memory(rest[0], int(rest[1]), int(rest[2]))
        print(json.dumps(out))
        return
    run_all(Path(args.workdir), args.count, args.batches)


def run_all(work: Path, count: int, batches: int) -> None:
    machine, date = describe_machine(), datetime.date.today().isoformat()
    env = dict(os.environ, FACEGAN_CACHE_DIR=str(work / "cache"))  # a cold scan cache
    began = time.perf_counter()
    make_source(work / "source", count)
    print(f"# source: {count} JPEGs made in {time.perf_counter() - began:.0f} s; {machine}")
    rows = []
    for name, source, resolution in (
            ("utkface-64", UTKFACE, 64),
            ("synthetic-128", work / "source", 128),
            ("synthetic-128-10k", _subset(work, 10_000), 128)):
        out = work / f"pack-{name}"
        if not (out / "dataset.json").exists():
            wall, peak, _ = _timed(["facegan", "pack", str(source), "--out", str(out),
                                    "--resolution", str(resolution), "--no-progress"], env)
            files = json.loads((out / "dataset.json").read_text())["count"]
            rows.append(f"| {date} | {machine} | `facegan pack {name} --resolution {resolution}` "
                        f"(cold scan cache) | {files} photos in {wall:.0f} s: "
                        f"**{files / wall:.0f} photos/s**, peak RSS {peak:.2f} GB |")
            print(rows[-1], flush=True)
    stream = _child("stream", str(work / "pack-synthetic-128"), str(batches), env=env)
    rows.append(f"| {date} | {machine} | streamed pipeline, {count} images at 128 px (PNG) | "
                f"**{stream['img_per_s']:.0f} img/s**; first batch {stream['first_batch_s']:.1f} s "
                f"(mid-epoch {stream['first_batch_mid_epoch_s']:.1f} s); peak RSS "
                f"{stream['peak_rss_gb']:.2f} GB |")
    print(rows[-1], flush=True)
    memory = _child("memory", str(work / "source"), "128", str(batches), env=env)
    rows.append(f"| {date} | {machine} | in-memory path, same {memory['images']} images at 128 px "
                f"| {memory['img_per_s']:.0f} img/s; first batch after {memory['first_batch_s']:.0f} s "
                f"(scan + decode); decoded {memory['decoded_gb']:.2f} GB; peak RSS "
                f"{memory['peak_rss_gb']:.2f} GB |")
    print(rows[-1], flush=True)
    for name in ("synthetic-128-10k", "synthetic-128"):
        run = work / f"run-{name}-{int(time.time())}"
        wall, peak = _train_rss(work / f"pack-{name}", run, 40, env)
        rows.append(f"| {date} | {machine} | `facegan train --data pack-{name} --preset faces-64 "
                    f"--set model.resolution=128 --steps 40` | {wall:.0f} s wall, peak RSS "
                    f"**{peak:.2f} GB** |")
        print(rows[-1], flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
