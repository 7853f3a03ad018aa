"""What truncation does to a trained run: brightness, precision and recall per psi.

    python bench/truncation.py RUN --real ../shared/data/utkface --psi 1 0.7 0.5 --num 1000

For each psi it draws seeds 0 .. num-1 (the same faces at every psi), and
reports the mean pixel value (truncation should make faces more typical, not
darker), its ratio to psi = 1, and improved precision and recall (k = 3) of
the Inception features against `num` real images: precision should rise and
recall fall as psi drops. Writes a 16-face grid per psi next to the numbers
(`--grids DIR`). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--real", required=True, help="real images (a folder, zip or pack)")
    parser.add_argument("--psi", type=float, nargs="+", default=[1.0, 0.7, 0.5])
    parser.add_argument("--num", type=int, default=1000)
    parser.add_argument("--grids", help="folder for one 4x4 grid per psi")
    parser.add_argument("--split", help="experiment: truncate at this generator layer instead "
                                        "of facegan.models.truncation.SPLIT_LAYERS (e.g. relu_8)")
    args = parser.parse_args()
    if args.split:
        from facegan.models import truncation

        truncation.SPLIT_LAYERS = (args.split,)

    import facegan
    from facegan.artifacts.images import make_grid, save_png
    from facegan.evaluate import Evaluator, ImageSet, real_image_set
    from facegan.metrics.inception import cache_dir
    from facegan.metrics.precision_recall import precision_recall
    from machine import describe_machine

    run = facegan.load(args.run)
    model = run.config.model
    evaluator = Evaluator(cache_dir=cache_dir())
    evaluator.check_weights()
    real = real_image_set(args.real, model.resolution, model.channels, args.num, seed=12345)
    real_features = evaluator.features(real)
    print(f"# {describe_machine()}; run {args.run} at step {run.step} ({model.arch}, "
          f"{model.resolution} px); seeds 0-{args.num - 1}; split at "
          f"{args.split or 'the default layer'}")
    base = None
    for psi in args.psi:
        images = run.generate(args.num, seed=0, truncation=psi)
        brightness = float(images.mean())
        base = brightness if base is None else base
        features = evaluator.features(ImageSet(images, f"psi {psi}"))
        precision, recall = precision_recall(real_features, features)
        print(json.dumps({"psi": psi, "mean_pixel": round(brightness, 2),
                          "vs_psi_1": round(brightness / base, 4),
                          "precision": round(precision, 4), "recall": round(recall, 4)}))
        if args.grids:
            Path(args.grids).mkdir(parents=True, exist_ok=True)
            save_png(make_grid(images[:16]), Path(args.grids) / f"psi-{psi:g}.png")


if __name__ == "__main__":
    main()
