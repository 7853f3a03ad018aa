"""Quality at equal wall-clock: train a preset for M minutes, then measure it.

    python bench/quality.py faces-64 ../shared/data/utkface --minutes 30
    python bench/quality.py dcgan-64 ../shared/data/utkface --minutes 30

Trains PRESET on DATA for M minutes of training loop (start-up, data decoding
and sampling are not counted: `train.minutes`), then compares 2,000 samples of
the run's sampling generator (the EMA generator when the preset keeps one)
with 2,000 real training images: FID, KID and face rate, with the same real
images and the same seed for every preset. Prints a Markdown row for
docs/benchmarks.md and a JSON line. Measures; asserts nothing.
"""

from __future__ import annotations

import argparse
from machine import describe_machine  # noqa: E402
import datetime as _dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset")
    parser.add_argument("data")
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--num", type=int, default=2000, help="generated and real images")
    parser.add_argument("--seed", type=int, default=0, help="evaluation seed")
    parser.add_argument("--run-dir", help="default runs/quality-PRESET-<time>")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value (for experiments; say so in the row)")
    args = parser.parse_args()

    import facegan
    from facegan.training.distribute import make_strategy

    overrides = {"data.source": args.data, "train.minutes": args.minutes,
                 "train.steps": 10**9, "train.sample_every": 1000}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key.strip()] = value.strip()
    config = facegan.get_preset(args.preset).with_overrides(overrides)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.run_dir or f"runs/quality-{args.preset}-{stamp}")
    strategy = make_strategy(config)  # before TensorFlow runs anything

    began = time.time()
    run = facegan.train(config, run_dir, progress=False, strategy=strategy)
    wall = time.time() - began

    from facegan.artifacts.logs import read_metrics
    from facegan.evaluate import Evaluator, evaluate_run
    from facegan.metrics.inception import cache_dir

    records = [r for r in read_metrics(run.paths.metrics) if "event" not in r]
    rates = [r["img_per_s"] for r in records if r.get("img_per_s")]
    evaluator = Evaluator(cache_dir=cache_dir())
    evaluator.check_weights()
    results = evaluate_run(facegan.load(run_dir), evaluator, metrics=("fid", "kid", "face_rate"),
                           num=args.num, seed=args.seed)
    grid = sorted(run.paths.samples.glob("step-*.png"))[-1]
    row = {
        "preset": args.preset, "overrides": args.set, "minutes": args.minutes,
        "steps": results["step"], "images_seen": results["step"] * config.train.batch_size
        * (config.loss.n_critic if config.train.updates == "alternating" else 1),
        "img_per_s": statistics.median(rates) if rates else None,
        "fid": results["fid"], "kid": results["kid"], "kid_std": results.get("kid_std"),
        "face_rate": results["face_rate"], "train_wall_s": round(wall, 1),
        "samples": str(grid), "run": str(run_dir),
        "machine": describe_machine(),
        "date": _dt.date.today().isoformat(),
    }
    print(json.dumps(row))
    extra = f" `--set {' --set '.join(args.set)}`" if args.set else ""
    print(f"| {row['date']} | `python bench/quality.py {args.preset} {args.data} --minutes "
          f"{args.minutes:g}`{extra} | {row['steps']} | {row['img_per_s']:.0f} | "
          f"{row['fid']:.2f} | {row['kid']:.4f} | {row['face_rate']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
