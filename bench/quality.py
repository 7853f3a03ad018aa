"""Quality per CPU minute: train a preset, then measure it (and, optionally, its curve).

    python bench/quality.py faces-64 ../shared/data/utkface --minutes 30
    python bench/quality.py faces-64 ../shared/data/utkface --minutes 30 --curve-every 5
    python bench/quality.py faces-64 PACK --steps 3000 --real ../shared/data/utkface

Trains PRESET on DATA for M minutes of the training loop (`train.minutes`:
start-up, data decoding and sampling are not counted) or for exactly N steps,
then compares `--num` (2,000) samples of the run's sampling generator (the EMA
generator when the preset keeps one) with as many real images: FID, KID and
face rate, with the same real images and seed for every preset.

`--curve-every K` trains in segments of K minutes; after each one the run's
checkpoint is measured (FID of `--curve-num` samples against a fixed set of as
many real images) and the run resumed, which is exact, so the segments train
what one run would. The FID network is only ever used between segments, never
by training; its time is not counted. Prints the curve, the minutes each FID
threshold was first reached, a Markdown row and a JSON line. Measures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

from machine import describe_machine

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

THRESHOLDS = (200.0, 100.0, 60.0)
CURVE_FILE = "quality-curve.jsonl"  # in the run folder: the points, so a later call continues


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset")
    parser.add_argument("data")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--minutes", type=float, help="training-loop minutes")
    budget.add_argument("--steps", type=int, help="train exactly this many steps instead")
    parser.add_argument("--num", type=int, default=2000,
                        help="generated and real images of the final measurement (0: none, "
                             "only the curve: for short proxies)")
    parser.add_argument("--seed", type=int, default=0, help="evaluation seed")
    parser.add_argument("--real", help="real images to compare with (default: DATA)")
    parser.add_argument("--curve-every", type=float, metavar="K",
                        help="with --minutes: FID every K minutes of training")
    parser.add_argument("--curve-num", type=int, default=1000,
                        help="generated and real images of each curve point (default 1000)")
    parser.add_argument("--run-dir", help="default runs/quality-PRESET-<time>; an existing "
                        "run is continued (exactly) for --minutes more")
    parser.add_argument("--held-out", metavar="PATH",
                        help="images D never trains on: each curve point also gives D's "
                             "mean logit on them against as many training images (the gap "
                             "grows when D memorises its training set)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value (for experiments; say so in the row)")
    return parser.parse_args()


def _config(args: argparse.Namespace, minutes: float):
    import facegan

    overrides = {"data.source": args.data, "train.sample_every": 1000,
                 "train.minutes": minutes, "train.steps": args.steps or 10**9}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key.strip()] = value.strip()
    return facegan.get_preset(args.preset).with_overrides(overrides)


def _train_timed(args, run_dir: Path, strategy) -> tuple[list[dict], float]:
    """Trains (in segments with --curve-every); returns the curve and the loop minutes.

    Each session stops when its `train.minutes` of training loop are spent (the
    loop's own clock: start-up and data loading are not counted), so the minutes
    trained are the sum of the segments.
    """
    import facegan

    total = args.minutes or 0.0
    segment = args.curve_every or total
    curve, trained = [], 0.0
    evaluator = _evaluator() if args.curve_every else None
    fresh = not (run_dir / "config.json").exists()
    earlier = _minutes_trained(run_dir) if not fresh else 0.0
    while True:
        this = min(segment, total - trained) if total else 0.0
        config = _config(args, this)
        if trained == 0.0 and fresh:
            facegan.train(config, run_dir, progress=False, strategy=strategy)
        else:  # exact resume, with this segment's budget
            facegan.resume(run_dir, minutes=this, progress=False, strategy=strategy)
        trained += this
        if args.curve_every:
            curve.append(_curve_point(args, run_dir, evaluator, earlier + trained))
            print(json.dumps(curve[-1]), flush=True)
            with open(run_dir / CURVE_FILE, "a") as out:
                out.write(json.dumps(curve[-1]) + "\n")
        if not args.curve_every or trained >= total - 1e-6:
            return curve, earlier + trained


def _minutes_trained(run_dir: Path) -> float:
    """Training-loop minutes an existing run has spent: its last curve point's, else 0."""
    path = run_dir / CURVE_FILE
    if not path.exists():
        return 0.0
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines[-1]["minutes"] if lines else 0.0


def _evaluator():
    from facegan.evaluate import Evaluator
    from facegan.metrics.inception import cache_dir

    evaluator = Evaluator(cache_dir=cache_dir())
    evaluator.check_weights()
    return evaluator


def _curve_point(args, run_dir: Path, evaluator, minutes: float) -> dict:
    import facegan
    from facegan.evaluate import ImageSet, real_image_set

    run = facegan.load(run_dir)
    model = run.config.model
    real = real_image_set(args.real or args.data, model.resolution, model.channels,
                          args.curve_num, seed=12345)  # the same real set at every point
    fake = ImageSet(run.generate(args.curve_num, seed=12345), "samples")
    fid = evaluator.compare(fake, real, ("fid",))["fid"]
    point = {"minutes": round(minutes, 2), "step": run.step, "fid_1k": round(fid, 2)}
    if args.held_out:
        point.update(_discriminator_gap(args, run, real.pixels[:500]))
    return point


def _discriminator_gap(args, run, training) -> dict:
    """D's mean logit and share called real: training images against held-out ones.

    Both sets are 500 images; the training ones come from the curve's real set
    (drawn from DATA). A growing gap means D memorises its training images.
    """
    import numpy as np
    import tensorflow as tf

    from facegan.data.training_images import to_signed_unit
    from facegan.evaluate import real_image_set
    from facegan.models import build_discriminator

    model = run.config.model
    held = real_image_set(args.held_out, model.resolution, model.channels, 500, seed=1).pixels
    discriminator = build_discriminator(model, seed=run.config.train.seed)
    checkpoint = tf.train.Checkpoint(discriminator=discriminator)
    checkpoint.restore(run.latest_checkpoint()).expect_partial()
    out = {}
    for name, pixels in (("train", training), ("held_out", held)):
        logits = np.concatenate([
            np.asarray(tf.cast(discriminator(to_signed_unit(pixels[i:i + 100]),
                                             training=False), tf.float32)).reshape(-1)
            for i in range(0, len(pixels), 100)])
        out[f"d_{name}"] = round(float(logits.mean()), 3)
        out[f"d_{name}_real"] = round(float((logits > 0).mean()), 3)
    return out


def _reached(curve: list[dict]) -> dict[str, float | None]:
    """The first curve point's minutes at or below each FID threshold (None: not reached)."""
    out = {}
    for threshold in THRESHOLDS:
        hit = next((p["minutes"] for p in curve if p["fid_1k"] <= threshold), None)
        out[f"fid_{threshold:g}"] = hit
    return out


def main() -> int:
    args = _arguments()
    import facegan
    from facegan.artifacts.logs import read_metrics
    from facegan.evaluate import evaluate_run
    from facegan.training.distribute import make_strategy

    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.run_dir or f"runs/quality-{args.preset}-{stamp}")
    strategy = make_strategy(_config(args, args.curve_every or args.minutes or 0.0))
    began = time.time()
    curve, trained = _train_timed(args, run_dir, strategy)
    wall = time.time() - began
    run = facegan.load(run_dir)
    records = [r for r in read_metrics(run.paths.metrics) if "event" not in r]
    rates = [r["img_per_s"] for r in records if r.get("img_per_s")]
    if args.num == 0:  # a proxy: the curve is the measurement
        print(json.dumps({"preset": args.preset, "overrides": args.set, "curve": curve,
                          "reached": _reached(curve), "img_per_s": statistics.median(rates),
                          "run": str(run_dir), "machine": describe_machine()}))
        return 0
    results = evaluate_run(run, _evaluator(), args.real, ("fid", "kid", "face_rate"),
                           args.num, args.seed)
    grid = sorted(run.paths.samples.glob("step-*.png"))[-1]
    config = run.config
    row = {
        "preset": args.preset, "data": args.data, "real": args.real or args.data,
        "overrides": args.set, "minutes": args.minutes, "loop_minutes": round(trained, 2),
        "steps": results["step"], "images_seen": results["step"] * config.train.batch_size
        * (config.loss.n_critic if config.train.updates == "alternating" else 1),
        "img_per_s": statistics.median(rates) if rates else None,
        "fid": results["fid"], "kid": results["kid"], "kid_std": results.get("kid_std"),
        "face_rate": results["face_rate"], "wall_s": round(wall, 1),
        "curve": curve, "reached": _reached(curve) if curve else None,
        "samples": str(grid), "run": str(run_dir), "precision": config.train.precision,
        "machine": describe_machine(), "date": _dt.date.today().isoformat(),
    }
    print(json.dumps(row))
    budget = f"--minutes {args.minutes:g}" if args.minutes else f"--steps {args.steps}"
    extra = f" `--set {' --set '.join(args.set)}`" if args.set else ""
    print(f"| {row['date']} | `python bench/quality.py {args.preset} {args.data} {budget}`"
          f"{extra} | {row['steps']} | {row['img_per_s']:.0f} | {row['fid']:.2f} | "
          f"{row['kid']:.4f} | {row['face_rate']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
