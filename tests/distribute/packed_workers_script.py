"""One worker of a 2-process MultiWorkerMirroredStrategy job streaming a packed dataset.

    TF_CONFIG=... python packed_workers_script.py PACK OUT.json STEPS

Iterates the real input pipeline (`distributed_batches`) for STEPS steps of a
global batch of 8 and writes, step by step, the `index` of every image this
worker's replicas received.
"""

import json
import sys

from facegan.config import TrainConfig
from facegan.training.distribute import make_strategy


def main() -> None:
    pack, out, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    strategy = make_strategy(TrainConfig(strategy="multiworker", batch_size=8))
    import tensorflow as tf

    from facegan.data.packed import read_pack_info
    from facegan.data.streaming import PackedImages
    from facegan.training.distribute import distributed_batches

    images = PackedImages(read_pack_info(pack), shuffle_window=4, with_index=True)
    batches = distributed_batches(strategy, images, 8, 3, True, 0)
    seen = []
    for _ in range(steps):
        _, index = next(batches)
        seen.append(tf.concat(strategy.experimental_local_results(index), 0).numpy().tolist())
    with open(out, "w") as file:
        json.dump({"replicas": strategy.num_replicas_in_sync, "seen": seen}, file)


if __name__ == "__main__":
    main()
