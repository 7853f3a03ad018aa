"""Feature-extraction speed of the FID Inception port, and of the face detector.

    python bench/inception_throughput.py [--num 200] [--resolution 64]

Times `extract_features` (uint8 -> resize to 299 -> Inception pool3) and
`face_rate` (MTCNN) on random uint8 images after a warm-up call, and prints
img/s. Needs the weights (`facegan weights`). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from facegan.metrics.face_rate import FaceDetector, face_rate  # noqa: E402
from facegan.metrics.inception import extract_features, load_fid_inception  # noqa: E402
from machine import describe_machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=200)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    images = np.random.default_rng(0).integers(
        0, 256, (args.num, args.resolution, args.resolution, 3), dtype=np.uint8)

    model = load_fid_inception()
    extract_features(model, images[:args.batch], batch_size=args.batch)  # warm-up
    began = time.perf_counter()
    extract_features(model, images, batch_size=args.batch)
    seconds = time.perf_counter() - began
    print(f"inception features: {args.num / seconds:6.1f} img/s "
          f"({args.num} images {args.resolution}px -> 299, batch {args.batch}; {describe_machine()})")

    detector = FaceDetector()
    face_rate(images[:64], detector=detector)  # warm-up
    began = time.perf_counter()
    face_rate(images, detector=detector)
    seconds = time.perf_counter() - began
    print(f"face detector     : {args.num / seconds:6.1f} img/s on noise "
          f"({1000 * seconds / args.num:.1f} ms/img; real faces cost more, see docs/benchmarks.md)")


if __name__ == "__main__":
    main()
