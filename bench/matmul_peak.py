"""Peak matrix-multiply throughput of this machine, per dtype, as TensorFlow sees it.

Puts the train-step numbers in context: a DCGAN-64 training image costs about
2.2 GFLOP (G forward+backward, D on real and fake forward+backward, and the
generator's gradient through D), so img/s x 2.2 / peak is the share of peak.

    python bench/matmul_peak.py [--size 2048]

Prints numbers; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from machine import describe_machine  # noqa: E402


def gflops(dtype: tf.DType, size: int, chain: int = 10, repeats: int = 5) -> float:
    a = tf.cast(tf.random.normal([size, size]), dtype)

    @tf.function
    def chained(a):
        x = a
        for _ in range(chain):
            x = tf.matmul(a, x) * tf.cast(0.01, dtype)  # scaled to stay finite
        return x

    chained(a).numpy()  # trace and warm up
    began = time.perf_counter()
    for _ in range(repeats):
        chained(a).numpy()
    return repeats * chain * 2 * size**3 / (time.perf_counter() - began) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    args = parser.parse_args()
    print(f"TF {tf.__version__}, {describe_machine()}, {args.size}x{args.size} matmul chains")
    for dtype in (tf.float32, tf.bfloat16):
        print(f"{dtype.name:>9}: {gflops(dtype, args.size):7.1f} GFLOP/s")


if __name__ == "__main__":
    main()
